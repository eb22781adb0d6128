"""Latency benchmark; same as `dualrl bench latency`. See dualrl.bench.latency."""

from dualrl.bench.latency import main

if __name__ == "__main__":
    raise SystemExit(main())

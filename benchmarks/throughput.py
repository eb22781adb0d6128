"""Throughput benchmark; same as `dualrl bench throughput`. See dualrl.bench.throughput."""

from dualrl.bench.throughput import main

if __name__ == "__main__":
    raise SystemExit(main())

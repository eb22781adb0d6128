"""The run directory: config.json, metrics.jsonl, summary.json, checkpoints/."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dualrl.o2o.checkpoint import atomic_write_text


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null so every line stays valid JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_file = self.path / "metrics.jsonl"

    def exists(self) -> bool:
        return (self.path / "config.json").exists()

    def create(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.write_json("config.json", config)
        atomic_write_text(self.metrics_file, "")

    def read_json(self, name: str) -> dict[str, Any]:
        return json.loads((self.path / name).read_text())

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.path / name, json.dumps(_clean(data), indent=2) + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_file, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """On resume: the log is exactly the records of the checkpoint we continue from."""
        atomic_write_text(self.metrics_file, "".join(json.dumps(_clean(r)) + "\n" for r in records))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.exists():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line]

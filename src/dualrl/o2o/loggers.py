"""Where evaluation records go besides the run's metrics.jsonl (always written; reports and
resume read it): TensorBoard and Weights & Biases, optional and off by default.

    dualrl train ... --loggers tensorboard          # RUN_DIR/tensorboard (pip install tensorboardX)
    dualrl train ... --loggers tensorboard,wandb    # W&B offline in RUN_DIR/wandb unless
                                                    # WANDB_MODE=online (pip install wandb)

Every logger takes the same records: {"phase", "step", "total_step", numeric fields...}; the
numbers are plotted against total_step under "<phase>/<field>". Nothing here needs a network.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Protocol

LOGGER_NAMES = ("tensorboard", "wandb")
INSTALL = {"tensorboard": "tensorboardX", "wandb": "wandb"}


class LoggerError(RuntimeError):
    """An optional logger that cannot start (its package missing): one line."""


class Logger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """A record's finite numbers as "<phase>/<field>" (step counters aside)."""
    phase = record.get("phase", "train")
    out = {}
    for key, value in record.items():
        if key in ("phase", "step", "total_step") or isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[f"{phase}/{key}"] = float(value)
    return out


class TensorBoardLogger:
    """Scalars to RUN_DIR/tensorboard with tensorboardX. A resumed run drops the events its
    checkpoint does not cover (`purge_step`), so its curves do not double back."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise LoggerError("--loggers tensorboard needs tensorboardX: "
                              "pip install 'dualrl[tensorboard]'") from None
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def log(self, record: dict[str, Any]) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, global_step=record["total_step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Weights & Biases, offline (files in RUN_DIR/wandb, `wandb sync` later) unless the user
    sets WANDB_MODE; the run id is dualrl's, so a resumed run continues the same W&B run."""

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any], name: str):
        try:
            import wandb
        except ImportError:
            raise LoggerError("--loggers wandb needs wandb: pip install 'dualrl[wandb]'") \
                from None
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "dualrl"), id=run_id,
                              name=name, dir=str(run_dir), config=config, resume="allow",
                              mode=os.environ.get("WANDB_MODE", "offline"))

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(scalars(record), step=record["total_step"])

    def close(self) -> None:
        self.run.finish()


def check_available(names: tuple[str, ...]) -> None:
    """Fail before a run starts (and writes anything) when a logger's package is missing."""
    for name in names:
        try:
            __import__(INSTALL[name])
        except ImportError:
            raise LoggerError(f"--loggers {name} needs {INSTALL[name]}: pip install "
                              f"'dualrl[{name}]'") from None


def make_loggers(names: tuple[str, ...], run_dir: Path | None, run_id: str,
                 config: dict[str, Any], resume_step: int | None = None) -> list[Logger]:
    """The optional loggers named in LoopConfig.loggers (none without a run directory)."""
    unknown = sorted(set(names) - set(LOGGER_NAMES))
    if unknown:
        raise LoggerError(f"unknown logger(s) {', '.join(unknown)}; valid loggers: "
                          f"{', '.join(LOGGER_NAMES)}")
    if run_dir is None:
        return []
    loggers: list[Logger] = []
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            loggers.append(TensorBoardLogger(run_dir, resume_step))
        else:
            label = f"{config.get('algo')}-{config.get('task')}-seed{config.get('seed')}"
            loggers.append(WandbLogger(run_dir, run_id, config, label))
    return loggers

"""The run directory: config.json, metrics.jsonl, summary.json, checkpoints/, .lock.

Rules (what a user can rely on):
- a run directory is created only where nothing is, or in an empty folder; a folder holding
  anything else that is not a run of ours is refused and left untouched;
- one process at a time: an exclusive OS lock on `.lock` (flock; the OS drops it when the
  holder dies, so a killed run can be resumed at once); the holder's PID is written into it;
- the run only ever writes, replaces or removes names it created itself;
- every OS or parse error on these paths is a `RunDirError` / `OSError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dualrl.o2o.checkpoint import append_text, atomic_write_text, remove_stale_temporaries

LOCK_NAME = ".lock"


class RunDirError(RuntimeError):
    """A run directory cannot be used as asked; the message names the path and the cause."""


class RunExistsError(RunDirError, FileExistsError):
    pass


class RunLockedError(RunDirError):
    pass


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null so every line stays valid JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _cause(e: BaseException) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON (truncated or edited?): {e.msg} at line {e.lineno}"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte {e.start})"
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e)


class RunLock:
    """An exclusive, OS-level lock on one file; released by the OS when the process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, run_path: Path) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunDirError(f"{self.path}: cannot create the run's lock file "
                              f"({_cause(e)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise RunLockedError(
                    f"{run_path}: in use by another dualrl process (PID {holder}); wait for "
                    "it to finish or stop it, or choose another --out") from None
            raise RunDirError(f"{self.path}: cannot lock ({_cause(e)})") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the lock holds without the PID note (e.g. disk full)
        self._fd = fd

    def holder(self) -> str | None:
        """The PID holding the lock, or None when nobody does (nothing is created)."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except OSError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)  # drops the shared lock taken just to look

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_file = self.path / "metrics.jsonl"
        self.lock = RunLock(self.path / LOCK_NAME)

    def exists(self) -> bool:
        """Holds a run of ours (config.json is written last when a run is created)."""
        return (self.path / "config.json").is_file()

    # ------------------------------------------------------------- opening
    def check_new(self) -> None:
        """Refuse, without touching anything, unless a new run may be created here."""
        p = self.path
        if self.exists():
            holder = self.lock.holder()
            busy = f" (in use by another dualrl process, PID {holder})" if holder else ""
            raise RunExistsError(f"{p}: already holds a run{busy}; pass --resume to continue "
                                 "it or choose another --out")
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise RunDirError(f"{p}: exists and is not a directory; choose another --out")
            try:
                entries = sorted(e.name for e in p.iterdir())
            except OSError as e:
                raise RunDirError(f"{p}: cannot be read ({_cause(e)})") from None
            if entries:
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise RunDirError(
                    f"{p}: not empty ({shown}) and not a dualrl run (no config.json); nothing "
                    "in it was touched; choose a new or empty --out")
        else:  # a missing parent that is a file gives NotADirectoryError on mkdir: say it here
            for parent in p.parents:
                if parent.exists():
                    if not parent.is_dir():
                        raise RunDirError(f"{p}: cannot be created, {parent} is a file, "
                                          "not a directory")
                    break

    def create(self, config: dict[str, Any]) -> None:
        """Make the folder, take the lock, write config.json (last: it marks a run)."""
        self.check_new()
        existed = self.path.is_dir()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"{self.path}: cannot create the run directory "
                              f"({_cause(e)})") from None
        self.lock.acquire(self.path)
        try:
            others = sorted(e.name for e in self.path.iterdir() if e.name != LOCK_NAME)
            if others:  # someone wrote here between the check and the lock
                raise RunDirError(f"{self.path}: was written to by another process while this "
                                  f"run started ({', '.join(others[:3])}); nothing was touched")
            self._mkdir(self.checkpoints)
            atomic_write_text(self.metrics_file, "")
            self.write_json("config.json", config)
        except BaseException:
            self.lock.release()
            # undo what this call created (the folder was empty or absent before it)
            with contextlib.suppress(OSError):
                for name in ("metrics.jsonl", LOCK_NAME):
                    (self.path / name).unlink(missing_ok=True)
                if self.checkpoints.is_dir():
                    self.checkpoints.rmdir()
                if not existed:
                    self.path.rmdir()
            raise

    def open_existing(self) -> dict[str, Any]:
        """Lock a run for --resume and return its config.json."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no run to resume (no such directory)")
        if not self.exists():
            raise RunDirError(f"{self.path}: no run to resume (config.json missing)")
        self.lock.acquire(self.path)
        try:
            config = self.read_json("config.json")
            remove_stale_temporaries(self.checkpoints)
        except BaseException:
            self.lock.release()
            raise
        return config

    def close(self) -> None:
        self.lock.release()

    @contextlib.contextmanager
    def held(self) -> Iterator[RunDir]:
        try:
            yield self
        finally:
            self.close()

    # ------------------------------------------------------------- files
    def _mkdir(self, path: Path) -> None:
        try:
            path.mkdir(exist_ok=True)
        except OSError as e:
            raise RunDirError(f"{path}: cannot create ({_cause(e)})") from None

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as e:
            raise RunDirError(f"{path}: unreadable ({_cause(e)})") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path}: unreadable (expected a JSON object)")
        return data

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.path / name, json.dumps(_clean(data), indent=2) + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_text(self.metrics_file, json.dumps(_clean(record)) + "\n")

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """On resume: the log is exactly the records of the checkpoint we continue from."""
        atomic_write_text(self.metrics_file,
                          "".join(json.dumps(_clean(r)) + "\n" for r in records))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.exists():
            return []
        try:
            lines = self.metrics_file.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line]
        except (OSError, ValueError) as e:
            raise RunDirError(f"{self.metrics_file}: unreadable ({_cause(e)})") from None


def new_run_id() -> str:
    return uuid.uuid4().hex

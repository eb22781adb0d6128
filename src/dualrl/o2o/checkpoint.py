"""Atomic checkpoints: a crash never leaves a corrupt latest checkpoint.

Layout: `checkpoints/<tag>/{agent.msgpack, arrays.npz, meta.json}` plus `checkpoints/LATEST`
naming the newest complete one. A checkpoint is written to a temporary folder, fsynced, then
renamed into place; only after that does LATEST move. meta.json stores SHA-256 digests so a
damaged file is reported by name instead of loading garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

LATEST = "LATEST"


class CheckpointError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _fsync_write(tmp, text.encode())
    os.replace(tmp, path)


def save_checkpoint(ckpt_dir: Path, tag: str, agent_state: Any,
                    arrays: dict[str, np.ndarray], meta: dict[str, Any], keep: int = 2) -> Path:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / tag
    tmp = ckpt_dir / f".tmp-{tag}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _fsync_write(tmp / "agent.msgpack", flax.serialization.to_bytes(jax.device_get(agent_state)))
    with open(tmp / "arrays.npz", "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    digests = {name: _sha256(tmp / name) for name in ("agent.msgpack", "arrays.npz")}
    _fsync_write(tmp / "meta.json", json.dumps({**meta, "sha256": digests}, indent=1).encode())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(ckpt_dir / LATEST, tag)
    _prune(ckpt_dir, keep=keep, protect=tag)
    return final


def _prune(ckpt_dir: Path, keep: int, protect: str) -> None:
    done = sorted(
        (p for p in ckpt_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    for p in done[:-keep]:
        if p.name != protect:
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    marker = ckpt_dir / LATEST
    if not marker.exists():
        return None
    path = ckpt_dir / marker.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{marker}: names checkpoint '{path.name}', which does not exist")
    return path


def load_checkpoint(path: Path, template: Any) -> tuple[Any, dict[str, np.ndarray], dict]:
    """Restore into the structure of `template`; verifies digests, errors name the file."""
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint metadata ({e})") from e
    for name, digest in meta.get("sha256", {}).items():
        file = path / name
        if not file.exists():
            raise CheckpointError(f"{file}: missing from checkpoint")
        if _sha256(file) != digest:
            raise CheckpointError(f"{file}: corrupt checkpoint file (SHA-256 mismatch)")
    agent_file = path / "agent.msgpack"
    try:
        state = flax.serialization.from_bytes(jax.device_get(template), agent_file.read_bytes())
    except Exception as e:  # msgpack/structure errors
        raise CheckpointError(f"{agent_file}: cannot restore agent state ({e})") from e
    try:
        with np.load(path / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise CheckpointError(f"{path / 'arrays.npz'}: cannot read arrays ({e})") from e
    return state, arrays, meta

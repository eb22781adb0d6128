"""Atomic, verified checkpoints: a crash or a full disk never leaves a corrupt latest one.

Layout: `checkpoints/<tag>/{agent.msgpack, arrays.npz, meta.json, SHA256SUMS}` plus
`checkpoints/LATEST` naming the newest complete one. A checkpoint is written into a fresh
temporary folder, fsynced, then renamed into place; only after that does LATEST move. Any
failure on the way (ENOSPC, EROFS, ...) removes the temporary folder and leaves the previous
checkpoint and LATEST as they were.

SHA256SUMS (the `sha256sum` format, so `sha256sum -c SHA256SUMS` checks it by hand) covers
every file, meta.json included: an edited progress value or a deleted digest is refused, never
trusted. meta.json carries the `owner` that wrote it; clean-up (pruning old checkpoints,
replacing one of the same tag) only ever touches folders of the same owner, so a folder a user
put beside them is never removed.

Every write goes through `os.write` on a raw descriptor (no Python buffering), which is also
what the disk-full tests intercept.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

LATEST = "LATEST"
SUMS = "SHA256SUMS"
PAYLOAD = ("agent.msgpack", "arrays.npz", "meta.json")


class CheckpointError(RuntimeError):
    pass


# ------------------------------------------------------------------ raw writes
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # a write that makes no progress is a full disk in disguise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def write_file(path: Path, data: bytes) -> None:
    """Create/replace `path` with `data`, fsynced. Errors name the path."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise _named(e, path) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write aside, then rename over `path`: readers see the old or the new file, never half.
    On failure the temporary file is removed and `path` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException as e:
        _unlink_quietly(tmp)
        if isinstance(e, OSError):  # name the file the user knows, not the temporary one
            raise _renamed(e, path) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def append_text(path: Path, text: str) -> None:
    """Append to `path`; on failure the file is cut back to its old length (no half line)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise _named(e, path) from None
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, text.encode())
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise _named(e, path) from None
    finally:
        os.close(fd)


def _named(e: OSError, path: Path) -> OSError:
    """The same error, carrying the path it happened on (for one-line reports)."""
    if e.filename is not None:
        return e
    return type(e)(e.errno, e.strerror or str(e), str(path))


def _renamed(e: OSError, path: Path) -> OSError:
    return type(e)(e.errno, e.strerror or str(e), str(path))


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(ckpt_dir: Path, tag: str, agent_state: Any, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any], keep: int = 2, owner: str = "dualrl") -> Path:
    """Write checkpoint `tag` atomically, move LATEST to it, then prune to the newest `keep`
    checkpoints of the same `owner` (other folders are never touched)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    files = {
        "agent.msgpack": flax.serialization.to_bytes(jax.device_get(agent_state)),
        "arrays.npz": npz.getvalue(),
        "meta.json": json.dumps({**meta, "owner": owner}, indent=1).encode(),
    }
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in files.items())
    final = ckpt_dir / tag
    if final.exists() and not _owned_by(final, owner):
        raise CheckpointError(f"{final}: exists and was not written by this run; "
                              "refusing to replace it")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{tag}-", dir=ckpt_dir))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the checkpoint from a shared group
    except OSError as e:
        raise _named(e, ckpt_dir) from None
    aside = None
    try:
        for name, data in files.items():
            write_file(tmp / name, data)
        write_file(tmp / SUMS, sums.encode())  # last: its presence marks a complete folder
        _fsync_dir(tmp)
        if final.exists():  # ours (checked above): keep it until the new one is in place
            aside = ckpt_dir / f".old-{tag}-{tmp.name}"
            os.replace(final, aside)
        os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and not final.exists():
            os.replace(aside, final)
        if isinstance(e, OSError):
            raise _renamed(e, final) from None
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(ckpt_dir)
    atomic_write_text(ckpt_dir / LATEST, tag)
    _prune(ckpt_dir, keep=keep, protect=tag, owner=owner)
    return final


def _owner_of(path: Path) -> str | None:
    try:
        return json.loads((path / "meta.json").read_bytes()).get("owner")
    except (OSError, ValueError, AttributeError):
        return None


def _owned_by(path: Path, owner: str) -> bool:
    return path.is_dir() and (path / SUMS).is_file() and _owner_of(path) == owner


def _prune(ckpt_dir: Path, keep: int, protect: str, owner: str) -> None:
    ours = sorted(
        (p for p in ckpt_dir.iterdir()
         if not p.name.startswith(".") and p.name != protect and _owned_by(p, owner)),
        key=lambda p: p.stat().st_mtime,
    )
    for p in ours[: max(0, len(ours) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)


def remove_stale_temporaries(ckpt_dir: Path) -> None:
    """`.tmp-*` / `.old-*` folders a killed writer of this run left behind (call with the run's
    lock held, so no live writer owns them)."""
    if not ckpt_dir.is_dir():
        return
    try:
        latest = latest_checkpoint(ckpt_dir)
    except CheckpointError:  # killed between moving the old copy aside and the new one in
        latest = None
        name = (ckpt_dir / LATEST).read_text(encoding="utf-8", errors="replace").strip()
        aside = sorted(ckpt_dir.glob(f".old-{name}-.tmp-*"))
        if name and not (ckpt_dir / name).exists() and aside:
            os.replace(aside[-1], ckpt_dir / name)
            latest = ckpt_dir / name
    for p in ckpt_dir.iterdir():
        if p.is_dir() and p.name.startswith((".tmp-", ".old-")):
            if p.name.startswith(".old-") and latest is None:
                continue  # never drop the only copy of something
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and p.name.startswith(f".{LATEST}.tmp-"):
            _unlink_quietly(p)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    marker = Path(ckpt_dir) / LATEST
    if not marker.exists():
        return None
    try:
        name = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{marker}: unreadable ({_cause(e)})") from None
    if not name or "/" in name or name.startswith("."):
        raise CheckpointError(f"{marker}: does not name a checkpoint ({name!r})")
    path = marker.parent / name
    if not path.is_dir():
        raise CheckpointError(f"{marker}: names checkpoint '{name}', which does not exist")
    return path


def verify_checkpoint(path: Path) -> None:
    """Every payload file listed in SHA256SUMS and matching it; else CheckpointError."""
    sums_path = path / SUMS
    if not sums_path.is_file():
        raise CheckpointError(f"{sums_path}: missing; a checkpoint without its checksum record "
                              "is not trusted")
    try:
        lines = sums_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{sums_path}: unreadable ({_cause(e)})") from None
    digests = {}
    for line in lines:
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise CheckpointError(f"{sums_path}: malformed line {line!r}")
        digests[name] = digest
    for name in PAYLOAD:
        file = path / name
        if name not in digests:
            raise CheckpointError(f"{sums_path}: has no checksum for {name}; not trusted")
        if not file.is_file():
            raise CheckpointError(f"{file}: missing from checkpoint")
        try:
            actual = _sha256_file(file)
        except OSError as e:
            raise CheckpointError(f"{file}: unreadable ({_cause(e)})") from None
        if actual != digests[name]:
            raise CheckpointError(f"{file}: corrupt or modified checkpoint file "
                                  "(SHA-256 mismatch)")


def load_checkpoint(path: Path, template: Any) -> tuple[Any, dict[str, np.ndarray], dict]:
    """Verify, then restore into the structure of `template`; errors name the file."""
    path = Path(path)
    verify_checkpoint(path)
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint metadata ({_cause(e)})") \
            from None
    agent_file = path / "agent.msgpack"
    try:
        state = flax.serialization.from_bytes(jax.device_get(template), agent_file.read_bytes())
    except Exception as e:  # msgpack/structure errors
        raise CheckpointError(f"{agent_file}: cannot restore agent state ({_cause(e)})") \
            from None
    try:
        with np.load(path / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise CheckpointError(f"{path / 'arrays.npz'}: cannot read arrays ({_cause(e)})") \
            from None
    return state, arrays, meta


def _cause(e: BaseException) -> str:
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return " ".join(text.split()) or type(e).__name__

"""D4RL-format HDF5 files: read them (never writing to them) and write our own.

A D4RL file holds flat arrays `observations, actions, rewards, next_observations, terminals,
timeouts` (plus optional `infos/*` and `metadata/*`). AntMaze files carry no
`next_observations`; we rebuild them inside episodes (see `read_d4rl`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dualrl.data.dataset import REQUIRED_KEYS, Dataset, DatasetError

PathLike = str | os.PathLike[str]

_MATRIX_KEYS = ("observations", "actions", "next_observations")
_VECTOR_KEYS = ("rewards", "terminals", "timeouts", "episode_ends")
_FLAG_KEYS = ("terminals", "timeouts", "episode_ends")


# ---------------------------------------------------------------------- shared helpers
def check_arrays(arrays: dict[str, np.ndarray], source: str) -> None:
    """Shape/dtype checks shared by every file reader, so errors name the key at fault.

    `Dataset.validate` would catch most of this too, but only after reshaping, which turns
    e.g. a (N, 2) reward array into a confusing "2N rows" message.
    """
    obs = arrays.get("observations")
    if obs is None:
        raise DatasetError(source, "observations", "missing required key")
    if obs.ndim == 0:
        raise DatasetError(source, "observations", "is a scalar, expected shape (N, obs_dim)")
    n = obs.shape[0]
    if n == 0:
        raise DatasetError(source, "observations", "dataset is empty (0 transitions)")
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            raise DatasetError(source, key, f"has non-numeric dtype {arr.dtype}")
        if key in _MATRIX_KEYS and arr.ndim not in (1, 2):
            raise DatasetError(
                source, key, f"has shape {arr.shape}, expected (N,) or (N, dim) (wrong ndim)"
            )
        if key in _VECTOR_KEYS and not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
            raise DatasetError(source, key, f"has shape {arr.shape}, expected (N,) (wrong ndim)")
        if arr.shape[0] != n:
            raise DatasetError(
                source,
                key,
                f"has {arr.shape[0]} rows but 'observations' has {n} (length mismatch)",
            )
        if key in _FLAG_KEYS and arr.dtype.kind != "b":
            bad = ~np.isin(arr, (0, 1))
            if bad.any():
                row = int(np.flatnonzero(bad.reshape(-1))[0])
                raise DatasetError(
                    source, key, f"must hold only 0/1 flags, found {arr.reshape(-1)[row]!r}"
                )


def json_default(obj: Any) -> Any:
    """Make NumPy scalars/arrays (and anything else) JSON-serialisable for metadata."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def user_metadata(dataset: Dataset) -> dict[str, Any]:
    """The metadata worth writing to a file (`format` is re-set by whichever reader loads it)."""
    return {k: v for k, v in dataset.metadata.items() if k != "format"}


@contextlib.contextmanager
def atomic_path(path: PathLike, overwrite: bool, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path next to `path`; move it onto `path` only if the body succeeds.

    A crash half-way never leaves a truncated file behind, and an existing file is only
    replaced when the caller asked for it.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path}: refusing to overwrite an existing file (pass overwrite=True to replace it)"
        )
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def open_hdf5(path: Path, source: str) -> h5py.File:
    """Open read-only with a clear DatasetError for missing / non-HDF5 files."""
    if not path.exists():
        raise DatasetError(source, None, "no such file or directory")
    if path.is_dir():
        raise DatasetError(source, None, "is a directory, expected an HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DatasetError(source, None, f"cannot be read: {exc}") from exc
    if not is_hdf5:
        raise DatasetError(source, None, "is not an HDF5 file (wrong format or corrupted)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(source, None, f"cannot be opened as HDF5: {exc}") from exc


@contextlib.contextmanager
def h5_errors(source: str) -> Iterator[None]:
    """Turn h5py's low-level errors on damaged files into a DatasetError naming the file."""
    try:
        yield
    except DatasetError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise DatasetError(source, None, f"cannot be read (corrupted file?): {exc}") from exc


def read_h5_array(node: Any, source: str, key: str) -> np.ndarray:
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(source, key, "is a group, expected an array")
    try:
        return np.asarray(node[()])
    except (OSError, RuntimeError, KeyError) as exc:  # truncated / corrupted chunks
        raise DatasetError(source, key, f"cannot be read (corrupted?): {exc}") from exc


def _decode_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _decode_scalar(value.reshape(()).item())
    return value


def _as_float(value: Any, source: str, key: str) -> float | None:
    value = _decode_scalar(value)
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DatasetError(source, key, f"is not a number: {value!r}") from exc
    if not np.isfinite(out):
        raise DatasetError(source, key, f"is not finite: {out}")
    return out


# ------------------------------------------------------------------------------- read
def read_d4rl(path: PathLike) -> Dataset:
    """Load a D4RL-format HDF5 file (opened read-only).

    - `timeouts` missing (very old files): all False, with a warning naming the file.
    - `next_observations` missing (AntMaze): s'_i = s_{i+1} inside an episode (boundaries at
      terminals | timeouts). The last transition of an episode has no known s': it is DROPPED
      when it ends by time-out or at the end of the file (as D4RL's `qlearning_dataset` does for
      time-outs), since bootstrapping needs s'. Terminal transitions are KEPT (their reward
      matters and their s' is never bootstrapped from): s' = s_{i+1} as in `qlearning_dataset`,
      or s' = s_i when there is no next row. `metadata['dropped_transitions']` counts the drops.
    - Reference scores come from file attrs `ref_min_score`/`ref_max_score` or datasets
      `metadata/ref_min_score`/`metadata/ref_max_score`.
    """
    path = Path(path)
    source = str(path)
    with open_hdf5(path, source) as f, h5_errors(source):
        found: list[str] = []
        f.visit(lambda name: found.append(name) if isinstance(f[name], h5py.Dataset) else None)
        required = [k for k in REQUIRED_KEYS if k not in ("next_observations", "timeouts")]
        for key in required:
            if key not in f:
                shown = ", ".join(sorted(found)[:20]) + (" ..." if len(found) > 20 else "")
                raise DatasetError(
                    source, key, f"missing required key (found keys: {shown or 'none'})"
                )
        arrays = {k: read_h5_array(f[k], source, k) for k in required}
        for key in ("next_observations", "timeouts", "episode_ends"):
            if key in f:
                arrays[key] = read_h5_array(f[key], source, key)
        ref_min, ref_max, metadata = _read_d4rl_meta(f, source)
        info_keys = sorted(n for n in found if n.startswith("infos/"))

    if "timeouts" not in arrays:
        warnings.warn(
            f"{source}: no 'timeouts' key (old D4RL file); treating every timeout as False",
            stacklevel=2,
        )
        arrays["timeouts"] = np.zeros(arrays["observations"].shape[0], bool)
    check_arrays(arrays, source)
    if info_keys:
        metadata["d4rl_info_keys"] = info_keys
    metadata["format"] = "d4rl"

    if "next_observations" not in arrays:
        arrays, dropped = _derive_next_observations(arrays, source)
        metadata["next_observations_derived"] = True
        metadata["dropped_transitions"] = dropped
    return Dataset(
        **arrays,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        metadata=metadata,
        source=source,
    )


def _read_d4rl_meta(f: h5py.File, source: str) -> tuple[float | None, float | None, dict]:
    metadata: dict[str, Any] = {}
    raw = f.attrs.get("metadata")
    if raw is not None:
        text = _decode_scalar(raw)
        try:
            parsed = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise DatasetError(source, "metadata", f"attr is not valid JSON: {exc}") from exc
        if isinstance(parsed, dict):
            metadata.update(parsed)
    for name, value in f.attrs.items():
        if name not in ("metadata", "ref_min_score", "ref_max_score"):
            value = _decode_scalar(value)
            if isinstance(value, str | int | float | bool):
                metadata.setdefault(name, value)
    # D4RL's `metadata/*` group: keep scalars (algorithm, iteration ...), skip policy weights.
    if isinstance(f.get("metadata"), h5py.Group):

        def keep(name: str, node: Any) -> None:
            if isinstance(node, h5py.Dataset) and node.size == 1:
                value = _decode_scalar(node[()])
                if isinstance(value, str | int | float | bool):
                    metadata.setdefault(f"metadata/{name}", value)

        f["metadata"].visititems(keep)
    refs: list[float | None] = []
    for key in ("ref_min_score", "ref_max_score"):
        if key in f.attrs:
            refs.append(_as_float(f.attrs[key], source, key))
        elif f"metadata/{key}" in f:
            refs.append(_as_float(f[f"metadata/{key}"][()], source, f"metadata/{key}"))
        else:
            refs.append(None)
        metadata.pop(f"metadata/{key}", None)
    return refs[0], refs[1], metadata


def _derive_next_observations(
    arrays: dict[str, np.ndarray], source: str
) -> tuple[dict[str, np.ndarray], int]:
    """Rebuild s' within episodes; see `read_d4rl` for which transitions are dropped."""
    obs = arrays["observations"]
    n = obs.shape[0]
    terminals = arrays["terminals"].reshape(-1).astype(bool)
    timeouts = arrays["timeouts"].reshape(-1).astype(bool)
    ends = terminals | timeouts
    ends[-1] = True
    has_next = np.zeros(n, bool)
    has_next[:-1] = ~timeouts[:-1]  # a time-out row's next row starts a new episode
    drop = ~terminals & ~has_next  # s' unknown and needed for bootstrapping
    nxt_idx = np.where(has_next, np.arange(n) + 1, np.arange(n))  # terminal w/o next: s' = s
    next_obs = obs[np.minimum(nxt_idx, n - 1)]
    keep = ~drop
    # A kept row whose successor was dropped is now the last of its (shortened) episode.
    new_ends = ends.copy()
    new_ends[:-1] |= drop[1:]
    out = {k: v[keep] for k, v in arrays.items() if k != "episode_ends"}
    out["next_observations"] = next_obs[keep]
    out["episode_ends"] = new_ends[keep]
    if not keep.any():
        raise DatasetError(
            source,
            "next_observations",
            "is missing and every episode has length 1, so no transition has a known next state",
        )
    return out, int(drop.sum())


# ------------------------------------------------------------------------------ write
def write_d4rl(dataset: Dataset, path: PathLike, overwrite: bool = False) -> Path:
    """Write `dataset` as a D4RL-format HDF5 file, atomically; never overwrites by default.

    Adds `episode_ends` (so the episode split survives a round trip), file attrs
    `ref_min_score`/`ref_max_score` when known and a JSON `metadata` attr.
    """
    path = Path(path)
    with atomic_path(path, overwrite, suffix=".hdf5.tmp") as tmp, h5py.File(tmp, "w") as f:
        for key in ("observations", "actions", "rewards", "next_observations"):
            f.create_dataset(key, data=np.asarray(getattr(dataset, key), np.float32))
        for key in ("terminals", "timeouts", "episode_ends"):
            f.create_dataset(key, data=np.asarray(getattr(dataset, key), bool))
        if dataset.ref_min_score is not None:
            f.attrs["ref_min_score"] = float(dataset.ref_min_score)
        if dataset.ref_max_score is not None:
            f.attrs["ref_max_score"] = float(dataset.ref_max_score)
        f.attrs["metadata"] = json.dumps(user_metadata(dataset), default=json_default)
    return path

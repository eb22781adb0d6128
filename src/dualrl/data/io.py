"""Our own `.npz` format, format dispatch (`load_dataset`) and dataset summaries."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dualrl.data.d4rl import atomic_path, check_arrays, json_default, read_d4rl, user_metadata
from dualrl.data.dataset import REQUIRED_KEYS, Dataset, DatasetError
from dualrl.data.minari import (
    MAIN_FILE,
    METADATA_FILE,
    find_minari_data_dir,
    is_minari_id,
    read_minari,
    resolve_minari_id,
)

PathLike = str | os.PathLike[str]

ACCEPTED_FORMATS = (
    "a Minari dataset folder (its root or its data/ folder), "
    "a D4RL HDF5 file (.hdf5 / .h5), or a dualrl .npz file"
)


# ------------------------------------------------------------------------------- npz
def save_npz(dataset: Dataset, path: PathLike, overwrite: bool = False) -> Path:
    """Write arrays + `episode_ends` + a JSON `meta` (ref scores, metadata), atomically.

    Uncompressed: loading speed matters more than disk for datasets of a few hundred MB.
    """
    path = Path(path)
    meta = {
        "ref_min_score": dataset.ref_min_score,
        "ref_max_score": dataset.ref_max_score,
        "metadata": user_metadata(dataset),
    }
    arrays = dataset.arrays()
    with atomic_path(path, overwrite, suffix=".npz.tmp") as tmp, open(tmp, "wb") as fh:
        # A file object stops NumPy from appending ".npz" to the temp name.
        np.savez(fh, **arrays, meta=np.array(json.dumps(meta, default=json_default)))
    return path


def read_npz(path: PathLike) -> Dataset:
    """Load a file written by `save_npz` (no pickles are ever loaded)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DatasetError(source, None, "no such file or directory")
    if path.is_dir():
        raise DatasetError(source, None, "is a directory, expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DatasetError(source, None, "is a single .npy array, not an .npz archive")
            names = set(npz.files)
            for key in REQUIRED_KEYS:
                if key not in names:
                    found = ", ".join(sorted(names)) or "none"
                    raise DatasetError(source, key, f"missing required key (found keys: {found})")
            arrays = {k: _load_member(npz, k, source) for k in REQUIRED_KEYS}
            if "episode_ends" in names:
                arrays["episode_ends"] = _load_member(npz, "episode_ends", source)
            meta_text = str(_load_member(npz, "meta", source)) if "meta" in names else "{}"
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(source, None, f"is not a readable .npz file: {exc}") from exc
    try:
        meta = json.loads(meta_text)
    except ValueError as exc:
        raise DatasetError(source, "meta", f"is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DatasetError(source, "meta", "must hold a JSON object")
    check_arrays(arrays, source)
    metadata = dict(meta.get("metadata") or {})
    metadata["format"] = "npz"
    return Dataset(
        **arrays,
        ref_min_score=_opt_float(meta.get("ref_min_score"), source, "meta/ref_min_score"),
        ref_max_score=_opt_float(meta.get("ref_max_score"), source, "meta/ref_max_score"),
        metadata=metadata,
        source=source,
    )


def _load_member(npz: Any, key: str, source: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(source, key, f"cannot be read (corrupted?): {exc}") from exc


def _opt_float(value: Any, source: str, key: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DatasetError(source, key, f"is not a number: {value!r}") from exc
    if not np.isfinite(out):
        raise DatasetError(source, key, f"is not finite: {out}")
    return out


# -------------------------------------------------------------------------- dispatch
def dataset_location(text: str) -> str:
    """Where a `--dataset` argument points, absolute: a path, or the folder a Minari dataset
    ID resolves to now (so a run stays on the version it started with)."""
    path = Path(text).expanduser()
    if not path.exists() and is_minari_id(text):
        return str(resolve_minari_id(text).resolve())
    return os.path.abspath(path)


def load_dataset(path: PathLike) -> Dataset:
    """Read any supported dataset, choosing the reader from what `path` is.

    directory -> Minari; a Minari dataset ID (`mujoco/hopper/medium-v0`, the version
    optional; not an existing path) -> that dataset under $MINARI_DATASETS_PATH or
    ~/.minari/datasets; `.npz` -> dualrl's own format; `.hdf5`/`.h5` -> D4RL (except a
    Minari `main_data.hdf5` next to its metadata.json, which loads its Minari folder).
    """
    path = Path(path)
    source = str(path)
    if not path.exists() and is_minari_id(source):  # a Minari dataset ID
        return read_minari(resolve_minari_id(source))
    if not path.exists():
        raise DatasetError(source, None, "no such file or directory")
    if path.is_dir():
        if find_minari_data_dir(path) is None:
            raise DatasetError(
                source,
                None,
                f"is a directory but not a Minari dataset (no data/{MAIN_FILE} or "
                f"data/{METADATA_FILE}); accepted: {ACCEPTED_FORMATS}",
            )
        return read_minari(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path)
    if suffix in (".hdf5", ".h5"):
        if path.name == MAIN_FILE and (path.parent / METADATA_FILE).exists():
            return read_minari(path.parent)
        return read_d4rl(path)
    what = suffix or path.name
    problem = f"unknown dataset format '{what}'; accepted: {ACCEPTED_FORMATS}"
    raise DatasetError(source, None, problem)


# --------------------------------------------------------------------------- summary
def summarize(dataset: Dataset) -> dict[str, Any]:
    """Plain-Python statistics for `dualrl info` and for logging which data a run used."""
    returns = dataset.episode_returns()
    lengths = np.array([s.stop - s.start for s in dataset.episode_slices()])
    summary: dict[str, Any] = {
        "source": dataset.source,
        "format": dataset.metadata.get("format", "in-memory"),
        "transitions": len(dataset),
        "episodes": dataset.num_episodes,
        "obs_dim": dataset.obs_dim,
        "act_dim": dataset.act_dim,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "episode_length_mean": float(lengths.mean()),
        "episode_length_min": int(lengths.min()),
        "episode_length_max": int(lengths.max()),
        "terminals": int(dataset.terminals.sum()),
        "timeouts": int(dataset.timeouts.sum()),
        "ref_min_score": dataset.ref_min_score,
        "ref_max_score": dataset.ref_max_score,
        "normalized_return_mean": None,
    }
    if dataset.ref_min_score is not None and dataset.ref_max_score is not None:
        summary["normalized_return_mean"] = float(np.mean(dataset.normalized_score(returns)))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Readable multi-line text of `summarize`'s dict."""

    def num(x: Any, digits: int = 2) -> str:
        if x is None:
            return "n/a"
        return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"

    s = summary
    lines = [
        f"source:        {s.get('source') or '<in-memory>'}",
        f"format:        {s.get('format')}",
        f"transitions:   {num(s['transitions'])}",
        f"episodes:      {num(s['episodes'])}",
        f"obs_dim:       {s['obs_dim']}",
        f"act_dim:       {s['act_dim']}",
        f"return:        mean {num(s['return_mean'])} ± {num(s['return_std'])} "
        f"(min {num(s['return_min'])}, max {num(s['return_max'])})",
        f"episode len:   mean {num(s['episode_length_mean'], 1)} "
        f"(min {num(s['episode_length_min'])}, max {num(s['episode_length_max'])})",
        f"terminals:     {num(s['terminals'])}",
        f"timeouts:      {num(s['timeouts'])}",
        f"ref scores:    min {num(s.get('ref_min_score'), 4)}, "
        f"max {num(s.get('ref_max_score'), 4)}",
    ]
    if s.get("normalized_return_mean") is not None:
        lines.append(f"normalized:    mean {num(s['normalized_return_mean'])}")
    return "\n".join(lines)

"""Minari datasets (HDF5 backend) read and written with h5py only — `minari` is not needed.

Layout (minari >= 0.5): `<root>/data/metadata.json` and `<root>/data/main_data.hdf5`, the
latter holding groups `episode_<id>` with `observations` (T+1 rows: the final observation is
included), `actions` (T), `rewards` (T), `terminations` (T), `truncations` (T), optional `infos`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dualrl.data.d4rl import (
    atomic_path,
    check_arrays,
    h5_errors,
    json_default,
    open_hdf5,
    read_h5_array,
    user_metadata,
)
from dualrl.data.dataset import Dataset, DatasetError, derive_episode_ends

PathLike = str | os.PathLike[str]

MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
_EPISODE_RE = re.compile(r"^episode_(\d+)$")
_STEP_KEYS = ("actions", "rewards", "terminations", "truncations")
_MAX_DISCRETE = 65536


# a Minari dataset ID: `namespace/name-vN` (the namespace may nest: mujoco/hopper/medium-v0),
# the version optional
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
_VERSION_RE = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


def minari_root() -> Path:
    """Where the minari package keeps datasets: $MINARI_DATASETS_PATH, else
    ~/.minari/datasets (dualrl only reads there; it never downloads)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env).expanduser() if env else Path.home() / ".minari" / "datasets"


def is_minari_id(text: str) -> bool:
    """Whether `text` reads as a Minari dataset ID (and not as a path: no leading '/', '.',
    '~', no file suffix)."""
    if text.startswith(("/", ".", "~")) or Path(text).suffix.lower() in (".hdf5", ".h5", ".npz"):
        return False
    return _ID_RE.match(text) is not None


def local_minari_ids(root: Path | None = None) -> list[str]:
    """The IDs of the datasets present under `root` (folders with data/main_data.hdf5 or
    data/metadata.json), sorted."""
    root = minari_root() if root is None else root
    if not root.is_dir():
        return []
    ids = set()
    for marker in (*root.glob(f"**/data/{MAIN_FILE}"), *root.glob(f"**/data/{METADATA_FILE}")):
        ids.add(marker.parent.parent.relative_to(root).as_posix())
    return sorted(ids, key=_natural_key)


def resolve_minari_id(dataset_id: str, root: Path | None = None) -> Path:
    """The folder of Minari dataset `dataset_id` under `root` (default `minari_root()`);
    without a version, the newest present. Missing: a DatasetError listing what is there."""
    root = minari_root() if root is None else root
    if _ID_RE.match(dataset_id) is None:
        raise DatasetError(dataset_id, None, "is not a Minari dataset ID (namespace/name-vN)")
    if _VERSION_RE.match(dataset_id.rsplit("/", 1)[1]):
        folder = root / dataset_id
        if find_minari_data_dir(folder) is not None:
            return folder
    else:
        stem = root / dataset_id
        versions = []
        if stem.parent.is_dir():
            for cand in stem.parent.iterdir():
                v = _VERSION_RE.match(cand.name)
                if v and v.group("name") == stem.name and find_minari_data_dir(cand):
                    versions.append((int(v.group("version")), cand))
        if versions:
            return max(versions)[1]
    present = local_minari_ids(root)
    listing = ", ".join(present) if present else "none"
    raise DatasetError(
        dataset_id, None,
        f"is neither a file or folder here nor a Minari dataset under {root} (set "
        f"MINARI_DATASETS_PATH to change it; "
        f"present: {listing}); `minari download {dataset_id}` fetches it (dualrl never "
        "downloads)")


def find_minari_data_dir(path: PathLike) -> Path | None:
    """The folder holding main_data.hdf5/metadata.json: `path` itself or `path/data`."""
    path = Path(path)
    for cand in (path, path / "data"):
        if (cand / MAIN_FILE).exists() or (cand / METADATA_FILE).exists():
            return cand
    return None


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def obs_order(keys: list[str]) -> list[str]:
    """Dict observations: `observation` first, then the rest sorted (digits numerically)."""
    rest = sorted((k for k in keys if k != "observation"), key=_natural_key)
    return (["observation"] if "observation" in keys else []) + rest


def _read_observations(node: Any, main: str, key: str) -> np.ndarray:
    """Flatten (possibly nested) dict/tuple observation groups into one (T+1, ds) array.

    Sub-arrays are concatenated along the feature axis in `obs_order` (e.g. GoalEnv's
    observation, achieved_goal, desired_goal), each flattened to 2-D first.
    """
    if isinstance(node, h5py.Group):
        names = obs_order(list(node.keys()))
        if not names:
            raise DatasetError(main, key, "is an empty group")
        parts = [_read_observations(node[n], main, f"{key}/{n}") for n in names]
        rows = {p.shape[0] for p in parts}
        if len(rows) != 1:
            raise DatasetError(main, key, f"sub-arrays have different lengths {sorted(rows)}")
        return np.concatenate(parts, axis=1)
    arr = read_h5_array(node, main, key)
    if arr.ndim == 0:
        raise DatasetError(main, key, "is a scalar, expected one row per step")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(main, key, f"has non-numeric dtype {arr.dtype}")
    return arr.reshape(arr.shape[0], -1).astype(np.float32)


def _parse_space(value: Any) -> dict[str, Any] | None:
    """minari's serialize_space output is a JSON string; tolerate an already-parsed dict."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def read_minari(path: PathLike) -> Dataset:
    """Load a Minari dataset folder (the dataset root or its `data/` folder), read-only.

    Discrete actions stored as integers become one-hot vectors of size `n` from the
    `action_space` in metadata.json (`max + 1` when no Discrete space is recorded).
    Reference scores come from metadata.json; its other entries go to `Dataset.metadata`.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DatasetError(source, None, "no such file or directory")
    data_dir = find_minari_data_dir(path) if path.is_dir() else None
    if data_dir is None:
        raise DatasetError(
            source,
            None,
            f"is not a Minari dataset: expected data/{METADATA_FILE} and data/{MAIN_FILE}",
        )
    meta_path, main_path = data_dir / METADATA_FILE, data_dir / MAIN_FILE
    if not meta_path.exists():
        raise DatasetError(str(meta_path), None, "missing Minari metadata file")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(str(meta_path), None, f"is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DatasetError(str(meta_path), None, "must hold a JSON object")
    fmt = meta.get("data_format", "hdf5")
    if not main_path.exists():
        extra = f" (data_format is '{fmt}'; only HDF5 is supported)" if fmt != "hdf5" else ""
        raise DatasetError(str(main_path), None, f"missing Minari data file{extra}")

    action_space = _parse_space(meta.get("action_space"))
    main = str(main_path)
    obs_parts, act_parts, rew_parts, term_parts, trunc_parts = [], [], [], [], []
    with open_hdf5(main_path, main) as f, h5_errors(main):
        episodes = sorted(
            ((int(m.group(1)), name) for name in f if (m := _EPISODE_RE.match(name))),
        )
        if not episodes:
            raise DatasetError(main, None, "holds no episodes (no 'episode_<id>' groups)")
        for _, name in episodes:
            group = f[name]
            if not isinstance(group, h5py.Group):
                raise DatasetError(main, name, "is not a group")
            for key in ("observations", *_STEP_KEYS):
                if key not in group:
                    raise DatasetError(main, f"{name}/{key}", "missing required key")
            obs = _read_observations(group["observations"], main, f"{name}/observations")
            steps = {k: read_h5_array(group[k], main, f"{name}/{k}") for k in _STEP_KEYS}
            t = steps["rewards"].shape[0] if steps["rewards"].ndim else 0
            for key, arr in steps.items():
                per_step = arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)
                if arr.ndim == 0 or (key != "actions" and not per_step):
                    raise DatasetError(
                        main, f"{name}/{key}", f"has shape {arr.shape}, expected (T,)"
                    )
                if arr.shape[0] != t:
                    raise DatasetError(
                        main,
                        f"{name}/{key}",
                        f"has {arr.shape[0]} rows but the episode has {t} rewards "
                        "(length mismatch)",
                    )
            if obs.shape[0] != t + 1:
                raise DatasetError(
                    main,
                    f"{name}/observations",
                    f"has {obs.shape[0]} rows, expected T+1 = {t + 1} for {t} steps",
                )
            if t == 0:
                continue
            if obs_parts and obs.shape[1] != obs_parts[0].shape[1]:
                raise DatasetError(
                    main,
                    f"{name}/observations",
                    f"has width {obs.shape[1]}, earlier episodes have {obs_parts[0].shape[1]}",
                )
            obs_parts.append(obs)
            act_parts.append(steps["actions"])
            rew_parts.append(steps["rewards"])
            term_parts.append(steps["terminations"])
            trunc_parts.append(steps["truncations"])

    if not obs_parts:
        raise DatasetError(main, None, "dataset is empty (every episode has 0 steps)")
    actions = _actions_to_float(act_parts, action_space, main)
    lengths = [len(r) for r in rew_parts]
    ends = np.zeros(sum(lengths), bool)
    ends[np.cumsum(lengths) - 1] = True
    arrays = {
        "observations": np.concatenate([o[:-1] for o in obs_parts]),
        "next_observations": np.concatenate([o[1:] for o in obs_parts]),
        "actions": actions,
        "rewards": np.concatenate([r.reshape(len(r), -1) for r in rew_parts]),
        "terminals": np.concatenate([x.reshape(len(x), -1) for x in term_parts]),
        "timeouts": np.concatenate([x.reshape(len(x), -1) for x in trunc_parts]),
        "episode_ends": ends,
    }
    check_arrays(arrays, main)

    metadata = {k: v for k, v in meta.items() if k not in ("ref_min_score", "ref_max_score")}
    metadata["format"] = "minari"
    return Dataset(
        **arrays,
        ref_min_score=_ref(meta, "ref_min_score", str(meta_path)),
        ref_max_score=_ref(meta, "ref_max_score", str(meta_path)),
        metadata=metadata,
        source=source,
    )


def _ref(meta: dict[str, Any], key: str, source: str) -> float | None:
    value = meta.get(key)
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DatasetError(source, key, f"is not a number: {value!r}") from exc
    if not np.isfinite(out):
        raise DatasetError(source, key, f"is not finite: {out}")
    return out


def _actions_to_float(
    parts: list[np.ndarray], space: dict[str, Any] | None, main: str
) -> np.ndarray:
    """Continuous actions pass through; integer Discrete actions become one-hot."""
    actions = np.concatenate([a.reshape(a.shape[0], -1) for a in parts])
    stype = space.get("type") if space else None
    scalar_int = actions.shape[1] == 1 and actions.dtype.kind in "biu"
    if not (scalar_int or (stype == "Discrete" and actions.shape[1] == 1)):
        return actions.astype(np.float32)  # Box, or Discrete already stored one-hot
    if stype is not None and stype != "Discrete":
        return actions.astype(np.float32)  # e.g. a 1-D integer Box: keep the values
    if not scalar_int and not np.all(actions == np.round(actions)):
        raise DatasetError(main, "actions", "Discrete actions must be whole numbers")
    start = int(space.get("start", 0)) if space else 0
    idx = actions[:, 0].astype(np.int64) - start
    n = int(space["n"]) if space and "n" in space else int(idx.max()) + 1
    if n > _MAX_DISCRETE:
        raise DatasetError(main, "actions", f"{n} discrete actions is too many to one-hot encode")
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            main, "actions", f"value {idx[row] + start} at step {row} is outside Discrete({n})"
        )
    return np.eye(n, dtype=np.float32)[idx]


def _box_space(dim: int) -> str:
    return json.dumps(
        {
            "type": "Box",
            "dtype": "float32",
            "shape": [dim],
            "low": [-np.inf] * dim,
            "high": [np.inf] * dim,
        }
    )


def write_minari(
    dataset: Dataset,
    path: PathLike,
    dataset_id: str = "dualrl/custom-v0",
    overwrite: bool = False,
) -> Path:
    """Export to a minimal Minari (HDF5) folder `path/data/`; returns the data folder.

    Episodes follow `dataset.episode_ends`, additionally split wherever s'_i is not s_{i+1}
    (a Minari episode stores each state once). Within an episode s'_i is written as s_{i+1};
    `derive_episode_ends` treats values within 1e-6 as equal, so s' may move by at most that.
    Actions are written as a float Box unless `metadata['action_space']` records a Discrete
    space of the same size and the actions are one-hot: then integers, as Minari would hold them.
    Refuses to overwrite an existing dataset unless `overwrite=True`.
    """
    data_dir = Path(path) / "data"
    main_path, meta_path = data_dir / MAIN_FILE, data_dir / METADATA_FILE
    if not overwrite:
        for p in (main_path, meta_path):
            if p.exists():
                raise FileExistsError(
                    f"{p}: refusing to overwrite an existing Minari dataset "
                    "(pass overwrite=True to replace it)"
                )
    ends = np.asarray(dataset.episode_ends, bool) | derive_episode_ends(
        dataset.observations, dataset.next_observations, dataset.terminals, dataset.timeouts
    )
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops[:-1]])

    act_space = _parse_space(dataset.metadata.get("action_space"))
    actions: np.ndarray = dataset.actions
    space_json = _box_space(dataset.act_dim)
    if act_space and act_space.get("type") == "Discrete" and int(act_space["n"]) == dataset.act_dim:
        onehot = np.all((actions == 0) | (actions == 1), axis=1) & (actions.sum(axis=1) == 1)
        if onehot.all():
            actions = actions.argmax(axis=1).astype(np.int64) + int(act_space.get("start", 0))
            space_json = json.dumps(act_space)

    with atomic_path(main_path, overwrite, suffix=".hdf5.tmp") as tmp, h5py.File(tmp, "w") as f:
        for i, (s, e) in enumerate(zip(starts, stops, strict=True)):
            g = f.create_group(f"episode_{i}")
            g.attrs["id"] = i
            g.attrs["total_steps"] = int(e - s)
            obs = np.concatenate([dataset.observations[s:e], dataset.next_observations[e - 1 : e]])
            g.create_dataset("observations", data=obs)
            g.create_dataset("actions", data=actions[s:e])
            g.create_dataset("rewards", data=dataset.rewards[s:e])
            g.create_dataset("terminations", data=dataset.terminals[s:e])
            g.create_dataset("truncations", data=dataset.timeouts[s:e])

    meta: dict[str, Any] = user_metadata(dataset)
    meta.update(
        {
            "dataset_id": dataset_id,
            "total_episodes": len(starts),
            "total_steps": len(dataset),
            "data_format": "hdf5",
            "observation_space": _box_space(dataset.obs_dim),
            "action_space": space_json,
        }
    )
    for key in ("ref_min_score", "ref_max_score"):
        value = getattr(dataset, key)
        meta[key] = None if value is None else float(value)
    with atomic_path(meta_path, overwrite=True, suffix=".json.tmp") as tmp:
        tmp.write_text(json.dumps(meta, default=json_default, indent=2))
    return data_dir

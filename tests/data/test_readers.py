"""Dataset readers/writers: round trips, files written by other tools, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from dualrl.data import (
    Dataset,
    DatasetError,
    format_summary,
    load_dataset,
    read_d4rl,
    read_minari,
    read_npz,
    save_npz,
    summarize,
    write_d4rl,
    write_minari,
)


def make_dataset(lengths=(5, 3, 4), obs_dim=3, act_dim=2, seed=0, **kw) -> Dataset:
    """Episodes with consistent s' = s_{i+1}; first ends terminal, second by time-out."""
    rng = np.random.default_rng(seed)
    obs, nxt, act, rew, term, tout = [], [], [], [], [], []
    for e, t in enumerate(lengths):
        states = rng.normal(size=(t + 1, obs_dim)).astype(np.float32)
        obs.append(states[:-1])
        nxt.append(states[1:])
        act.append(rng.uniform(-1, 1, size=(t, act_dim)).astype(np.float32))
        rew.append(rng.normal(size=t).astype(np.float32))
        flags = np.zeros(t, bool), np.zeros(t, bool)
        flags[e % 2][-1] = e % 3 != 2  # episode 0 terminal, 1 time-out, 2 open end
        term.append(flags[0])
        tout.append(flags[1])
    return Dataset(
        observations=np.concatenate(obs),
        actions=np.concatenate(act),
        rewards=np.concatenate(rew),
        next_observations=np.concatenate(nxt),
        terminals=np.concatenate(term),
        timeouts=np.concatenate(tout),
        **kw,
    )


def assert_same_arrays(a: Dataset, b: Dataset) -> None:
    for key, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, b.arrays()[key], err_msg=key)
        assert arr.dtype == b.arrays()[key].dtype, key


def file_state(path: Path) -> dict[str, tuple[bytes, int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def raise_msg(func, *args) -> str:
    with pytest.raises(DatasetError) as info:
        func(*args)
    return str(info.value)


@pytest.fixture
def ds() -> Dataset:
    return make_dataset(ref_min_score=-1.5, ref_max_score=10.0, metadata={"note": "x", "k": 3})


# ----------------------------------------------------------------------- round trips
def test_d4rl_round_trip(tmp_path: Path, ds: Dataset) -> None:
    path = write_d4rl(ds, tmp_path / "d.hdf5")
    back = read_d4rl(path)
    assert_same_arrays(ds, back)
    assert (back.ref_min_score, back.ref_max_score) == (-1.5, 10.0)
    assert back.metadata["note"] == "x" and back.metadata["k"] == 3
    assert back.metadata["format"] == "d4rl"
    assert back.source == str(path)
    assert [p.name for p in tmp_path.iterdir()] == ["d.hdf5"]  # no temp file left behind


def test_minari_round_trip(tmp_path: Path, ds: Dataset) -> None:
    write_minari(ds, tmp_path / "mini", dataset_id="test/mini-v0")
    for where in (tmp_path / "mini", tmp_path / "mini" / "data"):
        back = read_minari(where)
        assert_same_arrays(ds, back)
        assert back.num_episodes == 3
        assert (back.ref_min_score, back.ref_max_score) == (-1.5, 10.0)
        assert back.metadata["dataset_id"] == "test/mini-v0"
        assert back.metadata["total_steps"] == len(ds)
        assert back.metadata["note"] == "x"


def test_minari_round_trip_discrete_actions(tmp_path: Path) -> None:
    base = make_dataset(act_dim=1)
    idx = np.random.default_rng(1).integers(0, 4, len(base))
    space = json.dumps({"type": "Discrete", "dtype": "int64", "start": 0, "n": 4})
    ds = base.replace(actions=np.eye(4, dtype=np.float32)[idx], metadata={"action_space": space})
    write_minari(ds, tmp_path / "disc")
    with h5py.File(tmp_path / "disc" / "data" / "main_data.hdf5", "r") as f:
        assert f["episode_0/actions"].dtype.kind == "i"
    assert_same_arrays(ds, read_minari(tmp_path / "disc"))


def test_npz_round_trip(tmp_path: Path, ds: Dataset) -> None:
    path = save_npz(ds, tmp_path / "d.npz")
    back = read_npz(path)
    assert_same_arrays(ds, back)
    assert (back.ref_min_score, back.ref_max_score) == (-1.5, 10.0)
    assert back.metadata == {"note": "x", "k": 3, "format": "npz"}
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def test_load_dataset_dispatch(tmp_path: Path, ds: Dataset) -> None:
    write_d4rl(ds, tmp_path / "a.hdf5")
    write_d4rl(ds, tmp_path / "b.h5")
    save_npz(ds, tmp_path / "c.npz")
    data_dir = write_minari(ds, tmp_path / "m")
    cases = {
        "a.hdf5": "d4rl",
        "b.h5": "d4rl",
        "c.npz": "npz",
        "m": "minari",
        "m/data": "minari",
        "m/data/main_data.hdf5": "minari",
    }
    for rel, fmt in cases.items():
        back = load_dataset(tmp_path / rel)
        assert back.metadata["format"] == fmt, rel
        assert_same_arrays(ds, back)
    assert data_dir == tmp_path / "m" / "data"


def test_summary(ds: Dataset) -> None:
    s = summarize(ds)
    assert s["transitions"] == 12 and s["episodes"] == 3
    assert (s["obs_dim"], s["act_dim"]) == (3, 2)
    assert (s["episode_length_min"], s["episode_length_max"]) == (3, 5)
    assert s["terminals"] == 1 and s["timeouts"] == 1
    assert s["return_max"] == pytest.approx(ds.episode_returns().max())
    text = format_summary(s)
    assert "transitions:" in text and "episodes:" in text and "-1.5" in text


# ------------------------------------------------------------ files from other tools
def test_foreign_d4rl_file(tmp_path: Path) -> None:
    """Written as D4RL does: float terminals, infos/*, metadata/* group, no episode_ends."""
    ds = make_dataset(lengths=(4, 6, 5, 2))
    path = tmp_path / "hopper-medium-v2.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = ds.observations.astype(np.float64)
        f["actions"] = ds.actions
        f["rewards"] = ds.rewards
        f["next_observations"] = ds.next_observations
        f["terminals"] = ds.terminals.astype(np.float32)
        f["timeouts"] = ds.timeouts
        f["infos/qpos"] = np.zeros((len(ds), 6))
        f["metadata/algorithm"] = "SAC"
        f["metadata/policy/fc0/weight"] = np.ones((4, 4))
        f.attrs["ref_min_score"] = -20.272305
        f.attrs["ref_max_score"] = 3234.3
    back = read_d4rl(path)
    assert len(back) == 17 and back.num_episodes == 4
    assert back.metadata["metadata/algorithm"] == "SAC"
    assert back.metadata["d4rl_info_keys"] == ["infos/qpos"]
    assert back.ref_max_score == pytest.approx(3234.3)
    np.testing.assert_array_equal(back.episode_ends, ds.episode_ends)


def test_d4rl_ref_scores_in_metadata_group(tmp_path: Path) -> None:
    ds = make_dataset()
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        for key, arr in ds.arrays().items():
            if key != "episode_ends":
                f[key] = arr
        f["metadata/ref_min_score"] = 0.0
        f["metadata/ref_max_score"] = 1.0
    back = read_d4rl(path)
    assert (back.ref_min_score, back.ref_max_score) == (0.0, 1.0)


def write_foreign_minari(root: Path, episodes: dict[int, dict], meta: dict | None = None) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    with h5py.File(data / "main_data.hdf5", "w") as f:
        for eid, ep in episodes.items():
            g = f.create_group(f"episode_{eid}")
            g.attrs["id"] = eid
            for key, value in ep.items():
                if isinstance(value, dict):
                    for sub, arr in value.items():
                        g[f"{key}/{sub}"] = arr
                else:
                    g[key] = value
    default = {"dataset_id": "ns/name-v0", "total_episodes": len(episodes), "data_format": "hdf5"}
    (data / "metadata.json").write_text(json.dumps(meta if meta is not None else default))
    return root


def minari_episode(t: int, obs_dim=3, act_dim=2, seed=0, end="trunc") -> dict:
    rng = np.random.default_rng(seed)
    term, trunc = np.zeros(t, bool), np.zeros(t, bool)
    (term if end == "term" else trunc)[-1] = True
    return {
        "observations": rng.normal(size=(t + 1, obs_dim)),
        "actions": rng.uniform(-1, 1, size=(t, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=t),
        "terminations": term,
        "truncations": trunc,
        "infos": {"success": np.zeros(t + 1, bool)},
    }


def test_foreign_minari_folder(tmp_path: Path) -> None:
    eps = {i: minari_episode(t, seed=i) for i, t in [(0, 4), (2, 3), (10, 5), (1, 2)]}
    meta = {
        "dataset_id": "mujoco/hopper/medium-v0",
        "total_episodes": 4,
        "total_steps": 14,
        "env_spec": '{"id": "Hopper-v5"}',
        "ref_min_score": -20.0,
        "ref_max_score": 3000.0,
    }
    root = write_foreign_minari(tmp_path / "mujoco" / "hopper" / "medium-v0", eps, meta)
    back = read_minari(root)
    assert len(back) == 14 and back.num_episodes == 4
    assert back.timeouts.sum() == 4 and back.terminals.sum() == 0
    assert (back.ref_min_score, back.ref_max_score) == (-20.0, 3000.0)
    assert back.metadata["env_spec"] == '{"id": "Hopper-v5"}'
    assert "ref_min_score" not in back.metadata
    # numeric episode order 0, 1, 2, 10 (not lexicographic 0, 1, 10, 2)
    order = np.concatenate([eps[i]["observations"][:-1] for i in (0, 1, 2, 10)])
    np.testing.assert_array_equal(back.observations, order.astype(np.float32))
    last = eps[10]["observations"][-1].astype(np.float32)
    np.testing.assert_array_equal(back.next_observations[-1], last)
    assert back.episode_slices()[-1] == slice(9, 14)


def test_minari_dict_observations(tmp_path: Path) -> None:
    t = 3
    ep = minari_episode(t)
    ep["observations"] = {
        "desired_goal": np.full((t + 1, 2), 3.0),
        "achieved_goal": np.full((t + 1, 2), 2.0),
        "observation": np.full((t + 1, 4), 1.0),
    }
    back = read_minari(write_foreign_minari(tmp_path / "pm", {0: ep}))
    assert back.obs_dim == 8
    np.testing.assert_array_equal(back.observations[0], [1, 1, 1, 1, 2, 2, 3, 3])


def test_minari_discrete_actions_one_hot(tmp_path: Path) -> None:
    ep = minari_episode(4)
    ep["actions"] = np.array([0, 2, 1, 2], np.int64)
    space = json.dumps({"type": "Discrete", "dtype": "int64", "start": 0, "n": 4})
    with_space = read_minari(write_foreign_minari(tmp_path / "a", {0: ep}, {"action_space": space}))
    np.testing.assert_array_equal(with_space.actions, np.eye(4)[[0, 2, 1, 2]])
    no_space = read_minari(write_foreign_minari(tmp_path / "b", {0: ep}, {}))
    np.testing.assert_array_equal(no_space.actions, np.eye(3)[[0, 2, 1, 2]])


# ------------------------------------------------------- AntMaze-style derived s'
def test_missing_next_observations_derived(tmp_path: Path) -> None:
    obs = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    # episodes: rows 0-2 (time-out), rows 3-4 (terminal), rows 5-7 (file end, no flag)
    terminals = np.array([0, 0, 0, 0, 1, 0, 0, 0], bool)
    timeouts = np.array([0, 0, 1, 0, 0, 0, 0, 0], bool)
    path = tmp_path / "antmaze-umaze-v2.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = np.zeros((8, 2), np.float32)
        f["rewards"] = np.arange(8, dtype=np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts
    back = read_d4rl(path)
    kept = [0, 1, 3, 4, 5, 6]  # last rows of the time-out and open episodes dropped
    np.testing.assert_array_equal(back.rewards, kept)
    np.testing.assert_array_equal(back.next_observations[:, 0], [1, 2, 4, 5, 6, 7])
    np.testing.assert_array_equal(back.episode_ends, [0, 1, 0, 1, 0, 1])
    assert back.num_episodes == 3
    assert back.metadata["dropped_transitions"] == 2


def test_missing_timeouts_warns(tmp_path: Path) -> None:
    ds = make_dataset()
    path = tmp_path / "old.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "next_observations", "terminals"):
            f[key] = getattr(ds, key)
    with pytest.warns(UserWarning, match="old.hdf5"):
        back = read_d4rl(path)
    assert not back.timeouts.any() and len(back) == len(ds)


# ------------------------------------------------------------------- bad inputs
def write_raw_d4rl(path: Path, **override) -> Path:
    arrays = {k: v for k, v in make_dataset().arrays().items() if k != "episode_ends"}
    arrays.update(override)
    with h5py.File(path, "w") as f:
        for key, arr in arrays.items():
            if arr is not None:
                f[key] = arr
    return path


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("actions", None, "missing required key"),
        ("rewards", np.zeros(11, np.float32), "length mismatch"),
        ("terminals", np.zeros(13, bool), "length mismatch"),
        ("rewards", np.zeros((12, 2), np.float32), "wrong ndim"),
        ("observations", np.zeros((12, 2, 2, 2), np.float32), "wrong ndim"),
        ("terminals", np.full(12, 0.5), "0/1"),
    ],
)
def test_d4rl_bad_key(tmp_path: Path, key: str, value, words: str) -> None:
    path = write_raw_d4rl(tmp_path / "bad.hdf5", **{key: value})
    msg = raise_msg(read_d4rl, path)
    assert str(path) in msg and f"'{key}'" in msg and words in msg


@pytest.mark.parametrize(
    ("key", "bad"), [("observations", np.nan), ("rewards", np.inf), ("actions", -np.inf)]
)
def test_non_finite_values(tmp_path: Path, key: str, bad: float) -> None:
    arr = getattr(make_dataset(), key).copy()
    arr.reshape(-1)[5] = bad
    path = write_raw_d4rl(tmp_path / "nan.hdf5", **{key: arr})
    msg = raise_msg(load_dataset, path)
    assert str(path) in msg and f"'{key}'" in msg and "non-finite" in msg
    npz = tmp_path / "nan.npz"
    np.savez(npz, **{k: v for k, v in make_dataset().arrays().items()} | {key: arr})
    msg = raise_msg(read_npz, npz)
    assert str(npz) in msg and f"'{key}'" in msg


def test_empty_dataset(tmp_path: Path) -> None:
    empty = {
        "observations": np.zeros((0, 3), np.float32),
        "actions": np.zeros((0, 2), np.float32),
        "rewards": np.zeros(0, np.float32),
        "next_observations": np.zeros((0, 3), np.float32),
        "terminals": np.zeros(0, bool),
        "timeouts": np.zeros(0, bool),
    }
    path = write_raw_d4rl(tmp_path / "empty.hdf5", **empty)
    msg = raise_msg(read_d4rl, path)
    assert str(path) in msg and "'observations'" in msg and "empty" in msg
    root = write_foreign_minari(tmp_path / "m", {})
    msg = raise_msg(read_minari, root)
    assert "main_data.hdf5" in msg and "no episodes" in msg


def test_wrong_obs_dims_for_task(tmp_path: Path) -> None:
    path = write_d4rl(make_dataset(obs_dim=3), tmp_path / "hopper.hdf5")
    ds = load_dataset(path)
    ds.check_compatible(obs_dim=3, act_dim=2, task="toy")
    with pytest.raises(DatasetError) as info:
        ds.check_compatible(obs_dim=11, act_dim=2, task="hopper")
    msg = str(info.value)
    assert str(path) in msg and "'observations'" in msg and "11" in msg
    with pytest.raises(DatasetError, match="'actions'"):
        ds.check_compatible(obs_dim=3, act_dim=3, task="hopper")


@pytest.mark.parametrize("reader", [load_dataset, read_d4rl, read_minari, read_npz])
def test_nonexistent_path(tmp_path: Path, reader) -> None:
    path = tmp_path / "nope.hdf5"
    msg = raise_msg(reader, path)
    assert str(path) in msg and "no such file or directory" in msg


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.hdf5"
    path.write_text("this is not HDF5")
    msg = raise_msg(load_dataset, path)
    assert str(path) in msg and "not an HDF5 file" in msg
    good = write_d4rl(make_dataset(), tmp_path / "good.hdf5").read_bytes()
    cut = tmp_path / "truncated.hdf5"
    cut.write_bytes(good[: len(good) // 2])
    msg = raise_msg(load_dataset, cut)
    assert str(cut) in msg and "truncated" in msg
    npz = tmp_path / "fake.npz"
    npz.write_bytes(b"PK\x03\x04garbage")
    assert str(npz) in raise_msg(load_dataset, npz)


def test_unknown_format_and_plain_directory(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("1,2,3")
    msg = raise_msg(load_dataset, csv)
    assert str(csv) in msg and ".npz" in msg and ".hdf5" in msg and "Minari" in msg
    folder = tmp_path / "folder"
    folder.mkdir()
    msg = raise_msg(load_dataset, folder)
    assert str(folder) in msg and "not a Minari dataset" in msg


def test_npz_missing_key(tmp_path: Path) -> None:
    arrays = make_dataset().arrays()
    del arrays["timeouts"]
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    msg = raise_msg(read_npz, path)
    assert str(path) in msg and "'timeouts'" in msg and "missing" in msg


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda ep: ep.pop("actions"), "episode_3/actions", "missing"),
        (lambda ep: ep.update(rewards=ep["rewards"][:-1]), "episode_3/actions", "mismatch"),
        (
            lambda ep: ep.update(observations=ep["observations"][:-1]),
            "episode_3/observations",
            "T+1",
        ),
        (
            lambda ep: ep.update(truncations=np.zeros((4, 2), bool)),
            "episode_3/truncations",
            "expected (T,)",
        ),
        (
            lambda ep: ep.update(observations=np.zeros((5, 7))),
            "episode_3/observations",
            "width",
        ),
    ],
)
def test_corrupted_minari_episode(tmp_path: Path, change, key: str, words: str) -> None:
    eps = {i: minari_episode(4, seed=i) for i in range(5)}
    change(eps[3])
    root = write_foreign_minari(tmp_path / "m", eps)
    msg = raise_msg(load_dataset, root)
    assert "main_data.hdf5" in msg and f"'{key}'" in msg and words in msg


def test_minari_missing_files(tmp_path: Path) -> None:
    root = write_foreign_minari(tmp_path / "m", {0: minari_episode(3)})
    (root / "data" / "metadata.json").rename(root / "data" / "meta.bak")
    msg = raise_msg(read_minari, root)
    assert "metadata.json" in msg and "missing" in msg
    (root / "data" / "meta.bak").rename(root / "data" / "metadata.json")
    (root / "data" / "main_data.hdf5").unlink()
    msg = raise_msg(read_minari, root)
    assert "main_data.hdf5" in msg and "missing" in msg
    (root / "data" / "metadata.json").write_text("{not json")
    assert "not valid JSON" in raise_msg(read_minari, root)


# ---------------------------------------------------------- never touch user files
def test_reading_leaves_files_unchanged(tmp_path: Path, ds: Dataset) -> None:
    paths = [
        write_d4rl(ds, tmp_path / "d.hdf5"),
        write_minari(ds, tmp_path / "m").parent,
        save_npz(ds, tmp_path / "n.npz"),
        write_raw_d4rl(tmp_path / "raw.hdf5", next_observations=None),
    ]
    for p in paths:  # an old, fixed mtime so any write would show
        for f in [p] if p.is_file() else p.rglob("*.*"):
            os.utime(f, ns=(10**18, 10**18))
    before = {str(p): file_state(p) for p in paths}
    for p in paths:
        load_dataset(p)
    assert {str(p): file_state(p) for p in paths} == before


def test_writers_refuse_to_overwrite(tmp_path: Path, ds: Dataset) -> None:
    other = make_dataset(seed=5)
    writers = [
        (write_d4rl, tmp_path / "d.hdf5", tmp_path / "d.hdf5"),
        (save_npz, tmp_path / "n.npz", tmp_path / "n.npz"),
        (write_minari, tmp_path / "m", tmp_path / "m" / "data"),
    ]
    for write, target, on_disk in writers:
        write(ds, target)
        before = file_state(on_disk)
        with pytest.raises(FileExistsError, match="overwrite=True"):
            write(other, target)
        assert file_state(on_disk) == before
        write(other, target, overwrite=True)
        assert_same_arrays(other, load_dataset(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5", "m", "n.npz"]


# ------------------------------------------- folders written by the real Minari package
MINARI_FIXTURES = Path(__file__).parent / "fixtures" / "minari"


@pytest.mark.parametrize("dataset_id", ["pendulum/random-v0", "cartpole/random-v0"])
def test_folder_written_by_minari(dataset_id: str) -> None:
    """Minari 0.5.4 wrote these (fixtures/minari/make_fixtures.py) and read the expected
    values back with its own reader; ours must agree on every count and sum."""
    want = json.loads((MINARI_FIXTURES / "expected.json").read_text())[dataset_id]
    back = load_dataset(MINARI_FIXTURES / dataset_id)
    assert len(back) == want["total_steps"] and back.num_episodes == want["total_episodes"]
    assert back.terminals.sum() == want["terminations"]
    assert back.timeouts.sum() == want["truncations"]
    np.testing.assert_allclose(back.rewards.sum(), want["reward_sum"], rtol=1e-5)
    np.testing.assert_allclose(back.observations.sum(), want["observation_sum"], rtol=1e-4)
    np.testing.assert_allclose(back.next_observations.sum(), want["next_observation_sum"],
                               rtol=1e-4)
    if dataset_id.startswith("cartpole"):  # Discrete(2) actions arrive one-hot
        assert back.actions.shape == (len(back), 2)
        np.testing.assert_array_equal(back.actions.sum(axis=1), 1.0)

"""JAX SAC and the D4RL-style datasets built from it (SPEC §9): learning, datasets readable by
both readers, no overwrites, exact resumption, and `dualrl collect sac`."""

from __future__ import annotations

import dataclasses
import hashlib

import gymnasium as gym
import jax
import numpy as np
import pytest

from dualrl.collect.behaviour_datasets import (
    DATASET_NAMES,
    collect_sac_datasets,
    dataset_path,
    expert_snapshot,
    medium_snapshot,
)
from dualrl.collect.sac import (
    PolicySnapshot,
    SACConfig,
    SACRunConfig,
    evaluate,
    greedy_policy,
    sac_preset,
    train_sac,
)
from dualrl.data import load_dataset, read_minari, write_minari
from dualrl.envs.locomotion import ROBOTS, make_robot_env

# A hopper run small enough for a test: every code path, none of the learning.
TINY = SACRunConfig(
    sac=SACConfig(hidden=(32, 32), batch_size=64),
    total_steps=1000, start_steps=200, update_after=100, update_chunk=50, snapshot_every=250,
    eval_episodes=2, checkpoint_every=500, dataset_size=1500, preset="test",
)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sac_learns_pendulum():
    """4k steps of SAC take Pendulum's deterministic return from ≈ −1400 (untrained actor)
    to ≈ −220 (seed 0; −200 and −590 for seeds 1, 2): a margin chance cannot cover."""
    config = SACRunConfig(
        sac=SACConfig(hidden=(64, 64), actor_lr=1e-3, critic_lr=1e-3, temperature_lr=1e-3,
                      init_temperature=0.2),
        total_steps=4000, start_steps=500, update_after=250, snapshot_every=2000,
        eval_episodes=5, checkpoint_every=4000,
    )

    def make_env():
        return gym.make("Pendulum-v1")

    run = train_sac(make_env, config, seed=0)
    init_state = run.learner.init(jax.random.split(jax.random.PRNGKey(0), 3)[0])  # as train_sac
    before = np.mean(evaluate(make_env(), greedy_policy(run.learner, init_state.actor_params,
                                                        run.scaler), 5, seed=123))
    after = run.snapshots[-1].eval_return
    assert [s.step for s in run.snapshots] == [2000, 4000]
    assert before < -900
    assert after > -700 and after > before + 500, (before, after)
    # Pendulum only truncates: no transition is terminal, episodes are 200 steps.
    assert not run.log.terminals.any()
    assert run.log.truncations.sum() == 4000 // 200
    assert int(run.state.updates) == 4000 - 200  # every chunk ending at step >= 250 updates


def test_snapshot_choice():
    snaps = [PolicySnapshot(s, None, (r,)) for s, r in
             [(10, 50.0), (20, 320.0), (30, 1000.0), (40, 900.0), (50, 1000.0), (60, 350.0)]]
    expert = expert_snapshot(snaps)
    assert expert.step == 50  # best return, the later one on ties
    assert medium_snapshot(snaps, expert.eval_return).step == 20  # |320 − 333| < |350 − 333|


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("sac-data")
    report = collect_sac_datasets("hopper", TINY, out, seed=3)
    return out, report


def test_datasets_load_through_both_readers(collected, tmp_path):
    out, report = collected
    assert sorted(report.paths) == sorted(DATASET_NAMES)
    data = {name: load_dataset(dataset_path(out, "hopper", name)) for name in DATASET_NAMES}
    for name in ("random", "medium", "expert"):
        assert len(data[name]) == TINY.dataset_size
    medium_step = data["medium"].metadata["snapshot_step"]
    assert len(data["medium-replay"]) == medium_step
    assert len(data["medium-expert"]) == len(data["medium"]) + len(data["expert"])
    assert data["medium-expert"].num_episodes == (data["medium"].num_episodes
                                                  + data["expert"].num_episodes)

    hopper = ROBOTS["hopper"]
    for name, ds in data.items():
        assert ds.metadata["format"] == "d4rl"
        assert ds.obs_dim == 11 and ds.act_dim == 3
        assert ds.observations.dtype == np.float32
        assert ds.ref_min_score == hopper.ref_min_score
        assert ds.ref_max_score == hopper.ref_max_score
        meta = ds.metadata
        assert meta["dataset"] == name and meta["env_id"] == "Hopper-v5"
        assert meta["collector"] == "dualrl.collect.sac" and meta["preset"] == "test"
        assert meta["seed"] == 3 and meta["sac_steps"] == TINY.total_steps
        assert np.isfinite(meta["source_policy_return"])
        np.testing.assert_array_equal(ds.episode_ends, ds.terminals | ds.timeouts)
        assert np.abs(ds.actions).max() <= 1.0
        # s' of a transition is the next transition's s inside an episode
        inside = ~ds.episode_ends[:-1]
        np.testing.assert_array_equal(ds.next_observations[:-1][inside],
                                      ds.observations[1:][inside])
        if name != "medium-expert":  # mean over finished episodes (a budget cut is not)
            returns = ds.episode_returns()
            if not ds.terminals[-1] and len(returns) > 1:
                returns = returns[:-1]
            np.testing.assert_allclose(meta["source_policy_return"], returns.mean(), rtol=1e-5)
            assert meta["snapshot_step"] is None or meta["snapshot_step"] % 250 == 0

        minari = read_minari(write_minari(ds, tmp_path / name, dataset_id=f"hopper/{name}-v0"))
        assert len(minari) == len(ds) and minari.num_episodes == ds.num_episodes
        for key in ("observations", "actions", "rewards", "next_observations", "terminals",
                    "timeouts", "episode_ends"):
            np.testing.assert_array_equal(getattr(minari, key), getattr(ds, key))
        assert minari.ref_max_score == hopper.ref_max_score

    # the random policy really is uniform over the action box; medium-replay starts with it
    assert data["random"].metadata["policy"] == "uniform random"
    assert data["random"].actions.min() < -0.95 and data["random"].actions.max() > 0.95
    assert data["medium-replay"].metadata["snapshot_step"] == medium_step
    assert report.summary["datasets"]["medium-expert"]["n_transitions"] == 2 * 1500


def test_existing_files_are_not_overwritten(collected):
    out, _ = collected
    target = dataset_path(out, "hopper", "medium")
    before = _digest(target)
    with pytest.raises(FileExistsError, match="overwrite"):
        collect_sac_datasets("hopper", TINY, out, seed=3)
    assert _digest(target) == before


def test_overwrite_resumes_the_finished_run_and_reproduces_the_files(collected):
    """The final checkpoint holds the whole run: no retraining, and the same bytes of data."""
    out, _ = collected
    before = {n: load_dataset(dataset_path(out, "hopper", n)) for n in DATASET_NAMES}
    report = collect_sac_datasets("hopper", TINY, out, seed=3, overwrite=True,
                                  names=("medium-replay", "expert"))
    assert report.summary["resumed_at_step"] == TINY.total_steps
    for name in ("medium-replay", "expert"):
        again = load_dataset(dataset_path(out, "hopper", name))
        for key, value in before[name].arrays().items():
            np.testing.assert_array_equal(again.arrays()[key], value)


def test_interrupted_run_resumes_exactly(tmp_path):
    """Killed after the step-500 checkpoint, then resumed: the same run as uninterrupted,
    mid-episode MuJoCo state included."""

    def make_env():
        return make_robot_env("hopper")

    class Interrupt(Exception):
        pass

    def stop_at_500(snapshot, metrics):
        if snapshot.step == 500:
            raise Interrupt

    whole = train_sac(make_env, TINY, seed=5)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        train_sac(make_env, TINY, seed=5, checkpoint_dir=ckpt, on_snapshot=stop_at_500)
    resumed = train_sac(make_env, TINY, seed=5, checkpoint_dir=ckpt)
    assert resumed.resumed_at == 500
    assert not (whole.log.terminals[:500] | whole.log.truncations[:500])[499]  # mid-episode
    for key, value in whole.log.fields().items():
        np.testing.assert_array_equal(resumed.log.fields()[key], value, err_msg=key)
    assert [s.step for s in resumed.snapshots] == [s.step for s in whole.snapshots]
    assert [s.eval_returns for s in resumed.snapshots] == [s.eval_returns for s in whole.snapshots]
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.state),
                 jax.device_get(whole.state))

    other = dataclasses.replace(TINY, dataset_size=7)
    with pytest.raises(Exception, match="different SAC run"):
        train_sac(make_env, other, seed=5, checkpoint_dir=ckpt)


def test_presets_and_budget_overrides():
    small, paper = sac_preset("small"), sac_preset("paper")
    assert paper.total_steps >= 1_000_000 and paper.dataset_size == 1_000_000
    assert 100_000 <= small.dataset_size <= 200_000
    assert small.sac.hidden == (256, 256) and small.sac.batch_size == 256
    short = small.with_budget(total_steps=2000, dataset_size=500)
    assert short.total_steps == 2000 and short.dataset_size == 500
    assert short.start_steps <= 400 and short.snapshot_every == 200
    with pytest.raises(ValueError, match="multiple of update_chunk"):
        small.with_budget(total_steps=1234)
    with pytest.raises(ValueError, match="unknown SAC preset"):
        sac_preset("huge")


def test_cli_collect_sac(tmp_path, capsys):
    from dualrl.cli import main

    out = tmp_path / "data"
    argv = ["collect", "sac", "--env", "hopper", "--preset", "small", "--steps", "300",
            "--dataset-size", "400", "--out", str(out), "--seed", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name in DATASET_NAMES:
        assert dataset_path(out, "hopper", name).exists()
        assert f"\n{name} " in printed
    assert "300 SAC steps" in printed and "time:" in printed
    assert len(load_dataset(out / "hopper-medium-expert-v2.hdf5")) == 800

    before = _digest(out / "hopper-expert-v2.hdf5")
    assert main(argv) == 2  # refuses before training
    assert "overwrite" in capsys.readouterr().err
    assert _digest(out / "hopper-expert-v2.hdf5") == before

    for bad, words in [
        (["--env", "ant"], ["unknown env 'ant'", "hopper", "walker2d"]),
        (["--env", "hopper", "--preset", "huge"], ["unknown SAC preset", "small", "paper"]),
        (["--env", "hopper", "--steps", "123"], ["multiple of update_chunk"]),
        (["--env", "hopper", "--dataset-size", "0"], ["dataset_size"]),
    ]:
        assert main(["collect", "sac", *bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
    assert main(["collect"]) == 2
    assert "frozenlake, sac" in capsys.readouterr().err

"""End-to-end behaviour of the one O2O loop on Frozen-Lake (small budgets)."""

import json

import jax
import numpy as np
import pytest

from dualrl.algos.iql import IQLConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.o2o.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from dualrl.o2o.loop import DivergenceError, O2ORun, RunExistsError, resume, train

TINY_ENV = dict(map="4x4", data_episodes=200)


def tiny_config(**loop_overrides) -> TrainConfig:
    loop = dict(offline_steps=400, online_steps=300, eval_every=100, eval_episodes=4,
                checkpoint_every=100, scan_chunk=100, batch_size=64, progress=False)
    loop.update(loop_overrides)
    return TrainConfig(task="frozenlake-shift", algo="iql", seed=3, preset="quick",
                       loop=LoopConfig(**loop), agent=IQLConfig(hidden=(32, 32)),
                       env=dict(TINY_ENV))


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in records]


def test_run_directory_contents(tmp_path):
    out = tmp_path / "run"
    summary = train(tiny_config(keep_checkpoints=10), out)
    for key in ("task", "algo", "seed", "offline_score", "online_mean_score", "final_score",
                "wall_seconds"):
        assert key in summary
    assert json.loads((out / "summary.json").read_text())["task"] == "frozenlake-shift"
    config = json.loads((out / "config.json").read_text())
    assert config["loop"]["offline_steps"] == 400 and config["env"]["map"] == "4x4"
    # what the numbers depend on besides the config: the installed versions and the backend
    import jax
    assert config["run"]["versions"]["jax"] == jax.__version__
    assert config["run"]["jax_backend"] == "cpu" and config["run"]["platform"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    phases = [r["phase"] for r in records]
    assert phases.count("offline") == 5 and phases.count("online") == 3
    assert {"step", "score", "return", "critic_loss", "actor_loss"} <= set(records[-1])
    online = [r["score"] for r in records if r["phase"] == "online"]
    assert summary["online_mean_score"] == pytest.approx(np.mean(online))
    assert summary["final_score"] == online[-1]
    assert latest_checkpoint(out / "checkpoints") is not None
    # --keep-checkpoints 10 (default 2) keeps each policy, e.g. for later analysis
    kept = {p.name for p in (out / "checkpoints").iterdir() if p.is_dir()}
    assert {"offline-100", "offline-200", "offline-300"} <= kept
    _, _, meta = load_checkpoint(out / "checkpoints" / "offline-200",
                                 O2ORun(tiny_config(), None).agent_state)
    assert meta["progress"]["offline_step"] == 200


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(online_steps=0), out)
    before = (out / "metrics.jsonl").read_bytes()
    with pytest.raises(RunExistsError, match="--resume"):
        train(tiny_config(online_steps=0), out)
    assert (out / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("crash_at", ["offline", "online"])
def test_resumed_run_matches_uninterrupted(tmp_path, crash, crash_at):
    reference = train(tiny_config(), tmp_path / "ref")
    ref_records = [json.loads(x) for x in (tmp_path / "ref/metrics.jsonl").read_text().splitlines()]

    out = tmp_path / "crashed"
    run = O2ORun(tiny_config(), out)
    if crash_at == "offline":
        crash.offline(run, 3)  # after two chunks (and their checkpoints)
    else:
        crash.online(run, 230)
    with pytest.raises(crash.error):
        run.run()
    assert latest_checkpoint(out / "checkpoints") is not None
    resumed = resume(out)
    got = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert _strip(got) == _strip(ref_records)
    for key in ("offline_score", "online_mean_score", "final_score"):
        assert resumed[key] == reference[key]


def test_corrupt_checkpoint_is_reported_by_name(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(online_steps=0), out)
    ckpt = latest_checkpoint(out / "checkpoints")
    agent_file = ckpt / "agent.msgpack"
    data = bytearray(agent_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    agent_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="agent.msgpack"):
        resume(out)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_divergence_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    out = tmp_path / "run"
    config = tiny_config(reward_scale=float("inf"), online_steps=0)
    with pytest.raises(DivergenceError, match="non-finite") as err:
        train(config, out)
    # the last good checkpoint (taken before the first update) is kept and named; nothing
    # non-finite was ever checkpointed
    last = latest_checkpoint(out / "checkpoints")
    assert last is not None and last.name == "pretrained" and str(last) in str(err.value)
    run = O2ORun(config, None)
    state, _, _ = load_checkpoint(last, run.agent_state)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state))


def test_training_dataset_from_file(tmp_path):
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.data import write_d4rl
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    path = tmp_path / "fl.hdf5"
    write_d4rl(collect_qlearning(FrozenLakeShiftEnv("4x4"), n_episodes=100, seed=1), path)
    config = tiny_config(online_steps=0)
    config.dataset = str(path)
    summary = train(config, None)
    assert summary["offline_score"] is not None


@pytest.mark.slow
def test_iql_quick_preset_solves_frozenlake_noshift():
    """Acceptance: IQL at the `quick` preset reaches >= 70% success without a shift."""
    from dualrl.flags import build_train_config

    config, _ = build_train_config(["--algo", "iql", "--task", "frozenlake-noshift",
                                    "--preset", "quick", "--progress", "false"])
    summary = train(config, None)
    assert summary["final_score"] >= 70.0, summary
    assert summary["offline_score"] >= 70.0, summary


def test_one_hot_move_is_the_argmax_of_the_unclipped_sample(monkeypatch):
    """Components above the action bound must not tie: [2, 3, 0, 0] is DOWN, not LEFT."""
    run = O2ORun(tiny_config(offline_steps=0, online_steps=5, eval_every=5), None)
    real = run._explore

    def fixed(*args):
        action, info = real(*args)
        return np.array([[2.0, 3.0, 0.0, 0.0]], np.float32), info

    moves = []
    env_step = run.env_online.step
    monkeypatch.setattr(run.env_online, "step", lambda a: (moves.append(a), env_step(a))[1])
    run._explore = fixed
    run.run()
    assert all(np.array_equal(m, [0.0, 1.0, 0.0, 0.0]) for m in moves) and len(moves) == 5
    online = np.asarray(run.buffer_state.actions)[run.buffer.n_offline:][:5]
    assert np.array_equal(online, np.tile([0.0, 1.0, 0.0, 0.0], (5, 1)))


def test_explore_epsilon_replaces_that_share_of_moves_by_uniform_ones():
    """ε = 0 leaves the agent's exploratory action as it is; ε = 1 makes every move a uniform
    draw (each of the 4 moves about a quarter of the time, whatever the actor prefers)."""
    for epsilon in (0.0, 1.0):
        run = O2ORun(tiny_config(offline_steps=0, online_steps=1, eval_every=1,
                                 explore_epsilon=epsilon), None)
        state_obs = np.asarray(run.env_online.reset(seed=0)[0], np.float32)[None]
        view = run.agent.acting_view(run.agent_state)
        agent_action = np.asarray(run.agent.explore(view, state_obs, jax.random.fold_in(
            jax.random.PRNGKey(0), 7), None)[0])
        own, _ = run._explore(view, state_obs, jax.random.PRNGKey(0), np.int32(7), None)
        if epsilon == 0.0:
            np.testing.assert_allclose(np.asarray(own), agent_action, rtol=1e-6)
        else:  # a fresh uniform draw from the box, not the agent's action
            assert not np.allclose(np.asarray(own), agent_action)
            assert np.all(np.abs(np.asarray(own)) <= 1.0)
    moves = np.array([  # ε = 1 (the last run built above)
        int(np.argmax(run._explore(view, state_obs, jax.random.PRNGKey(0), np.int32(t),
                                   None)[0])) for t in range(400)])
    counts = np.bincount(moves, minlength=4) / 400
    assert np.all(np.abs(counts - 0.25) < 0.07), counts
    with pytest.raises(ValueError, match="explore-epsilon"):
        LoopConfig(explore_epsilon=1.5)


def test_learning_diagnostics_are_logged(tmp_path):
    """V(s_0), the exact DP numbers, the exploration and replay shares, training returns."""
    train(tiny_config(offline_steps=100, online_steps=200, eval_every=100), tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    for r in records:
        assert {"v_init", "dp_success_policy", "dp_success_greedy_q", "dp_success_optimal",
                "dp_v_policy", "dp_v_optimal"} <= set(r)
        assert 0 <= r["dp_success_policy"] <= 100
    online = [r for r in records if r["phase"] == "online"]
    for r in online:
        assert 0 < r["online_share"] < 1 and 0 <= r["explore_changed"] <= 1
        assert r["train_episodes"] >= 1 and 0 <= r["train_success"] <= 100

"""DUAL end to end on tiny Frozen-Lake budgets: stages, acting, shift term, resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.algos.dual import DUALConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.o2o.agent import ActContext
from dualrl.o2o.loop import O2ORun, resume, train

# teacher_steps 4: two distillation rounds, not the default's four (each round compiles its own
# program: compiles dominate these runs)
TINY_DUAL = dict(horizon=4, planner_hidden=(32, 32), planner_steps=300,
                 distill_steps_per_round=40, hidden=(32, 32), refit_every=100,
                 fit_samples=2_000, expectile=0.7, beta=10.0, teacher_steps=4)


def tiny_config(online_steps=250, **dual) -> TrainConfig:
    loop = LoopConfig(offline_steps=300, online_steps=online_steps, eval_every=100,
                      eval_episodes=4, checkpoint_every=100, scan_chunk=100, batch_size=64,
                      progress=False)
    return TrainConfig(task="frozenlake-shift", algo="dual", seed=1, preset="quick", loop=loop,
                       agent=DUALConfig(**{**TINY_DUAL, **dual}),
                       env=dict(map="4x4", data_episodes=200))


def _strip(records):
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in records]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted tiny DUAL run, shared by the tests that read it (a run costs ~15 s
    of compilation and training): (run directory, summary)."""
    out = tmp_path_factory.mktemp("dual-ref") / "run"
    return out, train(tiny_config(), out)


def test_dual_run_logs_uncertainty_and_checkpoints_stages(reference_run):
    out, summary = reference_run
    assert summary["algo"] == "dual" and summary["online_mean_score"] is not None
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    online = [r for r in records if r["phase"] == "online"]
    for key in ("epistemic_std", "aleatoric_std", "shift_distance", "action_std",
                "refit_lambda", "transition_loss"):
        assert key in online[-1], key
    assert online[-1]["epistemic_std"] > 0.0  # the Laplace ensemble is not degenerate
    assert online[-1]["refits"] >= 3  # at the online start and every 100 steps
    assert (out / "stages/planner/LATEST").exists() and (out / "stages/student/LATEST").exists()


@pytest.mark.parametrize("crash_at", ["offline", "online"])
def test_resumed_dual_run_matches_uninterrupted(tmp_path, crash, crash_at, reference_run):
    ref = [json.loads(x) for x in (reference_run[0] / "metrics.jsonl").read_text().splitlines()]
    out = tmp_path / "crashed"
    run = O2ORun(tiny_config(), out)
    if crash_at == "offline":
        crash.offline(run, 2)
    else:
        crash.online(run, 170)
    with pytest.raises(crash.error):
        run.run()
    resume(out)
    got = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert _strip(got) == _strip(ref)


def test_shift_distance_is_larger_under_a_dynamics_shift():
    """The transition model is trained on slip-0 data: observed next states drift from its
    predictions at slip 0.3 (online), not at slip 0.0."""
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    config = tiny_config(online_steps=0, planner_steps=2000, distill_steps_per_round=200,
                         planner_hidden=(64, 64))
    config.loop.offline_steps = 1000
    run = O2ORun(config)
    run.run()
    agent, state = run.agent, run.agent_state

    def mean_shift(slip):
        data = collect_qlearning(FrozenLakeShiftEnv("4x4", slip=slip), n_episodes=300, seed=5)
        s = jnp.asarray(run.normalizer(data.observations))
        s_next = jnp.asarray(run.normalizer(data.next_observations))
        predicted = agent.predict_next_obs(state, s, jnp.asarray(data.actions))
        noise = jax.random.normal(jax.random.PRNGKey(0), (len(s), 4))
        ctx = ActContext(predicted, jnp.zeros(len(s), bool), noise)
        _, info = agent.explore(state, s_next, jax.random.PRNGKey(0), ctx)
        return float(info["shift_distance"])

    no_shift, shifted = mean_shift(0.0), mean_shift(0.3)
    assert shifted > 2.0 * no_shift, (no_shift, shifted)


def test_ablation_switches_change_acting():
    from dualrl.flags import build_train_config

    config, _ = build_train_config(["--algo", "dual", "--no-epistemic", "--shift-weight", "0",
                                    "--uq", "sampling", "--freeze-transition"])
    assert config.agent.epistemic is False and config.agent.shift_weight == 0.0
    assert config.agent.uq == "sampling" and config.agent.freeze_transition is True
    run = O2ORun(tiny_config(online_steps=0, epistemic=False, shift_weight=0.0,
                             planner_steps=50, distill_steps_per_round=5))
    run.run()
    obs = jnp.zeros((3, 2))
    ctx = ActContext(obs, jnp.zeros(3, bool), jnp.ones((3, 4)))
    _, info = run.agent.explore(run.agent_state, obs, jax.random.PRNGKey(0), ctx)
    assert float(info["epistemic_std"]) == 0.0 and float(info["shift_distance"]) >= 0.0
    assert np.isclose(float(info["action_std"]), float(info["aleatoric_std"]), rtol=1e-5)
    # the loop's pre-drawn step noise is the draw explore would make from its key
    key = jax.random.PRNGKey(1)
    first = ActContext(obs, jnp.ones(3, bool), jax.random.normal(key, (3, 4)))
    with_context, _ = run.agent.explore(run.agent_state, obs, key, first)
    without, _ = run.agent.explore(run.agent_state, obs, key, None)
    np.testing.assert_allclose(with_context, without, rtol=1e-6)


def test_iql_with_laplace_runs_and_reports_epistemic_uncertainty(tmp_path):
    """IQL w LA: the same Laplace acting module on IQL's Gaussian actor (one flag)."""
    from dualrl.algos.iql import IQLConfig
    from dualrl.flags import build_train_config

    config, _ = build_train_config(["--algo", "iql", "--laplace"])
    assert config.agent.laplace is True
    loop = LoopConfig(offline_steps=200, online_steps=200, eval_every=100, eval_episodes=4,
                      checkpoint_every=100, scan_chunk=100, batch_size=64, progress=False)
    cfg = TrainConfig(task="frozenlake-shift", algo="iql", seed=0, loop=loop,
                      agent=IQLConfig(hidden=(32, 32), laplace=True, refit_every=100,
                                      fit_samples=2_000),
                      env=dict(map="4x4", data_episodes=100))
    train(cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    assert last["refits"] == 3 and last["epistemic_std"] > 0.0 and last["refit_lambda"] > 0.0


def test_no_distill_actor_is_the_k_step_teacher_and_stages_are_shared(tmp_path):
    """--no-distill: the actor's mean is the teacher's K-step DDIM from z = 0 (the library's
    sampler); its planner stage comes from a stage cache filled by a distilled run with the
    same planner settings, data and seed, and no student stage is made for it."""
    from dualrl.flags import build_train_config

    config, _ = build_train_config(["--algo", "dual", "--no-distill"])
    assert config.agent.distill is False
    cache = tmp_path / "cache"
    logs: list[str] = []
    first = O2ORun(tiny_config(online_steps=0, stage_cache=str(cache), teacher_steps=4))
    first.agent.log = logs.append
    first.run()
    stages = sorted(p.name.split("-")[0] for p in cache.iterdir() if not p.name.startswith("."))
    assert stages == ["planner", "student"]

    config = tiny_config(online_steps=0, stage_cache=str(cache), distill=False, teacher_steps=4)
    config.loop.offline_steps = 0
    run = O2ORun(config)
    run.agent.log = logs.append
    run.run()
    assert any("reusing the finished stage 'planner'" in line for line in logs)
    # nothing new: the teacher is not distilled
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    agent, state = run.agent, run.agent_state
    assert agent.actor_steps == 4
    s = jnp.asarray(run.normalizer(np.array([[0.0, 0.0], [0.5, 0.25], [1.0, 0.75]],
                                            np.float32)))
    teacher = {"params": state.actor.params["params"]["student"]}
    expected = agent.planner.layout.action_slot(agent.planner._sample(
        teacher, s, jnp.zeros((3, agent.planner.layout.dim)), steps=4))
    np.testing.assert_allclose(agent.policy_parts(state.actor.params, s)[0], expected,
                               atol=1e-5)


@pytest.mark.parametrize("distill", [True, False])
def test_fused_policy_and_transition_pass_equals_separate_passes(distill):
    from dualrl.algos.dual import DUAL

    agent = DUAL(DUALConfig(**{**TINY_DUAL, "distill": distill}))
    state = agent.init(jax.random.PRNGKey(0), 3, 2)
    s = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    a = jax.random.normal(jax.random.PRNGKey(2), (5, 2))
    fused = agent.policy_and_next(state.actor.params, s, a)
    separate = (*agent.policy_parts(state.actor.params, s),
                agent.predict_next(state.actor.params, s, a))
    for f, g in zip(fused, separate, strict=True):
        np.testing.assert_allclose(f, g, rtol=1e-5, atol=1e-6)


def test_student_prefix_pass_equals_the_dense_inpainted_pass():
    """The distilled student skips the zero columns of z = 0 and the output columns nobody
    reads; values and gradients must match the dense inpainted pass (prefix_pass False)."""
    from dualrl.algos.dual import DUAL

    fast, dense = DUAL(DUALConfig(**TINY_DUAL)), DUAL(DUALConfig(**TINY_DUAL))
    dense.prefix_pass = False
    state = fast.init(jax.random.PRNGKey(0), 3, 2)
    dense.init(jax.random.PRNGKey(0), 3, 2)
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(3), p.shape),
                          state.actor.params)  # away from init (zero biases)
    s = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    a = jax.random.normal(jax.random.PRNGKey(2), (5, 2))

    def outputs(agent):
        return lambda p: (*agent.policy_and_next(p, s, a), *agent.policy_parts(p, s),
                          agent.predict_next(p, s, a))

    for f, g in zip(outputs(fast)(params), outputs(dense)(params), strict=True):
        np.testing.assert_allclose(f, g, rtol=1e-5, atol=1e-6)
    loss = lambda agent: lambda p: sum(  # noqa: E731
        jnp.sum(jnp.sin(x)) for x in outputs(agent)(p))
    g_fast, g_dense = jax.grad(loss(fast))(params), jax.grad(loss(dense))(params)
    for f, g in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_dense), strict=True):
        np.testing.assert_allclose(f, g, rtol=1e-4, atol=1e-5)


def test_no_planner_ablation_runs_end_to_end(tmp_path):
    """--no-planner: horizon-1 action diffusion, distilled like the planner (its fidelity report
    has no transition slot), no shift term."""
    summary = train(tiny_config(online_steps=100, use_planner=False, planner_steps=100,
                                distill_steps_per_round=10), tmp_path / "run")
    assert summary["online_mean_score"] is not None
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    online = [r for r in records if r["phase"] == "online"]
    assert online[-1]["shift_distance"] == 0.0 and online[-1]["transition_loss"] == 0.0

"""N seeds of one configuration trained as one program: the same loop, vmapped over seeds.

    summaries = train_seeds(config, seeds=[0, 1, 2, 3, 4], outs=[...])   # or:
    dualrl train --algo iql --task frozenlake-shift --seed 0 --vmap-seeds 5 --out DIR

The agent states, optimiser states, replay buffers and PRNG keys of the N seeds are stacked,
and every compiled call of the loop (the offline update chunk, the exploring action, the
store-and-update step) is `jax.vmap`ped over them: one dispatch for N seeds. The environments
are N gymnasium environments stepped side by side (Python), each reset with its own seed's
episode seeds. Where the updates are compute-bound (the cpu preset on 2 CPU cores:
docs/results/throughput.md, 1.11x for 5 seeds) this saves little; it is the program a GPU
would run N seeds with.

Each seed's run is the separate run's, computation for computation: the same keys (folded
from its seed and step), the same episode seeds, the same evaluation, its own run directory
(config.json, metrics.jsonl, checkpoints, summary.json). The phase hooks (DUAL's planner
stages, the Laplace fits) run per seed, unbatched. Checkpoints are taken per seed at that
seed's own chunk / episode boundaries, in the separate run's format, so an interrupted seed
resumes (`dualrl train --out DIR/seedK --resume`) exactly as a separate run would.
Vmapped kernels sum in another order than single-seed ones: IQL's and DUAL's evaluations
equal separate runs on the tests' budgets (the Laplace draws are continuous in the fitted
precision, so DUAL's sub-policies agree too) and drift apart over thousands of steps.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.config import TrainConfig
from dualrl.data.buffer import BufferState
from dualrl.o2o.agent import ActContext, step_noise
from dualrl.o2o.loggers import check_available, make_loggers
from dualrl.o2o.loop import (
    _HOOK,
    _OFFLINE,
    _ONLINE_ACT,
    _ONLINE_UPDATE,
    _PRETRAIN,
    O2ORun,
    _explore_with_floor,
    _metric_names,
    _next_multiple,
    offline_mix,
    online_step_fn,
    train_chunk_fn,
)
from dualrl.o2o.rundir import RunDir


def stack(trees: list[Any]) -> Any:
    """The trees' leaves stacked under the first tree's structure (the runs' train states
    differ only in static metadata: each run's agent built its own optimiser closures)."""
    leaves = [jax.tree.leaves(t) for t in trees]
    return jax.tree.unflatten(jax.tree.structure(trees[0]),
                              [jnp.stack(xs) for xs in zip(*leaves, strict=True)])


# The seeds step in lock-step, so their buffers hold as many rows: the write position and the
# offline count stay scalars under vmap (a batched position would turn each store into a
# scatter that copies every seed's whole buffer; a scalar one is an in-place update).
BUFFER_AXES = BufferState(0, 0, 0, 0, 0, 0, None, None, 0, 0, 0, 0)
# per-seed fields (balanced replay's are None without it: nothing to stack)
_ROWS = ("observations", "actions", "rewards", "next_observations", "dones", "episode_ids",
         "mc_returns", "priorities", "max_priority", "ratio")


def stack_buffers(states: list[BufferState]) -> BufferState:
    sizes = {(int(s.n_offline), int(s.size)) for s in states}
    if len(sizes) != 1:
        raise ValueError(f"vmapped seeds need buffers of one size, got {sorted(sizes)}")
    return states[0]._replace(**{f: stack([getattr(s, f) for s in states]) for f in _ROWS})


def unstack_buffer(state: BufferState, i: int) -> BufferState:
    return state._replace(**{f: jax.tree.map(lambda x: x[i], getattr(state, f))
                             for f in _ROWS})


def unstack(tree: Any, i: int, like: Any | None = None) -> Any:
    """Seed i's slice, under `like`'s structure (that seed's own run's) when given."""
    leaves = [x[i] for x in jax.tree.leaves(tree)]
    return jax.tree.unflatten(jax.tree.structure(tree if like is None else like), leaves)


class VmappedRuns:
    """N O2ORuns of one configuration (seeds aside) driven in lock-step."""

    def __init__(self, config: TrainConfig, seeds: list[int],
                 outs: list[str | Path | None] | None = None):
        if len(set(seeds)) != len(seeds) or not seeds:
            raise ValueError(f"--vmap-seeds: need distinct seeds, got {seeds}")
        outs = outs if outs is not None else [None] * len(seeds)
        for out in outs:
            if out is not None:
                RunDir(out).check_new()
        self.runs = [O2ORun(dataclasses.replace(config, seed=s), out)
                     for s, out in zip(seeds, outs, strict=True)]
        lead = self.runs[0]
        self.agent, self.loop = lead.agent, lead.loop
        loop = self.loop
        vm = partial(jax.vmap, in_axes=(0, BUFFER_AXES, None, 0, None))
        self._train_chunk = jax.jit(vm(train_chunk_fn(
            self.agent, loop.batch_size, offline_mix(loop.batch_mix))), static_argnums=4,
            donate_argnums=0)
        self._explore = jax.jit(jax.vmap(
            lambda state, obs, key, t, ctx: _explore_with_floor(
                self.agent, loop.explore_epsilon, lead.act_low, lead.act_high,
                self.agent.acting_view(state), obs, key, t, ctx),
            in_axes=(0, 0, 0, None, 0)))
        self._online_step = jax.jit(jax.vmap(
            online_step_fn(self.agent, loop.batch_size, loop.batch_mix, loop.utd,
                           lead.one_hot_actions, lead.buffer.balanced),
            in_axes=(0, BUFFER_AXES, 0, None, 0, 0, 0, 0, 0, 0),
            out_axes=(0, BUFFER_AXES, 0, 0, 0)), donate_argnums=(0, 1, 5))

    # ------------------------------------------------------------------ state
    def _gather(self) -> tuple[Any, Any]:
        return (stack([r.agent_state for r in self.runs]),
                stack_buffers([r.buffer_state for r in self.runs]))

    def _scatter(self, states: Any, buffers: Any | None = None) -> None:
        for i, run in enumerate(self.runs):
            run.agent_state = unstack(states, i, run.agent_state)
            if buffers is not None:
                run.buffer_state = unstack_buffer(buffers, i)

    def _keys(self, tag: int) -> jax.Array:
        return jnp.stack([jax.random.fold_in(r.key, tag) for r in self.runs])

    # -------------------------------------------------------------------- run
    def run(self) -> list[dict[str, Any]]:
        check_available(self.loop.loggers)
        for run in self.runs:
            if run.run_dir is not None:
                run.run_dir.create({**run.config.to_dict(), "run": run._run_record()})
                run._loggers = make_loggers(self.loop.loggers, run.run_dir.path, run.run_id,
                                            run.config.to_dict())
        try:
            return self._run()
        finally:
            for run in self.runs:
                for logger in run._loggers:
                    logger.close()
                if run.run_dir is not None:
                    run.run_dir.close()

    def _run(self) -> list[dict[str, Any]]:
        start = time.perf_counter()
        # per seed, with the seed's own agent (its stage folder): e.g. DUAL's planner and
        # student stages
        for run in self.runs:
            run.agent_state = run.agent.on_phase_start(
                run.agent_state, "offline", run.buffer, run.buffer_state,
                jax.random.fold_in(run.key, _PRETRAIN))
            run.progress.pretrained = True
            run.progress.wall_seconds = time.perf_counter() - start
            run._checkpoint("pretrained")
        self._offline_phase(start)
        for run in self.runs:
            run.progress.phase = "online"
            run.agent_state = run.agent.on_phase_start(
                run.agent_state, "online", run.buffer, run.buffer_state,
                jax.random.fold_in(run.key, _HOOK))
            run.progress.wall_seconds = time.perf_counter() - start
            run._checkpoint("offline-final")
        self._online_phase(start)
        return [run._finish(start) for run in self.runs]

    def _offline_phase(self, start: float) -> None:
        loop = self.loop
        keys = self._keys(_OFFLINE)
        for run in self.runs:
            run._evaluate("offline", start)
        states, buffers = self._gather()
        step = 0
        while step < loop.offline_steps:
            stop = min(loop.offline_steps, _next_multiple(step, loop.eval_every),
                       _next_multiple(step, loop.checkpoint_every), step + loop.scan_chunk)
            n = stop - step
            states, sums = self._train_chunk(states, buffers, jnp.asarray(step), keys, n)
            sums = jax.device_get(sums)
            evaluate = stop % loop.eval_every == 0 or stop == loop.offline_steps
            checkpoint = stop % loop.checkpoint_every == 0 and stop < loop.offline_steps
            if evaluate or checkpoint:
                self._scatter(states)
            for i, run in enumerate(self.runs):
                p = run.progress
                seed_sums = {k: float(v[i]) for k, v in sums.items()}
                run._check_finite(seed_sums, f"offline step {stop} (seed {run.config.seed})")
                for k, v in seed_sums.items():
                    p.metric_sums[k] = p.metric_sums.get(k, 0.0) + v
                p.metric_count += n
                p.offline_step = stop
                if evaluate:
                    run._evaluate("offline", start, also_data_env=stop == loop.offline_steps)
                if checkpoint:
                    p.wall_seconds = time.perf_counter() - start
                    run._checkpoint(f"offline-{stop}")
            step = stop
        self._scatter(states)

    def _online_step_hook(self, states: Any, buffers: Any, step: int, keys: jax.Array) -> Any:
        """The agent's per-step hook (e.g. a Laplace refit every k steps), seed by seed with
        each run's own agent, at the steps where the agent says it acts."""
        if not self.agent.online_step_hook_due(step):
            return states
        return stack([r.agent.on_online_step(unstack(states, i, r.agent_state), step, r.buffer,
                                             unstack_buffer(buffers, i), keys[i])
                      for i, r in enumerate(self.runs)])

    def _online_phase(self, start: float) -> None:
        loop, runs, n = self.loop, self.runs, len(self.runs)
        if loop.online_steps == 0:
            return
        lead = runs[0]
        act_keys, update_keys = self._keys(_ONLINE_ACT), self._keys(_ONLINE_UPDATE)
        hook_keys = self._keys(_HOOK)
        names = _metric_names(self.agent, lead.agent_state, lead.buffer_state,
                              lead.one_hot_actions, lead.buffer.balanced)
        acc = {k: jnp.zeros((n,), jnp.float32) for k in names}
        for run in runs:
            run.progress.metric_sums = {}
        obs_dim, act_dim = lead.dataset.obs_dim, lead.dataset.act_dim
        predicted = jnp.zeros((n, 1, obs_dim), jnp.float32)
        noise = jax.vmap(lambda k: step_noise(k, 0, (1, act_dim)))(act_keys)
        episode_id0 = lead.buffer.n_offline_episodes
        obs: list[Any] = [None] * n
        first = np.zeros((n, 1), bool)
        returns, successes = np.zeros(n), np.zeros(n, bool)
        next_checkpoint = [_next_multiple(0, loop.checkpoint_every)] * n
        states, buffers = self._gather()
        for t in range(loop.online_steps):
            for i, run in enumerate(runs):
                if obs[i] is None:  # episode start: where this seed may checkpoint
                    if t >= next_checkpoint[i] and t > 0:
                        p = run.progress
                        run.agent_state = unstack(states, i, run.agent_state)
                        run.buffer_state = unstack_buffer(buffers, i)
                        p.metric_sums = {k: float(v[i]) for k, v in jax.device_get(acc).items()}
                        p.wall_seconds = time.perf_counter() - start
                        run._checkpoint(f"online-{t}")
                        p.metric_sums = {}
                        next_checkpoint[i] = _next_multiple(t, loop.checkpoint_every)
                    obs[i], _ = run.env_online.reset(
                        seed=run._episode_seed(run.progress.online_episode))
                    first[i] = True
            norm_obs = jnp.asarray(np.stack([
                r.normalizer(np.asarray(o, np.float32))[None] for r, o in zip(runs, obs,
                                                                              strict=True)]))
            context = ActContext(predicted, jnp.asarray(first), noise)
            actions, info = self._explore(states, norm_obs, act_keys, np.int32(t), context)
            actions = np.asarray(actions)[:, 0]
            stored, transitions, next_obs = [], [], []
            for i, run in enumerate(runs):
                stored_action = run.executed_action(actions[i])
                o2, reward, terminated, truncated, step_info = run.env_online.step(stored_action)
                returns[i] += float(reward)
                successes[i] |= bool(step_info.get("is_success", False))
                transitions.append(run.buffer.make_transition(
                    obs[i], stored_action, reward, o2, terminated,
                    episode_id0 + run.progress.online_episode))
                stored.append(stored_action[None])
                next_obs.append((o2, terminated or truncated))
            batch = jax.tree.map(lambda *xs: np.stack(xs), *transitions)  # host: one transfer
            states, buffers, acc, predicted, noise = self._online_step(
                states, buffers, batch, np.int32(t), update_keys, acc, info,
                norm_obs, jnp.asarray(np.stack(stored)), act_keys)
            first[:] = False
            step = t + 1
            states = self._online_step_hook(states, buffers, step, hook_keys)
            evaluate = step % loop.eval_every == 0 or step == loop.online_steps
            sums = jax.device_get(acc) if evaluate else None
            if evaluate:
                self._scatter(states, buffers)
            for i, run in enumerate(runs):
                p = run.progress
                p.online_step = step
                p.metric_count += loop.utd
                o2, done = next_obs[i]
                obs[i] = o2
                if done:
                    obs[i] = None
                    p.end_episode(float(returns[i]), bool(successes[i]))
                    returns[i], successes[i] = 0.0, False
                if evaluate:
                    p.metric_sums = {k: float(v[i]) for k, v in sums.items()}
                    run._check_finite(p.metric_sums,
                                      f"online step {step} (seed {run.config.seed})")
                    run._evaluate("online", start)
            if evaluate:
                acc = {k: jnp.zeros((n,), jnp.float32) for k in acc}
        self._scatter(states, buffers)
        for i, run in enumerate(runs):
            run.progress.metric_sums = {k: float(v[i]) for k, v in jax.device_get(acc).items()}


def train_seeds(config: TrainConfig, seeds: list[int],
                outs: list[str | Path | None] | None = None) -> list[dict[str, Any]]:
    """Train `config` at each seed as one vmapped program; one run directory per seed."""
    return VmappedRuns(config, seeds, outs).run()

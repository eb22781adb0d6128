"""The one offline-to-online loop (SPEC §1), shared by every method.

Offline: `scan_chunk` gradient updates fused in one jitted `lax.scan` call, evaluation every
`eval_every` updates. Online: act, step the (possibly shifted) environment, store the
transition and run `utd` updates in ONE jitted call, evaluate every `eval_every` steps.

Reproducibility: every random key is derived by `fold_in` from the seed and the step index,
and online episode k is reset with a seed derived from (seed, k). Checkpoints are taken at
chunk boundaries (offline) and at episode boundaries (online), so a resumed run replays
exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from dualrl.algos import get_algo, make_agent
from dualrl.config import LoopConfig, TrainConfig, config_from_dict
from dualrl.data.balanced_replay import BalancedReplay
from dualrl.data.buffer import (
    Batch,
    BatchMix,
    BufferState,
    ReplayBuffer,
    Transition,
    add_transition,
)
from dualrl.data.dataset import Dataset
from dualrl.data.io import dataset_location, load_dataset
from dualrl.data.normalizer import Normalizer
from dualrl.envs.registry import find_dataset_file, get_task, scored_by_data
from dualrl.o2o.agent import ActContext, Agent, step_noise
from dualrl.o2o.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dualrl.o2o.evaluation import Evaluator
from dualrl.o2o.loggers import Logger, check_available, make_loggers
from dualrl.o2o.rundir import RunDir, RunDirError, RunExistsError, new_run_id

# Independent key streams, one per purpose (fold_in constants).
_INIT, _OFFLINE, _ONLINE_ACT, _ONLINE_UPDATE, _HOOK, _PRETRAIN, _EPSILON, _REPLAY = range(8)
_EVAL_SEED_OFFSET = 1_000_003
_EPISODE_SEED_OFFSET = 7_919


class DivergenceError(RuntimeError):
    """A training loss became non-finite; the last good checkpoint is kept."""


class DataChangedError(RunDirError):
    """--resume found other offline data than the run started with."""


__all__ = ["DataChangedError", "DivergenceError", "O2ORun", "RunExistsError", "resume",
           "train"]


@dataclasses.dataclass
class Progress:
    """Where a run is; saved in every checkpoint."""

    phase: str = "offline"
    pretrained: bool = False  # the agent's offline pre-training stages are done
    offline_step: int = 0
    online_step: int = 0
    online_episode: int = 0
    eval_index: int = 0
    wall_seconds: float = 0.0
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    metric_sums: dict[str, float] = dataclasses.field(default_factory=dict)
    metric_count: int = 0
    # online training episodes finished since the last evaluation (CORL's train returns)
    train_episodes: int = 0
    train_return_sum: float = 0.0
    train_success_sum: float = 0.0

    def end_episode(self, episode_return: float, success: bool) -> None:
        """An online training episode ended."""
        self.online_episode += 1
        self.train_episodes += 1
        self.train_return_sum += episode_return
        self.train_success_sum += float(success)


def prepare_dataset(config: TrainConfig, env: gym.Env) -> Dataset:
    """The offline data: `--dataset PATH` when given, else the task's own generator, else the
    file named after the task's dataset in the data directory ($DUALRL_DATA)."""
    spec = get_task(config.task)
    if config.dataset is not None:
        dataset = load_dataset(config.dataset)
    elif spec.dataset_factory is not None:
        dataset = spec.dataset_factory(spec.resolve(**config.env))
    else:
        dataset = load_dataset(find_dataset_file(spec))
    dataset.check_compatible(*space_dims(env), config.task)
    return dataset


def space_dims(env: gym.Env) -> tuple[int, int]:
    """(observation size, action size) of a task environment, flattened."""
    return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))


def reward_transform(loop: LoopConfig, dataset: Dataset) -> tuple[float, float]:
    """(scale, bias) applied to every reward the agent learns from, D_off and D_on alike."""
    scale, bias = loop.reward_scale, loop.reward_bias
    if loop.reward_normalization == "returns":
        rewards = dataset.rewards.astype(np.float64) * scale + bias
        returns = np.array([rewards[s].sum() for s in dataset.episode_slices()])
        spread = float(returns.max() - returns.min()) if len(returns) else 0.0
        if spread <= 0:
            raise ValueError(f"{dataset.source or 'dataset'}: reward_normalization 'returns' "
                             "needs episodes with different returns")
        scale, bias = scale * 1000.0 / spread, bias * 1000.0 / spread
    return scale, bias


class O2ORun:
    """Builds everything a run needs from a TrainConfig and drives the agent through it."""

    def __init__(self, config: TrainConfig, out: str | Path | RunDir | None = None):
        if config.dataset is not None:  # recorded absolute: --resume works from anywhere
            config = dataclasses.replace(config, dataset=dataset_location(config.dataset))
        self.config = config
        self.loop = config.loop
        self.spec = get_task(config.task)
        params = self.spec.resolve(**config.env)
        self.env_offline = self.spec.env_factory(params, "offline")
        self.env_online = self.spec.env_factory(params, "online")
        self.dataset = prepare_dataset(config, self.env_offline)
        self.spec = scored_by_data(self.spec, self.dataset, config.dataset is None)
        self.normalizer = (
            Normalizer.fit(self.dataset.observations)
            if self.loop.normalize_obs
            else Normalizer.identity(self.dataset.obs_dim)
        )
        scale, bias = reward_transform(self.loop, self.dataset)
        self.agent: Agent = make_agent(config.algo, config.agent)
        self.buffer = ReplayBuffer(
            self.dataset,
            online_capacity=self.loop.online_steps,
            normalizer=self.normalizer,
            reward_scale=scale,
            reward_bias=bias,
            monte_carlo=self.agent.monte_carlo_returns(),
            balanced=self.loop.balanced,
        )
        self.key = jax.random.PRNGKey(config.seed)
        self.agent_state = self.agent.init(
            jax.random.fold_in(self.key, _INIT), self.dataset.obs_dim, self.dataset.act_dim
        )
        self.buffer_state: BufferState = self.buffer.init_state(
            jax.random.fold_in(self.key, _REPLAY))
        self.progress = Progress()
        self.run_dir = out if isinstance(out, RunDir) or out is None else RunDir(out)
        self.run_id = new_run_id()
        self._last_good: Path | None = None  # the newest checkpoint written or verified here
        space = self.env_online.action_space
        self.act_low, self.act_high = np.asarray(space.low), np.asarray(space.high)
        self.one_hot_actions = bool(getattr(self.env_online.unwrapped, "one_hot_actions", False))
        if self.run_dir is not None and hasattr(self.agent, "stage_dir"):
            self.agent.stage_dir = self.run_dir.path / "stages"
        self._act = jax.jit(self.agent.act, static_argnames="explore")
        self._explore = jax.jit(partial(_explore_with_floor, self.agent,
                                        self.loop.explore_epsilon, self.act_low, self.act_high))
        self._state_value = jax.jit(self.agent.state_value)
        self._q_value = jax.jit(self.agent.q_value)
        self._train_chunk = _make_train_chunk(self.agent, self.loop.batch_size,
                                              offline_mix(self.loop.batch_mix))
        self._online_step = _make_online_step(self.agent, self.loop.batch_size,
                                              self.loop.batch_mix, self.loop.utd,
                                              self.one_hot_actions, self.buffer.balanced)
        self._evaluators: dict[str, Evaluator] = {}
        self._loggers: list[Logger] = []  # the optional ones (LoopConfig.loggers), while run()

    # ----------------------------------------------------------- run directory
    @classmethod
    def resume(cls, out: str | Path, dataset: str | None = None,
               accept_data_change: bool = False) -> O2ORun:
        """Lock DIR, rebuild the run from its config.json and latest checkpoint. `dataset`
        points the run at its data's new location (accepted when the data is the same);
        `accept_data_change` continues on data that differs from the recorded fingerprint.
        The returned run holds DIR's lock until `run()` ends."""
        run_dir = RunDir(out)
        raw = run_dir.open_existing()
        try:
            config_file = run_dir.path / "config.json"
            try:
                agent_cls, _ = get_algo(raw["algo"])
                config = config_from_dict(raw, agent_cls)
            except (KeyError, TypeError, ValueError) as e:
                raise RunDirError(f"{config_file}: not a valid run configuration "
                                  f"({type(e).__name__}: {e})") from None
            if dataset is not None:
                config = dataclasses.replace(config, dataset=dataset)
            run = cls(config, run_dir)
            run._check_data(raw, accept_data_change)
            run._restore()
        except BaseException:
            run_dir.close()
            raise
        return run

    def _data_record(self) -> dict[str, Any]:
        """Where the offline data came from and what it is (absolute path, size, digest)."""
        source = self.dataset.source
        path = os.path.abspath(source) if source and os.path.exists(source) else None
        size = None
        if path is not None:
            p = Path(path)
            files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
            size = sum(f.stat().st_size for f in files)
        return {"path": path, "bytes": size, "transitions": len(self.dataset),
                "blake2b": self.dataset.fingerprint()}

    def _run_record(self) -> dict[str, Any]:
        return {"id": self.run_id, "dataset": self._data_record(), "versions": package_versions(),
                "platform": platform.platform(), "jax_backend": jax.default_backend()}

    def _check_data(self, raw: dict[str, Any], accept: bool) -> None:
        """--resume continues only on the data the run started with (or says what changed)."""
        assert self.run_dir is not None
        config_file = self.run_dir.path / "config.json"
        record = raw.get("run") if isinstance(raw.get("run"), dict) else {}
        self.run_id = str(record.get("id") or self.run_id)
        saved = record.get("dataset") if isinstance(record.get("dataset"), dict) else None
        now = self._data_record()
        if saved is None:
            changes = ["no fingerprint recorded (a run of an older dualrl)"]
        else:
            changes = [f"{key} {saved.get(key)} -> {now[key]}"
                       for key in ("transitions", "bytes") if saved.get(key) != now[key]]
            if saved.get("blake2b") != now["blake2b"]:
                changes.append("content differs")
            if len(changes) == 1 and changes[0].startswith("bytes"):
                changes = []  # the same arrays, stored differently (e.g. re-compressed)
        if changes and saved is not None and saved.get("path") != now["path"]:
            changes.insert(0, f"path {saved.get('path')} -> {now['path']}")
        where = now["path"] or f"the data generated by task {self.config.task}"
        if changes and not accept:
            raise DataChangedError(
                f"{where}: the offline data is not what {config_file} recorded "
                f"({'; '.join(changes)}); pass --accept-data-change to continue on it")
        if changes or (saved or {}).get("path") != now["path"] \
                or raw.get("dataset") != self.config.dataset:
            raw = {**raw, **self.config.to_dict(),
                   "run": {**record, "id": self.run_id, "dataset": now}}
            if changes:
                raw["run"]["accepted_data_changes"] = [
                    *record.get("accepted_data_changes", []), "; ".join(changes)]
            self.run_dir.write_json("config.json", raw)

    def _restore(self) -> None:
        assert self.run_dir is not None
        path = latest_checkpoint(self.run_dir.checkpoints)
        if path is None:  # killed before the first checkpoint: start over
            self.run_dir.rewrite_metrics([])
            return
        state, arrays, meta = load_checkpoint(path, self.agent_state)
        try:
            progress = Progress(**meta["progress"])
        except (KeyError, TypeError) as e:
            raise RunDirError(f"{path / 'meta.json'}: no usable progress record ({e})") from None
        self.agent_state = jax.device_put(state)
        self.buffer_state = self.buffer.restore_online(self.buffer_state, arrays)
        self.progress = progress
        self._last_good = path
        self.run_dir.rewrite_metrics(self.progress.records)

    def _checkpoint(self, tag: str) -> None:
        if self.run_dir is None:
            return
        self._check_finite(self.progress.metric_sums, tag)
        self._last_good = save_checkpoint(
            self.run_dir.checkpoints,
            tag,
            self.agent_state,
            self.buffer.online_arrays(self.buffer_state),
            {"progress": dataclasses.asdict(self.progress)},
            keep=self.loop.keep_checkpoints,
            owner=self.run_id,
        )

    def _check_finite(self, sums: dict[str, float], where: str) -> None:
        bad = [k for k, v in sums.items() if not np.isfinite(v)]
        if bad:
            raise DivergenceError(
                f"training diverged at {where}: non-finite {', '.join(bad)}; "
                f"last good checkpoint: {self._last_good or 'none'}"
            )

    # ------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """Train to the end. With a run directory: create it (new or empty folders only) and
        hold its lock throughout, or continue the one `resume` locked."""
        if self.run_dir is None:
            return self._run()
        check_available(self.loop.loggers)
        if not self.run_dir.lock.held:
            self.run_dir.create({**self.config.to_dict(), "run": self._run_record()})
        try:
            resume_step = self.progress.records[-1]["total_step"] + 1 \
                if self.progress.records else None
            self._loggers = make_loggers(self.loop.loggers, self.run_dir.path, self.run_id,
                                         self.config.to_dict(), resume_step)
            return self._run()
        finally:
            for logger in self._loggers:
                logger.close()
            self._loggers = []
            self.run_dir.close()

    def _run(self) -> dict[str, Any]:
        loop, p = self.loop, self.progress
        total = loop.offline_steps + loop.online_steps
        start = time.perf_counter() - p.wall_seconds
        bar = tqdm(total=total, initial=p.offline_step + p.online_step,
                   disable=not loop.progress, desc=f"{self.config.algo} {self.config.task}",
                   dynamic_ncols=True, mininterval=1.0)
        if p.phase == "offline":
            if not p.pretrained:  # e.g. DUAL's planner + distillation stages
                self.agent_state = self.agent.on_phase_start(
                    self.agent_state, "offline", self.buffer, self.buffer_state,
                    jax.random.fold_in(self.key, _PRETRAIN),
                )
                p.pretrained = True
                p.wall_seconds = time.perf_counter() - start
                self._checkpoint("pretrained")
            self._offline_phase(bar, start)
            p.phase = "online"
            self.agent_state = self.agent.on_phase_start(
                self.agent_state, "online", self.buffer, self.buffer_state,
                jax.random.fold_in(self.key, _HOOK),
            )
            p.wall_seconds = time.perf_counter() - start
            self._checkpoint("offline-final")
        self._online_phase(bar, start)
        bar.close()
        return self._finish(start)

    def _finish(self, start: float) -> dict[str, Any]:
        """The final checkpoint and summary.json."""
        p = self.progress
        p.wall_seconds = time.perf_counter() - start
        p.phase = "done"
        self._checkpoint("final")
        summary = self.summary()
        if self.run_dir is not None:
            self.run_dir.write_json("summary.json", summary)
        return summary

    def _offline_phase(self, bar: tqdm, start: float) -> None:
        loop, p = self.loop, self.progress
        key = jax.random.fold_in(self.key, _OFFLINE)
        if p.offline_step == 0 and not p.records:
            self._evaluate("offline", start)
        while p.offline_step < loop.offline_steps:
            step = p.offline_step
            stop = min(
                loop.offline_steps,
                _next_multiple(step, loop.eval_every),
                _next_multiple(step, loop.checkpoint_every),
                step + loop.scan_chunk,
            )
            n = stop - step
            self.agent_state, sums = self._train_chunk(
                self.agent_state, self.buffer_state, jnp.asarray(step), key, n
            )
            sums = {k: float(v) for k, v in jax.device_get(sums).items()}
            self._check_finite(sums, f"offline step {stop}")
            for k, v in sums.items():
                p.metric_sums[k] = p.metric_sums.get(k, 0.0) + v
            p.metric_count += n
            p.offline_step = stop
            bar.update(n)
            if stop % loop.eval_every == 0 or stop == loop.offline_steps:
                self._evaluate("offline", start, also_data_env=stop == loop.offline_steps)
            if stop % loop.checkpoint_every == 0 and stop < loop.offline_steps:
                p.wall_seconds = time.perf_counter() - start
                self._checkpoint(f"offline-{stop}")

    def _online_phase(self, bar: tqdm, start: float) -> None:
        loop, p = self.loop, self.progress
        if loop.online_steps == 0:
            return
        env = self.env_online
        act_key = jax.random.fold_in(self.key, _ONLINE_ACT)
        update_key = jax.random.fold_in(self.key, _ONLINE_UPDATE)
        hook_key = jax.random.fold_in(self.key, _HOOK)
        names = _metric_names(self.agent, self.agent_state, self.buffer_state,
                              self.one_hot_actions, self.buffer.balanced)
        acc = {k: jnp.asarray(p.metric_sums.get(k, 0.0), jnp.float32) for k in names}
        predicted = jnp.zeros((1, self.dataset.obs_dim), jnp.float32)
        noise = step_noise(act_key, p.online_step, (1, self.dataset.act_dim))
        p.metric_sums = {}
        episode_id0 = self.buffer.n_offline_episodes
        obs = None
        episode_return, episode_success = 0.0, False
        next_checkpoint = _next_multiple(p.online_step, loop.checkpoint_every)
        while p.online_step < loop.online_steps:
            t = p.online_step
            if obs is None:  # episode start: the only place a checkpoint may be taken
                if t >= next_checkpoint and t > 0:
                    p.metric_sums = {k: float(v) for k, v in jax.device_get(acc).items()}
                    p.wall_seconds = time.perf_counter() - start
                    self._checkpoint(f"online-{t}")
                    p.metric_sums = {}
                    next_checkpoint = _next_multiple(t, loop.checkpoint_every)
                obs, _ = env.reset(seed=self._episode_seed(p.online_episode))
                first = True
            norm_obs = self.normalizer(np.asarray(obs, np.float32))[None]
            context = ActContext(predicted, np.array([first]), noise)
            action, info = self._explore(self.agent.acting_view(self.agent_state), norm_obs,
                                         act_key, np.int32(t), context)
            stored_action = self.executed_action(np.asarray(action)[0])
            next_obs, reward, terminated, truncated, step_info = env.step(stored_action)
            episode_return += float(reward)
            episode_success |= bool(step_info.get("is_success", False))
            transition = self.buffer.make_transition(
                obs, stored_action, reward, next_obs, terminated, episode_id0 + p.online_episode
            )
            self.agent_state, self.buffer_state, acc, predicted, noise = self._online_step(
                self.agent_state, self.buffer_state, transition, np.int32(t), update_key, acc,
                info, norm_obs, stored_action[None], act_key,
            )
            first = False
            p.online_step = t + 1
            p.metric_count += loop.utd
            bar.update(1)
            self.agent_state = self.agent.on_online_step(
                self.agent_state, p.online_step, self.buffer, self.buffer_state, hook_key
            )
            obs = next_obs
            if terminated or truncated:
                obs = None
                p.end_episode(episode_return, episode_success)
                episode_return, episode_success = 0.0, False
            if p.online_step % loop.eval_every == 0 or p.online_step == loop.online_steps:
                p.metric_sums = {k: float(v) for k, v in jax.device_get(acc).items()}
                self._check_finite(p.metric_sums, f"online step {p.online_step}")
                self._evaluate("online", start)
                acc = {k: jnp.zeros((), jnp.float32) for k in acc}
        p.metric_sums = {k: float(v) for k, v in jax.device_get(acc).items()}

    def executed_action(self, action: np.ndarray) -> np.ndarray:
        """The action stepped and stored for a sampled one: one-hot moves are the argmax of
        the UNCLIPPED sample (clipping first would tie every component above the bound, and
        the lowest index would win); box actions are clipped to the space."""
        if self.one_hot_actions:
            move = np.zeros_like(action)
            move[int(np.argmax(action))] = 1.0
            return move
        return np.clip(action, self.act_low, self.act_high)

    def _episode_seed(self, episode: int) -> int:
        return (self.config.seed * _EPISODE_SEED_OFFSET + episode) % (2**31 - 1)

    # ------------------------------------------------------------ evaluation
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic policy on RAW observations (posterior mean for Bayesian agents)."""
        norm = jnp.asarray(self.normalizer(np.asarray(obs, np.float32)))
        view = self.agent.acting_view(self.agent_state)
        return np.asarray(self._act(view, norm, self.key, explore=False))

    def _evaluator(self, env_phase: str) -> Evaluator:
        if env_phase not in self._evaluators:
            params = self.spec.resolve(**self.config.env)
            self._evaluators[env_phase] = Evaluator(
                lambda: self.spec.env_factory(params, env_phase), self.loop.eval_episodes,
                self.spec.normalized_score,
            )
        return self._evaluators[env_phase]

    def _evaluate(self, phase: str, start: float, also_data_env: bool = False) -> dict[str, Any]:
        """Score the deterministic policy in the ONLINE environment (as the paper does, so
        offline-phase scores show what the pre-trained policy is worth after the shift);
        at the end of the offline phase also in the data's own environment."""
        p = self.progress
        seed = (self.config.seed * _EVAL_SEED_OFFSET + p.eval_index * 10_007) % (2**31 - 1)
        result = self._evaluator("online").run(self.policy, seed)
        if also_data_env:
            data_env = self._evaluator("offline").run(self.policy, seed)
            result["data_env_score"] = data_env["score"]
        diag = {}
        if p.metric_count:
            diag = {k: v / p.metric_count for k, v in p.metric_sums.items()}
        record = {
            "phase": phase,
            "step": p.offline_step if phase == "offline" else p.online_step,
            "total_step": p.offline_step + p.online_step,
            **result,
            **diag,
            **self.agent.diagnostics(self.agent_state),
            **self._learning_diagnostics(phase),
            "wall_seconds": round(time.perf_counter() - start, 3),
        }
        p.records.append(record)
        p.eval_index += 1
        p.metric_sums, p.metric_count = {}, 0
        p.train_episodes, p.train_return_sum, p.train_success_sum = 0, 0.0, 0.0
        if self.run_dir is not None:
            self.run_dir.append_metrics(record)
        for logger in self._loggers:
            logger.log(record)
        return record

    def _learning_diagnostics(self, phase: str) -> dict[str, Any]:
        """What shows why a run does (not) learn: the critic's V at the evaluation episodes'
        initial states, the task's exact numbers for the policy (Frozen-Lake: DP success of
        the actor, of the greedy-Q policy and of the optimum), the online share of the
        batches, and the training episodes' returns and success since the last evaluation."""
        p, out = self.progress, {}
        init_obs = self._evaluators["online"].initial_observations
        v0 = self._state_value(self.agent_state, jnp.asarray(self.normalizer(init_obs)))
        if v0 is not None:
            out["v_init"] = float(np.mean(np.asarray(v0)))
        if self.spec.diagnose is not None:
            def q_fn(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
                norm = jnp.asarray(self.normalizer(np.asarray(obs, np.float32)))
                return np.asarray(self._q_value(self.agent_state, norm, jnp.asarray(act)))

            has_q = type(self.agent).q_value is not Agent.q_value  # the base returns None
            out.update(self.spec.diagnose(self.spec.resolve(**self.config.env),
                                          self.policy, q_fn if has_q else None))
        n_online = int(self.buffer_state.size) - self.buffer.n_offline
        if phase == "online":
            ratio = self.loop.online_ratio
            warm = self.loop.online_warmup
            uniform_share = n_online / int(self.buffer_state.size)  # of a uniform draw
            if self.buffer.balanced is not None:  # of a draw ∝ priorities
                priorities = np.asarray(self.buffer_state.priorities, np.float64)
                uniform_share = float(priorities[self.buffer.n_offline:].sum()
                                      / priorities.sum())
            out["online_share"] = (
                uniform_share if ratio is None
                else ratio * (min(1.0, n_online / warm) if warm > 0 else float(n_online > 0))
                + (1.0 - ratio) * (uniform_share if self.loop.rest_from_all else 0.0))
            if p.train_episodes:
                out["train_return"] = p.train_return_sum / p.train_episodes
                out["train_success"] = 100.0 * p.train_success_sum / p.train_episodes
                out["train_episodes"] = p.train_episodes
        return out

    def summary(self) -> dict[str, Any]:
        return summarize_records(self.progress.records) | {
            "task": self.config.task,
            "algo": self.config.algo,
            "seed": self.config.seed,
            "preset": self.config.preset,
            "offline_steps": self.loop.offline_steps,
            "online_steps": self.loop.online_steps,
            "wall_seconds": round(self.progress.wall_seconds, 2),
        }


def summarize_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """offline_score: last offline evaluation (online env); offline_data_env_score: the same
    policy in the data's environment; online_mean_score: mean over the online
    evaluations (the paper's table metric); final_score: last evaluation; best_score."""
    offline = [r["score"] for r in records if r["phase"] == "offline"]
    online = [r["score"] for r in records if r["phase"] == "online"]
    scores = offline + online
    return {
        "offline_score": offline[-1] if offline else None,
        "offline_data_env_score": next(
            (r["data_env_score"] for r in reversed(records) if "data_env_score" in r), None
        ),
        "online_mean_score": float(np.mean(online)) if online else None,
        "final_score": scores[-1] if scores else None,
        "best_score": max(scores) if scores else None,
        "num_evaluations": len(scores),
    }


# what a run's numbers depend on besides its config: float-level differences between installs
# (e.g. another numpy or XLA build) are amplified by training, so one seed's scores are
# reproduced bit for bit only on the same versions (docs/results/demo.md)
RECORDED_PACKAGES = ("dualrl", "jax", "jaxlib", "flax", "optax", "numpy", "gymnasium",
                     "gymnasium-robotics", "mujoco")


def package_versions() -> dict[str, str | None]:
    """The installed versions of the packages a run's numbers depend on (None: absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


# a batch drawn uniformly over B (offline training, benchmarks)
UNIFORM = BatchMix()


def offline_mix(mix: BatchMix) -> BatchMix:
    """The offline phase's sampling: balanced replay is an online protocol (offline, every
    priority is 1 and there is nothing online to compare with)."""
    return mix._replace(prioritized=False)


def draw_batch(agent: Agent, buffer_state, key: jax.Array, batch_size: int,
               mix: BatchMix | None = None) -> Batch:
    """A training batch under `mix` (uniform when None), with the segments starting at its
    rows when the agent asks for them (`Agent.segment_horizon`)."""
    batch = ReplayBuffer.sample(buffer_state, key, batch_size, *(mix or UNIFORM))
    horizon = agent.segment_horizon()
    if horizon > 0:
        batch = batch._replace(segments=ReplayBuffer.segments_at(buffer_state, batch.indices,
                                                                 horizon))
    return batch


def _update_on_batch(agent: Agent, batch_size: int, mix: BatchMix, replay: BalancedReplay | None,
                     state, buffer_state, key: jax.Array):
    """One update: draw a batch, update the agent, and with balanced replay take the ratio
    estimator's step and re-prioritise the batch's rows (returns the new buffer state)."""
    k_batch, k_update = jax.random.split(key)
    batch = draw_batch(agent, buffer_state, k_batch, batch_size, mix)
    state, metrics = agent.update(state, batch, k_update)
    if replay is not None:
        buffer_state, replay_metrics = replay.step(buffer_state, batch.indices,
                                                   jax.random.fold_in(k_batch, _REPLAY))
        metrics = {**metrics, **replay_metrics}
    return state, buffer_state, metrics


def train_chunk_fn(agent: Agent, batch_size: int, mix: BatchMix = UNIFORM):
    """n updates as one `lax.scan` (not jitted: `_make_train_chunk` jits it, the vmapped
    seeds vmap it first); the key of update t is fold_in(key, t)."""

    def train_chunk(state, buffer_state, start, key, n):
        def body(state, t):
            state, _, metrics = _update_on_batch(agent, batch_size, mix, None, state,
                                                 buffer_state, jax.random.fold_in(key, t))
            return state, metrics

        state, metrics = jax.lax.scan(body, state, start + jnp.arange(n))
        return state, jax.tree.map(lambda m: m.sum(0), metrics)

    return train_chunk


def _make_train_chunk(agent: Agent, batch_size: int, mix: BatchMix = UNIFORM):
    """n updates in one compiled call."""
    return jax.jit(train_chunk_fn(agent, batch_size, mix), static_argnums=4, donate_argnums=0)


def online_step_fn(agent: Agent, batch_size: int, mix: BatchMix, utd: int,
                   one_hot: bool = False, replay: BalancedReplay | None = None):
    """Store one transition, run `utd` updates (the buffer state is carried through them:
    balanced replay re-prioritises rows as it goes) and prepare the next action's context
    (the agent's next-observation prediction, the next step's noise); not jitted (see
    `_make_online_step`)."""

    def online_step(state, buffer_state, transition: Transition, t, key, acc, act_info,
                    norm_obs, action, act_key):
        act_info = {**act_info,
                    **_exploration_effect(agent, one_hot, state, norm_obs, action, act_key)}
        buffer_state = add_transition(buffer_state, transition)
        step_key = jax.random.fold_in(key, t)

        def body(carry, i):
            state, buffer_state, metrics = _update_on_batch(
                agent, batch_size, mix, replay, *carry, jax.random.fold_in(step_key, i))
            return (state, buffer_state), metrics

        (state, buffer_state), metrics = jax.lax.scan(body, (state, buffer_state),
                                                      jnp.arange(utd))
        # acting diagnostics count once per step; × utd so one divisor serves both
        sums = {**{k: v.sum() for k, v in metrics.items()},
                **{k: v * utd for k, v in act_info.items()}}
        acc = {k: acc[k] + sums[k] for k in acc}
        predicted = agent.predict_next_obs(state, norm_obs, action)
        if predicted is None:
            predicted = jnp.zeros_like(norm_obs)
        return state, buffer_state, acc, predicted, step_noise(act_key, t + 1, action.shape)

    return online_step


def _make_online_step(agent: Agent, batch_size: int, mix: BatchMix, utd: int,
                      one_hot: bool = False, replay: BalancedReplay | None = None):
    """`online_step_fn` in one compiled call."""
    return jax.jit(online_step_fn(agent, batch_size, mix, utd, one_hot, replay),
                   donate_argnums=(0, 1, 5))


def _explore_with_floor(agent: Agent, epsilon: float, low: np.ndarray, high: np.ndarray,
                        state, obs, key, t, context):
    """The agent's exploratory action at online step t; with probability `epsilon` (the
    loop's `explore_epsilon`) it is replaced by a uniform draw from the action box (for
    one-hot moves the argmax of that draw: a uniform random move)."""
    key = jax.random.fold_in(key, t)
    action, info = agent.explore(state, obs, key, context)
    if epsilon <= 0.0:
        return action, info
    k_use, k_uniform = jax.random.split(jax.random.fold_in(key, _EPSILON))
    uniform = jax.random.uniform(k_uniform, action.shape, action.dtype, low, high)
    use = jax.random.uniform(k_use, action.shape[:-1] + (1,)) < epsilon
    return jnp.where(use, uniform, action), info


def _exploration_effect(agent: Agent, one_hot: bool, state, norm_obs, action, key):
    """How far exploration moved the executed action from the deterministic policy (of the
    same, pre-update state): the changed-move rate (one-hot actions) or the mean |Δa|.
    Computed in the store-and-update call, off the action's critical path."""
    greedy = agent.act(agent.acting_view(state), norm_obs, key, False)
    if one_hot:
        changed = jnp.argmax(action, axis=-1) != jnp.argmax(greedy, axis=-1)
        return {"explore_changed": changed.mean().astype(jnp.float32)}
    return {"explore_delta": jnp.abs(action - greedy).mean()}


def _metric_names(agent: Agent, state, buffer_state, one_hot: bool,
                  replay: BalancedReplay | None = None) -> list[str]:
    """The names an update (with balanced replay's estimator step) and an exploring action
    report (abstract evaluation, no compute)."""
    key = jax.random.PRNGKey(0)
    batch = jax.eval_shape(lambda b: draw_batch(agent, b, key, 2), buffer_state)
    _, metrics = jax.eval_shape(agent.update, state, batch, key)
    if replay is not None:
        _, replay_metrics = jax.eval_shape(replay.step, buffer_state, batch.indices, key)
        metrics = {**metrics, **replay_metrics}
    obs = jax.ShapeDtypeStruct((1, batch.observations.shape[1]), jnp.float32)
    act = jax.ShapeDtypeStruct((1, batch.actions.shape[1]), jnp.float32)
    ctx = ActContext(obs, jax.ShapeDtypeStruct((1,), jnp.bool_), act)
    _, info = jax.eval_shape(agent.explore, state, obs, key, ctx)
    effect = jax.eval_shape(partial(_exploration_effect, agent, one_hot), state, obs, act, key)
    return sorted({*metrics, *info, *effect})


def train(config: TrainConfig, out: str | Path | None = None) -> dict[str, Any]:
    """Run a fresh training run into a new or empty folder (anything else is refused before
    any data is loaded, and left untouched)."""
    if out is not None:
        RunDir(out).check_new()
    return O2ORun(config, out).run()


def resume(out: str | Path, dataset: str | None = None,
           accept_data_change: bool = False) -> dict[str, Any]:
    return O2ORun.resume(out, dataset, accept_data_change).run()

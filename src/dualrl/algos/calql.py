"""Cal-QL (Nakamoto et al. 2023; SPEC §7): SAC with a calibrated CQL critic.

One update, top to bottom: temperature α -> Q (SAC backup + α_cql · calibrated CQL gap, the
gap's policy samples bounded below by the data's Monte-Carlo return-to-go) -> Lagrange α'
(optional) -> actor (E[α log π(ã|s) − min Q(s, ã)]) -> Polyak target; the critic step is
`critics.calql.CalQLObjective.update`, the actor step and acting `algos.sac_agent`. The same
update runs offline and online; at the switch α_cql takes its online value, and the
references' 50/50 mix of offline and online rows is the method's loop default
(`online_ratio` 0.5, the loop's online warm-up ramp still applies). Defaults are CORL's
`finetune/cal_ql.py` for locomotion; the presets set AntMaze's and Adroit's (config.py).

`--calql.laplace` ("Cal-QL w LA"): the shared last-layer Laplace on the tanh-Gaussian's
mean head (see algos/sac_agent.py for the loss it is fitted on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dualrl.actors.tanh_gaussian import sample_tanh_gaussian
from dualrl.algos.sac_agent import SACAgent, SACFamilyConfig
from dualrl.critics.calql import CalQLObjective
from dualrl.critics.iql import value_range
from dualrl.critics.networks import QEnsemble
from dualrl.data.buffer import MonteCarloReturns


@dataclass
class CalQLConfig(SACFamilyConfig):
    flag: ClassVar[str] = "calql"
    # Q widths per family are presets (CORL: 2 × 256 locomotion, 3 Adroit, 5 AntMaze)
    actor_lr: float = 3e-5  # also the temperature's lr (CORL); 1e-4 AntMaze / Adroit
    cql_alpha: float = 10.0  # 5 AntMaze, 1 Adroit
    cql_alpha_online: float = 10.0
    n_actions: int = 10
    cql_temperature: float = 1.0
    lagrange: bool = False  # AntMaze: α' tuned to hold the gap at target_action_gap
    target_action_gap: float = 0.8
    max_target_backup: bool = False
    clip_diff_min: float | None = None  # -200 AntMaze / Adroit
    clip_diff_max: float | None = None
    calibrated: bool = True  # False: plain CQL
    sparse_reward: bool = False  # never-successful episodes get r_min / (1 − γ)
    # on top of the loop's reward transform (shared by all methods on a task): CORL's
    # AntMaze r·10 − 5 is scale 10, bias 5 on the loop's r − 1
    reward_scale: float = 1.0
    reward_bias: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_actions < 1:
            raise ValueError(f"n_actions (--calql.n-actions) must be >= 1, got {self.n_actions}")
        if self.cql_temperature <= 0:
            raise ValueError("cql_temperature (--calql.cql-temperature) must be > 0, got "
                             f"{self.cql_temperature}")


def calql_objective(cfg: CalQLConfig, sample) -> CalQLObjective:
    """The Cal-QL critic of a config (shared with DUAL's `--dual.critic calql`)."""
    inf = float("inf")
    return CalQLObjective(
        critic_net=QEnsemble(num_qs=2, hidden=cfg.hidden, layer_norm=cfg.layer_norm,
                             orthogonal=cfg.orthogonal),
        sample=sample, value_range=value_range(cfg.value_min, cfg.value_max, "--calql"),
        critic_lr=cfg.critic_lr, alpha_lr=cfg.actor_lr, gamma=cfg.gamma,
        tau=cfg.tau, cql_alpha=cfg.cql_alpha, cql_alpha_online=cfg.cql_alpha_online,
        n_actions=cfg.n_actions, cql_temperature=cfg.cql_temperature, lagrange=cfg.lagrange,
        target_action_gap=cfg.target_action_gap, max_target_backup=cfg.max_target_backup,
        clip_diff_min=-inf if cfg.clip_diff_min is None else cfg.clip_diff_min,
        clip_diff_max=inf if cfg.clip_diff_max is None else cfg.clip_diff_max,
        calibrated=cfg.calibrated, target_entropy=cfg.target_entropy,
        reward_scale=cfg.reward_scale, reward_bias=cfg.reward_bias, max_weight=cfg.max_weight)


def calql_monte_carlo_returns(cfg: CalQLConfig) -> MonteCarloReturns:
    """The returns-to-go the calibration bound needs, in the critic's reward units."""
    return MonteCarloReturns(cfg.gamma, cfg.sparse_reward, cfg.reward_scale, cfg.reward_bias)


class CalQL(SACAgent):
    name = "calql"
    loop_defaults: ClassVar[dict] = {"online_ratio": 0.5}  # the references' mixing_ratio

    def __init__(self, config: CalQLConfig):
        super().__init__(config, calql_objective(config, sample_tanh_gaussian))

    def monte_carlo_returns(self) -> MonteCarloReturns:
        return calql_monte_carlo_returns(self.config)

"""SO2 (Zhang et al. 2024; SPEC §7): SAC-N with the perturbed value update and frequent Q
updates, fine-tuned on fresh online samples joined with samples of B.

One update, top to bottom: temperature α -> Q ensemble (10 members, one vmapped network) on
r + γ(min_h Q̄_h(s', ã') − α log π(a'|s')), ã' the policy's next action plus clipped Gaussian
noise -> Polyak target (critics/so2.py) -> actor on E[α log π(ã|s) − min_h Q_h(s, ã)], every
step offline and every `actor_every` (10) critic steps online (algos/sac_agent.py).

The method's loop defaults (under the user's flags, over the task preset's): 10 updates per
online step (`utd`), and each batch 10 % fresh online rows with the rest drawn from all of
B = D_off ∪ D_on (SO2's `concat_online_ratio` 0.1; the reference enlarges the batch to
2,560 so that 256 rows are online, here the loop's `batch_size` stays the task's — pass
`--batch-size 2560` for the reference's).

The paper's "SO2+OFF2ON" adds OFF2ON's balanced replay, a protocol option of the loop for
every method (`--balanced-replay true`, data/balanced_replay.py). Not built: EDAC's
ensemble-diversity term of the reference's offline pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dualrl.actors.tanh_gaussian import sample_tanh_gaussian
from dualrl.algos.sac_agent import SACAgent, SACFamilyConfig
from dualrl.critics.iql import value_range
from dualrl.critics.networks import QEnsemble
from dualrl.critics.so2 import SO2Objective


@dataclass
class SO2Config(SACFamilyConfig):
    flag: ClassVar[str] = "so2"
    actor_hidden: tuple[int, ...] = (256, 256)
    num_qs: int = 10  # ensemble members (vmapped: one network call for all)
    noise_std: float = 0.3  # target action perturbation N(0, σ²) ...
    noise_clip: float = 0.6  # ... clipped to ±c
    actor_every: int = 10  # online: critic steps per actor step (every step offline)
    backup_entropy: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_qs < 1:
            raise ValueError(f"num_qs (--so2.num-qs) must be >= 1, got {self.num_qs}")
        if self.actor_every < 1:
            raise ValueError(f"actor_every (--so2.actor-every) must be >= 1, got "
                             f"{self.actor_every}")
        if self.noise_std < 0 or self.noise_clip < 0:
            raise ValueError("noise_std and noise_clip (--so2.noise-std, --so2.noise-clip) "
                             f"must be >= 0, got {self.noise_std}, {self.noise_clip}")


def so2_objective(cfg: SO2Config, sample) -> SO2Objective:
    """The SO2 critic of a config (shared with DUAL's `--dual.critic so2`)."""
    return SO2Objective(
        critic_net=QEnsemble(num_qs=cfg.num_qs, hidden=cfg.hidden, layer_norm=cfg.layer_norm,
                             orthogonal=cfg.orthogonal),
        sample=sample, value_range=value_range(cfg.value_min, cfg.value_max, "--so2"),
        critic_lr=cfg.critic_lr, alpha_lr=cfg.actor_lr, gamma=cfg.gamma,
        tau=cfg.tau, noise_std=cfg.noise_std, noise_clip=cfg.noise_clip,
        actor_every=cfg.actor_every, backup_entropy=cfg.backup_entropy,
        target_entropy=cfg.target_entropy, max_weight=cfg.max_weight)


# SO2's loop protocol (see the module docstring); DUAL on the SO2 critic takes it too
SO2_LOOP = {"utd": 10, "online_ratio": 0.1, "rest_from_all": True}


class SO2(SACAgent):
    name = "so2"
    loop_defaults: ClassVar[dict] = SO2_LOOP

    def __init__(self, config: SO2Config):
        super().__init__(config, so2_objective(config, sample_tanh_gaussian))

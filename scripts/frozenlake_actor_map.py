"""Where a Frozen-Lake actor goes wrong: its move in every cell at each kept checkpoint.

    dualrl train --task frozenlake-narrow --seed 0 --preset cpu --algo dual \
        --online-steps 1 --eval-every 500 --scan-chunk 500 --checkpoint-every 500 \
        --keep-checkpoints 100 --out runs/narrow_dual0
    python scripts/frozenlake_actor_map.py runs/narrow_dual0 runs/narrow_iql0 \
        --cells 3,7 4,7 --maps offline-5000 offline-6000 --page docs/results/frozenlake_actor_map.md

For each run and checkpoint: the exact (DP) success at the task's online slip of the actor's
greedy move and of the critic's greedy move; on the cells the offline data visits, how often
the actor's move agrees with the critic's, with the data's most frequent move and with the
optimum; and the actor's move and the largest component of its mean μ(s) at the named cells.
`--maps` prints the whole map of moves at those checkpoints.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from dualrl.algos import get_algo
from dualrl.config import config_from_dict
from dualrl.envs.frozenlake import N_ACTIONS, success_probability, value_iteration
from dualrl.envs.frozenlake_tasks import greedy_q_moves
from dualrl.experiments.report import markdown_table, write_generated_section
from dualrl.o2o.checkpoint import load_checkpoint
from dualrl.o2o.loop import O2ORun

ARROWS = np.array(list("<v>^"))  # Frozen-Lake's move order: LEFT, DOWN, RIGHT, UP


class ActorProbe:
    """One run rebuilt from its config.json; `moves(checkpoint)` reads one kept policy."""

    def __init__(self, run_dir: Path):
        raw = json.loads((run_dir / "config.json").read_text())
        config_cls, _ = get_algo(raw["algo"])
        self.run_dir, self.algo = run_dir, raw["algo"]
        self.run = O2ORun(config_from_dict(raw, config_cls), None)
        env = self.run.spec.env_factory(self.run.spec.resolve(**self.run.config.env),
                                        "online").unwrapped
        self.desc = np.array([list(r.decode() if isinstance(r, bytes) else r)
                              for r in env.desc])
        self.dyn = dict(desc=env.desc, slip=env.slip, slippery=env.slippery_mask,
                        horizon=env.time_limit)
        self.obs = np.stack([env.obs_of(s) for s in range(env.n_states)]).astype(np.float32)
        data = self.run.dataset
        counts = np.zeros((env.n_states, N_ACTIONS))
        np.add.at(counts, (data.observations.argmax(-1), data.actions.argmax(-1)), 1)
        self.visited, self.majority = counts.sum(1) > 0, counts.argmax(1)
        self.optimum = value_iteration(**self.dyn)
        self._moves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def moves(self, checkpoint: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(actor's greedy move, critic's greedy move, actor's mean μ) in every cell; each
        checkpoint is read once (the table and the maps share it)."""
        if checkpoint not in self._moves:
            path = self.run_dir / "checkpoints" / checkpoint
            state, _, _ = load_checkpoint(path, self.run.agent_state)
            self.run.agent_state = jax.device_put(state)
            mu = np.asarray(self.run.policy(self.obs))
            greedy = greedy_q_moves(
                lambda obs, act: self.run._q_value(self.run.agent_state, obs, act), self.obs)
            self._moves[checkpoint] = mu.argmax(-1), greedy, mu
        return self._moves[checkpoint]

    def success(self, moves: np.ndarray) -> float:
        return 100.0 * success_probability(moves, **self.dyn)

    def checkpoints(self) -> list[str]:
        found = [p.name for p in (self.run_dir / "checkpoints").iterdir()
                 if p.is_dir() and p.name.startswith(("offline-", "online-"))]
        def order(name: str) -> tuple[bool, float]:  # "offline-final" ends the offline phase
            step = name.split("-")[1]
            return name.startswith("online"), float(step) if step.isdigit() else float("inf")

        return sorted(found, key=order)

    def map_text(self, checkpoint: str) -> str:
        actor, greedy, _ = self.moves(checkpoint)
        n = self.desc.shape[0]
        data = np.where(self.visited, self.majority, -1)
        lines = [f"{self.algo} {checkpoint}: actor | critic's greedy move | slip-optimal move | "
                 "data's most frequent move ('.' no data)"]
        for r in range(n):
            rows = []
            for moves in (actor, greedy, self.optimum, data):
                rows.append("".join(
                    self.desc[r, c] if self.desc[r, c] in "HG"
                    else ("." if moves[r * n + c] < 0 else ARROWS[moves[r * n + c]])
                    for c in range(n)))
            lines.append("   ".join(rows))
        return "\n".join(lines)


def run_table(probe: ActorProbe, cells: list[tuple[int, int]]) -> str:
    n = probe.desc.shape[0]
    head = ["checkpoint", "DP success: actor", "DP success: critic's greedy move",
            "actor = critic (data cells)", "actor = data's most frequent", "actor = optimum",
            *[f"actor at {r},{c} (max μ)" for r, c in cells]]
    rows = []
    v = probe.visited
    for name in probe.checkpoints():
        actor, greedy, mu = probe.moves(name)
        rows.append([name, f"{probe.success(actor):.1f}", f"{probe.success(greedy):.1f}",
                     f"{(actor == greedy)[v].mean():.2f}",
                     f"{(actor == probe.majority)[v].mean():.2f}",
                     f"{(actor == probe.optimum)[v].mean():.2f}",
                     *[f"{ARROWS[actor[r * n + c]]} ({mu[r * n + c].max():.2f})"
                       for r, c in cells]])
    return markdown_table(head, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--cells", nargs="*", default=[], help="row,col cells to follow")
    parser.add_argument("--maps", nargs="*", default=[], help="checkpoints to print as maps")
    parser.add_argument("--page", default=None)
    args = parser.parse_args()
    cells = [tuple(int(x) for x in cell.split(",")) for cell in args.cells]
    parts = []
    for run_dir in args.runs:
        probe = ActorProbe(run_dir)
        parts.append(f"### {run_dir.name} ({probe.algo}, seed {probe.run.config.seed})\n\n"
                     + run_table(probe, cells))
        maps = [probe.map_text(m) for m in args.maps
                if (run_dir / "checkpoints" / m).is_dir()]
        if maps:
            parts.append("```\n" + "\n\n".join(maps) + "\n```\n")
    text = "\n".join(parts)
    if args.page:
        write_generated_section(args.page, text)
    print(text)


if __name__ == "__main__":
    main()

"""Why the online phase does not learn on Frozen-Lake, and what makes it learn (issue 12).

    python scripts/frozenlake_online.py run --out runs/fl_online --labels base ratio ... \
        --seeds 0 --jobs 2
    dualrl report runs/fl_online --baseline protocol-iql --pairs protocol-dual-rerun:protocol-dual \
        --out PAGE.md

`run` trains each named setting (`dualrl train` subprocesses, `--jobs` at a time; finished
runs are skipped, interrupted ones resumed) into `<out>/<label>/seed<N>`, the layout `dualrl
report` reads (labels from the folders). Every setting shares the screening budget below; the
settings are the factors of the issue's hypotheses (H1 replay share, H2 expectile/β, H3 critic
fixes and the observation reading, H5 the actor's learning rate across the switch). This
script's own `report` (the table of docs/results/frozenlake_online.md, made at commit 56bc70f
and before) was removed when `dualrl report` took over (`--pairs` for its paired rows; the
last evaluation's DP success and V(s0) are in its "At the last evaluation" table).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TASK = "frozenlake-shift"
# The screening settings start from the protocol as it was before issue 12 (the old cpu
# preset's settings at the 10k + 20k budget) and change one group of factors at a time.
OLD = ("--preset cpu --offline-steps 10000 --online-steps 20000 --eval-every 2500 "
       "--env.obs coords --normalize-obs true --online-ratio none --iql.expectile 0.7 "
       "--iql.beta 10 --iql.value-min none --iql.value-max none")
ONEHOT = "--env.obs onehot --normalize-obs false"
PROTOCOL = "--preset cpu"  # the protocol chosen from the screening (config.py's cpu preset)
# The first protocol (v1) on top of the cpu preset, every factor pinned; S2 the second
# round's set before the online share; MAP3 an 8x8 map this issue does not name
# (gymnasium's generate_random_map(8, p=0.8, seed=3): DP optimum at slip 0.3 succeeds 99.1 %).
# NOCLIP: the Q / V targets unbounded, as before round 3 (the preset now clips them to [0, 1]).
NOCLIP = "--iql.value-min none --iql.value-max none"
V1 = f"--online-ratio 0.75 --utd 1 --explore-epsilon 0 --iql.expectile 0.9 --iql.beta 30 {NOCLIP}"
S2 = ("--online-ratio 0.75 --utd 2 --explore-epsilon 0.1 --iql.expectile 0.99 "
      f"--iql.beta 100 {NOCLIP}")
MAP3 = "SFHFFFFF/FFFFFFFH/FFFFFHFF/HFFFFFFF/FHFFFFFF/HFFHFFHF/HFFFFFHF/FFFFFFFG"
EPS = f"{V1} --utd 2 --iql.beta 100 --explore-epsilon 0.1"
# Other shifts and maps, run under several protocols: name -> (flags, what it is).
VARIANTS = {"slip0.2": ("--env.slip-online 0.2", "slip 0.0 → 0.2"),
            "slip0.4": ("--env.slip-online 0.4", "slip 0.0 → 0.4"),
            "4x4": ("--env.map 4x4", "4x4 map, slip 0.0 → 0.3"),
            "map3": (f"--env.map {MAP3}", "MAP3, slip 0.0 → 0.3"),
            "slip0.1to0.4": ("--env.slip-offline 0.1 --env.slip-online 0.4", "slip 0.1 → 0.4")}

# DUAL's ablations (SPEC §10) and the λ_shift sweep: (name, flags, what).
DUAL_VARIANTS = [
    ("no-epistemic", "--no-epistemic", "w/o epistemic UQ (σ_ψ only)"),
    ("no-shift", "--shift-weight 0", "w/o shift-aware (λ_shift = 0)"),
    ("no-planner", "--no-planner", "w/o planner (horizon-1 action diffusion)"),
    ("uq-sampling", "--uq sampling", "w sampling (latent z sub-policies)"),
    ("la-elbo", "--uq la-elbo", "w LA-ELBO (Laplace on the unweighted diffusion loss)"),
    ("no-distill", "--no-distill", "w/o distillation (the K = 16 teacher acts)"),
    *[(f"shift-{w}", f"--shift-weight {w}", f"λ_shift = {w} (default 0.5)")
      for w in ("0.1", "0.25", "0.75", "1.0")],
]

SETTINGS: dict[str, tuple[str, str]] = {
    # label: (flags after OLD, what it tests); "protocol-*" labels run PROTOCOL instead
    "base": ("", "the cpu preset as it was: coords, uniform replay, expectile 0.7, β 10"),
    "ratio": ("--online-ratio 0.5", "H1: half of every batch online"),
    "onehot": (ONEHOT, "H3: one-hot cell observations"),
    "onehot-ratio": (f"{ONEHOT} --online-ratio 0.5", "H1 + H3"),
    "ratio-exp-beta": ("--online-ratio 0.5 --iql.expectile 0.9 --iql.beta 30",
                       "H1 + H2 on coords"),
    "onehot-ratio-exp-beta": (f"{ONEHOT} --online-ratio 0.5 --iql.expectile 0.9 --iql.beta 30",
                              "H1 + H2 + H3"),
    "onehot-ratio-exp-beta-ln": (f"{ONEHOT} --online-ratio 0.5 --iql.expectile 0.9 "
                                 "--iql.beta 30 --iql.layer-norm true",
                                 "H1 + H2 + H3 + LayerNorm critic"),
    "onehot-r09-e09-b100": (f"{ONEHOT} --online-ratio 0.9 --iql.expectile 0.9 --iql.beta 100",
                            "H1 + H2 + H3, strong"),
    "coords-r09-e09-b100": ("--online-ratio 0.9 --iql.expectile 0.9 --iql.beta 100",
                            "H1 + H2, strong, coords"),
    "onehot-r075-e09-b30": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 --iql.beta 30",
                            "H1 + H2 + H3, moderate β"),
    "onehot-r09-e09-b30": (f"{ONEHOT} --online-ratio 0.9 --iql.expectile 0.9 --iql.beta 30",
                           "H1 + H2 + H3, moderate β, 90% online"),
    "coords-r075-e09-b30": ("--online-ratio 0.75 --iql.expectile 0.9 --iql.beta 30",
                            "H1 + H2, moderate β, coords"),
    "onehot-r075-e09-b100": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 "
                             "--iql.beta 100", "H1 + H2 + H3, strong β, 75% online"),
    "onehot-r075-e09-b30-w5k": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 "
                                "--iql.beta 30 --online-window 5000",
                                "+ recency: online rows from the newest 5k"),
    "onehot-r075-e09-b30-w2k": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 "
                                "--iql.beta 30 --online-window 2000",
                                "+ recency: online rows from the newest 2k"),
    "onehot-r075-e09-b60": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 --iql.beta 60",
                            "H1 + H2 + H3, β 60"),
    "onehot-r075-e09-b100-warm5k": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 "
                                    "--iql.beta 100 --online-warmup 5000",
                                    "β 100 + online share ramped over the first 5k steps"),
    "onehot-r075-e09-b30-warm5k": (f"{ONEHOT} --online-ratio 0.75 --iql.expectile 0.9 "
                                   "--iql.beta 30 --online-warmup 5000",
                                   "β 30 + online share ramped over the first 5k steps"),
    # Protocol v1 (the cpu preset of the first round): one-hot, 75 % online, expectile 0.9,
    # β 30, utd 1, no ε floor; its flags pinned so the rows keep their meaning.
    "v1-iql": (f"--algo iql {V1}", "protocol v1: IQL"),
    "v1-dual": (f"--algo dual {V1.replace('iql.', 'dual.')}", "protocol v1: DUAL"),
    **{f"v1-iql-{name}": (f"--algo iql {V1} {VARIANTS[name][0]}",
                          f"protocol v1, {VARIANTS[name][1]}") for name in ("slip0.2", "slip0.4",
                                                                            "4x4")},
    "v1-iql-cosine": (f"--algo iql {V1} --iql.actor-cosine-steps 10000",
                      "H5: CORL's cosine actor lr, 0 at the switch (on v1)"),
    # Second round, from v1: critic updates per step, β, an ε floor under exploration, the
    # expectile, the online share. "(device)": run on the lent machine's CPU cores (16 runs
    # side by side, jax 0.11.2) instead of this 2-core machine (jax 0.10.2).
    "s2-utd2": (f"--algo iql {V1} --utd 2", "v1 + 2 updates per online step"),
    "s2-ln": (f"--algo iql {V1} --iql.layer-norm true", "v1 + LayerNorm critic"),
    "s2-utd2-b100": (f"--algo iql {V1} --utd 2 --iql.beta 100",
                     "v1 + utd 2 + β 100 (device)"),
    "s2-utd2-b100-eps": (f"--algo iql {EPS}",
                         "v1 + utd 2 + β 100 + ε 0.1 (device)"),
    "s2-eps-e097": (f"--algo iql {EPS} --iql.expectile 0.97", "... + expectile 0.97"),
    "s2-eps-e099": (f"--algo iql {S2}", "... + expectile 0.99"),
    "s2-eps-e099-dev": (f"--algo iql {S2}", "... + expectile 0.99 (device)"),
    "s2-e099-r09": (f"--algo iql {S2} --online-ratio 0.9", "expectile 0.99, 90 % online"),
    "s2-e099-r09-warm2k5": (f"--algo iql {S2} --online-ratio 0.9 --online-warmup 2500",
                            "expectile 0.99, 90 % online reached over 2.5k steps"),
    "s2-e099-r1": (f"--algo iql {S2} --online-ratio 1.0", "expectile 0.99, 100 % online"),
    **{f"s2-{tag}-{name}": (f"--algo iql {flags} {where}", f"{meaning}, {name} (device)")
       for tag, flags, meaning in (("eps", EPS, "utd 2 + β 100 + ε 0.1"),
                                   ("e099", S2, "expectile 0.99 set"))
       for name, (where, _) in VARIANTS.items()},
    "s2-eps-dual": ("--algo dual " + V1.replace("iql.", "dual.") + " --utd 2 --dual.beta 100 "
                    "--explore-epsilon 0.1", "DUAL, utd 2 + β 100 + ε 0.1 (device)"),
    # Round 2's protocol (one-hot, online share ramped to 100 % over 5k steps, expectile
    # 0.99, β 100, utd 2, ε 0.1; targets unbounded), pinned.
    "r2-iql": (f"--algo iql {NOCLIP}", "round 2 protocol: IQL"),
    "r2-dual": (f"--algo dual {NOCLIP.replace('iql.', 'dual.')}", "round 2 protocol: DUAL"),
    **{f"r2-iql-{name}": (f"--algo iql {NOCLIP} {where}", f"round 2 protocol, {what}")
       for name, (where, what) in VARIANTS.items()},
    "r2-iql-narrow": (f"--algo iql {NOCLIP} --task frozenlake-narrow",
                      "round 2 protocol, frozenlake-narrow"),
    # The protocol (the cpu preset as issue 12 leaves it: round 2 + Q / V targets clipped
    # to the return range [0, 1]), every method, and the same preset on other shifts and
    # maps. The DUAL variants of a seed share its planner / student stages (a stage cache
    # under the runs directory).
    "protocol-iql": ("--algo iql", "the protocol (cpu preset): IQL"),
    "protocol-dual": ("--algo dual", "the protocol (cpu preset): DUAL"),
    "protocol-iql-la": ("--algo iql --laplace", "the protocol: IQL w LA"),
    # DUAL again with the student's prefix pass (commit 1684985; same numbers up to float
    # summation order), so its paired difference to protocol-dual is a null ablation: what
    # float-level chaos alone does to these scores
    "protocol-dual-rerun": ("--algo dual", "the protocol: DUAL rerun (null ablation)"),
    **{f"protocol-dual-{name}": (f"--algo dual {flags}", f"the protocol: DUAL {what}")
       for name, flags, what in DUAL_VARIANTS},
    **{f"protocol-iql-{name}": (f"--algo iql {where}", f"protocol, {what}")
       for name, (where, what) in VARIANTS.items()},
    "protocol-iql-narrow": ("--algo iql --task frozenlake-narrow",
                            "protocol, frozenlake-narrow: IQL"),
    "protocol-iql-la-narrow": ("--algo iql --laplace --task frozenlake-narrow",
                               "protocol, frozenlake-narrow: IQL w LA"),
    "protocol-dual-narrow": ("--algo dual --task frozenlake-narrow",
                             "protocol, frozenlake-narrow: DUAL"),
    **{f"protocol-dual-{name}-narrow": (f"--algo dual {flags} --task frozenlake-narrow",
                                        f"protocol, frozenlake-narrow: DUAL {what}")
       for name, flags, what in DUAL_VARIANTS},
    # DUAL again after the prefix pass on frozenlake-narrow (a null ablation there too; run
    # on the device beside w/o shift-aware, so the two share their offline phase to the bit)
    "protocol-dual-rerun-narrow": ("--algo dual --task frozenlake-narrow",
                                   "protocol, frozenlake-narrow: DUAL rerun (null ablation)"),
    # ... and on this machine, beside w sampling and w LA-ELBO (their offline phase to the bit)
    "protocol-dual-rerun-narrow-here": ("--algo dual --task frozenlake-narrow",
                                        "protocol, frozenlake-narrow: DUAL rerun, this machine"),
    # w/o distillation on the device's GPU (JAX on cuda; 10 runs shared the GPU and 6 cores):
    # the K = 16 teacher in every action and actor update is ~44 ms per update on one CPU
    # core here, and on the GPU the 10 runs reached online step 2.5k of 20k in 500 s
    "protocol-dual-no-distill-gpu": ("--algo dual --no-distill",
                                     "the protocol: DUAL w/o distillation (device GPU)"),
    "protocol-dual-no-distill-narrow-gpu": ("--algo dual --no-distill --task frozenlake-narrow",
                                            "protocol, frozenlake-narrow: DUAL w/o distillation "
                                            "(device GPU)"),
    "h3-coords": ("--online-ratio 0.9 --iql.expectile 0.95 --iql.beta 100",
                  "the issue's H3 setting on coords"),
    "h3-onehot": (f"{ONEHOT} --online-ratio 0.9 --iql.expectile 0.95 --iql.beta 100",
                  "the issue's H3 setting on one-hot"),
}


def run_dir(out: Path, label: str, seed: int) -> Path:
    return out / label / f"seed{seed}"


def train_one(out: Path, label: str, seed: int, extra: str) -> str:
    target = run_dir(out, label, seed)
    if (target / "summary.json").exists():
        return f"{label} seed {seed}: done before"
    base = (PROTOCOL if label.startswith(("protocol-", "r2-", "v1-", "s2-"))
            else f"--algo iql {OLD}")
    flags = f"--task {TASK} --seed {seed} {base} {SETTINGS[label][0]} {extra}"
    if "--algo dual" in flags:  # a seed's DUAL variants share its planner / student stages
        flags += f" --dual.stage-cache {out / 'stage-cache'}"
    cmd = [sys.executable, "-m", "dualrl.cli", "train", *shlex.split(flags),
           "--progress", "false", "--out", str(target)]
    if (target / "config.json").exists():
        cmd.append("--resume")
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"{label} seed {seed}: FAILED ({proc.stderr.strip().splitlines()[-1:]})"
    s = json.loads((target / "summary.json").read_text())
    return (f"{label} seed {seed}: offline {s['offline_score']:.1f} online_mean "
            f"{s['online_mean_score']:.1f} final {s['final_score']:.1f} "
            f"({s['wall_seconds']:.0f} s)")


def cmd_run(args: argparse.Namespace) -> None:
    unknown = sorted(set(args.labels) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown labels {unknown}; known: {', '.join(SETTINGS)}")
    jobs = [(label, seed) for seed in args.seeds for label in args.labels]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda j: train_one(Path(args.out), j[0], j[1], args.extra), jobs):
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", default="runs/fl_online")
    run.add_argument("--labels", nargs="+", default=list(SETTINGS))
    run.add_argument("--seeds", nargs="+", type=int, default=[0])
    run.add_argument("--jobs", type=int, default=2)
    run.add_argument("--extra", default="", help="flags added to every run")
    args = parser.parse_args()
    cmd_run(args)


if __name__ == "__main__":
    main()

"""One file per method; this registry maps `--algo` names to (config class, agent class)."""

from __future__ import annotations

from typing import Any

from dualrl.algos.calql import CalQL, CalQLConfig
from dualrl.algos.dacer import DACER, DACERConfig
from dualrl.algos.diffql import DiffQL, DiffQLConfig
from dualrl.algos.diffuser import Diffuser, DiffuserConfig
from dualrl.algos.dual import DUAL, DUALConfig
from dualrl.algos.edis import EDIS, Augmented, EDISCalQL, EDISCalQLConfig, EDISConfig
from dualrl.algos.iql import IQL, IQLConfig
from dualrl.algos.so2 import SO2, SO2Config
from dualrl.o2o.agent import Agent

ALGOS: dict[str, tuple[type, type[Agent]]] = {
    "iql": (IQLConfig, IQL),
    "dual": (DUALConfig, DUAL),
    "calql": (CalQLConfig, CalQL),
    "so2": (SO2Config, SO2),
    "diffql": (DiffQLConfig, DiffQL),
    "dacer": (DACERConfig, DACER),
    "diffuser": (DiffuserConfig, Diffuser),
    "edis": (EDISConfig, EDIS),
    "edis-calql": (EDISCalQLConfig, EDISCalQL),
}


def algo_names() -> list[str]:
    return sorted(ALGOS)


def get_algo(name: str) -> tuple[type, type[Agent]]:
    if name not in ALGOS:
        raise ValueError(f"unknown algo '{name}'; valid algos: {', '.join(algo_names())}")
    return ALGOS[name]


def make_agent(name: str, config: Any) -> Agent:
    """The method's agent; with `augment = "edis"` (DUAL's optional step) wrapped in the
    EDIS augmentation."""
    _, agent_cls = get_algo(name)
    agent = agent_cls(config)
    if getattr(config, "augment", "none") == "edis":
        return Augmented(agent, config, name)
    return agent

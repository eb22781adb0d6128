"""Small process-level helpers."""

from __future__ import annotations

import os
from pathlib import Path


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (compiles dominate short runs on CPU).

    Location: `path`, else $DUALRL_JAX_CACHE, else ~/.cache/dualrl/jax. Set
    DUALRL_JAX_CACHE=off to disable.
    """
    import jax

    target = path or os.environ.get("DUALRL_JAX_CACHE") or Path.home() / ".cache/dualrl/jax"
    if str(target).lower() == "off":
        return None
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return target

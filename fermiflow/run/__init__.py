"""fermiflow.run: the only layer that does I/O.

- :mod:`~fermiflow.run.schema` and :mod:`~fermiflow.run.config`: the config tables,
  TOML/JSON parsing, ``--set`` overrides and eager validation;
- :mod:`~fermiflow.run.build`: :func:`build_pieces`, the one builder of (system,
  problem, sampler, loss) from a config;
- :mod:`~fermiflow.run.engine`: optimizers, trainer and the placed, jitted step;
- :mod:`~fermiflow.run.loop`: the host loop (checkpoints, rollbacks, resume, reports);
- :mod:`~fermiflow.run.checkpoint`, :mod:`~fermiflow.run.reports`: atomic checkpoints,
  training curves and summary tables;
- :mod:`~fermiflow.run.observe`: observables of a saved run;
- :mod:`~fermiflow.run.cli`: the ``fermiflow`` command.

The names below are imported lazily (on first attribute access): the CLI lives in
this package and must call ``jax.distributed.initialize`` before BlackJAX, which the
engine imports, touches the backend.
"""

import importlib

_EXPORTS = {
    "Config": "config",
    "load_config": "config",
    "make_system": "config",
    "Pieces": "build",
    "build_pieces": "build",
    "build_classical": "build",
    "Engine": "engine",
    "build_engine": "engine",
    "RunStopped": "loop",
    "describe_run": "loop",
    "load_run_config": "loop",
    "resume_run": "loop",
    "start_run": "loop",
    "observe_run": "observe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"fermiflow.run.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fermiflow.run' has no attribute {name!r}")

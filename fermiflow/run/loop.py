"""The host loop: train with checkpoints, resume, guard, report.

``start_run(config, run_dir)`` and ``resume_run(run_dir)`` drive the host loop around
one jitted training step of an :class:`~fermiflow.run.engine.Engine` (built by
:func:`~fermiflow.run.engine.build_engine`; this loop never parses a config table
itself). A run directory holds:

- ``config.json`` (the resolved config) and ``versions.json`` (package and dependency
  versions, git commit, devices);
- ``metrics.jsonl``: one JSON line per step with the step index, F, E, K, V, S and
  their errors (whole system, Hartree; S in k_B; null for a failed step), acceptance,
  width [Bohr], gradient norms, non-finite counts, ``update_applied`` and the step
  time [s]; ``events.jsonl`` (rollbacks, compiles, the memory plan of
  ``run.memory_gb``: :mod:`fermiflow.run.memory_plan`); ``pretrain.jsonl`` (p(K)
  pretraining);
- ``checkpoints/ckpt_<step>.msgpack`` (:mod:`fermiflow.run.checkpoint`), every
  ``run.checkpoint_every`` steps, at step 0 and at the end;
- ``training.png``, ``summary.json`` and ``summary.txt``: the final estimates from
  fresh samples at the final params beside the exact non-interacting reference.

Exact resume: the step is one jitted function of the state alone, states are placed
the same way at the start and after a restore, and a checkpoint stores the state bit
for bit, so a resumed run repeats the uninterrupted one exactly (on the CPU).

Guard: a step that applied no update (NaN/inf in local energies or gradients) rolls
the run back to the newest checkpoint with the learning rates times
``run.learning_rate_backoff`` and a fresh key; after ``run.max_rollbacks`` the run
stops with :class:`RunStopped`. Failed steps are logged as null, never averaged.

Devices: walkers are split over ``jax.devices()`` (all hosts) along the batch axis;
everything else is replicated; only process 0 writes files. Units: Hartree a.u.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from fermiflow.run.checkpoint import (
    gather,
    list_checkpoints,
    restore_latest,
    save_checkpoint,
)
from fermiflow.run.config import (
    Config,
    config_from_json,
    config_to_dict,
    config_to_json,
    temperature_of,
)
from fermiflow.run.engine import Engine, build_engine
from fermiflow.run.folds import fold_weight_line
from fermiflow.run.memory_plan import plan_memory
from fermiflow.run.provenance import versions
from fermiflow.run.reports import QUANTITIES, plot_training, summary_table

__all__ = [
    "RunStopped",
    "describe_run",
    "load_run_config",
    "read_rows",
    "resume_run",
    "start_run",
]

_RESUME_KEYS = ("n_steps", "log_every", "checkpoint_every", "keep_checkpoints", "n_eval_steps")


class RunStopped(RuntimeError):
    """The guard gave up: non-finite steps persisted after every rollback."""


def load_run_config(run_dir: str | Path) -> Config:
    """Return the resolved config of a run directory (its ``config.json``).

    Raises:
      ValueError: naming the path, if run_dir is not a run directory or its
        config.json cannot be read or is not a valid config.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a directory; pass the --run-dir of a run.")
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no config.json: it is not a fermiflow run "
                         "directory (or the run never started).")
    try:
        return config_from_json(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None


def _main_process() -> bool:
    return jax.process_index() == 0


def _write_json(path: Path, value: Any) -> None:
    if _main_process():
        path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _append_lines(path: Path, rows: list[dict]) -> None:
    if _main_process() and rows:
        with path.open("a") as handle:
            handle.writelines(json.dumps(row, allow_nan=False) + "\n" for row in rows)


def read_rows(path: Path) -> list[dict]:
    """Return the JSON lines of a file ([] if missing); a torn last line is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a kill: everything after it is recomputed
    return rows


def _truncate_rows(path: Path, before_step: int) -> None:
    if _main_process() and path.exists():
        rows = [r for r in read_rows(path) if r["step"] < before_step]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _save(run_dir: Path, engine: Engine, state: Any, config: Config, control: dict) -> None:
    host = gather(state)  # a collective on several hosts: every process calls it
    if _main_process():
        save_checkpoint(run_dir / "checkpoints", host, step=int(host.step),
                        metadata={"config": config_to_dict(config), "versions": versions(),
                                  "control": control},
                        keep=config.run.keep_checkpoints)
    _sync(f"checkpoint-{int(host.step)}")


def _progress(config: Config, start: int):
    if not (_main_process() and sys.stdout.isatty()):
        return None
    return tqdm(total=config.run.n_steps, initial=start, unit="step", dynamic_ncols=True)


def _restore(run_dir: Path, engine: Engine) -> tuple[Any, dict]:
    checkpoint = restore_latest(run_dir / "checkpoints", engine.template)
    return checkpoint.state, checkpoint.metadata.get("control", {})


def _rollback(run_dir: Path, config: Config, control: dict, rows: list[dict]) -> tuple:
    bad = [r for r in rows if not r["update_applied"]]
    control = dict(control, n_rollbacks=control["n_rollbacks"] + 1,
                   learning_rate_scale=control["learning_rate_scale"]
                   * config.run.learning_rate_backoff)
    reason = (f"step {bad[0]['step']}: no update applied ({bad[0]['n_nonfinite_local']} "
              "walkers with a NaN/inf local energy or ln p, or a non-finite gradient)")
    if control["n_rollbacks"] > config.run.max_rollbacks:
        raise RunStopped(f"{reason}; the run stops after {config.run.max_rollbacks} "
                         "rollbacks. Lower optimizer.*_learning_rate, raise "
                         "optimizer.damping, or check the sampler width; the newest good "
                         f"checkpoint is in {run_dir / 'checkpoints'}.")
    engine = build_engine(config, learning_rate_scale=control["learning_rate_scale"])
    state, _ = _restore(run_dir, engine)
    # A fresh key: the same key would repeat the samples that failed.
    state = state._replace(key=jax.random.fold_in(state.key, control["n_rollbacks"]))
    event = {"event": "rollback", "reason": reason, "to_step": int(state.step),
             "failed_steps": bad, **control}
    _append_lines(run_dir / "events.jsonl", [event])
    print(f"fermiflow: {reason}; rolled back to step {int(state.step)} with learning-rate "
          f"scale {control['learning_rate_scale']:g} (rollback {control['n_rollbacks']} "
          f"of {config.run.max_rollbacks}).", file=sys.stderr)
    _truncate_rows(run_dir / "metrics.jsonl", int(state.step))
    return engine, engine.place(state), control


def _train(run_dir: Path, config: Config, engine: Engine, state: Any, control: dict) -> Any:
    """Run steps from ``state.step`` to ``run.n_steps``; checkpoint and guard."""
    run = config.run
    state = engine.place(state)
    step = int(gather(state.step))
    if step >= run.n_steps:
        return state
    start = time.perf_counter()
    # One executable for the whole run: a state that does not match it fails loudly.
    compiled = engine.step.lower(state).compile()
    _append_lines(run_dir / "events.jsonl", [{"event": "compiled", "step": step,
                                               "seconds": time.perf_counter() - start}])
    bar = _progress(config, step)
    while step < run.n_steps:
        next_checkpoint = (step // run.checkpoint_every + 1) * run.checkpoint_every
        length = min(run.log_every, run.n_steps - step, next_checkpoint - step)
        start, history = time.perf_counter(), []
        for _ in range(length):
            state, metrics = compiled(state)
            history.append(metrics)
        host = jax.device_get(jax.tree.map(lambda *a: np.stack(a), *gather(history)))
        seconds = (time.perf_counter() - start) / length
        rows = engine.rows(host)
        for i, row in enumerate(rows):
            row.update(step=step + i, step_time=seconds)
        _append_lines(run_dir / "metrics.jsonl", rows)
        if not all(r["update_applied"] for r in rows):
            engine, state, control = _rollback(run_dir, config, control, rows)
            step = int(gather(state.step))
            compiled = engine.step.lower(state).compile()
            if bar is not None:
                bar.n = step
            continue
        step += length
        if step % run.checkpoint_every == 0 or step == run.n_steps:
            _save(run_dir, engine, state, config, control)
        if bar is not None:
            last = rows[-1]
            bar.set_postfix_str(f"F/N={last['F'] / engine.n_particles:.5f}"
                                f"±{last['F_err'] / engine.n_particles:.5f} "
                                f"acc={last.get('acceptance') or 0:.2f}")
            bar.update(length)
    if bar is not None:
        bar.close()
    return state


def _finish(run_dir: Path, config: Config, engine: Engine, state: Any) -> dict:
    estimates, info = engine.evaluate(state)
    n = engine.n_particles
    title = (f"fermiflow run {run_dir.name}: {config.system.kind}, N={n}, T="
             f"{temperature_of(config.system):.6g} Ha, step {int(gather(state.step))}; "
             f"final estimates from {info['n_samples']} fresh samples ({info['errors']})")
    text = summary_table(estimates, n_particles=n, reference=engine.reference,
                         exact=engine.exact, title=title)
    if "fold_weight" in info:
        text += "\n" + fold_weight_line(info["fold_weight"])
    defined = dict(zip(QUANTITIES, estimates, strict=True))
    summary = {"estimates": {q: e.to_dict() for q, e in defined.items() if e is not None},
               "evaluation": info, "reference": engine.reference,
               "exact": engine.exact, "n_particles": n, "step": int(gather(state.step)),
               "units": "whole system, Hartree; S in k_B", "table": text}
    _write_json(run_dir / "summary.json", summary)
    if _main_process():
        (run_dir / "summary.txt").write_text(text + "\n")
        rows = read_rows(run_dir / "metrics.jsonl")
        plot_training(rows, run_dir / "training.png", n_particles=n,
                      reference=engine.reference, title=title)
        print(text)
    return summary


def start_run(config: Config, run_dir: str | Path) -> dict:
    """Start a fresh run in ``run_dir`` (created; it must not hold checkpoints).

    Args:
      config: a resolved :class:`Config`.
      run_dir: the run directory.

    Returns:
      The summary dict (also in ``summary.json``).

    Raises:
      ValueError: if run_dir already holds a run, or the config does not fit the
        devices (batch not divisible by the device count).
      RunStopped: if the guard gave up.
    """
    run_dir = Path(run_dir)
    if list_checkpoints(run_dir / "checkpoints") or (run_dir / "config.json").exists():
        raise ValueError(f"{run_dir} already holds a run; continue it with "
                         f"`fermiflow resume {run_dir}` or pick a new --run-dir.")
    plan = None
    if config.run.memory_gb is not None and config.system.kind != "classical":
        config, plan = plan_memory(config, config.run.memory_gb)
        print(f"fermiflow: {plan.describe()}", file=sys.stderr, flush=True)
    engine = build_engine(config)
    _sync("checked-run-dir")  # every process has looked before process 0 writes
    if _main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config_to_json(config) + "\n")
        if plan is not None:
            _append_lines(run_dir / "events.jsonl", [{"event": "memory_plan", **plan._asdict()}])
    _write_json(run_dir / "versions.json", versions())
    state, pretrain_rows = engine.init()
    _append_lines(run_dir / "pretrain.jsonl", pretrain_rows)
    control = {"learning_rate_scale": 1.0, "n_rollbacks": 0}
    _save(run_dir, engine, engine.place(state), config, control)
    state = _train(run_dir, config, engine, state, control)
    return _finish(run_dir, config, engine, state)


def resume_run(run_dir: str | Path, overrides: dict | None = None) -> dict:
    """Continue a run from its newest readable checkpoint (exactly, on the CPU).

    Args:
      run_dir: a directory written by :func:`start_run`.
      overrides: new values of ``run`` keys that do not change the trajectory
        (``n_steps``, ``log_every``, ``checkpoint_every``, ``keep_checkpoints``,
        ``n_eval_steps``), e.g. ``{"n_steps": 2000}`` to extend a run.

    Returns:
      The summary dict.

    Raises:
      ValueError: for an override of another key.
      FileNotFoundError: if no checkpoint can be read.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if not list_checkpoints(run_dir / "checkpoints"):
        raise ValueError(f"{run_dir} holds no checkpoint to resume from; start it again "
                         "with `fermiflow run`.")
    for key in overrides or {}:
        if key not in _RESUME_KEYS:
            raise ValueError(f"resume can change run.{_RESUME_KEYS} only, not run.{key}.")
    if overrides:
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, **overrides))
        if _main_process():
            (run_dir / "config.json").write_text(config_to_json(config) + "\n")
    engine = build_engine(config)
    state, control = _restore(run_dir, engine)
    control = control or {"learning_rate_scale": 1.0, "n_rollbacks": 0}
    if control["learning_rate_scale"] != 1.0:
        engine = build_engine(config, learning_rate_scale=control["learning_rate_scale"])
    _truncate_rows(run_dir / "metrics.jsonl", int(state.step))
    state = _train(run_dir, config, engine, state, control)
    return _finish(run_dir, config, engine, state)


def describe_run(run_dir: str | Path) -> str:
    """Return a text description of a run directory: config, versions, progress."""
    run_dir = Path(run_dir)
    config = config_to_dict(load_run_config(run_dir))
    lines = [f"run {run_dir}"]
    for section, values in config.items():
        shown = {k: v for k, v in sorted(values.items()) if v is not None}
        lines.append(f"  [{section}] " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if (run_dir / "versions.json").exists():
        info = json.loads((run_dir / "versions.json").read_text())
        lines.append("  versions: " + ", ".join(f"{k}={v}" for k, v in info.items()
                                                 if not isinstance(v, list)))
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    lines.append("  checkpoints: " + (", ".join(f"{p.name} ({p.stat().st_size} B)"
                                                 for p in checkpoints) or "none"))
    rows = read_rows(run_dir / "metrics.jsonl")
    if rows:
        last, n = rows[-1], config["system"].get("n") or (
            config["system"]["n_up"] + config["system"]["n_down"])
        done = " ".join(f"{q}/N={last[q] / n:.6f}" for q in QUANTITIES
                        if last.get(q) is not None)
        lines.append(f"  step {last['step'] + 1} of {config['run']['n_steps']}: {done}")
    if (run_dir / "summary.txt").exists():
        lines.append((run_dir / "summary.txt").read_text().rstrip())
    return "\n".join(lines)

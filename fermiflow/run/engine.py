"""Engines: the optimizers, trainer and placed, jitted step of a config.

:func:`build_engine` takes the pieces of :func:`fermiflow.run.build.build_pieces`
(system, problem, sampler, loss) and adds what a run needs on top: one optax
optimizer per network, the train step (:mod:`fermiflow.training.step`, or
:mod:`fermiflow.training.classical` for the classical gas), pretraining of p(K), the
placement of states on the devices, the conversion of metrics into log rows, the
final evaluation and the exact references.

Placement: the walker axis of the sampler state is split over a 1-d mesh of all
``jax.devices()`` (every host) with :mod:`fermiflow.sampling.sharding`; everything
else (params, optimizer states, the key, the step) is replicated. The step is jitted
once with these shardings as its input and output shardings, so a state placed at
the start, after a step or after a restore runs through the same executable
(bit-for-bit resume). No pmap; the global batch does not depend on the device count.

Units: Hartree atomic units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from fermiflow.estimate import Thermodynamics
from fermiflow.hamiltonians.references import classical_reference, ideal_reference
from fermiflow.observables.thermodynamics import blocked_thermodynamics
from fermiflow.run.build import (
    Pieces,
    build_classical,
    build_pieces,
    log_slater_k,
    reference_energy,
)
from fermiflow.run.checkpoint import gather
from fermiflow.run.config import Config
from fermiflow.run.folds import make_fold_check
from fermiflow.run.reports import thermo_columns
from fermiflow.sampling.sharding import place, walker_mesh, walker_shardings
from fermiflow.training.classical import (
    classical_adam,
    make_classical_evaluator,
    make_classical_step,
)
from fermiflow.training.natural_gradient import make_sr_inputs, natural_gradient
from fermiflow.training.pretrain import pretrain
from fermiflow.training.step import make_evaluate, make_train_step

__all__ = ["Engine", "build_engine"]


class Engine(NamedTuple):
    """The pieces of a run, built from a config (nothing compiled yet).

    Attributes:
      init: ``() -> (state, pretrain_rows)``: a fresh host state (pretraining of p(K)
        and thermalization included) and the pretraining log.
      step: the jitted ``state -> (state, metrics)``, placed on the walker mesh.
      template: the abstract state (``jax.ShapeDtypeStruct`` leaves), for restores.
      place: ``host state -> device state``: walkers split, the rest replicated.
      rows: ``metrics with (steps,) leaves on the host -> list of JSON rows``.
      evaluate: ``state -> (Thermodynamics, info)``: whole-system estimates from
        fresh samples at the state's params.
      reference: whole-system exact non-interacting F, E, K, V, S (None: undefined).
      exact: whole-system exact values of the interacting system, where known.
      n_particles: N.
      n_params: parameter counts by network.
      pieces: the :class:`~fermiflow.run.build.Pieces` of a quantum run (the objects
        the step uses); None for the classical gas.
    """

    init: Callable[[], tuple[Any, list]]
    step: Callable[[Any], tuple[Any, Any]]
    template: Any
    place: Callable[[Any], Any]
    rows: Callable[[Any], list[dict]]
    evaluate: Callable[[Any], tuple[Thermodynamics, dict]]
    reference: dict
    exact: dict
    n_particles: int
    n_params: dict
    pieces: Pieces | None = None


def _json(value: Any) -> Any:
    value = np.asarray(value)
    if value.dtype == bool:
        return bool(value)
    if np.issubdtype(value.dtype, np.integer):
        return int(value)
    return float(value) if np.isfinite(value) else None  # NaN/inf: null, never averaged


def _rows(columns: dict) -> list[dict]:
    length = len(next(iter(columns.values())))
    return [{k: _json(v[i]) for k, v in columns.items()} for i in range(length)]


def _quantum_rows(m: Any) -> list[dict]:
    return _rows({**thermo_columns(m.estimates),
                  "acceptance": m.acceptance, "width": m.width,
                  "grad_norm_occupation": m.grad_norm_occupation,
                  "grad_norm_wavefunction": m.grad_norm_wavefunction,
                  "n_nonfinite_local": m.n_nonfinite_local,
                  "n_nonfinite_proposals": m.n_nonfinite_proposals,
                  "n_new_occ": m.n_new_occ, "update_applied": m.update_applied})


def _classical_rows(m: Any) -> list[dict]:
    return _rows({**thermo_columns(m.estimates), "n_nonfinite_local": m.n_nonfinite,
                  "update_applied": m.skipped == 0})


def _placed(trainer_step: Callable, template: Any, batch: int,
            devices: list | None) -> tuple[Callable, Callable]:
    mesh = walker_mesh(devices)
    whole = NamedSharding(mesh, PartitionSpec())
    shardings = jax.tree.map(lambda _: whole, template)
    if hasattr(template, "sampler_state"):  # only the sampler state holds walker axes
        shardings = shardings._replace(
            sampler_state=walker_shardings(template.sampler_state, batch, mesh))
    elif batch % mesh.devices.size:
        raise ValueError(f"sampler.batch={batch} cannot be split over {mesh.devices.size} "
                         f"devices; use a multiple of {mesh.devices.size}.")

    def strong(tree):  # weak types would give a second trace after the first step
        is_key = lambda a: jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)  # noqa: E731
        return jax.tree.map(lambda a: a if is_key(a) else jnp.asarray(a, a.dtype), tree)

    def step(state):
        new, metrics = trainer_step(state)
        return strong(new), metrics

    jitted = jax.jit(step, in_shardings=(shardings,), out_shardings=(shardings, whole))
    return jitted, lambda state: place(state, shardings)


def _n_params(tree: Any) -> int:
    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree)))


def _optimizer(kind: str, learning_rate: float, opt: Any, n_steps: int):
    if kind == "none":
        return None
    rate = learning_rate
    if opt.schedule == "cosine":
        rate = optax.cosine_decay_schedule(learning_rate, n_steps, alpha=opt.final_fraction)
    if kind in ("adam", "sgd"):
        return getattr(optax, kind)(rate)
    return natural_gradient(rate, damping=opt.damping, max_norm=opt.max_norm)


def _trainer(config: Config, pieces: Pieces, scale: float):
    problem, o = pieces.problem, config.optimizer
    temperature, log_prob = problem.temperature, problem.occupation_model.log_prob
    kinds = ("none" if temperature == 0 else o.occupation,
             "none" if config.model.flow == "identity" else o.wavefunction)
    sr = None
    if "sr" in kinds:
        sr = make_sr_inputs(log_prob, problem.log_psi, temperature=temperature,
                            clip_width=o.clip_width, occupation=kinds[0] == "sr",
                            wavefunction=kinds[1] == "sr",
                            reference_energy=reference_energy(config, problem),
                            n_micro_batches=o.n_micro_batches)
    return make_train_step(
        sampler=pieces.sampler, loss=pieces.loss, sr_inputs=sr,
        occupation_optimizer=_optimizer(kinds[0], o.occupation_learning_rate * scale, o,
                                        config.run.n_steps),
        wavefunction_optimizer=_optimizer(kinds[1], o.wavefunction_learning_rate * scale, o,
                                          config.run.n_steps),
        occupation_sr=kinds[0] == "sr", wavefunction_sr=kinds[1] == "sr")


def _pretrain_rows(history: Any) -> list[dict]:
    columns = {**thermo_columns(history.estimates), "grad_norm": history.grad_norm}
    return [dict(step=i, **row) for i, row in enumerate(_rows(columns))]


def _build_quantum(config: Config, scale: float, devices: list | None) -> Engine:
    r = config.run
    pieces = build_pieces(config)
    problem, sampler, loss = pieces.problem, pieces.sampler, pieces.loss
    trainer = _trainer(config, pieces, scale)
    key_params, key_pretrain, key_init = jax.random.split(jax.random.key(r.seed), 3)
    params = jax.eval_shape(problem.init_params, key_params)
    template = jax.eval_shape(lambda k, p: trainer.init(k, p, 0), key_init, params)
    step, place_state = _placed(trainer.step, template, config.sampler.batch, devices)

    def init():
        params, rows = jax.jit(problem.init_params)(key_params), []
        if r.pretrain_steps and problem.temperature > 0:
            sr = r.pretrain_optimizer == "sr"
            optimizer = (natural_gradient(r.pretrain_learning_rate,
                                          damping=config.optimizer.damping)
                         if sr else optax.adam(r.pretrain_learning_rate))
            occupation, history = pretrain(
                key_pretrain, problem.occupation_model, problem.mode_energies,
                temperature=problem.temperature, n_steps=r.pretrain_steps,
                batch=r.pretrain_batch or config.sampler.batch, optimizer=optimizer, sr=sr,
                params=params.occupation, clip_width=config.optimizer.clip_width)
            params, rows = params._replace(occupation=occupation), _pretrain_rows(history)
        state = jax.jit(trainer.init, static_argnums=2)(key_init, params,
                                                        config.sampler.n_thermalize)
        return gather(state), rows

    evaluate = jax.jit(make_evaluate(sampler, loss), static_argnums=3)
    fold_check = make_fold_check(config, problem, log_slater_k(problem))

    def final(state):
        key = jax.random.fold_in(state.key, 1)
        walkers, values, _ = evaluate(key, state.sampler_state, state.params, r.n_eval_steps)
        estimates, info = blocked_thermodynamics(gather(values), problem.temperature)
        if fold_check is not None:  # an uncertified flow: its F needs the fold weight
            walkers = gather(walkers)
            info = {**info, "fold_weight": fold_check(
                jax.random.fold_in(state.key, 6), walkers.occ,
                walkers.walkers.chain.position, gather(state.params.wavefunction))}
        return estimates, info

    counts = {"occupation": _n_params(params.occupation),
              "wavefunction": _n_params(params.wavefunction)}
    return Engine(init, step, template, place_state, _quantum_rows, final,
                  ideal_reference(pieces.system, problem.temperature), {}, problem.n,
                  counts, pieces)


def _build_classical(config: Config, scale: float, devices: list | None) -> Engine:
    s, r = config.sampler, config.run
    system, flow, energy = build_classical(config)
    temperature = system.temperature
    o = config.optimizer
    cosine = dict(n_steps=r.n_steps, final_fraction=o.final_fraction) if (
        o.schedule == "cosine") else {}
    trainer = make_classical_step(
        flow, energy, temperature=temperature, batch=s.batch,
        optimizer=classical_adam(o.wavefunction_learning_rate * scale, **cosine))
    key_params, key_init = jax.random.split(jax.random.key(r.seed))
    x = jnp.zeros((system.n, system.dim))
    params = jax.eval_shape(flow.init, key_params, x)
    template = jax.eval_shape(trainer.init, key_init, params)
    step, place_state = _placed(trainer.step, template, s.batch, devices)

    def init():
        return gather(trainer.init(key_init, jax.jit(flow.init)(key_params, x))), []

    evaluate = jax.jit(make_classical_evaluator(flow, energy, temperature=temperature,
                                                batch=s.batch, n_chunks=r.n_eval_steps))

    def final(state):
        metrics = gather(evaluate(jax.random.fold_in(state.key, 1), state.params))
        total, excluded = s.batch * r.n_eval_steps, int(metrics.n_nonfinite)
        return jax.tree.map(float, metrics.estimates), {
            "n_samples": total - excluded, "n_excluded_samples": excluded,
            "errors": "standard errors of independent exact samples"}

    reference, exact = classical_reference(system)
    return Engine(init, step, template, place_state, _classical_rows, final, reference,
                  exact, system.n, {"flow": _n_params(params)})


def build_engine(
    config: Config, *, learning_rate_scale: float = 1.0, devices: list | None = None
) -> Engine:
    """Build the pieces, optimizers, trainer and the placed, jitted step of a config.

    Args:
      config: a resolved :class:`Config` (see :func:`fermiflow.run.config.resolve`).
      learning_rate_scale: factor on every learning rate (rollbacks lower it).
      devices: the devices of the walker mesh (default: all of ``jax.devices()``).

    Returns:
      An :class:`Engine`; nothing is compiled until its functions are called.

    Raises:
      ValueError: for a config the models reject, or a batch that the devices do
        not divide.

    Examples:
      >>> from fermiflow.run.config import load_config
      >>> engine = build_engine(load_config(None, ["sampler.batch=8"]))
      >>> engine.n_particles, sorted(engine.n_params)
      (3, ['occupation', 'wavefunction'])
    """
    if config.system.kind == "classical":
        if config.optimizer.wavefunction != "adam":
            raise ValueError("the classical gas trains its flow with Adam: set "
                             "optimizer.wavefunction = 'adam'.")
        return _build_classical(config, learning_rate_scale, devices)
    return _build_quantum(config, learning_rate_scale, devices)

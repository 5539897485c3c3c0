"""Engines: the models, sampler, loss, optimizers and jitted step of a config.

:func:`build_engine` turns a resolved :class:`fermiflow.config.Config` into an
:class:`Engine`, the pure pieces that the host loop of :mod:`fermiflow.run` drives:
an initial state, one jitted step, the placement of states on the devices, the
conversion of metrics into log rows, the final evaluation and the exact references.
Quantum systems use :mod:`fermiflow.train` (p(K) and the flow); the classical Coulomb
gas uses :mod:`fermiflow.classical`.

Placement: the walker axis of the sampler state is split over a 1-d mesh of all
``jax.devices()`` (every host), everything else (params, optimizer states, the key,
the step) is replicated; the step is jitted once with these shardings as its input
and output shardings, so a state placed at the start, after a step or after a
restore runs through the same executable (bit-for-bit resume). No pmap; the global
batch does not depend on the device count.

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

from fermiflow.checkpoint import gather
from fermiflow.config import Config, make_system
from fermiflow.plots import QUANTITIES, blocked_estimates, classical_reference, quantum_reference
from fermiflow.sampling.sharding import WALKER_AXIS, walker_mesh

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
      evaluate: ``state -> (estimates, info)``: whole-system ``(mean, stderr)`` by
        quantity from fresh samples at the state's params.
      reference: whole-system exact non-interacting F, E, K, V, S (None: undefined).
      exact: whole-system exact values of the interacting system, where known.
      n_particles: N.
      n_params: parameter counts by network.
      pieces: ``(problem, sampler, loss)`` of a quantum run (the same objects the step
        uses, for ``fermiflow observe``); None for the classical gas.
    """

    init: Callable[[], tuple[Any, list]]
    step: Callable[[Any], tuple[Any, Any]]
    template: Any
    place: Callable[[Any], Any]
    rows: Callable[[Any], list[dict]]
    evaluate: Callable[[Any], tuple[dict, dict]]
    reference: dict
    exact: dict
    n_particles: int
    n_params: dict
    pieces: tuple | None = None


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


def _estimate_columns(e: Any, names: tuple[str, ...]) -> dict:
    fields = {"F": "free_energy", "E": "energy", "K": "kinetic", "V": "potential",
              "S": "entropy"}
    columns = {}
    for q in names:
        columns[q], columns[f"{q}_err"] = getattr(e, fields[q]), getattr(e, f"{fields[q]}_err")
    return columns


def _quantum_rows(m: Any) -> list[dict]:
    return _rows({**_estimate_columns(m.estimates, QUANTITIES),
                  "acceptance": m.acceptance, "width": m.width,
                  "grad_norm_occupation": m.grad_norm_occupation,
                  "grad_norm_wavefunction": m.grad_norm_wavefunction,
                  "n_nonfinite_local": m.n_nonfinite_local,
                  "n_nonfinite_proposals": m.n_nonfinite_proposals,
                  "n_new_occ": m.n_new_occ, "update_applied": m.update_applied})


def _classical_rows(m: Any) -> list[dict]:
    return _rows({**_estimate_columns(m, ("F", "E", "S")), "n_nonfinite_local": m.n_nonfinite,
                  "update_applied": m.skipped == 0})


def _shardings(template: Any, mesh: Any, batch: int) -> Any:
    split = NamedSharding(mesh, PartitionSpec(WALKER_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())
    shardings = jax.tree.map(lambda _: whole, template)
    if hasattr(template, "sampler_state"):
        walkers = jax.tree.map(lambda a: split if a.shape[:1] == (batch,) else whole,
                               template.sampler_state)
        shardings = shardings._replace(sampler_state=walkers)
    return shardings


def _placed(trainer_step: Callable, template: Any, batch: int,
            devices: list | None) -> tuple[Callable, Callable]:
    mesh = walker_mesh(devices)
    if batch % mesh.devices.size:
        raise ValueError(f"sampler.batch={batch} cannot be split over {mesh.devices.size} "
                         f"devices; use a multiple of {mesh.devices.size}.")
    shardings, whole = _shardings(template, mesh, batch), NamedSharding(mesh, PartitionSpec())

    def strong(tree):  # weak types would give a second trace after the first step
        is_key = lambda a: jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)  # noqa: E731
        return jax.tree.map(lambda a: a if is_key(a) else jnp.asarray(a, a.dtype), tree)

    def step(state):
        new, metrics = trainer_step(state)
        return strong(new), metrics

    def place(state):
        def put(value, sharding):
            if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
                data = jax.device_put(np.asarray(jax.random.key_data(value)), sharding)
                return jax.random.wrap_key_data(data, impl=value.dtype._impl)  # noqa: SLF001
            return jax.device_put(np.asarray(value), sharding)

        return jax.tree.map(put, state, shardings)

    jitted = jax.jit(step, in_shardings=(shardings,), out_shardings=(shardings, whole))
    return jitted, place


def _n_params(tree: Any) -> int:
    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree)))


def _optimizer(kind: str, learning_rate: float, opt: Any):
    if kind == "none":
        return None
    if kind == "adam":
        return optax.adam(learning_rate)
    from fermiflow.optimizers import natural_gradient

    return natural_gradient(learning_rate, damping=opt.damping, max_norm=opt.max_norm)


def _sampler(config: Config, problem: Any):
    from fermiflow.sampling.joint import make_joint_sampler

    s = config.sampler
    common = dict(batch=s.batch, n=problem.n, dim=problem.dim, box_length=problem.box_length,
                  kernel=s.kernel, n_sweeps=s.n_sweeps, n_extra_sweeps=s.n_extra_sweeps,
                  width=s.width, target_acceptance=s.target_acceptance)
    if s.kind == "metropolis":
        return make_joint_sampler(problem.occupation_model, problem.log_psi, **common)
    from fermiflow.sampling.latent import make_latent_joint_sampler

    return make_latent_joint_sampler(problem.occupation_model, _log_slater_k(problem),
                                     problem.flow.apply, **common)


def _log_slater_k(problem: Any) -> Callable:
    """Return log D_K(zeta) = log Psi_K of the identity flow, ``(occ, zeta) -> ()``."""
    from fermiflow.models.flow import make_identity_flow
    from fermiflow.models.wavefunction import make_log_psi

    slater = make_log_psi(orbitals=problem.orbitals, flow_apply=make_identity_flow().apply,
                          n_up=problem.n_up, n_down=problem.n_down)
    return lambda occ, zeta: slater({}, occ, zeta)


def _kinetic(config: Config, problem: Any) -> Callable | None:
    """Return the split kinetic energy of ``optimizer.kinetic = "split"``, else None."""
    if config.optimizer.kinetic == "exact":
        return None
    from fermiflow.hamiltonians.kinetic_split import make_flow_kinetic_energy

    return make_flow_kinetic_energy(_log_slater_k(problem), problem.flow.apply,
                                    n_probes=config.optimizer.n_probes)


def _build_quantum(config: Config, system: Any, scale: float, devices: list | None) -> Engine:
    from fermiflow.loss import make_free_energy_loss
    from fermiflow.optimizers import make_sr_inputs
    from fermiflow.problem import make_quantum_problem
    from fermiflow.train import make_evaluate, make_train_step

    m, o, r = config.model, config.optimizer, config.run
    occupation_options = {"categorical": {"max_excitation": m.max_excitation},
                          "transformer": dict(n_layers=m.n_layers, model_size=m.model_size,
                                              n_heads=m.n_heads, hidden=m.hidden,
                                              param_dtype=jnp.float64)}.get(m.occupation)
    flow_options = (dict(depth=m.depth, width_one=m.width_one, width_two=m.width_two,
                         n_frequencies=m.n_frequencies, init_scale=m.init_scale,
                         radial_blocks=m.radial_blocks)
                    if m.flow == "backflow" else None)
    problem = make_quantum_problem(system, occupation=m.occupation,
                                   occupation_options=occupation_options, flow=m.flow,
                                   flow_options=flow_options)
    temperature, log_prob = problem.temperature, problem.occupation_model.log_prob
    sampler = _sampler(config, problem)
    loss = make_free_energy_loss(log_prob, problem.log_psi, problem.potential,
                                 temperature=temperature, clip_width=o.clip_width,
                                 n_micro_batches=o.n_micro_batches, laplacian=o.laplacian,
                                 kinetic_energy=_kinetic(config, problem))
    kinds = ("none" if temperature == 0 else o.occupation,
             "none" if m.flow == "identity" else o.wavefunction)
    sr = None
    if "sr" in kinds:
        sr = make_sr_inputs(log_prob, problem.log_psi, temperature=temperature,
                            clip_width=o.clip_width, occupation=kinds[0] == "sr",
                            wavefunction=kinds[1] == "sr")
    trainer = make_train_step(
        sampler=sampler, loss=loss, sr_inputs=sr,
        occupation_optimizer=_optimizer(kinds[0], o.occupation_learning_rate * scale, o),
        wavefunction_optimizer=_optimizer(kinds[1], o.wavefunction_learning_rate * scale, o),
        occupation_sr=kinds[0] == "sr", wavefunction_sr=kinds[1] == "sr")
    key_params, key_pretrain, key_init = jax.random.split(jax.random.key(r.seed), 3)
    params = jax.eval_shape(problem.init_params, key_params)
    template = jax.eval_shape(lambda k, p: trainer.init(k, p, 0), key_init, params)
    step, place = _placed(trainer.step, template, config.sampler.batch, devices)

    def init():
        params, rows = jax.jit(problem.init_params)(key_params), []
        if r.pretrain_steps and temperature > 0:
            from fermiflow.pretrain import pretrain

            occupation, history = pretrain(
                key_pretrain, problem.occupation_model, problem.mode_energies,
                temperature=temperature, n_steps=r.pretrain_steps, batch=config.sampler.batch,
                optimizer=optax.adam(r.pretrain_learning_rate), params=params.occupation,
                clip_width=o.clip_width)
            params = params._replace(occupation=occupation)
            rows = [dict(step=i, **row) for i, row in enumerate(_rows(history._asdict()))]
        state = jax.jit(trainer.init, static_argnums=2)(key_init, params,
                                                        config.sampler.n_thermalize)
        return gather(state), rows

    evaluate = jax.jit(make_evaluate(sampler, loss), static_argnums=3)

    def final(state):
        key = jax.random.fold_in(state.key, 1)
        _, values, _ = evaluate(key, state.sampler_state, state.params, r.n_eval_steps)
        return blocked_estimates(gather(values), temperature)

    counts = {"occupation": _n_params(params.occupation),
              "wavefunction": _n_params(params.wavefunction)}
    return Engine(init, step, template, place, _quantum_rows, final,
                  quantum_reference(problem), {}, problem.n, counts, (problem, sampler, loss))


def _build_classical(config: Config, system: Any, scale: float,
                     devices: list | None) -> Engine:
    from fermiflow.classical import classical_adam, make_classical_evaluator, make_classical_step
    from fermiflow.hamiltonians.harmonic import make_classical_coulomb_gas_energy
    from fermiflow.models.classical_flow import make_classical_flow

    m, s, r, o = config.model, config.sampler, config.run, config.optimizer
    n, dim, temperature = system.n, system.dim, system.temperature
    flow = make_classical_flow(n=n, dim=dim, base_scale=m.base_scale, depth=m.depth,
                               width_one=m.width_one, width_two=m.width_two,
                               init_scale=m.init_scale)
    energy = make_classical_coulomb_gas_energy(dim=dim, omega=system.omega,
                                               coupling=system.coupling)
    trainer = make_classical_step(flow, energy, temperature=temperature, batch=s.batch,
                                  optimizer=classical_adam(o.wavefunction_learning_rate * scale))
    key_params, key_init = jax.random.split(jax.random.key(r.seed))
    x = jnp.zeros((n, dim))
    params = jax.eval_shape(flow.init, key_params, x)
    template = jax.eval_shape(trainer.init, key_init, params)
    step, place = _placed(trainer.step, template, s.batch, devices)

    def init():
        return gather(trainer.init(key_init, jax.jit(flow.init)(key_params, x))), []

    evaluate = jax.jit(make_classical_evaluator(flow, energy, temperature=temperature,
                                                batch=s.batch, n_chunks=r.n_eval_steps))

    def final(state):
        e = gather(evaluate(jax.random.fold_in(state.key, 1), state.params))
        estimates = {q: (float(mean), float(err)) for q, (mean, err) in
                     {"F": (e.free_energy, e.free_energy_err), "E": (e.energy, e.energy_err),
                      "S": (e.entropy, e.entropy_err)}.items()}
        total = s.batch * r.n_eval_steps
        return estimates, {"n_samples": total - int(e.n_nonfinite),
                           "n_excluded_samples": int(e.n_nonfinite),
                           "errors": "standard errors of independent exact samples"}

    reference, exact = classical_reference(system)
    return Engine(init, step, template, place, _classical_rows, final, reference, exact, n,
                  {"flow": _n_params(params)})


def build_engine(
    config: Config, *, learning_rate_scale: float = 1.0, devices: list | None = None
) -> Engine:
    """Build the models, sampler, loss, optimizers and the jitted step of a config.

    Args:
      config: a resolved :class:`Config` (see :func:`fermiflow.config.resolve`).
      learning_rate_scale: factor on every learning rate (rollbacks lower it).
      devices: the devices of the walker mesh (default: all of ``jax.devices()``).

    Returns:
      An :class:`Engine`; nothing is compiled until its functions are called.

    Raises:
      ValueError: for a config the models reject, or a batch that the devices do
        not divide.

    Examples:
      >>> from fermiflow.config import load_config
      >>> engine = build_engine(load_config(None))  # doctest: +SKIP
      >>> state, _ = engine.init()  # doctest: +SKIP
      >>> state, metrics = engine.step(engine.place(state))  # doctest: +SKIP
    """
    system = make_system(config)
    if config.system.kind == "classical":
        if config.optimizer.wavefunction != "adam":
            raise ValueError("the classical gas trains its flow with Adam: set "
                             "optimizer.wavefunction = 'adam'.")
        return _build_classical(config, system, learning_rate_scale, devices)
    return _build_quantum(config, system, learning_rate_scale, devices)

"""The one builder: a resolved config -> (system, problem, sampler, loss).

:func:`build_pieces` is the only place that turns config tables into model, sampler
and loss objects. The run engine (:mod:`fermiflow.run.engine`) adds optimizers, the
trainer and device placement on top; ``fermiflow observe``, the benchmarks and the
tests call it directly, so every path builds the same objects from the same config.

The classical Coulomb gas has no p(K), Psi_K or Markov chain; its flow and energy
are built by :func:`build_classical`.

Units: Hartree atomic units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.hamiltonians.harmonic import make_classical_coulomb_gas_energy
from fermiflow.hamiltonians.kinetic_split import make_flow_kinetic_energy
from fermiflow.models.classical_flow import ClassicalFlow, make_classical_flow
from fermiflow.models.density_matrix import QuantumProblem, make_quantum_problem
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.run.config import Config, make_system
from fermiflow.sampling.dpp import make_plane_wave_dpp_sampler
from fermiflow.sampling.dpp_trap import make_oscillator_dpp_sampler
from fermiflow.sampling.exact_latent import make_exact_latent_joint_sampler
from fermiflow.sampling.joint import JointSampler, make_joint_sampler
from fermiflow.sampling.latent import make_latent_joint_sampler
from fermiflow.training.loss import FreeEnergyLoss, make_free_energy_loss

__all__ = [
    "ClassicalPieces",
    "Pieces",
    "build_classical",
    "build_pieces",
    "log_slater_k",
    "reference_energy",
    "sampler_kind",
]


class Pieces(NamedTuple):
    """The static objects of a quantum run.

    Attributes:
      system: the ElectronGas or QuantumDot.
      problem: the :class:`~fermiflow.models.density_matrix.QuantumProblem` (p(K),
        flow, log Psi_K, potential, modes, temperature).
      sampler: the joint (K, x) sampler.
      loss: the free-energy loss (local values and gradients).
    """

    system: Any
    problem: QuantumProblem
    sampler: JointSampler
    loss: FreeEnergyLoss


class ClassicalPieces(NamedTuple):
    """The static objects of a classical-gas run: system, flow density and energy."""

    system: Any
    flow: ClassicalFlow
    energy: Callable


def log_slater_k(problem: QuantumProblem) -> Callable:
    """Return log D_K(zeta) (Psi_K of the identity flow), ``(occ: (n,), zeta: (n, dim)) -> ()``."""
    slater = make_log_psi(orbitals=problem.orbitals, flow_apply=make_identity_flow().apply,
                          n_up=problem.n_up, n_down=problem.n_down,
                          spin_adapted=problem.spin_adapted)
    return lambda occ, zeta: slater({}, occ, zeta)


def reference_energy(config: Config, problem: QuantumProblem) -> Callable | None:
    """Return E0(K), ``occ: (batch, n) -> (batch,)``, with optimizer.control_variate, else None."""
    if not config.optimizer.control_variate:
        return None
    energies = jnp.asarray(problem.mode_energies)
    return lambda occ: energies[occ].sum(-1)


def _problem(config: Config, system: Any) -> QuantumProblem:
    m = config.model
    occupation_options = {"categorical": {"max_excitation": m.max_excitation},
                          "transformer": dict(n_layers=m.n_layers, model_size=m.model_size,
                                              n_heads=m.n_heads, hidden=m.hidden,
                                              param_dtype=jnp.float64)}.get(m.occupation)
    flow_options = {
        "backflow": dict(depth=m.depth, width_one=m.width_one, width_two=m.width_two,
                         n_frequencies=m.n_frequencies, init_scale=m.init_scale,
                         radial_blocks=m.radial_blocks, free_displacement=m.free_displacement,
                         pair_field=m.pair_field,
                         certify=None if m.certify else False),
        "ode": dict(n_steps=m.ode_steps, hidden=m.width_one, init_scale=m.init_scale),
    }.get(m.flow)
    return make_quantum_problem(system, occupation=m.occupation,
                                occupation_options=occupation_options, flow=m.flow,
                                flow_options=flow_options,
                                occupation_symmetry=m.occupation_symmetry,
                                spin_adapted=m.spin_adapted, parity_flows=m.parity_flows,
                                momentum_flows=m.momentum_flows)


def sampler_kind(config: Config) -> str:
    """Return the sampler a config uses: "auto" resolves to "exact" where it applies.

    Exact i.i.d. sampling (:mod:`fermiflow.sampling.exact_latent`: K ~ p(K), zeta from
    the determinantal point process of D_K, x = T^-1(zeta)) applies when |Psi_K|^2 is
    |D_K(T(x))|^2 |det J| with a residual flow that the fixed-point inverse handles:
    the backflow or the identity flow, and Psi_K a single product (not spin-adapted).
    Elsewhere "auto" is the latent-space Metropolis sampler (box) or Metropolis (trap,
    an uncertified box backflow, whose inverse need not exist, and several flows).
    """
    kind, model = config.sampler.kind, config.model
    if kind != "auto":
        return kind
    one_flow = model.certify and not (model.parity_flows or model.momentum_flows)
    if model.flow in ("backflow", "identity") and not model.spin_adapted and one_flow:
        return "exact"
    if config.system.kind == "electron_gas" and one_flow:
        return "latent"
    return "metropolis"


def _latent_dpp(problem: QuantumProblem):
    system = problem.system
    if problem.box_length is not None:
        return make_plane_wave_dpp_sampler(
            modes_wavevectors=system.spectrum.wavevectors, box_length=problem.box_length,
            n_up=problem.n_up, n_down=problem.n_down)
    return make_oscillator_dpp_sampler(quantum_numbers=system.spectrum.quantum_numbers,
                                       omega=system.omega, n_up=problem.n_up,
                                       n_down=problem.n_down)


def _sampler(config: Config, problem: QuantumProblem) -> JointSampler:
    s, kind = config.sampler, sampler_kind(config)
    if kind == "exact":
        # One walker at a time: a vmapped rejection loop runs every walker as long as
        # the slowest on a CPU; on an accelerator a chunk of walkers is faster.
        chunk = 1 if jax.default_backend() == "cpu" else None
        return make_exact_latent_joint_sampler(
            problem.occupation_model, _latent_dpp(problem), problem.flow.apply,
            batch=s.batch, n=problem.n, dim=problem.dim, box_length=problem.box_length,
            map_batch_size=chunk)
    common = dict(batch=s.batch, n=problem.n, dim=problem.dim, box_length=problem.box_length,
                  kernel=s.kernel, n_sweeps=s.n_sweeps, n_extra_sweeps=s.n_extra_sweeps,
                  width=s.width, target_acceptance=s.target_acceptance)
    if kind == "metropolis":
        return make_joint_sampler(problem.occupation_model, problem.log_psi, **common)
    return make_latent_joint_sampler(problem.occupation_model, log_slater_k(problem),
                                     problem.flow.apply, **common)


def _loss(config: Config, problem: QuantumProblem) -> FreeEnergyLoss:
    o = config.optimizer
    kinetic = None
    if o.kinetic == "split":
        kinetic = make_flow_kinetic_energy(log_slater_k(problem), problem.flow.apply,
                                           n_probes=o.n_probes)
    return make_free_energy_loss(problem.occupation_model.log_prob, problem.log_psi,
                                 problem.potential, temperature=problem.temperature,
                                 clip_width=o.clip_width, n_micro_batches=o.n_micro_batches,
                                 laplacian=o.laplacian, kinetic_energy=kinetic,
                                 reference_energy=reference_energy(config, problem))


def build_pieces(config: Config) -> Pieces:
    """Build the system, models, sampler and loss of a quantum config.

    Args:
      config: a resolved :class:`~fermiflow.run.config.Config` of an electron gas or
        a quantum dot.

    Returns:
      :class:`Pieces`; nothing is compiled.

    Raises:
      ValueError: for a classical config (use :func:`build_classical`) or options the
        models reject.

    Examples:
      >>> from fermiflow.run.config import load_config
      >>> pieces = build_pieces(load_config(None, ["sampler.batch=8"]))
      >>> pieces.problem.n, type(pieces.system).__name__
      (3, 'QuantumDot')
    """
    if config.system.kind == "classical":
        raise ValueError("the classical gas has no p(K) or Psi_K: use build_classical(config).")
    system = make_system(config)
    problem = _problem(config, system)
    return Pieces(system, problem, _sampler(config, problem), _loss(config, problem))


def build_classical(config: Config) -> ClassicalPieces:
    """Build the system, flow density and energy of a classical-gas config.

    Raises:
      ValueError: for a quantum config.
    """
    if config.system.kind != "classical":
        raise ValueError(f"build_classical needs system.kind = 'classical', got "
                         f"{config.system.kind!r}; use build_pieces(config).")
    m, system = config.model, make_system(config)
    flow = make_classical_flow(n=system.n, dim=system.dim, base_scale=m.base_scale,
                               depth=m.depth, width_one=m.width_one, width_two=m.width_two,
                               init_scale=m.init_scale)
    energy = make_classical_coulomb_gas_energy(dim=system.dim, omega=system.omega,
                                               coupling=system.coupling)
    return ClassicalPieces(system, flow, energy)

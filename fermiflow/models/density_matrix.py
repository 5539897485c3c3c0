"""A variational problem: a physical system with its models p(K), flow and Psi_K.

``make_quantum_problem`` turns an :class:`~fermiflow.hamiltonians.ElectronGas` or
:class:`~fermiflow.hamiltonians.QuantumDot` into the pieces that the sampler, the
loss and the training step consume: the occupation model p(K) over the system's
single-particle modes, the flow, ``log_psi(params, occ, x)``, the potential energy,
the geometry and the temperature.

Occupation models:
- ``"transformer"``: the set transformer (spinful: the joint up/down chain);
- ``"categorical"``: a softmax over every set whose ideal energy lies within
  ``max_excitation`` (Hartree) of the ground state (small systems, quantum dots);
- ``"ground_state"``: the single lowest-energy closed-shell set (T = 0 VMC).

Units: Hartree atomic units; lengths in Bohr. Validation is eager (ValueError).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.ewald import make_ewald_potential
from fermiflow.hamiltonians.harmonic import make_quantum_dot_potential
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.models.autoregressive import (
    ARModel,
    make_set_transformer,
    make_spinful_set_transformer,
)
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import (
    enumerate_sets,
    enumerate_spinful_sets,
    make_categorical_model,
)
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.ode_flow import make_ode_flow
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.sector_flows import make_sector_select, momentum_class, stacked_flows
from fermiflow.models.symmetry import (
    make_symmetric_model,
    oscillator_symmetries,
    plane_wave_symmetries,
)
from fermiflow.models.wavefunction import closed_shell_occupation, exchange_sign, make_log_psi
from fermiflow.types import Array, Flow, Params, PRNGKey

__all__ = ["JointParams", "QuantumProblem", "make_quantum_problem", "occupation_energies"]

_OCCUPATIONS = ("transformer", "categorical", "ground_state")
_FLOWS = ("backflow", "identity", "ode")


class JointParams(NamedTuple):
    """Parameters of rho = sum_K p(K) |Psi_K><Psi_K|.

    Attributes:
      occupation: params of the set model p(K).
      wavefunction: params of log Psi_K (the flow).
    """

    occupation: Params
    wavefunction: Params


class QuantumProblem(NamedTuple):
    """The static pieces of one variational calculation.

    Attributes:
      system: the physical system (frozen dataclass).
      n_up: up electrons (first in x and in occ).
      n_down: down electrons.
      dim: spatial dimension.
      box_length: side L in Bohr, or None for a trap.
      temperature: T in Hartree (0 with the "ground_state" occupation).
      mode_energies: (m,) single-particle energies in Hartree.
      occupation_model: the set model p(K).
      flow: the bijection of the electron coordinates.
      log_psi: ``(flow_params, occ: (n,), x: (n, dim)) -> ()`` complex log Psi_K.
      potential: ``x: (n, dim) -> ()`` potential energy in Hartree.
      orbitals: ``(modes: (k,), r: (k, dim)) -> (k, k)`` single-particle orbitals.
      occupation_states: (S, n) the sets of a categorical or ground-state model,
        None for the transformer (all C(m, n) sets).
      spin_adapted: whether Psi_K are spin-block exchange combinations.
      single_flow: whether ``flow.apply`` is the flow of every Psi_K (False with
        parity or momentum-class flows, whose params hold several flows).
      base_flow: the flow of one Psi_K (``flow`` itself when single_flow; None for a
        problem built by hand).
      flow_of: ``(flow_params, occ: (n,)) -> params`` of ``base_flow`` that Psi_K uses
        (the identity map of params when single_flow; None for a problem built by hand).
    """

    system: Any
    n_up: int
    n_down: int
    dim: int
    box_length: float | None
    temperature: float
    mode_energies: np.ndarray
    occupation_model: ARModel
    flow: Flow
    log_psi: Callable[..., Array]
    potential: Callable[[Array], Array]
    orbitals: Callable[..., Array]
    occupation_states: np.ndarray | None
    spin_adapted: bool = False
    single_flow: bool = True
    base_flow: Flow | None = None
    flow_of: Callable[[Params, Array], Params] | None = None

    @property
    def n(self) -> int:
        """Total number of electrons."""
        return self.n_up + self.n_down

    def init_params(self, key: PRNGKey, dtype=jnp.float64):
        """Return (occupation_params, flow_params) initialised from ``key``."""
        key_occ, key_flow = jax.random.split(key)
        x = jnp.zeros((self.n, self.dim), dtype)
        if self.box_length is not None:
            x = x + jnp.arange(self.n, dtype=dtype)[:, None] * (self.box_length / self.n)
        else:
            x = x + jnp.arange(self.n, dtype=dtype)[:, None] * 0.3
        return JointParams(self.occupation_model.init(key_occ), self.flow.init(key_flow, x))


def occupation_energies(mode_energies: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Return the ideal energies sum_{k in K} eps_k of occupations.

    Args:
      mode_energies: (m,) single-particle energies.
      occ: (batch, n) mode indices (both spin blocks index the same table).

    Returns:
      (batch,) energies.
    """
    return np.asarray(mode_energies)[np.asarray(occ)].sum(-1)


def _occupation_model(kind, system, energies, temperature, options):
    n_up, n_down, m = system.n_up, system.n_down, len(energies)
    if kind == "transformer":
        if temperature > 0 and "mode_bias" not in options:  # start near Boltzmann weights
            options = {**options, "mode_bias": -(energies - energies.min()) / temperature}
        if n_down == 0:
            return make_set_transformer(n_modes=m, n_particles=n_up, **options), None
        model = make_spinful_set_transformer(n_modes=m, n_up=n_up, n_down=n_down, **options)
        return model, None
    if kind == "ground_state":
        states = closed_shell_occupation(system.spectrum, n_up, n_down)[None, :]
    else:
        options = dict(options)
        excitation = options.pop("max_excitation", None)
        if excitation is None or not excitation > 0:
            raise ValueError(
                "occupation='categorical' needs max_excitation > 0 (Hartree above the "
                f"ideal ground state), got {excitation}. Use about 10 T = "
                f"{10 * temperature:.3g}."
            )
        if options:
            raise ValueError(f"unknown categorical occupation_options {sorted(options)}.")
        sorted_energies = np.sort(energies)
        ground = float(sorted_energies[:n_up].sum() + sorted_energies[:n_down].sum())
        if n_down == 0:
            states = enumerate_sets(
                m, n_up, max_energy=ground + excitation, energies=energies
            )
        else:
            states = enumerate_spinful_sets(
                m, n_up, n_down, max_energy=ground + excitation, energies=energies
            )
    model = make_categorical_model(states, n_up=n_up, param_dtype=jnp.float64)
    return model, np.asarray(states)


def _parity_pair(flow: Flow) -> Flow:
    """Two independent flows, for the even and the odd exchange sectors."""

    def init(key: PRNGKey, x: Array) -> Params:
        key_even, key_odd = jax.random.split(key)
        return {"even": flow.init(key_even, x), "odd": flow.init(key_odd, x)}

    return Flow(init, lambda params, x: flow.apply(params["even"], x))


def _symmetrized(model: ARModel, system: ElectronGas | QuantumDot) -> ARModel:
    quantum_numbers = system.spectrum.quantum_numbers
    if isinstance(system, ElectronGas):
        maps = plane_wave_symmetries(quantum_numbers, system.twist)
    else:
        maps = oscillator_symmetries(quantum_numbers)
    if maps.shape[0] == 1:
        return model
    species = tuple(n for n in (system.n_up, system.n_down) if n)
    return make_symmetric_model(model, maps, species=species)


def make_quantum_problem(
    system: ElectronGas | QuantumDot,
    *,
    occupation: str = "transformer",
    occupation_options: dict | None = None,
    flow: str = "backflow",
    flow_options: dict | None = None,
    occupation_symmetry: bool = True,
    spin_adapted: bool = False,
    parity_flows: bool = False,
    momentum_flows: bool = False,
) -> QuantumProblem:
    """Build the models and energies of an electron gas or a quantum dot.

    Args:
      system: static, an ElectronGas (periodic box, Ewald energy) or a QuantumDot
        (harmonic trap, scaled Coulomb repulsion).
      occupation: static, "transformer", "categorical" or "ground_state".
      occupation_options: static, keyword arguments of the occupation model
        (``max_excitation`` in Hartree for "categorical").
      flow: static, "backflow", "identity" or "ode" (the neural-ODE flow; folx cannot
        trace its RK4 loop, so its kinetic energy needs the "jvp_loop" Laplacian).
      flow_options: static, keyword arguments of :func:`make_backflow` or
        :func:`~fermiflow.models.ode_flow.make_ode_flow`.
      occupation_symmetry: static, average p(K) over the mode permutations of the
        system's symmetry group (:mod:`fermiflow.models.symmetry`), so that symmetry-
        related degenerate modes have equal occupations exactly (finite T only).
      spin_adapted: static, n_up = n_down only: Psi_K are the +- combinations of the
        determinant products under exchange of the spin blocks (singlet/triplet for
        two electrons, :func:`~fermiflow.models.wavefunction.make_log_psi`), with a
        flow that treats all electrons alike (``spin_symmetric``).
      parity_flows: static, with spin_adapted: separate flows for the even and the odd
        exchange sectors (the flow params are ``{"even": ..., "odd": ...}`` and
        ``flow.apply`` is the even sector's; see ``make_log_psi``).
      momentum_flows: static, box only: one flow per parity class of the total
        momentum (:mod:`fermiflow.models.sector_flows`; with parity_flows, per exchange
        sector and class).

    Returns:
      A :class:`QuantumProblem`.

    Raises:
      ValueError: for an unknown system, occupation or flow, or bad options.

    Examples:
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=1.0, n_shells=2)
      >>> problem = make_quantum_problem(dot, occupation="ground_state")
      >>> problem.n, problem.temperature, problem.box_length
      (2, 0.0, None)
    """
    if occupation not in _OCCUPATIONS:
        raise ValueError(f"occupation must be one of {_OCCUPATIONS}, got {occupation!r}.")
    if flow not in _FLOWS:
        raise ValueError(f"flow must be one of {_FLOWS}, got {flow!r}.")
    if isinstance(system, ElectronGas):
        box_length = system.box_length
        potential = make_ewald_potential(dim=system.dim, box_length=box_length)
        orbitals = make_plane_wave_orbitals(system.spectrum, box_length)
    elif isinstance(system, QuantumDot):
        box_length = None
        potential = make_quantum_dot_potential(
            dim=system.dim, omega=system.omega, coupling=system.coupling
        )
        orbitals = make_oscillator_orbitals(system.spectrum, system.omega)
    else:
        raise ValueError(
            f"system must be an ElectronGas or a QuantumDot, got {type(system).__name__}. "
            "The classical Coulomb gas is trained by fermiflow.training.classical."
        )
    energies = np.asarray(system.spectrum.energies, dtype=np.float64)
    temperature = 0.0 if occupation == "ground_state" else 1.0 / system.beta
    model, states = _occupation_model(
        occupation, system, energies, temperature, occupation_options or {}
    )
    if occupation_symmetry and occupation != "ground_state":
        model = _symmetrized(model, system)
    if spin_adapted and system.n_up != system.n_down:
        raise ValueError(f"spin_adapted=True needs n_up = n_down, got {system.n_up} and "
                         f"{system.n_down}; pass spin_adapted=False.")
    if flow == "identity":
        if flow_options:
            raise ValueError(f"flow='identity' takes no flow_options, got {flow_options}.")
        flow_model = make_identity_flow()
    elif flow == "ode":
        flow_model = make_ode_flow(
            n_up=system.n_up, n_down=system.n_down, dim=system.dim,
            box_length=box_length, **(flow_options or {}),
        )
    else:
        options = dict(flow_options or {})
        if spin_adapted:
            options["spin_symmetric"] = True
        flow_model = make_backflow(
            n_up=system.n_up, n_down=system.n_down, dim=system.dim,
            box_length=box_length, **options,
        )
    select = None
    if momentum_flows:
        if box_length is None:
            raise ValueError("momentum_flows=True needs a periodic box (a trap does not "
                             "conserve momentum); pass momentum_flows=False.")
        sector_of, n_sectors = momentum_class(system.spectrum.quantum_numbers)
        select = make_sector_select(flow_model, n_sectors, sector_of)
    log_psi = make_log_psi(
        orbitals=orbitals, flow_apply=flow_model.apply,
        n_up=system.n_up, n_down=system.n_down, spin_adapted=spin_adapted,
        parity_flows=parity_flows, flow_select=select,
    )
    base_flow = flow_model
    if momentum_flows:
        flow_model = stacked_flows(flow_model, n_sectors)
    if parity_flows:
        flow_model = _parity_pair(flow_model)
    return QuantumProblem(
        system, system.n_up, system.n_down, system.dim, box_length, temperature,
        energies, model, flow_model, log_psi, potential, orbitals, states, spin_adapted,
        not (parity_flows or momentum_flows), base_flow,
        _flow_of(system.n_up, parity_flows, select),
    )


def _flow_of(n_up: int, parity_flows: bool, select: Callable | None) -> Callable:
    """Return ``(flow_params, occ: (n,)) -> params`` of the single flow that Psi_K uses."""

    def flow_of(params: Params, occ: Array) -> Params:
        if parity_flows:
            even = exchange_sign(occ[:n_up], occ[n_up:]) > 0
            params = jax.tree.map(lambda a, b: jnp.where(even, a, b),
                                  params["even"], params["odd"])
        return params if select is None else select(params, occ)

    return flow_of

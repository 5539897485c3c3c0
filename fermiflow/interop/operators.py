"""NetKet operators for fermiflow's continuum Hamiltonians.

NetKet 3.23 works with particles in continuous space (``netket.experimental.hilbert.
Particle``), continuous operators (``KineticEnergy``, ``PotentialEnergy`` and their
sums) and continuous samplers, but it ships no Ewald-summed Coulomb interaction and no
fermionic continuum model. This module brings fermiflow's Hamiltonians to NetKet:

- :func:`particle_hilbert`: the Hilbert space of an :class:`ElectronGas` (periodic
  cell of side L) or a :class:`QuantumDot` (free space), with the spin species as
  ``N=(n_up, n_down)``. NetKet only records the numbers per species: samplers,
  operators and Hilbert-space equality see the total N, so Particle(N=(2, 1)) equals
  Particle(N=3). Which coordinates are spin up is the model's convention (fermiflow's:
  the first n_up particles).
- :class:`ForwardLaplacianKineticEnergy`: NetKet's ``KineticEnergy(hilbert, mass=1)``
  computed with fermiflow's one-pass forward Laplacian instead of a dense Hessian.
- :func:`ewald_operator`, :func:`quantum_dot_operator`: the potentials as NetKet
  ``PotentialEnergy`` operators; :func:`electron_gas_hamiltonian` and
  :func:`quantum_dot_hamiltonian` add the kinetic energy.

NetKet passes configurations flattened, ``(batch, n * dim)`` with particle-major
order (x_1, y_1, x_2, y_2, ...); fermiflow functions act on ONE configuration
``(n, dim)``. The operators here do that reshaping. Their local values follow
NetKet's convention: complex for a complex log-amplitude.

Importing this module imports NetKet, which turns on float64 in JAX.

Units: Hartree atomic units (hbar = m_e = e = 1); x in Bohr, energies in Hartree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable

import jax.numpy as jnp
from einops import rearrange
from netket.experimental.geometry import Cell, FreeSpace
from netket.experimental.hilbert import Particle
from netket.operator import ContinuousOperator, PotentialEnergy
from netket.utils import HashablePartial, struct

from fermiflow.hamiltonians.ewald import make_ewald_potential
from fermiflow.hamiltonians.harmonic import make_quantum_dot_potential
from fermiflow.hamiltonians.kinetic import chunked_vmap, make_kinetic_energy
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.types import Array, ArrayLike, Params

__all__ = [
    "ForwardLaplacianKineticEnergy",
    "electron_gas_hamiltonian",
    "ewald_operator",
    "particle_hilbert",
    "quantum_dot_hamiltonian",
    "quantum_dot_operator",
]

_METHODS = ("forward_laplacian", "jvp_loop")


def particle_hilbert(system: ElectronGas | QuantumDot) -> Particle:
    """Build the NetKet Hilbert space of a fermiflow system.

    Args:
      system: static, an :class:`ElectronGas` (periodic square or cubic cell of side
        ``system.box_length``) or a :class:`QuantumDot` (open boundaries).

    Returns:
      ``Particle(N=(n_up, n_down), geometry=...)`` with ``size = n * dim``.

    Raises:
      ValueError: if system is neither an ElectronGas nor a QuantumDot.

    Examples:
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=2, n_down=1, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=1.0, n_shells=3)
      >>> hilbert = particle_hilbert(dot)
      >>> hilbert.n_per_spin, hilbert.size, hilbert.geometry.pbc
      ((2, 1), 6, (False, False))
    """
    if isinstance(system, ElectronGas):
        geometry = Cell(d=system.dim, L=system.box_length, pbc=True)
    elif isinstance(system, QuantumDot):
        geometry = FreeSpace(d=system.dim)
    else:
        raise ValueError(
            f"system must be an ElectronGas or a QuantumDot, got {type(system)}."
        )
    return Particle(N=(system.n_up, system.n_down), geometry=geometry)


class ForwardLaplacianKineticEnergy(ContinuousOperator):
    """Kinetic energy -1/2 sum_i nabla_i^2 (mass 1, hbar 1) via fermiflow's Laplacian.

    Its local value on a model ``logpsi(params, x: (batch, n * dim)) -> (batch,)`` is
    -1/2 (lap log psi + (grad log psi)^2), the same as NetKet's
    ``KineticEnergy(hilbert, mass=1.0)``, computed by
    :func:`fermiflow.hamiltonians.kinetic.make_kinetic_energy` (one forward-Laplacian
    pass instead of NetKet's n * dim Hessian columns). The model is called on a batch
    of one configuration, so models that need a batch axis work too.

    Examples:
      >>> import jax.numpy as jnp
      >>> from netket.experimental.geometry import FreeSpace
      >>> from netket.experimental.hilbert import Particle
      >>> hilbert = Particle(N=2, geometry=FreeSpace(d=1))
      >>> kinetic = ForwardLaplacianKineticEnergy(hilbert)
      >>> logpsi = lambda params, x: -0.5 * jnp.sum(x**2, axis=-1)
      >>> kinetic._expect_kernel(logpsi, None, jnp.zeros((3, 2))).tolist()
      [1.0, 1.0, 1.0]
    """

    _method: str = struct.static_field()
    _chunk_size: int | None = struct.static_field()

    def __init__(
        self,
        hilbert: Particle,
        *,
        method: str = "forward_laplacian",
        chunk_size: int | None = None,
    ):
        """Build the operator.

        Args:
          hilbert: static, a NetKet ``Particle`` Hilbert space.
          method: static, "forward_laplacian" (folx, default) or "jvp_loop" (exact
            loop over Hessian-vector products), as in ``make_kinetic_energy``.
          chunk_size: static, walkers per vmap chunk, or None for one vmap.

        Raises:
          ValueError: for an unknown method or a bad chunk_size.
        """
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
        chunked_vmap(lambda params, x: x, chunk_size=chunk_size)  # validates it
        self._method = method
        self._chunk_size = chunk_size
        super().__init__(hilbert, dtype=float)

    @property
    def is_hermitian(self) -> bool:
        """The kinetic energy is Hermitian."""
        return True

    def _expect_kernel(self, logpsi: Callable, params: Params, x: ArrayLike) -> Array:
        """Return the local kinetic energies, shape (batch,), of x: (batch, n * dim)."""
        dim = len(self.hilbert.domain)

        def log_psi_one(params: Params, x_one: Array) -> Array:
            return logpsi(params, rearrange(x_one, "n d -> 1 (n d)"))[0]

        kinetic = make_kinetic_energy(log_psi_one, method=self._method)
        batched = chunked_vmap(kinetic, chunk_size=self._chunk_size)
        return batched(params, rearrange(jnp.asarray(x), "b (n d) -> b n d", d=dim))

    @property
    def _attrs(self) -> tuple[Hashable, ...]:
        return (self.hilbert, self.dtype, self._method, self._chunk_size)

    def __repr__(self) -> str:
        return f"ForwardLaplacianKineticEnergy(method={self._method!r})"


def _flat_potential(energy: Callable[[Array], Array], dim: int, x: Array) -> Array:
    return energy(rearrange(x, "(n d) -> n d", d=dim))


# Cached so that operators of equal systems hold the same function: they compare
# equal and share NetKet's jit caches.
@functools.lru_cache(maxsize=32)
def _ewald_energy(dim: int, box_length: float) -> Callable[[Array], Array]:
    return make_ewald_potential(dim=dim, box_length=box_length)


@functools.lru_cache(maxsize=32)
def _dot_energy(dim: int, omega: float, coupling: float) -> Callable[[Array], Array]:
    return make_quantum_dot_potential(dim=dim, omega=omega, coupling=coupling)


def ewald_operator(system: ElectronGas) -> PotentialEnergy:
    """Build the Ewald Coulomb energy of an electron gas as a NetKet operator.

    Args:
      system: static, the :class:`ElectronGas` (its dim and box_length are used).

    Returns:
      ``PotentialEnergy`` on :func:`particle_hilbert` (system) whose local value at a
      flattened configuration (n * dim,) is
      :func:`fermiflow.hamiltonians.ewald.make_ewald_potential` of it, background and
      Madelung term included.

    Examples:
      >>> import jax.numpy as jnp
      >>> from fermiflow.hamiltonians.systems import ElectronGas
      >>> gas = ElectronGas(n_up=1, n_down=0, dim=2, rs=1.0, theta=1.0, emax=1,
      ...                   twist=(0.0, 0.0))
      >>> value = ewald_operator(gas)._expect_kernel(None, None, jnp.zeros((1, 2)))
      >>> round(float(value[0] * 2 * gas.box_length), 10)  # Madelung, square lattice
      -3.90026492
    """
    energy = _ewald_energy(system.dim, float(system.box_length))
    afun = HashablePartial(_flat_potential, energy, system.dim)
    return PotentialEnergy(particle_hilbert(system), afun)


def quantum_dot_operator(system: QuantumDot) -> PotentialEnergy:
    """Build the trap plus Coulomb energy of a quantum dot as a NetKet operator.

    Args:
      system: static, the :class:`QuantumDot` (its dim, omega and coupling are used).

    Returns:
      ``PotentialEnergy`` on :func:`particle_hilbert` (system) whose local value at a
      flattened configuration (n * dim,) is sum_i omega^2 r_i^2 / 2 +
      coupling sum_{i<j} 1 / r_ij.

    Examples:
      >>> import jax.numpy as jnp
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=2.0, coupling=1.0,
      ...                  beta=1.0, n_shells=2)
      >>> x = jnp.array([[0.0, 0.0, 0.5, 0.0]])
      >>> quantum_dot_operator(dot)._expect_kernel(None, None, x).tolist()
      [2.5]
    """
    energy = _dot_energy(system.dim, float(system.omega), float(system.coupling))
    afun = HashablePartial(_flat_potential, energy, system.dim)
    return PotentialEnergy(particle_hilbert(system), afun)


def electron_gas_hamiltonian(
    system: ElectronGas, *, method: str = "forward_laplacian"
) -> ContinuousOperator:
    """Build H = T + V_Ewald of an electron gas as a NetKet operator.

    Args:
      system: static, the :class:`ElectronGas`.
      method: static, Laplacian method of :class:`ForwardLaplacianKineticEnergy`.

    Returns:
      A NetKet ``SumOperator`` of the kinetic and :func:`ewald_operator` terms.

    Examples:
      >>> from fermiflow.hamiltonians.systems import ElectronGas
      >>> gas = ElectronGas(n_up=2, n_down=0, dim=2, rs=1.0, theta=1.0, emax=1,
      ...                   twist=(0.0, 0.0))
      >>> len(electron_gas_hamiltonian(gas).operators)
      2
    """
    kinetic = ForwardLaplacianKineticEnergy(particle_hilbert(system), method=method)
    return kinetic + ewald_operator(system)


def quantum_dot_hamiltonian(
    system: QuantumDot, *, method: str = "forward_laplacian"
) -> ContinuousOperator:
    """Build H = T + V_trap + V_Coulomb of a quantum dot as a NetKet operator.

    Args:
      system: static, the :class:`QuantumDot`.
      method: static, Laplacian method of :class:`ForwardLaplacianKineticEnergy`.

    Returns:
      A NetKet ``SumOperator`` of the kinetic and :func:`quantum_dot_operator` terms.

    Examples:
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=1.0, n_shells=2)
      >>> len(quantum_dot_hamiltonian(dot).operators)
      2
    """
    kinetic = ForwardLaplacianKineticEnergy(particle_hilbert(system), method=method)
    return kinetic + quantum_dot_operator(system)

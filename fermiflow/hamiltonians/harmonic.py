"""Charges in an isotropic harmonic trap: the quantum dot and the classical Coulomb gas.

Both share the potential energy

    V(x) = sum_i omega^2 |r_i|^2 / 2 + coupling * sum_{i<j} 1 / |r_i - r_j|

with open boundaries. The quantum dot adds the kinetic energy of
:mod:`fermiflow.hamiltonians.kinetic`; the classical gas minimizes the free energy
E_{x~p}[T ln p(x) + V(x)] over densities p. The spin numbers do not enter here.

Units: Hartree atomic units; x in Bohr, omega and energies in Hartree. Acts on ONE
configuration x: (n, dim); vmap over walkers at the call site.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from fermiflow.hamiltonians.coulomb import make_coulomb_pair_energy
from fermiflow.types import Array, ArrayLike
from fermiflow.validation import check_dim, check_positive

__all__ = ["make_classical_coulomb_gas_energy", "make_quantum_dot_potential"]

PotentialFn = Callable[[ArrayLike], Array]


def _make_trapped_coulomb_energy(dim: int, omega: float, coupling: float):
    dim = check_dim(dim, allowed=(1, 2, 3))
    omega = check_positive("omega", omega, "The trap frequency must be positive.")
    pair_energy = make_coulomb_pair_energy(coupling=coupling)  # validates coupling
    if dim == 1 and coupling > 0:
        raise ValueError(
            "dim=1 is only supported with coupling=0: the bare 1 / |x| repulsion in "
            "one dimension needs a regularized (soft-core) interaction. Use dim=2 or "
            "dim=3, or coupling=0."
        )
    interacting = coupling > 0

    def energy(x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[-1] != dim:
            raise ValueError(
                f"x must be ONE configuration of shape (n, {dim}), got {x.shape}."
            )
        trap = jnp.asarray(0.5 * omega**2, x.dtype) * jnp.sum(x * x)
        # coupling=0 skips the pair sum, so coinciding particles stay finite.
        return trap + pair_energy(x) if interacting else trap

    return energy


def make_quantum_dot_potential(
    *, dim: int, omega: float, coupling: float
) -> PotentialFn:
    """Build the potential of electrons in a harmonic quantum dot.

    Args:
      dim: static, 2 or 3 (1 only with coupling=0).
      omega: static, trap frequency (> 0).
      coupling: static, Coulomb strength (>= 0; 1 for bare electrons, 0 for free
        fermions in the trap).

    Returns:
      x: (n, dim) -> () potential energy, in the dtype of x.

    Raises:
      ValueError: for dim outside (1, 2, 3), omega <= 0, coupling < 0, or dim=1
        with coupling > 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> potential = make_quantum_dot_potential(dim=2, omega=2.0, coupling=1.0)
      >>> float(potential(jnp.array([[0.0, 0.0], [0.5, 0.0]])))
      2.5
    """
    return _make_trapped_coulomb_energy(dim, omega, coupling)


def make_classical_coulomb_gas_energy(
    *, dim: int, omega: float = 1.0, coupling: float = 1.0
) -> PotentialFn:
    """Build the energy H(x) of a classical Coulomb gas in a harmonic trap.

    H has the form of :func:`make_quantum_dot_potential`; the classical
    variational problem minimizes E_{x~p}[T ln p(x) + H(x)] over densities p.

    Args:
      dim: static, 2 or 3 (1 only with coupling=0).
      omega: static, trap frequency (> 0).
      coupling: static, Coulomb strength (>= 0).

    Returns:
      x: (n, dim) -> () energy H(x), in the dtype of x.

    Raises:
      ValueError: for dim outside (1, 2, 3), omega <= 0, coupling < 0, or dim=1
        with coupling > 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> energy = make_classical_coulomb_gas_energy(dim=3)
      >>> float(energy(jnp.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])))
      1.5
    """
    return _make_trapped_coulomb_energy(dim, omega, coupling)

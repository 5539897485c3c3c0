"""Pairwise Coulomb repulsion of point charges in open space (no periodic images).

Units: Hartree atomic units; x in Bohr, energies in Hartree. Acts on ONE
configuration x: (n, dim); vmap over walkers at the call site. For a periodic box
use the Ewald sum instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp

from fermiflow.types import Array, ArrayLike

__all__ = ["make_coulomb_pair_energy"]


def _check_coupling(coupling: float) -> float:
    """Return ``float(coupling)`` or raise if it is not a finite number >= 0."""
    coupling = float(coupling)
    if not (math.isfinite(coupling) and coupling >= 0):
        raise ValueError(
            f"coupling must be a finite number >= 0, got {coupling}. Use 1.0 for "
            "the bare Coulomb repulsion, 0.0 to turn it off."
        )
    return coupling


def _pair_distances(x: Array) -> tuple[Array, Array]:
    """Return the distance matrix with a safe diagonal, and the off-diagonal mask.

    Args:
      x: (n, dim) positions.

    Returns:
      ``(r, off_diagonal)``: (n, n) distances |r_i - r_j| with ones on the diagonal,
      and the (n, n) boolean mask i != j.
    """
    n = x.shape[0]
    diff = x[:, None, :] - x[None, :, :]
    r_squared = jnp.sum(diff * diff, axis=-1)
    off_diagonal = ~jnp.eye(n, dtype=bool)
    # The diagonal has r = 0, and d sqrt(r^2) / d r^2 is infinite there: even when
    # the diagonal is dropped afterwards, 0 * inf = NaN poisons every gradient.
    # Setting r^2 = 1 on the diagonal BEFORE the square root keeps it finite.
    r_squared = jnp.where(off_diagonal, r_squared, jnp.ones_like(r_squared))
    return jnp.sqrt(r_squared), off_diagonal


def make_coulomb_pair_energy(*, coupling: float = 1.0) -> Callable[[ArrayLike], Array]:
    """Build the open-boundary Coulomb energy sum_{i<j} coupling / |r_i - r_j|.

    Args:
      coupling: static, strength of the repulsion (>= 0; 1 for electrons).

    Returns:
      x: (n, dim) -> () pair energy in the dtype of x (0 for n = 1).

    Raises:
      ValueError: if coupling is negative or not finite.

    Examples:
      >>> import jax.numpy as jnp
      >>> energy = make_coulomb_pair_energy(coupling=2.0)
      >>> float(energy(jnp.array([[0.0, 0.0], [0.0, 4.0]])))
      0.5
    """
    coupling = _check_coupling(coupling)

    def energy(x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        r, off_diagonal = _pair_distances(x)
        inverse = jnp.where(off_diagonal, 1 / r, jnp.zeros_like(r))
        # Each pair appears twice in the full (n, n) matrix.
        return jnp.asarray(0.5 * coupling, x.dtype) * jnp.sum(inverse)

    return energy

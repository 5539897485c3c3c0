"""Pair and one-particle features for permutation-equivariant flows.

Two geometries: a periodic box of side ``L`` (``box_length``) and free space (a
harmonic trap, ``box_length=None``). In the box every feature depends on the
differences r_ij = x_i - x_j only, through periodic functions, so a flow built on them
is translation-equivariant and commutes with lattice shifts of single particles. In
free space the features are rotation-invariant scalars (|r_i|^2, |r_ij|), and the flows
move particles along the vectors r_i and r_ij, so they are rotation-equivariant.

Units: Hartree atomic units, lengths in Bohr. Acts on a single configuration
``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from einops import rearrange

from fermiflow.types import Array

__all__ = [
    "PairGeometry",
    "displacement_geometry",
    "displacement_harmonics",
    "displacements",
    "pair_geometry",
    "periodic_harmonics",
    "spin_feature",
]


class PairGeometry(NamedTuple):
    """Displacements and distances of all pairs of one configuration.

    Attributes:
      direction: (n, n, dim) vector along which particle j pushes particle i: r_ij in
        free space, (L / 2 pi) sin(2 pi r_ij / L) in the box (periodic, ~r_ij for small
        r_ij). Zero on the diagonal.
      distance: (n, n) |r_ij| in free space, the smooth periodic distance
        (L / pi) sqrt(sum_d sin^2(pi r_ij,d / L)) in the box. Zero on the diagonal.
    """

    direction: Array
    distance: Array


def spin_feature(n_up: int, n_down: int, dtype) -> Array:
    """Return +1 for the ``n_up`` first particles and -1 for the ``n_down`` last.

    Args:
      n_up: static, number of spin-up particles (they come first).
      n_down: static, number of spin-down particles.
      dtype: dtype of the result.

    Returns:
      (n, 1) spin feature, n = n_up + n_down.
    """
    return jnp.concatenate(
        [jnp.ones((n_up, 1), dtype), -jnp.ones((n_down, 1), dtype)], axis=0
    )


def _masked_norm(squared: Array) -> Array:
    """Sqrt of an (n, n) array of squared distances with a zero diagonal.

    The diagonal is replaced by one before the sqrt so that neither the value nor the
    gradient is NaN there, then set back to zero.
    """
    eye = jnp.eye(squared.shape[0], dtype=squared.dtype)
    return jnp.sqrt(squared + eye) * (1 - eye)


def displacements(x: Array) -> Array:
    """Return the (n, n, dim) pair displacements r_ij = x_i - x_j of (n, dim) positions."""
    return x[:, None, :] - x[None, :, :]


def displacement_geometry(r: Array, box_length: float | None) -> PairGeometry:
    """Return the pair directions and distances of (n, n, dim) displacements r_ij.

    Every entry (i, j) depends on r_ij alone (the diagonal mask is a constant), so
    derivatives with respect to r act pair by pair; see
    :mod:`fermiflow.models.jets`.

    Args:
      r: (n, n, dim) displacements, zero on the diagonal.
      box_length: static, side L of the periodic box, or None for free space.

    Returns:
      A :class:`PairGeometry` with (n, n, dim) directions and (n, n) distances.
    """
    if box_length is None:
        return PairGeometry(direction=r, distance=_masked_norm(jnp.sum(r**2, -1)))
    length = jnp.asarray(box_length, r.dtype)
    phase = jnp.pi * r / length
    # sin(2a) / 2 = sin(a) cos(a): periodic, odd, and exactly zero on the diagonal.
    direction = (length / jnp.pi) * jnp.sin(phase) * jnp.cos(phase)
    distance = (length / jnp.pi) * _masked_norm(jnp.sum(jnp.sin(phase) ** 2, -1))
    return PairGeometry(direction=direction, distance=distance)


def pair_geometry(x: Array, box_length: float | None) -> PairGeometry:
    """Return the pair directions and distances of one configuration.

    Args:
      x: (n, dim) positions.
      box_length: static, side L of the periodic box, or None for free space.

    Returns:
      A :class:`PairGeometry` with (n, n, dim) directions and (n, n) distances.
    """
    return displacement_geometry(displacements(x), box_length)


def displacement_harmonics(r: Array, box_length: float, n_frequencies: int) -> Array:
    """Return cos and sin of 2 pi m r_ij,d / L for m = 1..n_frequencies.

    Args:
      r: (n, n, dim) displacements.
      box_length: static, side L of the periodic box.
      n_frequencies: static, number of harmonics m.

    Returns:
      (n, n, 2 * n_frequencies * dim) features, periodic in every r_ij,d.
    """
    m = jnp.arange(1, n_frequencies + 1, dtype=r.dtype)
    phase = (2 * jnp.pi / jnp.asarray(box_length, r.dtype)) * r[..., None] * m
    phase = rearrange(phase, "i j d m -> i j (d m)")
    return jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], axis=-1)


def periodic_harmonics(x: Array, box_length: float, n_frequencies: int) -> Array:
    """Return cos and sin of 2 pi m r_ij,d / L for m = 1..n_frequencies.

    Args:
      x: (n, dim) positions.
      box_length: static, side L of the periodic box.
      n_frequencies: static, number of harmonics m.

    Returns:
      (n, n, 2 * n_frequencies * dim) features, periodic in every r_ij,d.
    """
    return displacement_harmonics(displacements(x), box_length, n_frequencies)

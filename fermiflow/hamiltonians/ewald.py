"""Coulomb energy of the uniform electron gas in 2D and 3D by Ewald summation.

n unit charges interact through 1/r (also in 2D: electrons in a plane) in a periodic
square or cubic box of side L with a uniform neutralizing background. The energy of
one configuration is

  E = 1/2 sum_{i,j} sum_n' v(r_ij + n L) - background terms,

where the prime drops n = 0 for i = j, so every electron also meets its own images.
Splitting 1/r = erfc(alpha r)/r + erf(alpha r)/r gives, with V = L^dim,

  E = sum_{i<j} sum_n erfc(alpha |r_ij + nL|) / |r_ij + nL|
      + n [1/2 sum_{n != 0} erfc(alpha |nL|) / |nL| - alpha / sqrt(pi)]
      + 1/(2V) sum_{0 < |k|} v_alpha(k) |rho_k|^2 - c_alpha n^2,

with rho_k = sum_i exp(i k.r_i), k = 2 pi m / L, and

  3D: v_alpha(k) = 4 pi exp(-k^2 / (4 alpha^2)) / k^2,  c_alpha = pi / (2 V alpha^2),
  2D: v_alpha(k) = 2 pi erfc(k / (2 alpha)) / k,         c_alpha = sqrt(pi) / (V alpha).

v_alpha is the Fourier transform of erf(alpha r)/r in dim dimensions; c_alpha n^2 is
n^2 / (2V) times the integral of erfc(alpha r)/r over the plane (2 sqrt(pi)/alpha) or
space (pi/alpha^2), the k = 0 part of the short-range sum that the background
cancels; the long-range k = 0 term drops out by neutrality. -alpha/sqrt(pi) removes
the i = j terms of |rho_k|^2 at r = 0. References: de Leeuw, Perram & Smith, Proc. R.
Soc. A 373, 27 (1980) (3D); D. E. Parry, Surf. Sci. 49, 433 (1975) and 54, 195 (1976)
(2D periodicity, charges in the plane z = 0). One electron has E = madelung / (2L),
with madelung = -2.8372974794806 (simple cubic) and -3.9002649200020 (square).

The static tables (images, k-grid, defaults that converge the energy to about 1e-13
relative) are built in :mod:`fermiflow.hamiltonians.ewald_lattice`. The reciprocal
sum costs O(n n_k) through rho_k; the real sum runs over pairs i < j and the lattice
images that reach within real_cutoff of the wrapped displacement.

Units: Hartree atomic units; x in Bohr, energies in Hartree.
Acts on a single configuration; vmap over walkers at the call site.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.ewald_lattice import ewald_tables, madelung_constant
from fermiflow.types import Array, ArrayLike

__all__ = ["madelung_constant", "make_ewald_potential"]


def make_ewald_potential(
    *,
    dim: int,
    box_length: float,
    alpha: float | None = None,
    real_cutoff: float | None = None,
    k_cutoff: float | None = None,
    coupling: float = 1.0,
) -> Callable[[ArrayLike], Array]:
    """Make the Ewald energy of n electrons in a periodic box with background.

    With the defaults the energy is converged to about 1e-13 relative; when alpha is
    given, the default cutoffs follow it and keep that accuracy.

    Args:
      dim: static, 2 or 3.
      box_length: static, side L of the square or cubic box in Bohr.
      alpha: static, Ewald splitting parameter in 1/Bohr; default 11.5 / L in 2D
        and 3.8 / L in 3D (see :mod:`~fermiflow.hamiltonians.ewald_lattice`).
      real_cutoff: static, real-space cutoff in Bohr; default 5.6 / alpha.
      k_cutoff: static, reciprocal-space cutoff in 1/Bohr; default 11.2 alpha.
      coupling: static, factor multiplying the whole energy (e.g. 0 switches the
        interaction off).

    Returns:
      energy(x) with x: (n, dim) positions (any real values, wrapped internally)
      -> () potential energy in Hartree, in the dtype of x.

    Raises:
      ValueError: for a bad dim, box_length, alpha, cutoff or coupling.

    Examples:
      >>> import jax.numpy as jnp
      >>> energy = make_ewald_potential(dim=3, box_length=2.0)
      >>> print(f"{float(energy(jnp.zeros((1, 3)))):.6f}")
      -0.709324
    """
    tables = ewald_tables(
        dim=dim,
        box_length=box_length,
        alpha=alpha,
        real_cutoff=real_cutoff,
        k_cutoff=k_cutoff,
    )
    coupling = float(coupling)
    if not math.isfinite(coupling):
        raise ValueError(f"coupling must be a finite number, got {coupling}.")

    def energy(x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"x must have shape (n, {dim}), got {x.shape}.")
        n = x.shape[0]
        total = (
            _real_space_energy(x, tables.images, tables.alpha, box_length)
            + _reciprocal_energy(x, tables.kweights, box_length)
            + jnp.asarray(n * tables.self_energy - n**2 * tables.background, x.dtype)
        )
        return jnp.asarray(coupling, x.dtype) * total

    return energy


def _real_space_energy(
    x: Array, images: np.ndarray, alpha: float, box_length: float
) -> Array:
    """Sum erfc(alpha d)/d over pairs i < j and images, shape () in x.dtype."""
    first, second = np.triu_indices(x.shape[0], k=1)
    # Only pairs i < j: the i = j distance is never formed, so sqrt never sees a zero
    # and the gradient stays finite (the self-images are the constant self_energy).
    displacement = x[first] - x[second]
    length = jnp.asarray(box_length, x.dtype)
    displacement = displacement - length * jnp.round(displacement / length)
    shifted = displacement[:, None, :] + jnp.asarray(images, x.dtype)
    distance = jnp.sqrt(jnp.sum(shifted**2, axis=-1))
    return jnp.sum(
        jax.scipy.special.erfc(jnp.asarray(alpha, x.dtype) * distance) / distance
    )


def _reciprocal_energy(x: Array, kweights: np.ndarray, box_length: float) -> Array:
    """Sum w_k |rho_k|^2 over the half grid of k-vectors, shape () in x.dtype."""
    k_max = kweights.shape[0] - 1
    dim = x.shape[1]
    # exp(i k.r) factorizes over Cartesian components, so rho_k on the whole grid is
    # a contraction of dim small (n, 2M + 1) tables: O(n M^dim) multiply-adds in one
    # einsum (BLAS), and only n dim (2M + 1) sines and cosines.
    m = jnp.arange(-k_max, k_max + 1, dtype=x.dtype)
    angle = (jnp.asarray(2.0 * np.pi / box_length, x.dtype) * x)[:, :, None] * m
    factor = jax.lax.complex(jnp.cos(angle), jnp.sin(angle))  # (n, dim, 2M + 1)
    operands = [factor[:, 0, k_max:]] + [factor[:, d] for d in range(1, dim)]
    axes = "abc"[:dim]
    rho = jnp.einsum(",".join(f"i{a}" for a in axes) + "->" + axes, *operands)
    power = jnp.real(rho) ** 2 + jnp.imag(rho) ** 2
    return jnp.sum(jnp.asarray(kweights, x.dtype) * power)

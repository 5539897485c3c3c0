"""The Ewald interaction of two electrons as a pair potential with Fourier components.

Units: Hartree atomic units; lengths in Bohr, energies in Hartree. Host-side float64.

For two electrons in the periodic box of side L with the neutralizing background, the
potential of :func:`fermiflow.hamiltonians.ewald.make_ewald_potential` (self-images and
background included) is exactly

  V(x_1, x_2) = phi(x_1 - x_2) + madelung / L,

where phi is the periodic pair potential of zero cell average with Fourier components
phi_G = v(G) / V for G = 2 pi g / L != 0 (v(G) = 2 pi / G in 2D, 4 pi / G^2 in 3D,
V = L^dim) and phi_0 = 0. The Ewald split used to evaluate phi, with any alpha,

  phi(r) = sum_n erfc(alpha |r + n L|) / |r + n L| + sum_(G != 0) w_alpha(G) phi_G e^(iG.r)
           - c_alpha,

has w_alpha(G) = erfc(G / (2 alpha)) (2D) or exp(-G^2 / (4 alpha^2)) (3D) and
c_alpha = (1/V) int erfc(alpha r) / r = 2 sqrt(pi) / (alpha V) (2D), pi / (alpha^2 V)
(3D). See the module docstring of :mod:`fermiflow.hamiltonians.ewald` for references.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from jax.typing import ArrayLike
from scipy.special import erfc

from fermiflow.hamiltonians.ewald_lattice import madelung_constant
from fermiflow.validation import check_dim, check_positive

__all__ = [
    "EwaldPairSplit",
    "ewald_pair_constant",
    "ewald_pair_fourier",
    "ewald_pair_potential",
    "ewald_pair_split",
]

# Terms beyond erfc(x) ~ exp(-x^2) < 1e-17 are dropped: x = 6.
_ACCURACY = 6.0


class EwaldPairSplit(NamedTuple):
    """The long-range part and constants of the Ewald split of phi.

    Attributes:
      alpha: () splitting parameter in 1/Bohr.
      long_range: (2M + 1,) * dim, w_alpha(G) phi_G on the integer grid |g_i| <= M
        (centre at index M), zero at g = 0 and where it is below 1e-17 relative.
      constant: () c_alpha in Hartree.
    """

    alpha: float
    long_range: np.ndarray
    constant: float


def ewald_pair_fourier(g: ArrayLike, *, dim: int, box_length: float) -> np.ndarray:
    """Return the Fourier components phi_G = v(G) / V of the Ewald pair potential.

    Args:
      g: (..., dim) integer reciprocal-lattice labels, G = 2 pi g / L.
      dim: 2 or 3.
      box_length: side L of the box in Bohr.

    Returns:
      (...) phi_G in Hartree, 0 at g = 0.

    Raises:
      ValueError: for a bad dim or box_length, or g not of shape (..., dim).

    Examples:
      >>> float(ewald_pair_fourier([1, 0], dim=2, box_length=2.0 * np.pi))
      0.15915494309189535
    """
    dim = check_dim(dim)
    box_length = check_positive("box_length", box_length)
    g = np.asarray(g, dtype=np.float64)
    if g.shape[-1:] != (dim,):
        raise ValueError(f"g must have shape (..., {dim}), got {g.shape}.")
    norm = 2.0 * np.pi / box_length * np.linalg.norm(g, axis=-1)
    safe = np.where(norm > 0, norm, 1.0)
    kernel = 2.0 * np.pi / safe if dim == 2 else 4.0 * np.pi / safe**2
    return np.where(norm > 0, kernel / box_length**dim, 0.0)


def ewald_pair_constant(*, dim: int, box_length: float) -> float:
    """Return the constant madelung / L of the two-electron Ewald energy in Hartree.

    Examples:
      >>> round(ewald_pair_constant(dim=2, box_length=1.0), 10)
      -3.90026492
    """
    box_length = check_positive("box_length", box_length)
    return madelung_constant(check_dim(dim)) / box_length


def ewald_pair_split(*, dim: int, box_length: float, alpha: float) -> EwaldPairSplit:
    """Return the long-range Fourier table and the constant of the split at alpha.

    Args:
      dim: 2 or 3.
      box_length: side L of the box in Bohr.
      alpha: splitting parameter in 1/Bohr, > 0.

    Returns:
      The :class:`EwaldPairSplit`.

    Raises:
      ValueError: for a bad dim, box_length or alpha.

    Examples:
      >>> ewald_pair_split(dim=2, box_length=1.0, alpha=14.0).long_range.shape
      (55, 55)
    """
    dim = check_dim(dim)
    box_length = check_positive("box_length", box_length)
    alpha = check_positive("alpha", alpha, "Use about 14 / box_length.")
    volume = box_length**dim
    reach = math.ceil(2.0 * alpha * _ACCURACY * box_length / (2.0 * np.pi))
    axis = np.arange(-reach, reach + 1)
    g = np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1)
    norm = 2.0 * np.pi / box_length * np.linalg.norm(g, axis=-1)
    weight = erfc(norm / (2.0 * alpha)) if dim == 2 else np.exp(-((norm / (2.0 * alpha)) ** 2))
    long_range = weight * ewald_pair_fourier(g, dim=dim, box_length=box_length)
    if dim == 2:
        constant = 2.0 * math.sqrt(math.pi) / (alpha * volume)
    else:
        constant = math.pi / (alpha**2 * volume)
    return EwaldPairSplit(alpha, long_range, constant)


def ewald_pair_potential(
    displacement: ArrayLike, *, dim: int, box_length: float, alpha: float | None = None
) -> np.ndarray:
    """Return V = phi(r) + madelung / L for pair displacements r = x_1 - x_2.

    A direct evaluation of the Ewald split above (images and reciprocal vectors to
    1e-17), built from :func:`ewald_pair_fourier`; it equals the two-electron
    :func:`~fermiflow.hamiltonians.ewald.make_ewald_potential` for every alpha.

    Args:
      displacement: (..., dim) displacements in Bohr, any real values.
      dim: 2 or 3.
      box_length: side L of the box in Bohr.
      alpha: splitting parameter in 1/Bohr; default 6 / L.

    Returns:
      (...) two-electron potential energies in Hartree.

    Raises:
      ValueError: for a bad dim or box_length, or displacement not of shape (..., dim).

    Examples:
      >>> v = ewald_pair_potential([[0.5, 0.0], [0.0, 0.5]], dim=2, box_length=1.0)
      >>> bool(np.isclose(v[0], v[1], rtol=1e-13))
      True
    """
    dim = check_dim(dim)
    box_length = check_positive("box_length", box_length)
    alpha = 6.0 / box_length if alpha is None else alpha
    split = ewald_pair_split(dim=dim, box_length=box_length, alpha=alpha)
    r = np.asarray(displacement, dtype=np.float64)
    if r.shape[-1:] != (dim,):
        raise ValueError(f"displacement must have shape (..., {dim}), got {r.shape}.")
    r = r - box_length * np.round(r / box_length)
    reach = math.ceil(_ACCURACY / (alpha * box_length) + 0.5)
    images = box_length * np.array(list(itertools.product(range(-reach, reach + 1), repeat=dim)))
    m = (split.long_range.shape[0] - 1) // 2
    axis = np.arange(-m, m + 1)
    g = np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    flat = r.reshape(-1, dim)
    energy = np.empty(flat.shape[0])
    # Chunks keep the (points, reciprocal vectors) phase table near 64 MB.
    chunk = max(1, 2**23 // g.shape[0])
    for start in range(0, flat.shape[0], chunk):
        part = flat[start : start + chunk]
        distance = np.linalg.norm(part[:, None, :] + images, axis=-1)
        short = np.sum(erfc(alpha * distance) / distance, axis=-1)
        long = np.cos((2.0 * np.pi / box_length) * (part @ g.T)) @ split.long_range.reshape(-1)
        energy[start : start + chunk] = short + long
    constant = ewald_pair_constant(dim=dim, box_length=box_length) - split.constant
    return energy.reshape(r.shape[:-1]) + constant

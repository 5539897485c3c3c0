"""Static tables of the Ewald sum for 1/r in a periodic square or cubic box.

Host-side NumPy (float64): the lattice images of the real-space sum, the weights of
|rho_k|^2 on a grid of reciprocal vectors and the configuration-independent
constants. The traced energy lives in :mod:`fermiflow.hamiltonians.ewald`; the
formulas and references are in its module docstring.

Units: Hartree atomic units, lengths in Bohr.

Defaults. Terms left out beyond ``real_cutoff`` are of order
erfc(alpha real_cutoff), those beyond ``k_cutoff`` of order
exp(-(k_cutoff / (2 alpha))^2) (3D) or erfc(k_cutoff / (2 alpha)) (2D). We take
real_cutoff = 5.6 / alpha and k_cutoff = 11.2 alpha (erfc(5.6) ~ 2e-15,
exp(-5.6^2) ~ 2e-14) for any alpha, which converges energies to about 1e-13
relative (5.0 would give ~1e-11). alpha = kappa / L with kappa chosen for speed on
CPU, where one erfc costs several complex multiply-adds of the rho_k contraction:

  2D: kappa = 11.5, real_cutoff = 0.487 L: the nearest image only; 21 x 41 k-grid
      (1312 vectors 0 < |k| <= k_cutoff).
  3D: kappa = 3.8, real_cutoff = 1.47 L: 27 images; 7 x 13 x 13 k-grid (1308).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from scipy.special import erfc

from fermiflow.validation import check_dim, check_positive

__all__ = ["EwaldTables", "ewald_tables", "madelung_constant"]

_REAL_ACCURACY = 5.6  # alpha * real_cutoff
_RECIPROCAL_ACCURACY = 5.6  # k_cutoff / (2 alpha)
# alpha * L. In 2D real_cutoff < L/2 keeps one image per pair: pairs (n^2) cost
# more than k-vectors there. In 3D the k-grid grows as kappa^3 and 27 images win.
_DEFAULT_KAPPA = {2: 11.5, 3: 3.8}


class EwaldTables(NamedTuple):
    """Configuration-independent parts of the Ewald sum, all float64.

    Attributes:
      alpha: () splitting parameter in 1/Bohr.
      images: (n_images, dim) lattice vectors n L of the real-space sum, n = 0 included.
      kweights: (M + 1, (2M + 1,) * (dim - 1)) weight of |rho_k|^2 in Hartree on
        the half grid of k = 2 pi m / L with m_0 >= 0 and |m_d| <= M.
      self_energy: () real-space energy of one charge with its own images, minus the
        self-interaction of its Gaussian (the i = j term of |rho_k|^2 adds it back).
      background: () coefficient b of the background energy -b n^2.
    """

    alpha: float
    images: np.ndarray
    kweights: np.ndarray
    self_energy: float
    background: float


def _integer_grid(dim: int, n_max: int) -> np.ndarray:
    """All integer vectors in [-n_max, n_max]^dim, shape (m, dim) float64."""
    axis = range(-n_max, n_max + 1)
    return np.array(list(itertools.product(axis, repeat=dim)), np.float64)


def _real_images(dim: int, box_length: float, real_cutoff: float) -> np.ndarray:
    """Lattice vectors nL reaching within real_cutoff of some point of the cell.

    Pair displacements are wrapped into the cell [-L/2, L/2]^dim first, so image n
    can matter only if the distance from nL to that cell, L |max(|n| - 1/2, 0)|, is
    at most real_cutoff. This keeps every image of every pair within the cutoff.
    """
    reach = real_cutoff / box_length
    grid = _integer_grid(dim, math.floor(reach + 0.5))
    gap = np.maximum(np.abs(grid) - 0.5, 0.0)
    keep = (gap**2).sum(axis=1) <= reach**2
    return box_length * grid[keep]


def _reciprocal_weights(
    dim: int, box_length: float, alpha: float, k_cutoff: float
) -> np.ndarray:
    """Weights of |rho_k|^2 on the half grid m_0 >= 0, shape (M + 1, (2M + 1,)*(dim-1)).

    Entry [m_0, M + m_1, ...] belongs to k = 2 pi m / L. It is v_alpha(k) / (2V) for
    0 < |k| <= k_cutoff, doubled for m_0 > 0 (its partner -k is off the grid), and
    zero elsewhere.
    """
    unit = 2.0 * np.pi / box_length
    k_max = math.floor(k_cutoff / unit)
    axes = [np.arange(0, k_max + 1)] + [np.arange(-k_max, k_max + 1)] * (dim - 1)
    m = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float64)
    knorm = unit * np.linalg.norm(m, axis=-1)
    inside = (knorm > 0) & (knorm <= k_cutoff)
    knorm = np.where(inside, knorm, 1.0)
    volume = box_length**dim
    if dim == 2:
        kernel = 2.0 * np.pi * erfc(knorm / (2.0 * alpha)) / knorm
    else:
        kernel = 4.0 * np.pi * np.exp(-((knorm / (2.0 * alpha)) ** 2)) / knorm**2
    multiplicity = np.where(m[..., 0] > 0, 2.0, 1.0)
    return np.where(inside, multiplicity * kernel / (2.0 * volume), 0.0)


def ewald_tables(
    *,
    dim: int,
    box_length: float,
    alpha: float | None = None,
    real_cutoff: float | None = None,
    k_cutoff: float | None = None,
) -> EwaldTables:
    """Build the static tables of the Ewald sum (see :class:`EwaldTables`).

    Args:
      dim: static, 2 or 3.
      box_length: static, side L of the box in Bohr.
      alpha: static, splitting parameter in 1/Bohr; default 11.5 / L (2D) or
        3.8 / L (3D).
      real_cutoff: static, real-space cutoff in Bohr; default 5.6 / alpha.
      k_cutoff: static, reciprocal cutoff in 1/Bohr; default 11.2 alpha.

    Returns:
      The :class:`EwaldTables`.

    Raises:
      ValueError: for a bad dim, box_length, alpha or cutoff.

    Examples:
      >>> t = ewald_tables(dim=2, box_length=1.0)
      >>> t.images.shape, t.kweights.shape
      ((1, 2), (21, 41))
    """
    dim = check_dim(dim)
    box_length = check_positive("box_length", box_length)
    if alpha is None:
        alpha = _DEFAULT_KAPPA[dim] / box_length
    alpha = check_positive("alpha", alpha, "Leave it as None for the default.")
    if real_cutoff is None:
        real_cutoff = _REAL_ACCURACY / alpha
    if k_cutoff is None:
        k_cutoff = 2.0 * alpha * _RECIPROCAL_ACCURACY
    real_cutoff = check_positive("real_cutoff", real_cutoff, "Leave it as None.")
    k_cutoff = check_positive("k_cutoff", k_cutoff, "Leave it as None.")
    volume = box_length**dim
    images = _real_images(dim, box_length, real_cutoff)
    kweights = _reciprocal_weights(dim, box_length, alpha, k_cutoff)
    distance = np.linalg.norm(images, axis=1)
    distance = distance[distance > 0]
    # A charge meets its own images through erfc/r (half of each pair energy) and
    # removes the self-interaction of its Gaussian, erf(alpha r)/r at r = 0, that
    # the i = j terms of |rho_k|^2 contain.
    self_energy = 0.5 * float(np.sum(erfc(alpha * distance) / distance)) - alpha / (
        math.sqrt(math.pi)
    )
    if dim == 2:
        background = math.sqrt(math.pi) / (volume * alpha)
    else:
        background = math.pi / (2.0 * volume * alpha**2)
    return EwaldTables(alpha, images, kweights, self_energy, background)


def madelung_constant(dim: int) -> float:
    """Return the Madelung constant of the unit square (2D) or cubic (3D) lattice.

    It is L times the potential at a charge due to its periodic images and the
    neutralizing background, so one electron in a box of side L has energy
    madelung / (2 L). Computed with the default Ewald sum of this module.

    Args:
      dim: static, 2 or 3.

    Returns:
      The constant (dimensionless), about -3.90026 in 2D and -2.83730 in 3D.

    Examples:
      >>> round(madelung_constant(3), 10)
      -2.8372974795
    """
    tables = ewald_tables(dim=dim, box_length=1.0)
    energy = tables.self_energy + float(np.sum(tables.kweights)) - tables.background
    return 2.0 * energy

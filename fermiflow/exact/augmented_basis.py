"""Fourier tables of plane waves augmented by cusp functions, for two electrons in a box.

Units: Hartree atomic units; lengths in Bohr, energies in Hartree. Host-side float64.

The relative motion of two electrons in the periodic box has the Hamiltonian
h = -lap_r + coupling phi(r) (reduced mass 1/2; phi the zero-mean Ewald pair potential
of :mod:`fermiflow.exact.ewald_pair`). Its eigenstates have the Coulomb cusp
psi ~ psi(0) (1 + coupling r / (dim - 1)) at r = 0, so plain plane waves converge only
as cutoff^(-dim) in the energy. The basis here is plane waves exp(i p.r) plus
"augmentation" functions u(r) exp(i p.r) with a few small p and the radial factor

  u(r) = r exp(-(r / s)^3),   s = 0.14 L,

which is r + O(r^4) at the origin (the first odd, non-smooth power after r is r^7) and
below 1e-20 L outside the sphere of radius L/2, so it is smooth away from r = 0 and
periodic. A combination psi = chi_1 + u chi_2 with smooth chi_1, chi_2 holds every cusp
(its slope chi_2(0) is free, state by state). For plane waves f, g (momenta p, p',
q = p' - p) the matrix elements are

  <f | g> = delta,                 <f | h | g> = p^2 delta + coupling phi_q,
  <f | u g> = F[u](q),             <f | h | u g> = p^2 F[u](q) + coupling F[phi u](q),
  <u f | u g> = F[u^2](q),         <u f | h | u g> = p.p' F[u^2](q) + F[-u lap u](q)
                                                     + coupling F[phi u^2](q),

(integration by parts) with F[w](q) = (1/V) int_cell w e^(iq.r). u, u^2 and u lap u
are radial and vanish outside the sphere: their coefficients are 1D Hankel transforms
(2D: 2 pi / V int w J0(q r) r dr; 3D: 4 pi / V int w sin(q r) / (q r) r^2 dr) by
composite 16-point Gauss-Legendre quadrature on [0, L/2] (each integrand with its
r^(dim - 1) is smooth there; at least one panel per oscillation). For phi u^k the
Ewald split with alpha = 14 / L is used: the images of erfc(alpha r) / r are below
1e-22 on the sphere, so phi u^k = u^k erfc(alpha r) / r (radial) + the discrete
convolution of the long-range coefficients with F[u^k] - c_alpha u^k.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.signal
from scipy.special import erfc, j0, roots_legendre

from fermiflow.exact.ewald_pair import ewald_pair_fourier, ewald_pair_split
from fermiflow.validation import check_dim, check_nonnegative_int, check_positive

__all__ = ["AugmentedTables", "augmented_tables", "cusp_function", "radial_fourier"]

_RANGE = 0.14  # s / L: exp(-(0.5 / 0.14)^3) = 1.6e-20 at r = L / 2
_ALPHA = 14.0  # alpha L: erfc(alpha (L - L / 2)) = 4e-23
_ORDER = 16  # Gauss-Legendre points per panel


class AugmentedTables(NamedTuple):
    """Fourier coefficients on the grid |g_i| <= n_max, each of shape (2 n_max + 1,) * dim.

    Entry [n_max + g] belongs to q = 2 pi g / L; all are real and even in g and carry
    no coupling (the Hamiltonian is linear in it).

    Attributes:
      coulomb: phi_q, the bare pair potential (0 at q = 0).
      cusp: F[u](q).
      cusp_coulomb: F[phi u](q).
      cusp_square: F[u^2](q).
      cusp_square_coulomb: F[phi u^2](q).
      cusp_kinetic: F[-u lap u](q).
    """

    coulomb: np.ndarray
    cusp: np.ndarray
    cusp_coulomb: np.ndarray
    cusp_square: np.ndarray
    cusp_square_coulomb: np.ndarray
    cusp_kinetic: np.ndarray


def cusp_function(r: np.ndarray, *, dim: int, box_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Return u(r) = r exp(-(r / s)^3), s = 0.14 L, and its Laplacian in dim dimensions.

    Args:
      r: (q,) radii in Bohr, > 0.
      dim: 2 or 3.
      box_length: side L of the box in Bohr.

    Returns:
      u (q,) and lap u = u'' + (dim - 1) u' / r (q,), which is (dim - 1) / r + O(r^2)
      at the origin.

    Examples:
      >>> u, lap = cusp_function(np.array([1e-3]), dim=3, box_length=10.0)
      >>> bool(np.isclose(u[0], 1e-3)), bool(np.isclose(lap[0] * 1e-3, 2.0))
      (True, True)
    """
    s = _RANGE * box_length
    e = np.exp(-((r / s) ** 3))
    de = -3.0 * r**2 / s**3 * e
    dde = (-6.0 * r / s**3 + 9.0 * r**4 / s**6) * e
    # u = r e, u' = e + r e', u'' = 2 e' + r e''.
    return r * e, 2.0 * de + r * dde + (dim - 1) * (e + r * de) / r


def radial_fourier(
    values: np.ndarray,
    nodes: np.ndarray,
    weights: np.ndarray,
    g_norm: np.ndarray,
    *,
    dim: int,
    box_length: float,
) -> np.ndarray:
    """Return F[w](q) = (1/V) int w(|r|) e^(iq.r) d^dim r of a radial function.

    Args:
      values: (q,) or (q, f) w(r) r^(dim - 1) at the quadrature nodes, for f functions.
      nodes: (q,) radii of the quadrature in Bohr.
      weights: (q,) quadrature weights.
      g_norm: (k,) |g| of the reciprocal vectors q = 2 pi g / L.
      dim: 2 or 3.
      box_length: side L of the box in Bohr.

    Returns:
      (k,) or (k, f) the coefficients.

    Examples:
      >>> x, w = roots_legendre(200)
      >>> r, w = (x + 1) / 4, w / 4  # [0, 1/2] for L = 1
      >>> f = radial_fourier(np.exp(-(r / 0.1) ** 2) * r, r, w, np.array([0.0]),
      ...                    dim=2, box_length=1.0)
      >>> bool(np.isclose(f[0], np.pi * 0.1**2))  # int exp(-r^2 / s^2) d^2 r = pi s^2
      True
    """
    qr = np.outer(2.0 * np.pi / box_length * g_norm, nodes)
    kernel = j0(qr) if dim == 2 else np.sinc(qr / np.pi)
    surface = 2.0 * np.pi if dim == 2 else 4.0 * np.pi
    weighted = weights * values if values.ndim == 1 else weights[:, None] * values
    return surface / box_length**dim * (kernel @ weighted)


def _quadrature(box_length: float, g_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [0, L/2], >= one panel per period."""
    n_panels = 8 + math.ceil(g_max / 2.0)  # q (L / 2) / (2 pi) periods of the kernel
    x, w = roots_legendre(_ORDER)
    edges = np.linspace(0.0, 0.5 * box_length, n_panels + 1)
    low, width = edges[:-1, None], np.diff(edges)[:, None]
    return (low + width * (x + 1.0) / 2.0).ravel(), (width / 2.0 * w).ravel()


def augmented_tables(*, dim: int, box_length: float, n_max: int) -> AugmentedTables:
    """Return the Fourier tables of the augmented plane-wave basis.

    Args:
      dim: 2 or 3.
      box_length: side L of the box in Bohr.
      n_max: largest |g_i| in the tables, >= 0 (the relative cutoff n_cut).

    Returns:
      The :class:`AugmentedTables`.

    Raises:
      ValueError: for a bad dim, box_length or n_max.

    Examples:
      >>> t = augmented_tables(dim=2, box_length=1.0, n_max=2)
      >>> t.cusp.shape, bool(np.allclose(t.cusp, t.cusp[::-1, ::-1]))
      ((5, 5), True)
    """
    dim = check_dim(dim)
    box_length = check_positive("box_length", box_length)
    n_max = check_nonnegative_int("n_max", n_max)
    split = ewald_pair_split(dim=dim, box_length=box_length, alpha=_ALPHA / box_length)
    reach = (split.long_range.shape[0] - 1) // 2
    # Coefficients multiplied by phi are needed on the grid widened by the reach of the
    # long-range convolution.
    axis = np.arange(-n_max - reach, n_max + reach + 1)
    wide = np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1)
    squares, inverse = np.unique(np.sum(wide**2, axis=-1), return_inverse=True)
    g_norm = np.sqrt(squares.astype(np.float64))
    r, weights = _quadrature(box_length, float(g_norm[-1]))
    u, lap = cusp_function(r, dim=dim, box_length=box_length)
    jacobian = r ** (dim - 1)
    short = erfc(split.alpha * r) / r
    radial = np.stack([u, u * short, u**2, u**2 * short, -u * lap], axis=1)
    # One kernel table (|g| x nodes) serves all five functions.
    coefficients = radial_fourier(
        radial * jacobian[:, None], r, weights, g_norm, dim=dim, box_length=box_length
    )
    fourier = [coefficients[inverse, i].reshape(wide.shape[:-1]) for i in range(5)]
    inner = tuple(slice(reach, reach + 2 * n_max + 1) for _ in range(dim))

    def with_coulomb(plain: np.ndarray, short_part: np.ndarray) -> np.ndarray:
        long = scipy.signal.fftconvolve(plain, split.long_range, mode="same")
        return (short_part + long - split.constant * plain)[inner]

    g = wide[inner]
    return AugmentedTables(
        coulomb=ewald_pair_fourier(g, dim=dim, box_length=box_length),
        cusp=fourier[0][inner],
        cusp_coulomb=with_coulomb(fourier[0], fourier[1]),
        cusp_square=fourier[2][inner],
        cusp_square_coulomb=with_coulomb(fourier[2], fourier[3]),
        cusp_kinetic=fourier[4][inner],
    )

"""Momentum distribution n(k): off-diagonal one-body density matrix and <n_k> from p(K).

Off-diagonal estimator. For rho = sum_K p(K)|Psi_K><Psi_K| and one species of N_s
electrons, the normalized one-body density matrix is

    C_s(d) = E_{K ~ p, x ~ |Psi_K|^2} [ (1/N_s) sum_{i in s} Psi_K(.., r_i + d, ..) / Psi_K(x) ],

(the ratio of the SAME Psi_K: the mixture has no K-K' coherences), and the occupation
of the plane wave k is n_s(k) = (N_s / Vol) int_cell C_s(d) e^{-i k.d} dd, i.e. per
sample n_s(k) = N_s * mean_a Re[ratio_s(d_a) e^{-i k.d_a}] over displacements d_a that
are either uniform in the box (:func:`random_displacements`: unbiased) or the grid
L j / M (:func:`displacement_grid`: the quadrature is exact for plane-wave content
with |n_k - n_k'| < M per axis). The displaced electron is NOT wrapped into the box:
Psi_K is twisted-periodic and its ratio carries the twist phase. For a plane-wave
determinant on an exact grid the per-sample estimate is exactly [k in K] (the
cofactor expansion gives sum_i phi_k(r_i) (A^-1)_{ik} = 1), whatever x is.

Quasi-particle occupation: <n_k> = sum_K p(K) [k in K], per sample the indicator of
K (:func:`occupation_indicator`): exact per sample, noisy only through K ~ p.

Species are "up", "down" in that order, those with >= 1 electron (:func:`spin_species`).
Estimators act on ONE configuration; vmap over walkers (and chunk with
``jax.lax.map``: the ratios cost n * n_displacements evaluations of log Psi_K).

Units: Hartree atomic units; lengths in Bohr, k in 1/Bohr; n(k) is dimensionless.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import (
    check_dim,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)

__all__ = [
    "displacement_grid",
    "make_one_body_ratios",
    "momentum_distribution",
    "occupation_indicator",
    "random_displacements",
    "spin_species",
]

LogPsiK = Callable[[Params, Array, Array], Array]


def spin_species(n_up: int, n_down: int) -> tuple[str, ...]:
    """Return the species axis of the momentum observables, e.g. ("up", "down")."""
    n_up, n_down = check_nonnegative_int("n_up", n_up), check_nonnegative_int("n_down", n_down)
    return tuple(name for name, count in (("up", n_up), ("down", n_down)) if count)


def displacement_grid(*, box_length: float, dim: int, n_grid: int) -> np.ndarray:
    """Return the (n_grid**dim, dim) displacements L (j_1, .., j_dim) / n_grid.

    Examples:
      >>> displacement_grid(box_length=2.0, dim=2, n_grid=2).tolist()
      [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    dim, n_grid = check_dim(dim, (1, 2, 3)), check_positive_int("n_grid", n_grid)
    points = np.array(list(itertools.product(range(n_grid), repeat=dim)), np.float64)
    return box_length * points / n_grid


def random_displacements(
    key: PRNGKey, *, box_length: float, dim: int, n_displacements: int, dtype=None
) -> Array:
    """Return (n_displacements, dim) displacements uniform in [0, L)^dim."""
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    n_displacements = check_positive_int("n_displacements", n_displacements)
    dtype = jnp.result_type(float) if dtype is None else dtype
    return box_length * jax.random.uniform(key, (n_displacements, dim), dtype)


def make_one_body_ratios(log_psi: LogPsiK, *, n_up: int, n_down: int) -> Callable:
    """Build the displaced-electron ratios of one configuration.

    Args:
      log_psi: static, ``(params, occ: (n,), x: (n, dim)) -> ()`` complex log Psi_K.
      n_up: static, up electrons (first in x).
      n_down: static, down electrons.

    Returns:
      ``ratios(params, occ: (n,), x: (n, dim), displacements: (nd, dim)) ->
      (species, nd)`` complex: (1/N_s) sum_{i in s} Psi_K(x; r_i + d) / Psi_K(x).

    Raises:
      ValueError: if there is no electron.

    Examples:
      >>> log_psi = lambda params, occ, x: 1j * x[0, 0] + 0.0 * x[1, 0]
      >>> ratios = make_one_body_ratios(log_psi, n_up=1, n_down=1)
      >>> r = ratios(None, jnp.zeros(2, int), jnp.zeros((2, 1)), jnp.array([[0.5]]))
      >>> bool(jnp.allclose(r, jnp.array([[jnp.exp(0.5j)], [1.0]])))
      True
    """
    species = spin_species(n_up, n_down)
    if not species:
        raise ValueError("n_up + n_down must be >= 1 for one-body ratios.")
    n = n_up + n_down
    blocks = [(0, n_up), (n_up, n)] if n_up and n_down else [(0, n)]

    def ratios(params: Params, occ: ArrayLike, x: ArrayLike, displacements: ArrayLike):
        x = jnp.asarray(x)
        d = jnp.asarray(displacements, x.dtype)
        log_psi_0 = log_psi(params, occ, x)

        def one(i, shift):
            return jnp.exp(log_psi(params, occ, x.at[i].add(shift)) - log_psi_0)

        per_electron = jax.vmap(lambda i: jax.vmap(lambda s: one(i, s))(d))(jnp.arange(n))
        return jnp.stack([per_electron[lo:hi].mean(0) for lo, hi in blocks])

    return ratios


def momentum_distribution(
    ratios: ArrayLike,
    displacements: ArrayLike,
    wavevectors: ArrayLike,
    *,
    n_per_species: tuple[int, ...],
) -> Array:
    """Return the per-sample estimate of n_s(k) from displaced-electron ratios.

    Args:
      ratios: (species, nd) complex, from :func:`make_one_body_ratios`.
      displacements: (nd, dim) the displacements the ratios were taken at.
      wavevectors: (m, dim) k of the modes (e.g. ``Spectrum.wavevectors``, twisted).
      n_per_species: static, electrons of each species, e.g. (n_up, n_down).

    Returns:
      (species, m) real: N_s * mean_a Re[ratio_s(d_a) exp(-i k.d_a)].

    Raises:
      ValueError: if n_per_species does not match the species axis.
    """
    ratios = jnp.asarray(ratios)
    if len(n_per_species) != ratios.shape[0]:
        raise ValueError(
            f"n_per_species={n_per_species} must give one count per species row of "
            f"ratios {ratios.shape}; drop empty species (spin_species)."
        )
    real = jnp.real(ratios).dtype
    phase = jnp.asarray(wavevectors, real) @ jnp.asarray(displacements, real).T  # (m, nd)
    fourier = jnp.einsum("sa,ma->sm", ratios, jnp.exp(-1j * phase)) / phase.shape[1]
    return jnp.asarray(n_per_species, real)[:, None] * jnp.real(fourier)


def occupation_indicator(occ: ArrayLike, *, n_modes: int, n_up: int) -> Array:
    """Return the indicator [k in K] of one occupation set, per species.

    Args:
      occ: (n,) int mode indices, n_up up modes first.
      n_modes: static, m.
      n_up: static, up electrons.

    Returns:
      (species, m) float, 1 where the species occupies the mode; its mean over
      K ~ p(K) is the quasi-particle occupation <n_k>.

    Examples:
      >>> occupation_indicator(jnp.array([0, 2, 1]), n_modes=3, n_up=2).tolist()
      [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    occ = jnp.asarray(occ)
    n = occ.shape[0]
    n_up = min(check_nonnegative_int("n_up", n_up), n)
    blocks = [occ[:n_up], occ[n_up:]] if 0 < n_up < n else [occ]
    dtype = jnp.result_type(float)
    return jnp.stack([jax.nn.one_hot(b, n_modes, dtype=dtype).sum(0) for b in blocks])

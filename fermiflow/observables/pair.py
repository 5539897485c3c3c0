"""Pair correlation g(r) and static structure factor S(k) of electrons in a periodic box.

Estimators act on ONE configuration x: (n, dim) (n_up up electrons first); vmap over
walkers at the call site. Bin edges and the box are static NumPy values.

g(r): minimum-image pair distances, histogrammed in spherical shells of radius
r <= L/2 (inside the Wigner-Seitz cell of the box, so every shell is whole), and
normalized by the ideal-gas shell volume: for species a, b,

    g_ab(bin) = Vol * <#{ordered pairs i in a, j in b, i != j, r_ij in bin}>
                / (N_a (N_b - delta_ab) * shell volume),

so a gas of N_a, N_b uncorrelated uniform particles has g = 1 exactly, at any finite
N. Channels: "all" (N (N - 1)), then "up-up", "down-down" (species with >= 2
electrons) and "up-down" (both present); see :func:`pair_channels`.

S(k) on the reciprocal lattice k = 2 pi n / L, n != 0 (:func:`reciprocal_lattice`):
S_aa(k) = |rho_a(k)|^2 / N_a, S_ud(k) = Re rho_u(k) rho_d(k)^* / sqrt(N_u N_d),
S_all(k) = |rho(k)|^2 / N, with rho_a(k) = sum_{j in a} exp(-i k.r_j). It is the
Fourier transform of the pair density on the cell: per configuration
S_all(k) = 1 + (1/N) sum_{i != j} cos(k.r_ij); :func:`pair_correlation_image` bins the
pair displacements on a grid of the cell and :func:`structure_factor_from_image` sums
that transform back (exact up to the bin width, |error| <= (N - 1) sum_d |k_d| h / 2).

Exact references for plane-wave Slater determinants (the ideal gas, any twist) are
host-side NumPy: the pair density of one species is (N^2 - |sum_{k in K} e^{ik.r}|^2)
/ Vol^2, whose shell average needs the shell average of cos(q.r), in closed form
(2D: 2 [r J1(q r) / q] / (r2^2 - r1^2), 3D: 3 [(sin qr - qr cos qr) / q^3] /
(r2^3 - r1^3)); S_aa(q) = 1 - #{k in K_a: k + q in K_a} / N_a, S_ud = 0.

Units: Hartree atomic units; lengths in Bohr, k in 1/Bohr; g and S are dimensionless.
"""

from __future__ import annotations

import itertools
import math

import jax.numpy as jnp
import numpy as np
import scipy.special

from fermiflow.types import Array, ArrayLike
from fermiflow.validation import check_dim, check_nonnegative_int, check_positive

__all__ = [
    "minimum_image",
    "pair_channels",
    "pair_correlation",
    "pair_correlation_image",
    "plane_wave_pair_correlation",
    "plane_wave_structure_factor",
    "reciprocal_lattice",
    "shell_average_cosine",
    "shell_volumes",
    "structure_factor",
    "structure_factor_from_image",
]


def minimum_image(displacement: ArrayLike, box_length: float) -> Array:
    """Return the displacement (..., dim) mapped into [-L/2, L/2]^dim."""
    d = jnp.asarray(displacement)
    return d - box_length * jnp.round(d / box_length)


def pair_channels(n_up: int, n_down: int) -> tuple[str, ...]:
    """Return the channel names of :func:`pair_correlation` and :func:`structure_factor`.

    Examples:
      >>> pair_channels(3, 0), pair_channels(2, 1)
      (('all',), ('all', 'up-up', 'up-down'))
    """
    n_up, n_down = check_nonnegative_int("n_up", n_up), check_nonnegative_int("n_down", n_down)
    if n_up + n_down < 2:
        raise ValueError(f"pair observables need >= 2 electrons, got {n_up} + {n_down}.")
    if n_down == 0 or n_up == 0:
        return ("all",)
    names = ["all"] + [f"{s}-{s}" for s, n in (("up", n_up), ("down", n_down)) if n >= 2]
    return (*names, "up-down")


def shell_volumes(edges: ArrayLike, dim: int) -> np.ndarray:
    """Return the (n_bins,) volumes of the shells between (n_bins + 1,) radii edges."""
    edges = np.asarray(edges, np.float64)
    unit = {1: 2.0, 2: math.pi, 3: 4.0 * math.pi / 3.0}[dim]
    return unit * np.diff(edges**dim)


def _check_edges(edges: ArrayLike, box_length: float) -> np.ndarray:
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
        raise ValueError(
            f"edges must be increasing radii >= 0 of shape (n_bins + 1,), got {edges}."
        )
    if edges[-1] > box_length / 2 * (1 + 1e-12):
        raise ValueError(
            f"edges go to r={edges[-1]:.6g} > L/2={box_length / 2:.6g}: shells beyond "
            "L/2 leave the cell. Use np.linspace(0, L / 2, n_bins + 1)."
        )
    return edges


def _pair_masks(n_up: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-triangle pair indices and a (channels, pairs) weight matrix."""
    i, j = np.triu_indices(n, k=1)
    up_i, up_j = i < n_up, j < n_up
    n_down = n - n_up
    rows = {"all": np.full(i.shape, 2.0 / (n * (n - 1)))}
    if n_up >= 2:
        rows["up-up"] = (up_i & up_j) * 2.0 / (n_up * (n_up - 1))
    if n_down >= 2:
        rows["down-down"] = (~up_i & ~up_j) * 2.0 / (n_down * (n_down - 1))
    if n_up and n_down:
        rows["up-down"] = (up_i != up_j) / (n_up * n_down)
    weights = np.stack([rows[c] for c in pair_channels(n_up, n_down)])
    return i, j, weights


def pair_correlation(x: ArrayLike, edges: ArrayLike, *, box_length: float, n_up: int) -> Array:
    """Return the pair-correlation histogram g(r) of one configuration.

    Args:
      x: (n, dim) positions in Bohr, up electrons first.
      edges: static, (n_bins + 1,) increasing shell radii in [0, L/2].
      box_length: static, side L of the periodic box.
      n_up: static, number of up electrons (n for a polarized gas).

    Returns:
      (channels, n_bins) g in the dtype of x, channels of :func:`pair_channels`; its
      mean over samples estimates g(r) averaged over each shell.

    Raises:
      ValueError: for edges beyond L/2, not increasing, or a bad n_up.

    Examples:
      >>> x = jnp.array([[0.0, 0.0], [0.5, 0.0]])
      >>> g = pair_correlation(x, [0.25, 0.75], box_length=2.0, n_up=2)
      >>> round(float(g[0, 0]) * math.pi * (0.75**2 - 0.25**2), 4)  # Vol / (N - 1)
      4.0
    """
    x = jnp.asarray(x)
    n, dim = x.shape
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    edges = _check_edges(edges, box_length)
    n_up = check_nonnegative_int("n_up", n_up)
    i, j, weights = _pair_masks(min(n_up, n), n)
    r = jnp.linalg.norm(minimum_image(x[i] - x[j], box_length), axis=-1)
    lo, hi = jnp.asarray(edges[:-1], x.dtype), jnp.asarray(edges[1:], x.dtype)
    in_bin = ((r[:, None] >= lo) & (r[:, None] < hi)).astype(x.dtype)  # (pairs, bins)
    norm = box_length**dim / shell_volumes(edges, dim)
    return jnp.asarray(weights, x.dtype) @ in_bin * jnp.asarray(norm, x.dtype)


def pair_correlation_image(x: ArrayLike, *, box_length: float, n_grid: int) -> Array:
    """Return g on a grid of the cell [-L/2, L/2)^dim of pair displacement vectors.

    Args:
      x: (n, dim) positions in Bohr.
      box_length: static, side L of the periodic box.
      n_grid: static, cells per axis (h = L / n_grid).

    Returns:
      (n_grid,) * dim array: Vol * #{ordered pairs with r_i - r_j in the cell}
      / (N (N - 1) cell volume); cell c has centre -L/2 + (c + 1/2) h per axis.
    """
    x = jnp.asarray(x)
    n, dim = x.shape
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    d = minimum_image(x[i] - x[j], box_length)
    index = jnp.floor((d / box_length + 0.5) * n_grid).astype(jnp.int32) % n_grid
    flat = jnp.ravel_multi_index(tuple(index.T), (n_grid,) * dim, mode="wrap")
    counts = jnp.zeros(n_grid**dim, x.dtype).at[flat].add(1.0)
    return (counts * (n_grid**dim / (n * (n - 1)))).reshape((n_grid,) * dim)


def reciprocal_lattice(*, box_length: float, dim: int, max_norm2: int) -> np.ndarray:
    """Return (nk, dim) vectors k = 2 pi n / L with 0 < |n|^2 <= max_norm2, by |n|^2.

    Examples:
      >>> reciprocal_lattice(box_length=2 * math.pi, dim=2, max_norm2=1).tolist()
      [[-1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [1.0, 0.0]]
    """
    dim = check_dim(dim, (1, 2, 3))
    n_max = math.isqrt(max_norm2)
    grid = np.array(list(itertools.product(range(-n_max, n_max + 1), repeat=dim)))
    norm2 = (grid**2).sum(1)
    grid = grid[(norm2 > 0) & (norm2 <= max_norm2)]
    grid = grid[np.argsort((grid**2).sum(1), kind="stable")]
    return 2.0 * math.pi / box_length * grid.astype(np.float64)


def structure_factor(x: ArrayLike, k: ArrayLike, *, n_up: int) -> Array:
    """Return S(k) of one configuration on the given wavevectors.

    Args:
      x: (n, dim) positions in Bohr, up electrons first.
      k: (nk, dim) reciprocal-lattice vectors (static or traced).
      n_up: static, number of up electrons (n for a polarized gas).

    Returns:
      (channels, nk) real S in the dtype of x, channels of :func:`pair_channels`.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    n_up = min(check_nonnegative_int("n_up", n_up), n)
    phase = jnp.asarray(k, x.dtype) @ x.T  # (nk, n)
    rho = jnp.exp(-1j * phase)
    rho_up, rho_down = rho[:, :n_up].sum(1), rho[:, n_up:].sum(1)
    total = rho_up + rho_down
    rows = {"all": jnp.abs(total) ** 2 / n}
    if n_up >= 2:
        rows["up-up"] = jnp.abs(rho_up) ** 2 / n_up
    if n - n_up >= 2:
        rows["down-down"] = jnp.abs(rho_down) ** 2 / (n - n_up)
    if 0 < n_up < n:
        rows["up-down"] = jnp.real(rho_up * jnp.conj(rho_down)) / math.sqrt(n_up * (n - n_up))
    return jnp.stack([rows[c] for c in pair_channels(n_up, n - n_up)]).astype(x.dtype)


def structure_factor_from_image(
    image: ArrayLike, k: ArrayLike, *, box_length: float, n_particles: int
) -> Array:
    """Return S_all(k) = 1 + (N - 1) / n_cells sum_c g_c cos(k.r_c) from a g image.

    Args:
      image: (n_grid,) * dim from :func:`pair_correlation_image` (one sample or a
        mean over samples).
      k: (nk, dim) reciprocal-lattice vectors, k != 0.
      box_length: static, side L.
      n_particles: static, N.

    Returns:
      (nk,) S(k), equal to ``structure_factor(...)[0]`` of the same samples up to the
      bin width (module docstring).
    """
    image = jnp.asarray(image)
    n_grid, dim = image.shape[0], image.ndim
    h = box_length / n_grid
    centres = -box_length / 2 + (jnp.arange(n_grid, dtype=image.dtype) + 0.5) * h
    grids = jnp.meshgrid(*([centres] * dim), indexing="ij")
    r = jnp.stack([g.ravel() for g in grids], axis=-1)  # (cells, dim)
    cosines = jnp.cos(jnp.asarray(k, image.dtype) @ r.T)  # (nk, cells)
    return 1.0 + (n_particles - 1) / image.size * cosines @ image.ravel()


def shell_average_cosine(q: np.ndarray, edges: np.ndarray, dim: int) -> np.ndarray:
    """(..., n_bins) shell average of cos(q.r) for |q| = q (...); 1 at q = 0."""
    q = np.asarray(q, np.float64)[..., None]
    r = edges

    def antiderivative(qr):  # of r^(dim-1) * angular average, times q^dim
        if dim == 2:
            return qr * scipy.special.j1(qr)
        small = qr < 0.1  # sin x - x cos x cancels: use its series
        series = qr**3 / 3 - qr**5 / 30 + qr**7 / 840 - qr**9 / 45360
        return np.where(small, series, np.sin(qr) - qr * np.cos(qr))

    safe_q = np.where(q > 0, q, 1.0)
    values = antiderivative(safe_q * r)
    integral = np.diff(values, axis=-1) / safe_q**dim
    volume = np.diff(r**dim) / dim
    return np.where(q > 0, integral / volume, 1.0)


def plane_wave_pair_correlation(
    occ: ArrayLike, wavevectors: ArrayLike, edges: ArrayLike, *, n_up: int
) -> np.ndarray:
    """Return the exact shell-averaged g(r) of plane-wave determinants (host NumPy).

    Args:
      occ: (batch, n) mode indices, n_up up modes first.
      wavevectors: (m, dim) k of the mode table (twist included; it cancels).
      edges: (n_bins + 1,) shell radii.
      n_up: number of up electrons.

    Returns:
      (batch, channels, n_bins) float64 exact g of each determinant Psi_K.
    """
    occ, k = np.asarray(occ), np.asarray(wavevectors, np.float64)
    dim, n = k.shape[1], occ.shape[1]
    q = np.linalg.norm(k[:, None, :] - k[None, :, :], axis=-1)
    table = shell_average_cosine(q, np.asarray(edges, np.float64), dim)  # (m, m, bins)

    def overlap(block):  # (batch, bins) shell average of |sum_k e^{ik.r}|^2
        indicator = np.zeros((occ.shape[0], k.shape[0]))
        np.put_along_axis(indicator, block, 1.0, axis=1)
        return np.einsum("bk,kjr,bj->br", indicator, table, indicator, optimize=True)

    up, down = occ[:, :n_up], occ[:, n_up:]
    f_up, f_down = overlap(up), overlap(down)
    n_down = n - n_up
    out = {"all": (n**2 - f_up - f_down) / (n * (n - 1))}
    if n_up >= 2:
        out["up-up"] = (n_up**2 - f_up) / (n_up * (n_up - 1))
    if n_down >= 2:
        out["down-down"] = (n_down**2 - f_down) / (n_down * (n_down - 1))
    if n_up and n_down:
        out["up-down"] = np.ones_like(f_up)
    return np.stack([out[c] for c in pair_channels(n_up, n_down)], axis=1)


def plane_wave_structure_factor(
    occ: ArrayLike, quantum_numbers: ArrayLike, q_integers: ArrayLike, *, n_up: int
) -> np.ndarray:
    """Return the exact S(q) of plane-wave determinants (host NumPy).

    Args:
      occ: (batch, n) mode indices, n_up up modes first.
      quantum_numbers: (m, dim) integer labels n of the mode table.
      q_integers: (nq, dim) integer labels of q = 2 pi n_q / L, n_q != 0.
      n_up: number of up electrons.

    Returns:
      (batch, channels, nq) float64: S_aa = 1 - #{k in K_a: k + q in K_a} / N_a,
      S_ud = 0, S_all = 1 - sum_a #{...} / N.
    """
    occ, labels = np.asarray(occ), np.asarray(quantum_numbers, np.int64)
    q = np.asarray(q_integers, np.int64)
    n, n_down = occ.shape[1], occ.shape[1] - n_up

    def overlap(block):  # (batch, nq)
        if block.shape[1] == 0:
            return np.zeros((occ.shape[0], len(q)))
        n_k = labels[block]  # (batch, N_a, dim)
        shifted = n_k[:, :, None, None, :] + q[None, None, :, None, :]
        hits = np.all(shifted == n_k[:, None, None, :, :], axis=-1)  # (b, N, nq, N)
        return hits.any(-1).sum(1).astype(np.float64)

    o_up, o_down = overlap(occ[:, :n_up]), overlap(occ[:, n_up:])
    out = {"all": 1.0 - (o_up + o_down) / n}
    if n_up >= 2:
        out["up-up"] = 1.0 - o_up / n_up
    if n_down >= 2:
        out["down-down"] = 1.0 - o_down / n_down
    if n_up and n_down:
        out["up-down"] = np.zeros_like(o_up)
    return np.stack([out[c] for c in pair_channels(n_up, n_down)], axis=1)

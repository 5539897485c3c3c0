"""One-body densities: radial profiles and images (quantum dots), grids of the box (gas).

Estimators act on ONE configuration x: (n, dim) and return number densities whose mean
over samples estimates <sum_i delta(r - r_i)> averaged over each bin; vmap over
walkers at the call site and select a spin block by slicing x (up electrons first).
Bin edges are static NumPy values.

- :func:`radial_density`: electrons per unit shell volume at distance |r - centre|;
  it integrates to N over all shells (the Wigner-molecule rings of a dot).
- :func:`density_image`: electrons per unit area on a grid of the (x, y) plane; in 3D
  the projected (column) density.
- :func:`box_density`: electrons per unit volume on a grid of the periodic box
  [0, L)^dim; N / L^dim everywhere for a translation-invariant state.

Units: Hartree atomic units; lengths in Bohr, densities in Bohr^-dim (Bohr^-2 for
images).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fermiflow.observables.pair import shell_volumes
from fermiflow.types import Array, ArrayLike
from fermiflow.validation import check_positive, check_positive_int

__all__ = ["box_density", "density_image", "radial_density"]


def _check_edges(edges: ArrayLike, name: str, nonnegative: bool) -> np.ndarray:
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name} must be increasing of shape (n_bins + 1,), got {edges}.")
    if nonnegative and edges[0] < 0:
        raise ValueError(f"{name} are radii and must be >= 0, got {edges[0]}.")
    return edges


def _counts(values: Array, edges: np.ndarray) -> Array:
    """(bins,) number of entries of values (k,) in each half-open bin [lo, hi)."""
    lo, hi = jnp.asarray(edges[:-1], values.dtype), jnp.asarray(edges[1:], values.dtype)
    return jnp.sum((values[:, None] >= lo) & (values[:, None] < hi), axis=0).astype(
        values.dtype
    )


def radial_density(x: ArrayLike, edges: ArrayLike, *, centre: ArrayLike | None = None) -> Array:
    """Return the radial number density of one configuration.

    Args:
      x: (n, dim) positions in Bohr, dim in 1, 2, 3.
      edges: static, (n_bins + 1,) increasing radii >= 0.
      centre: (dim,) origin of the radii; default 0 (the trap centre).

    Returns:
      (n_bins,) electrons per unit shell volume (length in 1D, area in 2D), in the
      dtype of x.

    Raises:
      ValueError: for edges that are not increasing radii >= 0.

    Examples:
      >>> x = jnp.array([[0.5, 0.0], [0.0, 1.5]])
      >>> rho = radial_density(x, [0.0, 1.0, 2.0])
      >>> [round(float(v * a), 5) for v, a in zip(rho, shell_volumes([0, 1, 2], 2))]
      [1.0, 1.0]
    """
    x = jnp.asarray(x)
    edges = _check_edges(edges, "edges", nonnegative=True)
    origin = jnp.zeros(x.shape[1], x.dtype) if centre is None else jnp.asarray(centre, x.dtype)
    r = jnp.linalg.norm(x - origin, axis=-1)
    volume = jnp.asarray(shell_volumes(edges, x.shape[1]), x.dtype)
    return _counts(r, edges) / volume


def density_image(x: ArrayLike, edges: ArrayLike) -> Array:
    """Return the number density of one configuration on a square grid of the plane.

    Args:
      x: (n, dim) positions in Bohr, dim 2 or 3 (3: projected on the (x, y) plane).
      edges: static, (n_bins + 1,) increasing edges used for both axes.

    Returns:
      (n_bins, n_bins) electrons per unit area, [i, j] for x in bin i and y in bin j;
      electrons outside the grid are not counted.

    Raises:
      ValueError: for dim < 2 or edges that are not increasing.
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"x must be (n, dim) with dim >= 2, got {x.shape}.")
    edges = _check_edges(edges, "edges", nonnegative=False)
    lo, hi = jnp.asarray(edges[:-1], x.dtype), jnp.asarray(edges[1:], x.dtype)
    in_x = ((x[:, 0, None] >= lo) & (x[:, 0, None] < hi)).astype(x.dtype)  # (n, bins)
    in_y = ((x[:, 1, None] >= lo) & (x[:, 1, None] < hi)).astype(x.dtype)
    widths = jnp.asarray(np.diff(edges), x.dtype)
    return (in_x.T @ in_y) / (widths[:, None] * widths[None, :])


def box_density(x: ArrayLike, *, box_length: float, n_grid: int) -> Array:
    """Return the number density of one configuration on a grid of the box.

    Args:
      x: (n, dim) positions in Bohr (any image; wrapped into [0, L)^dim).
      box_length: static, side L of the periodic box.
      n_grid: static, cells per axis.

    Returns:
      (n_grid,) * dim electrons per unit volume; the mean over samples of a uniform
      state is N / L^dim in every cell.

    Raises:
      ValueError: for a bad box_length or n_grid.
    """
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    n_grid = check_positive_int("n_grid", n_grid)
    x = jnp.asarray(x)
    dim = x.shape[1]
    index = jnp.floor(jnp.mod(x / box_length, 1.0) * n_grid).astype(jnp.int32) % n_grid
    flat = jnp.ravel_multi_index(tuple(index.T), (n_grid,) * dim, mode="wrap")
    counts = jnp.zeros(n_grid**dim, x.dtype).at[flat].add(1.0)
    cell = (box_length / n_grid) ** dim
    return (counts / cell).reshape((n_grid,) * dim)

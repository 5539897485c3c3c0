"""Categorical model over an explicit list of occupation sets, and set enumeration.

For small problems (few modes, or an energy cutoff as in quantum dots) the sets K can
be listed, and p(K) = softmax(logits)_K is exactly normalized over the list, with
exact sampling and entropy. The list comes from :func:`enumerate_sets` (one species)
or :func:`enumerate_spinful_sets` (up set, then down set, same mode table), with an
optional cutoff on the sum of mode energies. Enumeration is host-side NumPy; the model
acts on a batch and must not be vmapped.

Units: energies in Hartree (any consistent unit works).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.models.autoregressive import ARModel
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_nonnegative_int, check_positive_int

__all__ = ["enumerate_sets", "enumerate_spinful_sets", "make_categorical_model"]

# Relative slack in the energy cutoff, so that a set whose energy equals max_energy up
# to rounding (e.g. a closed shell) is kept whatever the summation order.
_CUTOFF_RTOL = 1e-12


def _tolerance(max_energy: float, energies: np.ndarray, n_particles: int) -> float:
    return _CUTOFF_RTOL * (1.0 + abs(max_energy) + n_particles * np.abs(energies).max())


def _completion_floor(energies: np.ndarray, n_particles: int) -> np.ndarray:
    """floor[k, r] = sum of the r lowest energies among modes > k (inf if < r)."""
    n_modes = len(energies)
    floor = np.full((n_modes, n_particles), np.inf)
    for k in range(n_modes):
        lowest = np.concatenate([[0.0], np.cumsum(np.sort(energies[k + 1 :]))])
        r = min(n_particles, len(lowest))
        floor[k, :r] = lowest[:r]
    return floor


def _enumerate(n_modes, n_particles, energies, max_energy, max_sets) -> np.ndarray:
    """All N-subsets (N >= 0) in lexicographic order, pruned by the energy cutoff.

    A prefix is kept only if its cheapest completion passes the cutoff, so every kept
    prefix extends to a distinct kept set and no level holds more rows than the
    result. Without a cutoff, pass zero energies and max_energy=0.
    """
    modes = np.arange(n_modes)
    floor = _completion_floor(energies, n_particles)
    limit = max_energy + _tolerance(max_energy, energies, n_particles)
    prefixes = np.zeros((1, 0), dtype=np.int64)
    prefix_energy = np.zeros(1)
    for i in range(n_particles):
        last = prefixes[:, -1] if i else np.full(len(prefixes), -1)
        cheapest = prefix_energy[:, None] + energies + floor[:, n_particles - 1 - i]
        rows, next_modes = np.nonzero((modes > last[:, None]) & (cheapest <= limit))
        if len(rows) > max_sets:  # np.nonzero is row-major: lexicographic order kept
            raise ValueError(
                f"more than max_sets={max_sets} sets; lower max_energy or raise "
                "max_sets (a categorical model is for small problems)."
            )
        prefixes = np.concatenate([prefixes[rows], next_modes[:, None]], axis=1)
        prefix_energy = prefix_energy[rows] + energies[next_modes]
    return prefixes


def _check_cutoff(n_modes, max_energy, energies) -> tuple[np.ndarray, float]:
    """Return (energies, max_energy); zeros and 0 stand for "no cutoff"."""
    if (max_energy is None) != (energies is None):
        raise ValueError("Pass both max_energy and energies, or neither.")
    if energies is None:
        return np.zeros(n_modes), 0.0
    energies = np.asarray(energies, dtype=np.float64)
    if energies.shape != (n_modes,) or not np.all(np.isfinite(energies)):
        raise ValueError(
            f"energies must be a finite array of shape ({n_modes},), got shape "
            f"{energies.shape}."
        )
    if not math.isfinite(max_energy):
        raise ValueError(f"max_energy must be finite, got {max_energy}.")
    return energies, float(max_energy)


def enumerate_sets(
    n_modes: int,
    n_particles: int,
    *,
    max_energy: float | None = None,
    energies: ArrayLike | None = None,
    max_sets: int = 1_000_000,
) -> np.ndarray:
    """List every set of ``n_particles`` modes out of ``n_modes``, with a cutoff.

    Args:
      n_modes: static, number M of modes.
      n_particles: static, set size N, 1 <= N <= M.
      max_energy: keep only sets with sum of mode energies <= max_energy.
      energies: (M,) mode energies; required with max_energy.
      max_sets: raise instead of returning more sets than this.

    Returns:
      (S, N) int64, each row ascending, rows in lexicographic order.

    Raises:
      ValueError: for bad sizes, a cutoff that keeps no set, or too many sets.

    Examples:
      >>> enumerate_sets(4, 2).tolist()
      [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
      >>> enumerate_sets(4, 2, max_energy=3.0, energies=[0.0, 1.0, 2.0, 3.0]).tolist()
      [[0, 1], [0, 2], [0, 3], [1, 2]]
    """
    n_modes = check_positive_int("n_modes", n_modes)
    n_particles = check_positive_int("n_particles", n_particles)
    max_sets = check_positive_int("max_sets", max_sets)
    if n_particles > n_modes:
        raise ValueError(
            f"n_particles={n_particles} exceeds n_modes={n_modes}: the cutoff keeps "
            "fewer orbitals than particles."
        )
    energies, max_energy = _check_cutoff(n_modes, max_energy, energies)
    sets = _enumerate(n_modes, n_particles, energies, max_energy, max_sets)
    if len(sets) == 0:
        raise ValueError(
            f"max_energy={max_energy} is below the lowest {n_particles}-particle "
            "energy; no set survives the cutoff."
        )
    return sets


def enumerate_spinful_sets(
    n_modes: int,
    n_up: int,
    n_down: int,
    *,
    max_energy: float | None = None,
    energies: ArrayLike | None = None,
    max_sets: int = 1_000_000,
) -> np.ndarray:
    """List every pair (K_up, K_down) of sets of the same modes, with a cutoff.

    The cutoff applies to the total energy of both species.

    Args:
      n_modes: static, number M of modes per spin.
      n_up: static, 0 <= n_up <= M.
      n_down: static, 0 <= n_down <= M, n_up + n_down >= 1.
      max_energy: keep only pairs with total energy <= max_energy.
      energies: (M,) mode energies; required with max_energy.
      max_sets: raise instead of returning more pairs than this.

    Returns:
      (S, n_up + n_down) int64: up modes ascending, then down modes ascending; rows
      in lexicographic order.

    Examples:
      >>> enumerate_spinful_sets(3, 1, 1, max_energy=1.0, energies=[0, 1, 2]).tolist()
      [[0, 0], [0, 1], [1, 0]]
    """
    n_modes = check_positive_int("n_modes", n_modes)
    n_up = check_nonnegative_int("n_up", n_up)
    n_down = check_nonnegative_int("n_down", n_down)
    if n_up + n_down == 0 or max(n_up, n_down) > n_modes:
        raise ValueError(
            f"need n_up + n_down >= 1 and n_up, n_down <= n_modes={n_modes}, got "
            f"n_up={n_up}, n_down={n_down}: the cutoff keeps fewer orbitals than "
            "particles."
        )
    energies, max_energy = _check_cutoff(n_modes, max_energy, energies)
    lowest = np.sort(energies)
    up, down = (
        _enumerate(n_modes, n, energies, max_energy - lowest[:other].sum(), max_sets)
        for n, other in ((n_up, n_down), (n_down, n_up))
    )
    limit = max_energy + _tolerance(max_energy, energies, n_up + n_down)
    rows, cols = _pairs_below(
        energies[up].sum(1), energies[down].sum(1), limit, max_sets
    )
    if len(rows) == 0:
        raise ValueError(f"max_energy={max_energy} keeps no pair of sets.")
    return np.concatenate([up[rows], down[cols]], axis=1)


def _pairs_below(energy_up, energy_down, limit, max_sets):
    """Return (rows, cols) of pairs with energy_up + energy_down <= limit, in order."""
    # Start from empty arrays: with no up set at all, np.concatenate([]) would raise.
    rows, cols, count = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    for i, e in enumerate(energy_up):
        (chosen,) = np.nonzero(e + energy_down <= limit)
        count += len(chosen)
        if count > max_sets:
            raise ValueError(f"more than max_sets={max_sets} pairs; lower max_energy.")
        rows.append(np.full(len(chosen), i))
        cols.append(chosen)
    return np.concatenate(rows), np.concatenate(cols)


def _lex_less(a: Array, b: Array) -> Array:
    """(..., n) int rows -> (...) bool, a < b in lexicographic order."""
    differ = a != b
    first = jnp.argmax(differ, axis=-1)[..., None]
    a_first = jnp.take_along_axis(a, first, -1)[..., 0]
    b_first = jnp.take_along_axis(b, first, -1)[..., 0]
    return jnp.any(differ, axis=-1) & (a_first < b_first)


def _lower_bound(table: Array, query: Array) -> Array:
    """Index of the first row of the sorted (S, n) table >= each (batch, n) query."""
    size = table.shape[0]

    def bisect(_, bounds):
        low, high = bounds
        middle = (low + high) // 2
        less = _lex_less(table[jnp.minimum(middle, size - 1)], query)
        active = low < high
        return jnp.where(active & less, middle + 1, low), jnp.where(
            active & ~less, middle, high
        )

    start = (jnp.zeros(query.shape[0], jnp.int32), jnp.full(query.shape[0], size))
    low, _ = jax.lax.fori_loop(0, size.bit_length() + 1, bisect, start)
    return low


def make_categorical_model(
    states: ArrayLike, *, n_up: int | None = None, param_dtype: jnp.dtype = jnp.float32
) -> ARModel:
    """Make p(K) = softmax(logits)_K over an explicit list of sets.

    Args:
      states: (S, n) int, distinct sets, each row ascending (within each species if
        n_up is given), e.g. from :func:`enumerate_sets`. Captured (static).
      n_up: static; if given, rows are spinful: n_up up modes, then the down modes.
      param_dtype: static, dtype of the initial logits.

    Returns:
      An :class:`~fermiflow.models.autoregressive.ARModel` whose params are the
      logits (S,), in the order of ``states``; ``init`` returns zeros (uniform p) and
      ignores its key. ``log_prob`` is -inf for a set that is not in the list.

    Raises:
      ValueError: if states is not a non-empty 2-D list of distinct ascending sets.

    Examples:
      >>> model = make_categorical_model(enumerate_sets(4, 2))
      >>> params = model.init(jax.random.key(0))
      >>> model.log_prob(params, jnp.array([[3, 1]])).tolist()  # log(1/6)
      [-1.7917594909667969]
    """
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[0] < 1 or states.shape[1] < 1:
        raise ValueError(
            f"states must have shape (S, n), S, n >= 1; got {states.shape}."
        )
    n_up = states.shape[1] if n_up is None else n_up
    n_up = check_nonnegative_int("n_up", n_up)
    if n_up > states.shape[1]:
        raise ValueError(f"n_up={n_up} exceeds the row length {states.shape[1]}.")
    blocks = np.split(states, [n_up], axis=1)
    if any(np.any(np.diff(b, axis=1) <= 0) for b in blocks) or np.any(states < 0):
        raise ValueError("each row of states must be ascending (per species), >= 0.")
    order = np.lexsort(states.T[::-1])
    table = states[order]
    if np.any(np.all(table[1:] == table[:-1], axis=1)):
        raise ValueError("states has repeated rows; list each set once.")
    table, order, states_j = (jnp.asarray(a, jnp.int32) for a in (table, order, states))

    def init(key: PRNGKey) -> Params:
        del key  # the uniform distribution needs no randomness
        return jnp.zeros(len(order), param_dtype)

    def log_prob(params: Params, occ: ArrayLike) -> Array:
        occ = jnp.asarray(occ, jnp.int32)
        if occ.ndim != 2 or occ.shape[1] != table.shape[1]:
            raise ValueError(
                f"occ must have shape (batch, {table.shape[1]}), got {occ.shape}."
            )
        occ = jnp.concatenate([jnp.sort(b, -1) for b in jnp.split(occ, [n_up], -1)], -1)
        row = jnp.minimum(_lower_bound(table, occ), len(order) - 1)
        found = jnp.all(table[row] == occ, axis=-1)
        return jnp.where(found, jax.nn.log_softmax(params)[order[row]], -jnp.inf)

    def sample(key: PRNGKey, params: Params, batch: int) -> tuple[Array, Array]:
        index = jax.random.categorical(key, params, shape=(batch,))
        return states_j[index], jax.nn.log_softmax(params)[index]

    return ARModel(init, log_prob, sample)

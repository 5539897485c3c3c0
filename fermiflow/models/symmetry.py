"""Symmetric set models: p(K) exactly invariant under the point group of the system.

A symmetry operation of the system that maps the single-particle mode table onto
itself acts on occupations as a permutation pi of the mode indices, K -> pi(K). The
exact density matrix is invariant, so degenerate modes related by a symmetry must
have equal occupations <n_k>. A learned autoregressive p~(K) breaks this (it orders
the modes, and a score-function gradient never revives a mode whose probability has
collapsed). The group average

    p(K) = (1 / |G|) sum_{g in G} p~(g K)

is again normalized over sets (each g is a bijection of sets), sampled exactly (draw
K ~ p~, then apply a uniformly drawn g^-1), has an exact ln p (a logsumexp over the
group) and is exactly invariant: p(h K) = p(K) for every h in G.

Groups:
- plane waves with twist t: the signed axis permutations Q (a subgroup of the cubic
  point group, with time reversal folded in as Q = -R) with Q t = t exactly, so that
  k = 2 pi (n + t) / L -> 2 pi (Q n + t) / L maps the integer grid |n|^2 <= emax onto
  itself; for the twist (1/4, 1/4) this is {1, swap x <-> y}; at the Gamma point all
  2^dim dim! signed permutations;
- Cartesian oscillator orbitals: the axis permutations (a sign flip maps h_n to
  (-1)^n h_n, the same mode).

Cost: |G| evaluations of p~ in ``log_prob``.

Units: none (mode indices). Acts on batches, like :class:`ARModel`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.models.autoregressive import ARModel
from fermiflow.types import Array, ArrayLike, Params, PRNGKey

__all__ = ["make_symmetric_model", "oscillator_symmetries", "plane_wave_symmetries"]


def _table_permutations(labels: np.ndarray, transforms: list[np.ndarray]) -> np.ndarray:
    """Return (G, m) index maps of the label transforms that map the table onto itself."""
    index = {tuple(row): i for i, row in enumerate(labels.tolist())}
    maps = []
    for matrix in transforms:
        images = [index.get(tuple(row)) for row in (labels @ matrix.T).tolist()]
        if None not in images:
            maps.append(images)
    unique = np.unique(np.asarray(maps, np.int64), axis=0)
    identity = np.arange(labels.shape[0])
    # Identity first (the sampler applies maps[g]; any order is valid).
    return unique[np.argsort([not np.array_equal(m, identity) for m in unique], kind="stable")]


def plane_wave_symmetries(quantum_numbers: ArrayLike, twist: ArrayLike) -> np.ndarray:
    """Return the mode permutations of the twisted plane-wave table's symmetry group.

    Args:
      quantum_numbers: (m, dim) integer labels n of the modes.
      twist: (dim,) twist t.

    Returns:
      (G, m) int64: row g maps mode index i to the index of Q_g n_i (row 0: identity).

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> s = plane_wave_spectrum(dim=2, emax=2, box_length=1.0, twist=(0.25, 0.25))
      >>> plane_wave_symmetries(s.quantum_numbers, (0.25, 0.25)).shape
      (2, 9)
      >>> plane_wave_symmetries(s.quantum_numbers, (0.0, 0.0)).shape[0]
      8
    """
    labels = np.asarray(quantum_numbers, np.int64)
    twist = np.asarray(twist, np.float64)
    dim = labels.shape[1]
    transforms = []
    for perm in itertools.permutations(range(dim)):
        for signs in itertools.product((1, -1), repeat=dim):
            matrix = np.zeros((dim, dim), np.int64)
            matrix[np.arange(dim), perm] = signs
            if np.allclose(matrix @ twist, twist, atol=1e-12):
                transforms.append(matrix)
    return _table_permutations(labels, transforms)


def oscillator_symmetries(quantum_numbers: ArrayLike) -> np.ndarray:
    """Return the mode permutations of the axis permutations of Cartesian oscillators.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import oscillator_spectrum
      >>> oscillator_symmetries(oscillator_spectrum(dim=2, n_shells=3).quantum_numbers)[1]
      array([0, 2, 1, 5, 4, 3])
    """
    labels = np.asarray(quantum_numbers, np.int64)
    dim = labels.shape[1]
    transforms = [np.eye(dim, dtype=np.int64)[list(p)] for p in itertools.permutations(range(dim))]
    return _table_permutations(labels, transforms)


def make_symmetric_model(
    model: ARModel, permutations: ArrayLike, *, species: Sequence[int]
) -> ARModel:
    """Average a set model over a group of mode permutations (module docstring).

    Args:
      model: static, the learned model p~ (its ``log_prob`` accepts any order within a
        species, as :class:`ARModel` promises).
      permutations: static, (G, m) int mode maps forming a group (row 0 may be any
        element), e.g. :func:`plane_wave_symmetries`.
      species: static, the particle numbers of the species in occupation order, e.g.
        (n_up, n_down) or (n,); each species is one set.

    Returns:
      An :class:`ARModel` with the params of ``model``; ``log_prob`` costs G
      evaluations of p~.

    Raises:
      ValueError: if the rows are not permutations or do not form a group.

    Examples:
      >>> from fermiflow.models.categorical import enumerate_sets, make_categorical_model
      >>> base = make_categorical_model(enumerate_sets(3, 1))
      >>> sym = make_symmetric_model(base, [[0, 1, 2], [0, 2, 1]], species=(1,))
      >>> params = jnp.array([0.0, 2.0, 0.0])  # the logits of the three sets
      >>> p = jnp.exp(sym.log_prob(params, jnp.array([[1], [2]])))
      >>> bool(jnp.isclose(p[0], p[1]))
      True
    """
    maps = np.asarray(permutations, np.int64)
    if maps.ndim != 2 or any(sorted(row) != list(range(maps.shape[1])) for row in maps.tolist()):
        raise ValueError("permutations must be a (G, m) array of permutations of range(m).")
    rows = {tuple(r) for r in maps.tolist()}
    if any(tuple(a[b]) not in rows for a in maps for b in maps):
        raise ValueError("permutations must form a group (closed under composition).")
    species = tuple(int(size) for size in species)
    table = jnp.asarray(maps)
    inverse = jnp.asarray(np.argsort(maps, axis=1))
    log_size = math.log(maps.shape[0])

    n_modes = maps.shape[1]

    def log_prob(params: Params, occ: ArrayLike) -> Array:
        occ = jnp.asarray(occ)

        def image(perm):  # a mode outside the table stays outside (p = 0 there)
            return perm.at[occ].get(mode="fill", fill_value=n_modes)

        each = jax.vmap(lambda perm: model.log_prob(params, image(perm)))(table)  # (G, batch)
        return jax.nn.logsumexp(each, axis=0) - log_size

    def sample(key: PRNGKey, params: Params, batch: int) -> tuple[Array, Array]:
        key_model, key_group = jax.random.split(key)
        occ, _ = model.sample(key_model, params, batch)
        group = jax.random.randint(key_group, (batch,), 0, maps.shape[0])
        moved = jnp.take_along_axis(inverse[group], occ, axis=1)
        moved = _sort_species(moved, species)
        return moved, log_prob(params, moved)

    return ARModel(model.init, log_prob, sample)


def _sort_species(occ: Array, species: tuple[int, ...]) -> Array:
    """Ascending order within each species, as ``ARModel.sample`` promises."""
    pieces, start = [], 0
    for size in species:
        pieces.append(jnp.sort(occ[:, start:start + size], axis=1))
        start += size
    return jnp.concatenate(pieces, axis=1).astype(occ.dtype)

"""Symmetric set models: exact normalization, invariance, exact sampling, the groups."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.autoregressive import make_set_transformer, make_spinful_set_transformer
from fermiflow.models.categorical import enumerate_sets, enumerate_spinful_sets
from fermiflow.models.symmetry import (
    make_symmetric_model,
    oscillator_symmetries,
    plane_wave_symmetries,
)

TWISTED = plane_wave_spectrum(dim=2, emax=2, box_length=1.0, twist=(0.25, 0.25))


@pytest.mark.parametrize(("dim", "twist", "size"), [(2, (0.25, 0.25), 2), (2, (0.0, 0.0), 8),
                                                    (3, (0.0, 0.0, 0.0), 48),
                                                    (2, (0.25, 0.1), 1)])
def test_groups_map_the_table_onto_itself_and_keep_energies(dim, twist, size):
    spectrum = plane_wave_spectrum(dim=dim, emax=3, box_length=2.0, twist=twist)
    maps = plane_wave_symmetries(spectrum.quantum_numbers, twist)
    assert maps.shape == (size, len(spectrum.energies))
    np.testing.assert_array_equal(maps[0], np.arange(len(spectrum.energies)))
    for row in maps:
        assert sorted(row) == list(range(len(row)))
        np.testing.assert_allclose(spectrum.energies[row], spectrum.energies, rtol=1e-13)
    dot = oscillator_spectrum(dim=3, n_shells=3)
    maps = oscillator_symmetries(dot.quantum_numbers)
    assert maps.shape == (6, len(dot.energies))
    for row in maps:
        np.testing.assert_allclose(dot.energies[row], dot.energies, rtol=1e-13)


def _random_params(model, seed):
    params = model.init(jax.random.key(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(tree, [a + 0.5 * jax.random.normal(k, a.shape, a.dtype)
                                     for a, k in zip(leaves, keys, strict=True)])


def _setup(spinful):
    maps = plane_wave_symmetries(TWISTED.quantum_numbers, (0.25, 0.25))
    m = len(TWISTED.energies)
    if spinful:
        base = make_spinful_set_transformer(n_modes=m, n_up=2, n_down=1,
                                            param_dtype=jnp.float64)
        sets, species = enumerate_spinful_sets(m, 2, 1), (2, 1)
    else:
        base = make_set_transformer(n_modes=m, n_particles=3, param_dtype=jnp.float64)
        sets, species = enumerate_sets(m, 3), (3,)
    model = make_symmetric_model(base, maps, species=species)
    return model, _random_params(base, 3), np.asarray(sets), maps, species, base


def _image(occ, perm, species):
    out, start = [], 0
    for size in species:
        out.append(np.sort(perm[occ[:, start:start + size]], axis=1))
        start += size
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize(  # the single-set variant compiles for 23 s: -m slow
    "spinful", [pytest.param(False, marks=pytest.mark.slow), True])
def test_normalized_and_exactly_invariant(spinful):
    model, params, sets, maps, species, base = _setup(spinful)
    log_p = np.asarray(jax.jit(model.log_prob)(params, jnp.asarray(sets)))
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-12)
    for perm in maps:
        moved = jax.jit(model.log_prob)(params, jnp.asarray(_image(sets, perm, species)))
        np.testing.assert_allclose(np.asarray(moved), log_p, rtol=0, atol=1e-12)
    # The learned base model alone is not invariant (so the test has power).
    swapped = jnp.asarray(_image(sets, maps[1], species))
    gap = np.asarray(base.log_prob(params, jnp.asarray(sets)) - base.log_prob(params, swapped))
    assert np.abs(gap).max() > 0.1


def test_degenerate_modes_related_by_the_swap_have_equal_occupations():
    model, params, sets, maps, _, _ = _setup(False)
    p = np.exp(np.asarray(jax.jit(model.log_prob)(params, jnp.asarray(sets))))
    occupation = np.zeros(maps.shape[1])
    for weight, s in zip(p, sets, strict=True):
        occupation[s] += weight
    np.testing.assert_allclose(occupation[maps[1]], occupation, rtol=1e-12)
    np.testing.assert_allclose(occupation.sum(), 3.0, rtol=1e-12)
    assert np.ptp(occupation) > 0.05  # a non-trivial distribution


@pytest.mark.slow  # statistical, about 25 s; exact invariance stays in the default suite
def test_sampling_is_exact(key):
    model, params, sets, _, _, _ = _setup(True)
    occ, log_p = jax.jit(model.sample, static_argnums=2)(key, params, 40_000)
    occ, log_p = np.asarray(occ), np.asarray(log_p)
    np.testing.assert_allclose(log_p, np.asarray(model.log_prob(params, jnp.asarray(occ))),
                               atol=1e-12)
    for i in range(occ.shape[0] // 1000):  # ascending within species
        assert np.all(np.diff(occ[i, :2]) > 0)
    index = {tuple(s): i for i, s in enumerate(sets.tolist())}
    counts = np.bincount([index[tuple(o)] for o in occ.tolist()], minlength=len(sets))
    p = np.exp(np.asarray(model.log_prob(params, jnp.asarray(sets))))
    expected = p * occ.shape[0]
    big = expected > 50
    z = (counts[big] - expected[big]) / np.sqrt(expected[big] * (1 - p[big]))
    assert big.sum() > 20 and np.abs(z).max() < 5, np.abs(z).max()


def test_validation():
    base = make_set_transformer(n_modes=3, n_particles=1)
    with pytest.raises(ValueError, match="permutations of range"):
        make_symmetric_model(base, [[0, 1, 1]], species=(1,))
    with pytest.raises(ValueError, match="form a group"):
        make_symmetric_model(base, [[0, 1, 2], [1, 2, 0]], species=(1,))


def test_modes_outside_the_table_have_zero_probability():
    model, params, _, maps, _, _ = _setup(False)
    m = maps.shape[1]
    log_p = model.log_prob(params, jnp.array([[m - 2, m - 1, m]]))
    assert float(log_p[0]) == -np.inf

"""Tests of the set enumeration and the categorical model over an explicit list.

Enumeration is compared with brute force over itertools.combinations (exact), the
model with softmax(logits) (exact) and with its own samples (chi-square, entropy).
"""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from fermiflow.hamiltonians.spectrum import oscillator_spectrum
from fermiflow.models.categorical import (
    enumerate_sets,
    enumerate_spinful_sets,
    make_categorical_model,
)

# A chi-square p-value below SIGNIFICANCE fails: a false alarm has probability 1e-3.
SIGNIFICANCE = 1e-3
N_DRAWS = 200_000  # enough to detect a 20% error in any one probability (asserted)
SAMPLE_SIZES = [(5, 2), (4, 1)]


def combinations(n_modes, n_particles):
    return np.array(list(itertools.combinations(range(n_modes), n_particles)))


def brute_sets(energies, n_particles, max_energy):
    rows = combinations(len(energies), n_particles)
    return rows[energies[rows].sum(1) <= max_energy]


def brute_pairs(energies, n_up, n_down, max_energy):
    """Product of up and down sets (lexicographic order) with total <= max_energy."""
    pairs = [
        np.concatenate([u, d])
        for u in combinations(len(energies), n_up)
        for d in combinations(len(energies), n_down)
        if energies[list(u)].sum() + energies[list(d)].sum() <= max_energy
    ]
    return np.array(pairs, dtype=np.int64).reshape(len(pairs), n_up + n_down)


def random_energies(key, n_modes):
    return np.asarray(jax.random.normal(key, (n_modes,), jnp.float64))


def midpoint_cutoff(sums, quantile):
    """A cutoff halfway across a gap between sums: no sum lies within 5e-10 of it.

    Sums closer than 1e-9 count as equal: the same modes summed in another order
    (e.g. {0, 2} + {1, 3} and {0, 3} + {1, 2}) differ by rounding only.
    """
    ordered = np.sort(sums)
    (gaps,) = np.nonzero(np.diff(ordered) > 1e-9)
    if len(gaps) == 0:
        return ordered[-1] + 1.0
    k = gaps[int(quantile * (len(gaps) - 1))]
    return 0.5 * (ordered[k] + ordered[k + 1])


@pytest.mark.parametrize(
    "n_modes,n_particles", [(1, 1), (4, 1), (5, 2), (6, 3), (7, 4), (5, 5), (8, 8)]
)
def test_enumerate_sets_without_cutoff(n_modes, n_particles):
    sets = enumerate_sets(n_modes, n_particles)
    assert sets.dtype == np.int64
    np.testing.assert_array_equal(sets, combinations(n_modes, n_particles))
    assert np.all(np.diff(sets, axis=1) > 0)  # ascending rows
    assert len(np.unique(sets, axis=0)) == len(sets)  # distinct
    order = np.lexsort(sets.T[::-1])
    np.testing.assert_array_equal(order, np.arange(len(sets)))  # lexicographic


def test_enumerate_sets_rejects_empty_or_oversized_sets():
    # N = 0 (the empty set) is not supported: a model needs at least one particle.
    with pytest.raises(ValueError, match="n_particles"):
        enumerate_sets(4, 0)
    with pytest.raises(ValueError, match="n_particles=5 exceeds n_modes=4"):
        enumerate_sets(4, 5)
    with pytest.raises(ValueError, match="n_modes"):
        enumerate_sets(0, 1)


@pytest.mark.parametrize("n_modes,n_particles", [(6, 1), (8, 3), (9, 4), (7, 7)])
@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.8])
def test_enumerate_sets_random_cutoff_matches_brute_force(
    key, n_modes, n_particles, quantile
):
    energies = random_energies(
        jax.random.fold_in(key, 10 * n_modes + n_particles), n_modes
    )
    sums = energies[combinations(n_modes, n_particles)].sum(1)
    max_energy = midpoint_cutoff(sums, quantile)
    sets = enumerate_sets(
        n_modes, n_particles, max_energy=max_energy, energies=energies
    )
    expected = brute_sets(energies, n_particles, max_energy)
    assert len(expected) >= 1
    np.testing.assert_array_equal(sets, expected)


# (dim, n_shells, n_particles, closed-shell sum of the quantum numbers n_x + n_y + ...)
CLOSED_SHELLS = [(1, 6, 2, 1), (2, 4, 3, 2), (2, 4, 6, 8), (3, 3, 4, 3)]


@pytest.mark.parametrize("dim,n_shells,n_particles,closed", CLOSED_SHELLS)
@pytest.mark.parametrize("excitation", [0, 1, 2])
# These omegas put some sets one ulp above the float cutoff (see next test).
@pytest.mark.parametrize("omega", [0.3, 0.37, 0.9])
def test_enumerate_sets_degenerate_levels_on_the_cutoff(
    dim, n_shells, n_particles, closed, excitation, omega
):
    """The cutoff sits exactly on a degenerate level; those sets must be kept.

    Brute force counts shells in integers (exact), the library sums float energies
    omega (shell + dim/2), which may land one ulp above the float cutoff.
    """
    spectrum = oscillator_spectrum(dim=dim, n_shells=n_shells, omega=omega)
    shells = spectrum.quantum_numbers.sum(1)
    max_shell = closed + excitation
    expected = brute_sets(shells, n_particles, max_shell)
    max_energy = omega * (max_shell + n_particles * dim / 2)
    sets = enumerate_sets(
        len(shells), n_particles, max_energy=max_energy, energies=spectrum.energies
    )
    np.testing.assert_array_equal(sets, expected)
    if excitation == 0:  # the closed shell is the unique ground state
        np.testing.assert_array_equal(sets, [np.arange(n_particles)])
    else:
        assert len(sets) > 1


def test_degenerate_cutoff_cases_need_the_tolerance():
    """Guards the test above: a naive float filter drops sets on the cutoff."""
    omega, max_shell, n_particles = 0.9, 4, 3
    spectrum = oscillator_spectrum(dim=2, n_shells=4, omega=omega)
    rows = combinations(len(spectrum.energies), n_particles)
    exact = spectrum.quantum_numbers.sum(1)[rows].sum(1) <= max_shell
    naive = spectrum.energies[rows].sum(1) <= omega * (max_shell + n_particles)
    assert np.sum(exact & ~naive) > 0


def test_enumerate_sets_bad_cutoff():
    energies = np.arange(4.0)
    with pytest.raises(ValueError, match="no set survives"):
        enumerate_sets(4, 2, max_energy=0.5, energies=energies)
    with pytest.raises(ValueError, match="max_energy and energies"):
        enumerate_sets(4, 2, max_energy=1.0)
    with pytest.raises(ValueError, match="max_energy and energies"):
        enumerate_sets(4, 2, energies=energies)
    with pytest.raises(ValueError, match="energies must be"):
        enumerate_sets(4, 2, max_energy=1.0, energies=energies[:3])
    with pytest.raises(ValueError, match="max_sets"):
        enumerate_sets(8, 4, max_sets=69)  # C(8, 4) = 70
    assert len(enumerate_sets(8, 4, max_sets=70)) == 70


SPINFUL = [(4, 2, 1), (5, 2, 2), (4, 0, 2), (4, 3, 0), (3, 3, 3)]


@pytest.mark.parametrize("n_modes,n_up,n_down", SPINFUL)
def test_enumerate_spinful_sets_without_cutoff(n_modes, n_up, n_down):
    pairs = enumerate_spinful_sets(n_modes, n_up, n_down)
    np.testing.assert_array_equal(
        pairs, brute_pairs(np.zeros(n_modes), n_up, n_down, 0.0)
    )


@pytest.mark.parametrize("n_modes,n_up,n_down", SPINFUL)
@pytest.mark.parametrize("quantile", [0.0, 0.4, 0.9])
def test_enumerate_spinful_sets_random_cutoff(key, n_modes, n_up, n_down, quantile):
    energies = random_energies(jax.random.fold_in(key, 100 * n_modes + n_up), n_modes)
    totals = [
        energies[list(u)].sum() + energies[list(d)].sum()
        for u in itertools.combinations(range(n_modes), n_up)
        for d in itertools.combinations(range(n_modes), n_down)
    ]
    max_energy = midpoint_cutoff(np.array(totals), quantile)
    pairs = enumerate_spinful_sets(
        n_modes, n_up, n_down, max_energy=max_energy, energies=energies
    )
    np.testing.assert_array_equal(
        pairs, brute_pairs(energies, n_up, n_down, max_energy)
    )


@pytest.mark.parametrize("excitation", [0, 1, 2])
@pytest.mark.parametrize("n_up,n_down,closed", [(3, 3, 4), (3, 1, 2), (1, 0, 0)])
def test_enumerate_spinful_sets_degenerate_levels(n_up, n_down, closed, excitation):
    omega = 0.1
    spectrum = oscillator_spectrum(dim=2, n_shells=4, omega=omega)
    shells = spectrum.quantum_numbers.sum(1)
    max_shell = closed + excitation
    max_energy = omega * (max_shell + (n_up + n_down))  # dim/2 = 1 per particle
    pairs = enumerate_spinful_sets(
        len(shells), n_up, n_down, max_energy=max_energy, energies=spectrum.energies
    )
    np.testing.assert_array_equal(pairs, brute_pairs(shells, n_up, n_down, max_shell))


def test_enumerate_spinful_sets_bad_input():
    with pytest.raises(ValueError, match="n_up \\+ n_down >= 1"):
        enumerate_spinful_sets(4, 0, 0)
    with pytest.raises(ValueError, match="n_up, n_down <= n_modes"):
        enumerate_spinful_sets(3, 4, 1)
    with pytest.raises(ValueError, match="n_down"):
        enumerate_spinful_sets(3, 1, -1)
    with pytest.raises(ValueError, match="keeps no pair"):
        enumerate_spinful_sets(4, 1, 1, max_energy=-0.5, energies=np.arange(4.0))


def _model_and_logits(key, states, n_up=None, scale=0.7):
    model = make_categorical_model(states, n_up=n_up, param_dtype=jnp.float64)
    logits = scale * jax.random.normal(key, (len(states),), jnp.float64)
    return model, logits


def _permute_rows(key, occ, n_up):
    """Shuffle each row independently within the up block and the down block."""
    occ = np.asarray(occ)
    noise = np.array(jax.random.uniform(key, occ.shape))
    noise[:, n_up:] += 2.0  # argsort keeps the down block after the up block
    return np.take_along_axis(occ, np.argsort(noise, axis=1), axis=1)


@pytest.mark.parametrize(
    "states,n_up",
    [
        (enumerate_sets(6, 3), None),
        (enumerate_sets(7, 3, max_energy=6.0, energies=np.arange(7.0)), None),
        (enumerate_spinful_sets(4, 2, 1), 2),
        (enumerate_spinful_sets(4, 0, 2), 0),
    ],
)
def test_log_prob_is_normalized_softmax(key, states, n_up):
    key_logits, key_order, key_perm = jax.random.split(key, 3)
    # A shuffled list: log_prob must follow the order of the list, not sorted order.
    order = np.asarray(jax.random.permutation(key_order, len(states)))
    states = states[order]
    model, logits = _model_and_logits(key_logits, states, n_up)
    log_prob_fn = jax.jit(model.log_prob)  # one compilation for both calls
    log_prob = log_prob_fn(logits, states)
    chex.assert_shape(log_prob, (len(states),))
    np.testing.assert_allclose(
        log_prob, logits - scipy.special.logsumexp(logits), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(scipy.special.logsumexp(log_prob), 0.0, atol=1e-12)
    shuffled = _permute_rows(
        key_perm, jnp.asarray(states), states.shape[1] if n_up is None else n_up
    )
    assert not np.array_equal(shuffled, states)  # the permutation did something
    np.testing.assert_array_equal(log_prob_fn(logits, shuffled), log_prob)


def test_log_prob_minus_infinity_outside_the_list(key):
    states = enumerate_sets(7, 3, max_energy=6.0, energies=np.arange(7.0))
    model, logits = _model_and_logits(key, states)
    outside = jnp.array([[4, 5, 6], [0, 1, 6], [1, 1, 2], [0, 1, 99], [3, 2, 1]])
    assert not any((row == states).all(1).any() for row in np.sort(outside, 1)[:2])
    log_prob = model.log_prob(logits, outside)
    np.testing.assert_array_equal(log_prob[:4], -np.inf)
    assert np.isfinite(log_prob[4])  # [1, 2, 3] is in the list, given unsorted


def test_spinful_log_prob_distinguishes_species(key):
    states = enumerate_spinful_sets(4, 2, 1)
    model, logits = _model_and_logits(key, states, n_up=2)
    occ = jnp.array(
        [[0, 1, 2], [0, 2, 1], [1, 2, 0], [0, 1, 1], [2, 0, 1], [1, 2, 1], [1, 0, 1]]
    )
    log_prob = model.log_prob(logits, occ)
    assert len(np.unique(log_prob[:4])) == 4  # distinct members of the list
    # [2, 0 | 1] is [0, 2 | 1] (within-species order is irrelevant) ...
    assert log_prob[4] == log_prob[1]
    # ... but a mode moved across the species boundary is another set.
    assert log_prob[5] != log_prob[0]
    assert log_prob[6] == log_prob[3]


@pytest.fixture(scope="module", params=SAMPLE_SIZES, ids=lambda s: f"M{s[0]}N{s[1]}")
def drawn(request):
    n_modes, n_particles = request.param
    states = enumerate_sets(n_modes, n_particles)
    model, logits = _model_and_logits(jax.random.key(100 + n_modes), states, scale=0.5)
    occ, log_prob = jax.jit(model.sample, static_argnums=2)(
        jax.random.key(7), logits, N_DRAWS
    )
    return states, model, logits, occ, log_prob


def _state_index(states, occ):
    """Index in states of each sampled row (rows must be members)."""
    codes = {tuple(row): i for i, row in enumerate(states.tolist())}
    return np.array([codes[tuple(row)] for row in np.asarray(occ).tolist()])


def test_sample_frequencies_chi_square(drawn):
    states, _, logits, occ, _ = drawn
    probs = np.asarray(scipy.special.softmax(logits))
    counts = np.bincount(_state_index(states, occ), minlength=len(states))
    expected = N_DRAWS * probs
    assert expected.min() > 5  # Pearson's chi-square approximation is valid
    assert scipy.stats.chisquare(counts, expected).pvalue > SIGNIFICANCE
    # Power: a 20% error in any one probability is rejected. Predicted from the
    # noncentral chi-square, then checked on these very counts.
    df = len(states) - 1
    critical = scipy.stats.chi2.ppf(1 - SIGNIFICANCE, df)
    for j in range(len(states)):
        perturbed = probs.copy()
        perturbed[j] *= 1.2
        perturbed /= perturbed.sum()
        noncentrality = N_DRAWS * np.sum((probs - perturbed) ** 2 / perturbed)
        assert scipy.stats.ncx2.sf(critical, df, noncentrality) > 1 - 1e-6
        assert scipy.stats.chisquare(counts, N_DRAWS * perturbed).pvalue < SIGNIFICANCE


def test_sample_log_prob_and_entropy(drawn):
    states, model, logits, occ, log_prob = drawn
    chex.assert_shape(occ, (N_DRAWS, states.shape[1]))
    chex.assert_shape(log_prob, (N_DRAWS,))
    assert occ.dtype == jnp.int32
    assert np.all(np.diff(np.asarray(occ), axis=1) > 0)
    np.testing.assert_allclose(log_prob, model.log_prob(logits, occ), rtol=1e-12)
    probs = scipy.special.softmax(logits)
    exact = -np.sum(probs * np.log(probs))
    stderr = float(jnp.std(log_prob)) / np.sqrt(N_DRAWS)
    assert stderr < 1e-2, f"too noisy to test: stderr={stderr:.2e}"
    deviation = abs(-float(jnp.mean(log_prob)) - exact)
    assert deviation < 5 * stderr, f"{deviation / stderr:.1f} sigma"


def test_sample_is_deterministic_in_the_key():
    model = make_categorical_model(enumerate_sets(6, 2))
    logits = jax.random.normal(jax.random.key(0), (15,))
    first = model.sample(jax.random.key(3), logits, 64)
    second = model.sample(jax.random.key(3), logits, 64)
    other = model.sample(jax.random.key(4), logits, 64)
    chex.assert_trees_all_equal(first, second)
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(
    "states,n_up,match",
    [
        (np.array([0, 1]), None, "shape"),
        (np.zeros((0, 2), int), None, "shape"),
        (np.zeros((2, 0), int), None, "shape"),
        ([[1, 0], [0, 2]], None, "ascending"),
        ([[0, 0], [0, 2]], None, "ascending"),
        ([[-1, 0]], None, ">= 0"),
        ([[0, 1], [0, 2], [0, 1]], None, "repeated"),
        ([[0, 1, 0], [1, 0, 0]], 2, "ascending"),  # up block [1, 0]
        ([[0, 1, 2, 1]], 2, "ascending"),  # down block [2, 1]
        ([[0, 1, 0], [0, 1, 0]], 2, "repeated"),
        ([[0, 1]], -1, "n_up"),
        ([[0, 1]], 3, "n_up"),
    ],
)
def test_bad_states_raise(states, n_up, match):
    with pytest.raises(ValueError, match=match):
        make_categorical_model(states, n_up=n_up)


def test_bad_occ_shape_raises():
    model = make_categorical_model(enumerate_sets(4, 2))
    params = model.init(jax.random.key(0))
    for occ in (jnp.array([0, 1]), jnp.array([[0, 1, 2]]), jnp.zeros((1, 1, 2), int)):
        with pytest.raises(ValueError, match="occ must have shape"):
            model.log_prob(params, occ)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_follows_params(dtype):
    states = enumerate_spinful_sets(3, 1, 1)
    model = make_categorical_model(states, n_up=1, param_dtype=dtype)
    params = model.init(jax.random.key(0))
    assert params.dtype == dtype
    log_prob = model.log_prob(params, states)
    assert log_prob.dtype == dtype
    np.testing.assert_allclose(log_prob, -np.log(len(states)), rtol=1e-6)
    occ, sample_log_prob = model.sample(jax.random.key(1), params, 8)
    assert sample_log_prob.dtype == dtype
    assert occ.dtype == jnp.int32
    # Logits given in the other dtype: log_prob follows the params, not param_dtype.
    other = jnp.float64 if dtype == jnp.float32 else jnp.float32
    assert model.log_prob(params.astype(other), states).dtype == other

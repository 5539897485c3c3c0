"""Tests of the autoregressive set transformers: normalization, sampling, dtypes."""

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from fermiflow.models.autoregressive import (
    make_set_transformer,
    make_spinful_set_transformer,
)

# A chi-square statistic above the (1 - 1e-6) quantile fails: a false alarm has
# probability 1e-6 per test for any key.
SIGNIFICANCE = 1e-6


def random_params(model, key, scale=0.5):
    """Every parameter N(0, scale^2): a random p far from uniform.

    One normal draw split on the host: this compiles much faster than model.init,
    and normalization must hold for ANY finite parameters.
    """
    leaves, treedef = jax.tree.flatten(jax.eval_shape(model.init, key))
    sizes = [math.prod(x.shape) for x in leaves]
    flat = scale * np.asarray(jax.random.normal(key, (sum(sizes),), leaves[0].dtype))
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return treedef.unflatten(
        [jnp.asarray(p.reshape(x.shape)) for p, x in zip(parts, leaves, strict=True)]
    )


def all_sets(n_modes, n_particles):
    return np.array(list(itertools.combinations(range(n_modes), n_particles)))


def all_pairs(n_modes, n_up, n_down):
    up, down = all_sets(n_modes, n_up), all_sets(n_modes, n_down)
    return np.array([np.concatenate([u, d]) for u in up for d in down]).astype(int)


def chi_square(observed, expected):
    """Pearson chi-square after merging the bins with expectation < 5 into one."""
    small = expected < 5
    observed = np.append(observed[~small], observed[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    statistic = np.sum((observed - expected) ** 2 / expected)
    bound = scipy.stats.chi2.ppf(1 - SIGNIFICANCE, len(expected) - 1)
    return statistic, bound, len(expected)


N_SAMPLES = 50_000  # one batch size per model: sample and log_prob compile once


class Case:
    """An x64 model with random params, its jitted functions and N_SAMPLES draws."""

    def __init__(self, model, key, support, n_up=None):
        key_params, key_sample = jax.random.split(key)
        self.model, self.support, self.n_up = model, support, n_up
        # Small scale: p is clearly non-uniform but every set is sampled often.
        self.params = random_params(model, key_params, scale=0.3)
        self.log_prob = jax.jit(model.log_prob)
        self.sample = jax.jit(model.sample, static_argnums=2)
        self.occ, self.sample_log_prob = self.sample(key_sample, self.params, N_SAMPLES)

    def support_log_prob(self):
        """Log p of each set in the support, padded to N_SAMPLES rows (no recompile)."""
        rows = np.zeros((N_SAMPLES, self.support.shape[1]), int)
        rows[: len(self.support)] = self.support
        return np.asarray(self.log_prob(self.params, rows))[: len(self.support)]


@pytest.fixture(scope="module")
def single(request):
    key = jax.random.key(request.config.getoption("--seed"))
    model = make_set_transformer(n_modes=8, n_particles=3, param_dtype=jnp.float64)
    return Case(model, key, all_sets(8, 3))


@pytest.fixture(scope="module")
def spinful(request):
    key = jax.random.key(request.config.getoption("--seed"))
    model = make_spinful_set_transformer(
        n_modes=5, n_up=2, n_down=2, param_dtype=jnp.float64
    )
    return Case(model, key, all_pairs(5, 2, 2), n_up=2)


@pytest.mark.parametrize("n_modes, n_particles", [(5, 1), (10, 9), (14, 7), (6, 6)])
def test_normalized_over_all_sets(key, n_modes, n_particles):
    model = make_set_transformer(
        n_modes=n_modes, n_particles=n_particles, param_dtype=jnp.float64
    )
    params = random_params(model, key)
    log_p = np.asarray(jax.jit(model.log_prob)(params, all_sets(n_modes, n_particles)))
    assert log_p.dtype == np.float64
    assert np.all(np.isfinite(log_p))
    assert abs(scipy.special.logsumexp(log_p)) < 1e-10
    if n_particles < n_modes:  # non-trivial: far from uniform
        assert np.ptp(log_p) > 1.0


def test_spinful_normalized_with_empty_species(key):
    model = make_spinful_set_transformer(
        n_modes=4, n_up=0, n_down=2, param_dtype=jnp.float64
    )
    log_p = jax.jit(model.log_prob)(random_params(model, key), all_pairs(4, 0, 2))
    assert abs(scipy.special.logsumexp(np.asarray(log_p))) < 1e-10


@pytest.mark.parametrize("case", ["single", "spinful"])
def test_normalized(case, request):
    log_p = request.getfixturevalue(case).support_log_prob()
    assert np.all(np.isfinite(log_p))
    assert abs(scipy.special.logsumexp(log_p)) < 1e-10
    assert np.ptp(log_p) > 1.0


def test_spinful_is_not_a_product(spinful):
    # p(K_down | K_up) depends on K_up: the down part attends to the up part.
    joint = np.exp(spinful.support_log_prob()).reshape(len(all_sets(5, 2)), -1)
    conditional = joint / joint.sum(axis=1, keepdims=True)
    assert np.ptp(conditional, axis=0).max() > 0.01


@pytest.mark.parametrize("case", ["single", "spinful"])
def test_sample_frequencies_and_entropy(case, request):
    case = request.getfixturevalue(case)
    log_p_exact = case.support_log_prob()
    lookup = {tuple(row): i for i, row in enumerate(case.support.tolist())}
    index = np.array([lookup[tuple(row)] for row in np.asarray(case.occ).tolist()])
    observed = np.bincount(index, minlength=len(case.support))
    statistic, bound, n_bins = chi_square(observed, N_SAMPLES * np.exp(log_p_exact))
    assert n_bins > 20, "too few bins for a meaningful test"
    assert statistic < bound, f"chi2={statistic:.1f} > {bound:.1f} ({n_bins} bins)"
    # Entropy S = -E ln p from samples vs the enumerated sum.
    entropy_exact = -np.sum(np.exp(log_p_exact) * log_p_exact)
    log_p = np.asarray(case.sample_log_prob)
    stderr = np.std(log_p) / np.sqrt(N_SAMPLES)
    assert stderr < 0.01, f"too noisy to test: stderr={stderr:.2e}"
    deviation = abs(-np.mean(log_p) - entropy_exact)
    assert deviation < 5 * stderr, f"{deviation / stderr:.1f} sigma"


@pytest.mark.parametrize("case", ["single", "spinful"])
def test_sample_log_prob_matches_and_sets_valid(case, request):
    case = request.getfixturevalue(case)
    n, n_modes = case.support.shape[1], int(case.support.max()) + 1
    chex.assert_shape(case.occ, (N_SAMPLES, n))
    chex.assert_shape(case.sample_log_prob, (N_SAMPLES,))
    assert case.occ.dtype == jnp.int32
    occ = np.asarray(case.occ)
    species = np.split(occ, [case.n_up], axis=1) if case.n_up else [occ]
    assert all(np.all(np.diff(s, axis=1) > 0) for s in species), "ascending sets"
    assert occ.min() >= 0 and occ.max() < n_modes
    log_p = case.log_prob(case.params, case.occ)
    np.testing.assert_allclose(log_p, case.sample_log_prob, rtol=1e-10)


@pytest.mark.parametrize("seed_offset", [0, 1])
def test_log_prob_permutation_invariant(single, key, seed_offset):
    keys = jax.random.split(jax.random.fold_in(key, seed_offset), N_SAMPLES)
    permuted = jax.vmap(jax.random.permutation)(keys, single.occ)
    assert np.mean(np.any(np.asarray(permuted) != np.asarray(single.occ), 1)) > 0.5
    log_p = single.log_prob(single.params, permuted)
    np.testing.assert_allclose(log_p, single.sample_log_prob, rtol=1e-10)


def test_spinful_log_prob_invariant_within_species(spinful, key):
    key_up, key_down = jax.random.split(key)
    shuffle = jax.vmap(jax.random.permutation)
    up = shuffle(jax.random.split(key_up, N_SAMPLES), spinful.occ[:, :2])
    down = shuffle(jax.random.split(key_down, N_SAMPLES), spinful.occ[:, 2:])
    log_p = spinful.log_prob(spinful.params, jnp.concatenate([up, down], 1))
    np.testing.assert_allclose(log_p, spinful.sample_log_prob, rtol=1e-10)


def test_log_prob_outside_support_is_minus_infinity(single):
    occ = np.asarray(single.occ).copy()
    occ[:3] = [[1, 1, 2], [0, 1, 8], [-1, 2, 3]]
    log_p = np.asarray(single.log_prob(single.params, occ))
    assert np.all(np.isneginf(log_p[:3])) and np.all(np.isfinite(log_p[3:]))


def test_sample_reproducible(single, key):
    first = single.sample(key, single.params, N_SAMPLES)
    again = single.sample(key, single.params, N_SAMPLES)
    other = single.sample(jax.random.fold_in(key, 1), single.params, N_SAMPLES)
    chex.assert_trees_all_equal(first, again)
    assert np.any(np.asarray(first[0]) != np.asarray(other[0]))


def test_gradient_finite(single):
    occ = single.occ[:1000]
    loss = lambda p: single.model.log_prob(p, occ).mean()  # noqa: E731
    leaves = jax.tree.leaves(jax.jit(jax.grad(loss))(single.params))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(bool(jnp.any(g != 0)) for g in leaves)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_init_dtype_and_shapes(key, dtype):
    model = make_set_transformer(n_modes=7, n_particles=3, param_dtype=dtype)
    params = jax.eval_shape(model.init, key)
    assert all(x.dtype == dtype for x in jax.tree.leaves(params))
    occ, log_p = jax.eval_shape(lambda p: model.sample(key, p, 5), params)
    assert (occ.shape, occ.dtype, log_p.shape, log_p.dtype) == (
        (5, 3),
        jnp.int32,
        (5,),
        dtype,
    )


def test_dtype_follows_params(single, key):
    # float64 params -> float64 out; the same params cast to float32 -> float32.
    assert single.sample_log_prob.dtype == jnp.float64
    assert single.log_prob(single.params, single.occ).dtype == jnp.float64
    params32 = jax.tree.map(lambda x: x.astype(jnp.float32), single.params)
    occ, log_p = single.sample(key, params32, N_SAMPLES)
    log_p_again = single.log_prob(params32, occ)
    assert occ.dtype == jnp.int32
    assert log_p.dtype == jnp.float32 and log_p_again.dtype == jnp.float32
    np.testing.assert_allclose(log_p_again, log_p, rtol=1e-5, atol=1e-5)
    # float32 evaluation agrees with float64 evaluation to float32 accuracy.
    log_p64 = single.log_prob(single.params, occ)
    np.testing.assert_allclose(log_p_again, log_p64, rtol=1e-4, atol=1e-4)


def test_log_prob_wrong_shape_raises(single):
    with pytest.raises(ValueError, match="shape"):
        single.model.log_prob(single.params, jnp.zeros((4, 2), jnp.int32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_modes=3, n_particles=4), "fewer orbitals than particles"),
        (dict(n_modes=5, n_particles=0), "n_particles"),
        (dict(n_modes=0, n_particles=1), "n_modes"),
        (dict(n_modes=5, n_particles=2, n_layers=0), "n_layers"),
        (dict(n_modes=5, n_particles=2, model_size=0), "model_size"),
        (dict(n_modes=5, n_particles=2, n_heads=0), "n_heads"),
        (dict(n_modes=5, n_particles=2, hidden=-1), "hidden"),
        (dict(n_modes=5, n_particles=2, model_size=10, n_heads=4), "divisible"),
    ],
)
def test_set_transformer_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_set_transformer(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_modes=3, n_up=4, n_down=1), "fewer orbitals than particles"),
        (dict(n_modes=3, n_up=1, n_down=4), "fewer orbitals than particles"),
        (dict(n_modes=3, n_up=0, n_down=0), "n_up \\+ n_down"),
        (dict(n_modes=3, n_up=-1, n_down=1), "n_up"),
    ],
)
def test_spinful_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_spinful_set_transformer(**kwargs)


def test_mode_bias_starts_one_particle_near_its_boltzmann_weights():
    energies = np.linspace(0.0, 3.0, 7)
    model = make_set_transformer(n_modes=7, n_particles=1, param_dtype=jnp.float64,
                                 mode_bias=-energies / 0.5)
    params = model.init(jax.random.key(0))
    log_p = model.log_prob(params, jnp.arange(7)[:, None])
    boltzmann = -energies / 0.5 - np.log(np.sum(np.exp(-energies / 0.5)))
    # The head's kernel starts at normal(0.01): only its bias sets the first logits.
    np.testing.assert_allclose(log_p, boltzmann, atol=0.1)
    uniform = make_set_transformer(n_modes=7, n_particles=1, param_dtype=jnp.float64)
    flat = uniform.log_prob(uniform.init(jax.random.key(0)), jnp.arange(7)[:, None])
    assert float(jnp.max(jnp.abs(flat - flat.mean()))) < 0.1  # no bias: near uniform
    with pytest.raises(ValueError, match="mode_bias must hold 7"):
        make_set_transformer(n_modes=7, n_particles=1, mode_bias=[0.0, 1.0])

"""g(r) and S(k): ideal Fermi gas vs exact determinants, uniform points, FT identity."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special

from fermiflow.observables import (
    estimate,
    pair_channels,
    pair_correlation,
    pair_correlation_image,
    plane_wave_pair_correlation,
    plane_wave_structure_factor,
    reciprocal_lattice,
    shell_volumes,
    structure_factor,
    structure_factor_from_image,
)
from fermiflow.observables.pair import shell_average_cosine
from tests.observables.ideal_gas_samples import K_SIGMA, assert_consistent, chains

N_BINS = 10


def _flat(samples):
    occ = samples.occ.reshape(-1, samples.occ.shape[-1])
    return occ, samples.x.reshape((-1,) + samples.x.shape[2:])


def test_g_matches_exact_determinants_of_the_sampled_sets(ideal_samples):
    problem = ideal_samples.problem
    box = problem.box_length
    edges = np.linspace(0.0, box / 2, N_BINS + 1)
    occ, x = _flat(ideal_samples)
    g = jax.jit(jax.vmap(lambda c: pair_correlation(c, edges, box_length=box, n_up=3)))(x)
    exact = plane_wave_pair_correlation(
        occ, problem.system.spectrum.wavevectors, edges, n_up=3
    )
    steps, batch = ideal_samples.occ.shape[:2]
    # Per-sample difference: the K noise cancels, only x | K remains.
    diff = chains((np.asarray(g) - exact).reshape(steps, batch, 4, N_BINS))
    names = pair_channels(3, 2)
    assert names == ("all", "up-up", "down-down", "up-down")
    worst = 0.0
    for c, name in enumerate(names):
        for b in range(N_BINS):
            _, err = assert_consistent(diff[:, :, c, b], 0.0, max_stderr=0.1,
                                       name=f"g_{name}[{b}]")
            worst = max(worst, err)
    # Power: the exchange hole of the same-spin channels is resolved by many sigma.
    hole = np.max(np.abs(1.0 - exact.mean(0)[1:3]), axis=-1)
    assert np.all(hole > 10 * worst), (hole, worst)
    np.testing.assert_allclose(exact[:, 3], 1.0)  # independent species


@pytest.mark.parametrize("dim", [2, 3])
def test_uncorrelated_uniform_points_have_g_one(key, dim):
    # N_a (N_b - delta_ab) normalization: g = 1 exactly for uncorrelated particles.
    box, n, n_up, samples = 3.0, 5, 3, 16384
    x = box * jax.random.uniform(key, (samples, n, dim))
    edges = np.linspace(0.5, box / 2, 6)
    g = jax.vmap(lambda c: pair_correlation(c, edges, box_length=box, n_up=n_up))(x)
    g = np.asarray(g).reshape(128, 128, 4, 5)  # independent draws in (chains, draws)
    for c in range(4):
        for b in range(5):
            assert_consistent(g[:, :, c, b], 1.0, max_stderr=0.1, name=f"g[{c},{b}]")


def test_structure_factor_matches_exact_determinants(ideal_samples):
    problem = ideal_samples.problem
    q_int = np.array([[1, 0], [0, 1], [1, 1], [2, 0], [1, -2]])
    k = 2 * math.pi / problem.box_length * q_int
    occ, x = _flat(ideal_samples)
    s = jax.jit(jax.vmap(lambda c: structure_factor(c, k, n_up=3)))(x)
    exact = plane_wave_structure_factor(
        occ, problem.system.spectrum.quantum_numbers, q_int, n_up=3
    )
    steps, batch = ideal_samples.occ.shape[:2]
    diff = chains((np.asarray(s) - exact).reshape(steps, batch, 4, len(q_int)))
    for c in range(4):
        for j in range(len(q_int)):
            assert_consistent(diff[:, :, c, j], 0.0, max_stderr=0.05, name=f"S[{c},{j}]")
    assert np.all(exact[:, 0].mean(0)[:2] < 0.9)  # small q: visibly below 1


def test_structure_factor_is_the_fourier_transform_of_the_pair_image(ideal_samples):
    problem, n_grid = ideal_samples.problem, 255
    box = problem.box_length
    k = reciprocal_lattice(box_length=box, dim=2, max_norm2=5)
    _, x = _flat(ideal_samples)

    @jax.jit
    def both(x):
        def one(c):
            image = pair_correlation_image(c, box_length=box, n_grid=n_grid)
            from_image = structure_factor_from_image(image, k, box_length=box, n_particles=5)
            return structure_factor(c, k, n_up=3)[0], from_image, image.mean()

        return jax.lax.map(one, x)

    direct, from_image, image_mean = map(np.asarray, both(x[:128]))
    # Each pair moves by at most h/2 per axis: |dS| <= (N - 1) sum_d |k_d| h / 2.
    bound = (5 - 1) * np.abs(k).sum(-1) * (box / n_grid) / 2
    assert np.all(np.abs(direct - from_image) <= bound * (1 + 1e-9))
    np.testing.assert_allclose(image_mean, 1.0, rtol=1e-12)  # sum rule of g
    # Positions on the lattice h Z^2 (odd n_grid: cell centres are multiples of h):
    # every pair displacement sits on a centre and the identity is exact.
    h = box / n_grid
    lattice = h * jax.random.randint(jax.random.key(5), (64, 5, 2), 0, n_grid)
    direct, from_image, _ = both(lattice)
    np.testing.assert_allclose(from_image, direct, rtol=1e-10, atol=1e-10)
    assert np.ptp(np.asarray(direct)) > 0.5  # non-trivial configurations


@pytest.mark.parametrize("dim", [2, 3])
def test_shell_average_of_cosine_by_quadrature(dim):
    edges = np.array([0.0, 0.05, 0.7, 1.3, 2.0])
    for q in (0.0, 0.3, 2.5, 7.0):
        got = shell_average_cosine(np.array(q), edges, dim)
        for b in range(4):
            if dim == 2:
                kernel = lambda r, q=q: scipy.special.j0(q * r) * 2 * math.pi * r  # noqa: E731
            else:
                kernel = lambda r, q=q: np.sinc(q * r / math.pi) * 4 * math.pi * r**2  # noqa: E731
            value, _ = scipy.integrate.quad(kernel, edges[b], edges[b + 1], epsabs=1e-15,
                                            epsrel=1e-12, limit=200)
            exact = value / shell_volumes(edges[b : b + 2], dim)[0]
            np.testing.assert_allclose(got[b], exact, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtypes(key, dtype):
    x = jax.random.uniform(key, (4, 3), dtype) * 2.0
    edges = np.linspace(0, 1.0, 6)
    k = reciprocal_lattice(box_length=2.0, dim=3, max_norm2=2)
    chex.assert_shape(k, (18, 3))

    @jax.jit
    def all_of_them(x):
        image = pair_correlation_image(x, box_length=2.0, n_grid=4)
        return (pair_correlation(x, edges, box_length=2.0, n_up=2),
                structure_factor(x, k, n_up=4), image,
                structure_factor_from_image(image, k, box_length=2.0, n_particles=4))

    g, s, image, from_image = all_of_them(x)
    chex.assert_shape(g, (4, 5))
    chex.assert_shape(s, (1, 18))
    chex.assert_shape(image, (4, 4, 4))
    chex.assert_shape(from_image, (18,))
    for a in (g, s, image, from_image):
        assert a.dtype == dtype
    assert pair_channels(1, 1) == ("all", "up-down")


def test_validation():
    x = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="L/2"):
        pair_correlation(x, [0.0, 1.5], box_length=2.0, n_up=3)
    with pytest.raises(ValueError, match="increasing"):
        pair_correlation(x, [0.5, 0.2], box_length=2.0, n_up=3)
    with pytest.raises(ValueError, match=">= 2 electrons"):
        pair_channels(1, 0)
    with pytest.raises(ValueError, match="box_length"):
        pair_correlation(x, [0.0, 0.5], box_length=0.0, n_up=3)


def test_estimate_helper_is_consistent():
    # The assertion helper itself rejects a wrong mean (it can fail).
    trace = np.asarray(jax.random.normal(jax.random.key(3), (16, 256)))
    with pytest.raises(AssertionError, match="sigma"):
        assert_consistent(trace + 1.0, 0.0, max_stderr=1.0)
    assert estimate(trace).error < 0.05 and K_SIGMA == 5.0

"""One-body densities: uniform in the box (ideal gas), exact Gaussian profiles (trap)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from fermiflow.observables import box_density, density_image, radial_density, shell_volumes
from tests.observables.ideal_gas_samples import assert_consistent, chains

OMEGA = 1.3


def _gaussian_samples(key, dim, n_chains=64, n_draws=128, n=2):
    """Exact independent draws of |phi_0|^2 = (omega/pi)^(dim/2) exp(-omega r^2)."""
    shape = (n_chains, n_draws, n, dim)
    return jax.random.normal(key, shape) / math.sqrt(2 * OMEGA)


def test_box_density_of_the_ideal_gas_is_uniform(ideal_samples):
    gas = ideal_samples.gas
    box = gas.box_length
    rho = jax.vmap(jax.vmap(lambda c: box_density(c, box_length=box, n_grid=3)))(
        jnp.asarray(ideal_samples.x)
    )
    trace = chains(np.asarray(rho))
    uniform = gas.n_particles / box**2
    np.testing.assert_allclose(trace.sum((2, 3)) * (box / 3) ** 2, gas.n_particles)
    for i in range(3):
        for j in range(3):
            assert_consistent(trace[:, :, i, j], uniform, max_stderr=0.05 * uniform,
                              name=f"rho[{i},{j}]")
    # Spin blocks separately: each species is uniform too.
    for name, block, count in (("up", slice(0, gas.n_up), gas.n_up),
                               ("down", slice(gas.n_up, None), gas.n_down)):
        rho_s = jax.vmap(jax.vmap(lambda c, b=block: box_density(c[b], box_length=box,
                                                                  n_grid=3)))(
            jnp.asarray(ideal_samples.x))
        chex.assert_shape(rho_s, ideal_samples.x.shape[:2] + (3, 3))
        trace_s, uniform_s = chains(np.asarray(rho_s)), count / box**2
        for i in range(3):
            for j in range(3):
                assert_consistent(trace_s[:, :, i, j], uniform_s, max_stderr=0.08 * uniform_s,
                                  name=f"rho_{name}[{i},{j}]")


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_radial_density_of_the_oscillator_ground_state(key, dim):
    x = _gaussian_samples(key, dim)
    edges = np.array([0.0, 0.3, 0.6, 1.0, 1.5, 2.5])
    rho = np.asarray(jax.vmap(jax.vmap(lambda c: radial_density(c, edges)))(x))
    # Electrons in each shell: N P(chi_dim(sqrt(2 omega) r) in the shell).
    cdf = scipy.stats.chi(dim).cdf(math.sqrt(2 * OMEGA) * edges)
    exact = 2 * np.diff(cdf) / shell_volumes(edges, dim)
    for b in range(len(edges) - 1):
        assert_consistent(rho[:, :, b], exact[b], max_stderr=0.05 * exact[b] + 0.01 * exact.max(),
                          name=f"rho(r)[{b}]")


@pytest.mark.parametrize("dim", [2, 3])
def test_density_image_of_the_oscillator_ground_state(key, dim):
    x = _gaussian_samples(key, dim)
    edges = np.linspace(-1.5, 1.5, 5)
    image = np.asarray(jax.vmap(jax.vmap(lambda c: density_image(c, edges)))(x))
    # Separable Gaussian: mass of a cell is N * P(x in I) * P(y in J), per unit area.
    cdf = 0.5 * (1 + scipy.special.erf(math.sqrt(OMEGA) * edges))
    p = np.diff(cdf)
    exact = 2 * np.outer(p, p) / np.outer(np.diff(edges), np.diff(edges))
    for i in range(4):
        for j in range(4):
            assert_consistent(image[:, :, i, j], exact[i, j],
                              max_stderr=0.02 * exact.max(), name=f"img[{i},{j}]")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtypes(key, dtype):
    x = jax.random.normal(key, (5, 2), dtype)
    edges = np.linspace(0, 2, 4)
    for value, shape in (
        (radial_density(x, edges), (3,)),
        (radial_density(x, edges, centre=jnp.ones(2)), (3,)),
        (density_image(x, np.linspace(-2, 2, 7)), (6, 6)),
        (box_density(x, box_length=2.0, n_grid=4), (4, 4)),
    ):
        chex.assert_shape(value, shape)
        assert value.dtype == dtype
    # Every electron is counted once, whatever image it is given in.
    np.testing.assert_allclose(box_density(x, box_length=2.0, n_grid=4).sum() * 0.25, 5,
                               rtol=1e-6)


def test_validation():
    x = jnp.zeros((2, 2))
    with pytest.raises(ValueError, match="increasing"):
        radial_density(x, [1.0, 0.5])
    with pytest.raises(ValueError, match=">= 0"):
        radial_density(x, [-1.0, 0.5])
    with pytest.raises(ValueError, match="dim >= 2"):
        density_image(jnp.zeros((2, 1)), [0.0, 1.0])
    with pytest.raises(ValueError, match="n_grid"):
        box_density(x, box_length=1.0, n_grid=0)

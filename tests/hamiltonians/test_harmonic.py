import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.coulomb import make_coulomb_pair_energy
from fermiflow.hamiltonians.harmonic import (
    make_classical_coulomb_gas_energy,
    make_quantum_dot_potential,
)

FACTORIES = {
    "quantum_dot": make_quantum_dot_potential,
    "classical_gas": make_classical_coulomb_gas_energy,
}


def positions(key, shape):
    # One eager random call per test; converted to NumPy for the reference loops.
    return np.asarray(jax.random.normal(key, shape))


def reference_energy(x, omega, coupling):
    """Plain double loop over particles, in NumPy float64."""
    n = x.shape[0]
    trap = sum(0.5 * omega**2 * float(np.dot(x[i], x[i])) for i in range(n))
    pairs = sum(
        coupling / math.sqrt(float(np.dot(x[i] - x[j], x[i] - x[j])))
        for i, j in itertools.combinations(range(n), 2)
    )
    return trap + pairs


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize(
    "dim, n, omega, coupling", [(2, 6, 1.0, 1.0), (3, 5, 0.5, 2.3), (2, 1, 2.0, 1.0)]
)
def test_matches_numpy_double_loop(key, factory, dim, n, omega, coupling):
    energy = jax.jit(FACTORIES[factory](dim=dim, omega=omega, coupling=coupling))
    x = positions(key, (8, n, dim))
    for config in x:
        expected = reference_energy(config, omega, coupling)
        np.testing.assert_allclose(energy(config), expected, rtol=1e-12)


def test_coulomb_pair_energy_matches_double_loop(key):
    energy = jax.jit(make_coulomb_pair_energy(coupling=0.7))
    for config in positions(key, (8, 7, 3)):
        expected = reference_energy(config, omega=0.0, coupling=0.7)
        np.testing.assert_allclose(energy(config), expected, rtol=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_zero_coupling_is_pure_trap(key, dim):
    potential = jax.jit(make_quantum_dot_potential(dim=dim, omega=1.7, coupling=0.0))
    x = positions(key, (4, dim))
    np.testing.assert_allclose(potential(x), 0.5 * 1.7**2 * np.sum(x**2), rtol=1e-12)
    # Without the pair term, coinciding particles are harmless.
    coincident = jnp.zeros((3, dim))
    assert float(potential(coincident)) == 0.0
    assert np.all(np.isfinite(jax.jit(jax.grad(potential))(coincident)))


@pytest.mark.parametrize("factory", FACTORIES)
def test_permutation_invariance(key, factory):
    energy = jax.jit(FACTORIES[factory](dim=3, omega=1.3, coupling=1.0))
    x = jnp.asarray(positions(key, (6, 3)))
    for perm in ([5, 4, 3, 2, 1, 0], [1, 2, 3, 4, 5, 0], [2, 0, 1, 5, 3, 4]):
        np.testing.assert_allclose(energy(x[np.array(perm)]), energy(x), rtol=1e-13)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("dim", [2, 3])
def test_gradients_finite_and_match_analytic_force(key, factory, dim):
    omega, coupling = 0.8, 1.5
    energy = FACTORIES[factory](dim=dim, omega=omega, coupling=coupling)
    x = jnp.asarray(positions(key, (5, dim)))
    gradient = jax.jit(jax.grad(energy))(x)
    assert np.all(np.isfinite(gradient))
    # Analytic force: omega^2 r_i - coupling sum_j (r_i - r_j) / r_ij^3.
    diff = x[:, None, :] - x[None, :, :]
    r = np.linalg.norm(diff, axis=-1) + np.eye(5)
    pair_force = np.sum(diff / r[..., None] ** 3 * (1 - np.eye(5))[..., None], axis=1)
    expected = omega**2 * x - coupling * pair_force
    np.testing.assert_allclose(gradient, expected, rtol=1e-12)


def test_coulomb_gradient_finite(key):
    energy = make_coulomb_pair_energy()
    x = jnp.asarray(positions(key, (4, 2)))
    assert np.all(np.isfinite(jax.jit(jax.grad(energy))(x)))
    assert np.all(np.isfinite(jax.jit(jax.hessian(energy))(x)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_and_shape(key, dtype):
    x = jnp.asarray(positions(key, (4, 2)), dtype)
    batch = jnp.asarray(positions(key, (3, 4, 2)), dtype)
    functions = [
        make_coulomb_pair_energy(coupling=1.0),
        make_quantum_dot_potential(dim=2, omega=1.0, coupling=1.0),
        make_quantum_dot_potential(dim=2, omega=1.0, coupling=0.0),
        make_classical_coulomb_gas_energy(dim=2),
    ]
    for energy in functions:
        value = jax.jit(energy)(x)
        assert value.shape == () and value.dtype == dtype
        batched = jax.jit(jax.vmap(energy))(batch)
        assert batched.shape == (3,) and batched.dtype == dtype


@pytest.mark.parametrize("factory", FACTORIES)
def test_bad_input_raises(factory):
    make = FACTORIES[factory]
    with pytest.raises(ValueError, match="omega"):
        make(dim=2, omega=0.0, coupling=1.0)
    with pytest.raises(ValueError, match="omega"):
        make(dim=2, omega=-1.0, coupling=1.0)
    with pytest.raises(ValueError, match="coupling"):
        make(dim=2, omega=1.0, coupling=-0.5)
    with pytest.raises(ValueError, match="coupling"):
        make(dim=2, omega=1.0, coupling=float("nan"))
    with pytest.raises(ValueError, match="dim"):
        make(dim=4, omega=1.0, coupling=1.0)
    with pytest.raises(ValueError, match="dim=1"):
        make(dim=1, omega=1.0, coupling=1.0)
    energy = make(dim=2, omega=1.0, coupling=1.0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        energy(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="coupling"):
        make_coulomb_pair_energy(coupling=-1.0)

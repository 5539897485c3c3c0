"""Tests for fermiflow.models.orbitals: normalization, eigen-equations, dtypes."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.orbitals import (
    hermite_functions,
    make_oscillator_orbitals,
    make_plane_wave_orbitals,
)


def _grid(axes):
    """(points, dim) tensor-product grid from a list of 1-d node arrays."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return jnp.asarray(np.stack([m.ravel() for m in mesh], axis=-1))


# ---------------------------------------------------------------- plane waves


@pytest.mark.parametrize(
    "dim, emax, twist, box_length",
    [(2, 4, (0.0, 0.0), 1.0), (2, 5, (0.25, -0.4), 3.7), (3, 2, (0.1, 0.2, -0.5), 2.0)],
)
def test_plane_waves_orthonormal_on_box(dim, emax, twist, box_length):
    # phi_a^* phi_b = exp(2 pi i (n_b - n_a).r / L) / L^dim (the twist cancels); the
    # M-point periodic trapezoid rule is exact for |n_b - n_a|_inf < M.
    spectrum = plane_wave_spectrum(dim=dim, emax=emax, box_length=box_length, twist=twist)
    orbitals = make_plane_wave_orbitals(spectrum, box_length)
    m = len(spectrum.energies)
    n_points = 2 * math.isqrt(emax) + 3
    nodes = np.arange(n_points) * box_length / n_points
    r = _grid([nodes] * dim)
    phi = orbitals(jnp.arange(m), r)  # (m, points)
    gram = (phi.conj() @ phi.T) * (box_length / n_points) ** dim
    np.testing.assert_allclose(gram, np.eye(m), atol=1e-12)


def test_plane_waves_twisted_boundary_condition(key):
    twist = (0.3, -0.15)
    box_length = 2.5
    spectrum = plane_wave_spectrum(dim=2, emax=9, box_length=box_length, twist=twist)
    orbitals = make_plane_wave_orbitals(spectrum, box_length)
    modes = jnp.arange(len(spectrum.energies))
    r = jax.random.uniform(key, (5, 2)) * box_length
    for d in range(2):
        shifted = r.at[:, d].add(box_length)
        expected = np.exp(2j * np.pi * twist[d]) * orbitals(modes, r)
        np.testing.assert_allclose(orbitals(modes, shifted), expected, rtol=1e-10)


def test_plane_waves_solve_free_schrodinger_equation(key):
    box_length = 1.7
    spectrum = plane_wave_spectrum(dim=3, emax=3, box_length=box_length, twist=(0.1,) * 3)
    orbitals = make_plane_wave_orbitals(spectrum, box_length)
    r = jax.random.uniform(key, (3,)) * box_length
    modes = jnp.arange(len(spectrum.energies))

    def parts(point):
        value = orbitals(modes, point[None])[:, 0]
        return jnp.stack([value.real, value.imag])

    lap = jnp.trace(jax.jit(jax.hessian(parts))(r), axis1=-2, axis2=-1)  # (2, m)
    value = parts(r)
    np.testing.assert_allclose(
        -0.5 * (lap[0] + 1j * lap[1]),
        spectrum.energies * (value[0] + 1j * value[1]),
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    "dtype, out", [(jnp.float32, jnp.complex64), (jnp.float64, jnp.complex128)]
)
def test_plane_waves_dtype_and_shape(dtype, out):
    spectrum = plane_wave_spectrum(dim=2, emax=4, box_length=1.0)
    orbitals = make_plane_wave_orbitals(spectrum, 1.0)
    phi = orbitals(jnp.array([0, 3, 7]), jnp.ones((5, 2), dtype))
    chex.assert_shape(phi, (3, 5))
    assert phi.dtype == out


@pytest.mark.parametrize("box_length", [0.0, -1.0, float("nan")])
def test_plane_waves_reject_bad_box(box_length):
    spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=1.0)
    with pytest.raises(ValueError, match="box_length"):
        make_plane_wave_orbitals(spectrum, box_length)


# ---------------------------------------------------------------- oscillator


def _gauss_hermite_gram(orbitals, m, dim, omega, n_nodes):
    """Gram matrix int phi_a phi_b d^dim r by Gauss-Hermite quadrature.

    phi_a phi_b = polynomial(y) * exp(-|y|^2) with y = sqrt(omega) r, so n_nodes
    nodes per axis integrate it exactly while the degree per axis is < 2 n_nodes.
    """
    y, w = np.polynomial.hermite.hermgauss(n_nodes)
    points = _grid([y] * dim)
    weights = jnp.asarray(np.prod(np.stack(np.meshgrid(*[w] * dim, indexing="ij")), 0).ravel())
    phi = jax.jit(orbitals)(jnp.arange(m), points / math.sqrt(omega))
    factor = weights * jnp.exp(jnp.sum(points**2, axis=-1)) / omega ** (dim / 2)
    return (phi * factor) @ phi.T


@pytest.mark.parametrize("dim, omega", [(1, 1.0), (1, 0.37), (2, 1.0), (2, 2.5)])
def test_oscillator_orthonormal_up_to_shell_8(dim, omega):
    spectrum = oscillator_spectrum(dim=dim, n_shells=9, omega=omega)
    orbitals = make_oscillator_orbitals(spectrum, omega)
    m = len(spectrum.energies)
    gram = _gauss_hermite_gram(orbitals, m, dim, omega, n_nodes=12)
    np.testing.assert_allclose(gram, np.eye(m), atol=1e-12)


@pytest.mark.slow  # quadrature of high orders, about 40 s
def test_oscillator_high_orders_stable_and_orthonormal():
    # Order 80: the naive H_n(y) / sqrt(2^n n!) form overflows float64 well before.
    spectrum = oscillator_spectrum(dim=1, n_shells=81, omega=1.0)
    orbitals = make_oscillator_orbitals(spectrum, 1.0)
    gram = _gauss_hermite_gram(orbitals, 81, 1, 1.0, n_nodes=100)
    np.testing.assert_allclose(gram, np.eye(81), atol=1e-11)
    values = jax.jit(hermite_functions, static_argnums=1)(jnp.linspace(-40, 40, 801), 300)
    assert bool(jnp.all(jnp.isfinite(values)))
    assert float(jnp.max(jnp.abs(values))) < 1.0


def test_oscillator_matches_scipy_hermite_polynomials(key):
    omega = 0.8
    spectrum = oscillator_spectrum(dim=3, n_shells=7, omega=omega)
    orbitals = make_oscillator_orbitals(spectrum, omega)
    r = np.asarray(jax.random.normal(key, (6, 3)))
    phi = jax.jit(orbitals)(jnp.arange(len(spectrum.energies)), jnp.asarray(r))
    y = math.sqrt(omega) * r
    for a, n in enumerate(spectrum.quantum_numbers):
        factors = [
            (omega / math.pi) ** 0.25
            / math.sqrt(2.0**k * math.factorial(k))
            * special.eval_hermite(k, y[:, d])
            * np.exp(-0.5 * y[:, d] ** 2)
            for d, k in enumerate(n)
        ]
        np.testing.assert_allclose(phi[a], np.prod(factors, axis=0), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dim, omega", [(1, 0.6), (2, 1.3)])
def test_oscillator_solves_schrodinger_equation(key, dim, omega):
    spectrum = oscillator_spectrum(dim=dim, n_shells=9, omega=omega)
    orbitals = make_oscillator_orbitals(spectrum, omega)
    points = jax.random.normal(key, (4, dim)) * 1.5 / math.sqrt(omega)
    modes = jnp.arange(len(spectrum.energies))

    def phi(point):
        return orbitals(modes, point[None])[:, 0]

    def residual(point):
        lap = jnp.trace(jax.hessian(phi)(point), axis1=-2, axis2=-1)
        value = phi(point)
        kinetic_and_trap = -0.5 * lap + 0.5 * omega**2 * jnp.sum(point**2) * value
        return kinetic_and_trap, value

    left, value = jax.jit(jax.vmap(residual))(points)
    np.testing.assert_allclose(left, spectrum.energies * value, atol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_oscillator_dtype_and_shape(dtype):
    spectrum = oscillator_spectrum(dim=2, n_shells=4, omega=1.0)
    orbitals = make_oscillator_orbitals(spectrum, 1.0)
    phi = orbitals(jnp.array([0, 5, 9]), jnp.ones((4, 2), dtype))
    chex.assert_shape(phi, (3, 4))
    assert phi.dtype == dtype
    assert hermite_functions(jnp.ones(3, dtype), 5).dtype == dtype


@pytest.mark.parametrize("omega", [0.0, -2.0, float("inf")])
def test_oscillator_rejects_bad_omega(omega):
    spectrum = oscillator_spectrum(dim=2, n_shells=2)
    with pytest.raises(ValueError, match="omega"):
        make_oscillator_orbitals(spectrum, omega)

"""Tests of the exponential-Laguerre radial solver against closed forms.

References: the oscillator levels omega (2 n + nu + 1) (coupling 0); the hydrogen-like
levels -1 / (4 (n + nu + 1/2)^2) of -u'' + (nu^2 - 1/4) u / r^2 - u / r (omega = 0,
reduced mass 1/2); Taut's quasi-exact relative ground states, energy omega (nu + 2) at
omega = coupling^2 / (2 nu + 1) (derived in the module docstring of two_electron_dot).
"""

import numpy as np
import pytest

from fermiflow.exact.laguerre_radial import default_radial_scale, radial_levels


@pytest.mark.parametrize("nu", [0.0, 0.5, 1.0, 3.5, 12.0])
@pytest.mark.parametrize("omega", [0.3, 1.0, 4.0])
def test_coupling_zero_gives_oscillator_levels(nu, omega):
    levels = radial_levels(nu=nu, omega=omega, coupling=0.0, n_basis=60, n_levels=10)
    exact = omega * (2.0 * np.arange(10) + nu + 1.0)
    np.testing.assert_allclose(levels, exact, rtol=1e-12)


@pytest.mark.parametrize("nu", [0.0, 0.5, 2.0])
def test_hydrogen_levels(nu):
    # Attractive coupling -1 without trap: e_n = -1 / (4 (n + nu + 1/2)^2), states
    # decaying as exp(-r / (2 n + 2 nu + 1)): the basis decays at half the slowest rate.
    scale = 0.5 / (nu + 2.5)
    levels = radial_levels(nu=nu, omega=0.0, coupling=-1.0, n_basis=80, scale=scale, n_levels=3)
    exact = -0.25 / (np.arange(3) + nu + 0.5) ** 2
    np.testing.assert_allclose(levels, exact, rtol=1e-12)


@pytest.mark.parametrize("nu", [0.0, 0.5, 1.0, 1.5, 4.0])
@pytest.mark.parametrize("coupling", [0.5, 1.0, 3.0])
def test_taut_quasi_exact_ground_states(nu, coupling):
    omega = coupling**2 / (2.0 * nu + 1.0)
    level = radial_levels(nu=nu, omega=omega, coupling=coupling, n_basis=60, n_levels=1)
    np.testing.assert_allclose(level[0], omega * (nu + 2.0), rtol=1e-12)


@pytest.mark.parametrize("nu", [0.0, 1.0, 7.5])
@pytest.mark.parametrize("coupling", [1.0, 8.0, 30.0])
def test_converged_levels_are_stable_under_basis_growth(nu, coupling):
    # The docstring promises n_basis / 3 - 10 levels converged to ~1e-11 relative.
    small = radial_levels(nu=nu, omega=1.0, coupling=coupling, n_basis=90, n_levels=20)
    large = radial_levels(nu=nu, omega=1.0, coupling=coupling, n_basis=150, n_levels=20)
    np.testing.assert_allclose(small, large, rtol=1e-11)
    assert np.all(np.diff(small) > 0)


def test_levels_are_upper_bounds_decreasing_with_basis():
    coarse = radial_levels(nu=0.0, omega=1.0, coupling=4.0, n_basis=12, scale=2.0)
    fine = radial_levels(nu=0.0, omega=1.0, coupling=4.0, n_basis=40, scale=2.0)
    assert np.all(fine[:12] <= coarse + 1e-12)


def test_shapes_and_dtype():
    levels = radial_levels(nu=1.0, omega=1.0, coupling=1.0, n_basis=20)
    assert levels.shape == (20,) and levels.dtype == np.float64
    assert radial_levels(nu=1.0, omega=1.0, coupling=1.0, n_basis=20, n_levels=4).shape == (4,)
    assert default_radial_scale(64, 4.0) == pytest.approx(0.75 * 16.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(nu=-1.0), "nu"),
        (dict(omega=-1.0), "omega"),
        (dict(omega=0.0), "omega"),
        (dict(coupling=np.inf), "coupling"),
        (dict(n_basis=1), "n_basis"),
        (dict(scale=0.0), "scale"),
        (dict(n_levels=30), "n_levels"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = dict(nu=0.0, omega=1.0, coupling=1.0, n_basis=20) | kwargs
    with pytest.raises(ValueError, match=match):
        radial_levels(**args)

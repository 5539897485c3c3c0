"""Tests of the Fourier tables of the augmented plane-wave basis.

References: closed-form Fourier transforms of Gaussians; scipy.integrate.quad of the
same radial integrals (independent adaptive quadrature); and, for the tables that
involve the Ewald potential, direct quadrature in polar (2D) or spherical (3D)
coordinates of phi u^k e^(iq.r) with phi from ewald_pair_potential (real-space Ewald
sum), which checks the split into short-range, long-range convolution and constant.
"""

import math

import numpy as np
import pytest
import scipy.integrate
from scipy.special import j0, roots_legendre

from fermiflow.exact.augmented_basis import augmented_tables, cusp_function, radial_fourier
from fermiflow.exact.ewald_pair import ewald_pair_constant, ewald_pair_potential


@pytest.mark.parametrize("dim", [2, 3])
def test_radial_fourier_of_gaussian(dim):
    box_length, width = 3.0, 0.25  # exp(-(L / 2 / width)^2) = exp(-36)
    nodes, weights = roots_legendre(400)
    r = (nodes + 1.0) * box_length / 4.0
    w = weights * box_length / 4.0
    g_norm = np.array([0.0, 1.0, np.sqrt(5.0), 7.0])
    values = np.exp(-((r / width) ** 2)) * r ** (dim - 1)
    f = radial_fourier(values, r, w, g_norm, dim=dim, box_length=box_length)
    q = 2 * np.pi / box_length * g_norm
    exact = (math.sqrt(math.pi) * width) ** dim / box_length**dim * np.exp(-((q * width) ** 2) / 4)
    np.testing.assert_allclose(f, exact, rtol=1e-13, atol=1e-17)


def test_cusp_function_slope_and_laplacian():
    r = np.array([1e-4, 0.3, 1.1])
    for dim in (2, 3):
        u, lap = cusp_function(r, dim=dim, box_length=5.0)
        h = 1e-5
        up = cusp_function(r + h, dim=dim, box_length=5.0)[0]
        down = cusp_function(r - h, dim=dim, box_length=5.0)[0]
        first, second = (up - down) / (2 * h), (up - 2 * u + down) / h**2
        np.testing.assert_allclose(lap, second + (dim - 1) * first / r, rtol=1e-5)
    assert u[0] == pytest.approx(1e-4, rel=1e-9)  # u = r + O(r^4)


def _adaptive_fourier(function, q, dim, box_length):
    """(1/V) int_0^(L/2) function(r) kernel(q r) r^(dim-1) dr times the solid angle, by quad."""
    if dim == 2:

        def integrand(x):
            return function(x) * j0(q * x) * 2 * np.pi * x

    else:

        def integrand(x):
            return function(x) * np.sinc(q * x / np.pi) * 4 * np.pi * x**2

    value, _ = scipy.integrate.quad(integrand, 0.0, box_length / 2, limit=200, epsabs=1e-15)
    return value / box_length**dim


@pytest.mark.parametrize("dim", [2, 3])
def test_radial_tables_match_adaptive_quadrature(dim):
    box_length = 2.0
    tables = augmented_tables(dim=dim, box_length=box_length, n_max=3)

    def u(x):
        return cusp_function(np.array([x]), dim=dim, box_length=box_length)[0][0]

    def u_square(x):
        return u(x) ** 2

    def minus_u_lap_u(x):
        value, lap = cusp_function(np.array([x]), dim=dim, box_length=box_length)
        return -value[0] * lap[0]

    for g in ([0] * dim, [1] + [0] * (dim - 1), [2, 1] + [0] * (dim - 2)):
        q = 2 * np.pi / box_length * np.linalg.norm(g)
        index = tuple(3 + np.asarray(g))
        for table, function in (
            (tables.cusp, u),
            (tables.cusp_square, u_square),
            (tables.cusp_kinetic, minus_u_lap_u),
        ):
            expected = _adaptive_fourier(function, q, dim, box_length)
            assert table[index] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def _direct_coulomb_coefficients(dim, box_length, g_list, power):
    """F[phi u^power](q) by quadrature of the real-space Ewald phi in polar/spherical form."""
    x, w = roots_legendre(48 if dim == 2 else 16)
    edges = np.linspace(0.0, 0.5 * box_length, 5 if dim == 2 else 3)
    low, width = edges[:-1, None], np.diff(edges)[:, None]
    r = (low + width * (x + 1) / 2).ravel()
    wr = (width / 2 * w).ravel()
    u = cusp_function(r, dim=dim, box_length=box_length)[0] ** power
    if dim == 2:
        angle = 2 * np.pi * np.arange(64) / 64
        directions = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        dir_weights = np.full(64, 2 * np.pi / 64)
    else:
        ct, wt = roots_legendre(14)
        phi = 2 * np.pi * np.arange(16) / 16
        st = np.sqrt(1 - ct**2)
        directions = np.stack(
            [np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.outer(ct, np.ones(16))],
            axis=-1,
        ).reshape(-1, 3)
        dir_weights = np.outer(wt, np.full(16, 2 * np.pi / 16)).ravel()
    points = r[:, None, None] * directions[None, :, :]
    pair = ewald_pair_potential(
        points.reshape(-1, dim), dim=dim, box_length=box_length, alpha=2.5 / box_length
    )
    phi = pair.reshape(len(r), len(directions)) - ewald_pair_constant(
        dim=dim, box_length=box_length
    )
    weights = (wr * u * r ** (dim - 1))[:, None] * dir_weights[None, :]
    result = []
    for g in g_list:
        q = 2 * np.pi / box_length * np.asarray(g, dtype=np.float64)
        phase = np.cos(points @ q)  # phi u^k is even: the sine part vanishes
        result.append(np.sum(weights * phi * phase) / box_length**dim)
    return np.array(result)


@pytest.mark.parametrize("dim", [2, 3])
def test_coulomb_tables_match_real_space_quadrature(dim):
    box_length = 2.3
    g_list = [[0] * dim, [1] + [0] * (dim - 1), [1, 2] + [0] * (dim - 2)]
    tables = augmented_tables(dim=dim, box_length=box_length, n_max=3)
    center = np.full(dim, 3)
    for power, table in ((1, tables.cusp_coulomb), (2, tables.cusp_square_coulomb)):
        direct = _direct_coulomb_coefficients(dim, box_length, g_list, power)
        values = [table[tuple(center + np.asarray(g))] for g in g_list]
        np.testing.assert_allclose(values, direct, rtol=1e-9, atol=1e-12)


def test_tables_are_even_and_real():
    tables = augmented_tables(dim=2, box_length=1.3, n_max=4)
    for table in tables:
        assert table.shape == (9, 9) and table.dtype == np.float64
        np.testing.assert_allclose(table, table[::-1, ::-1], rtol=0, atol=1e-15 * abs(table).max())

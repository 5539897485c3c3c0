"""Tests of two electrons in a harmonic dot against exact and independent references.

References: the exact canonical ideal gas over oscillator levels (coupling 0, from
fermiflow.hamiltonians.free_fermions); Taut's closed-form ground states (M. Taut, Phys.
Rev. A 48, 3561 (1993); J. Phys. A 27, 1045 (1994)); a Chebyshev collocation of the
radial equation written here (independent discretization); the first-order
(Hellmann-Feynman) coupling derivative <1/r> from the oscillator basis in closed form.
"""

import math

import numpy as np
import pytest
import scipy.linalg
from scipy.special import gammaln

from fermiflow.exact.thermo import ExactThermo, thermo_from_levels
from fermiflow.exact.two_electron_dot import oscillator_thermo, two_electron_dot
from fermiflow.hamiltonians.free_fermions import canonical_ideal_gas_spinful
from fermiflow.hamiltonians.spectrum import oscillator_spectrum
from fermiflow.hamiltonians.systems import QuantumDot

SPINS = [(2, 0), (1, 1), (0, 2)]


def _dot(spins, dim=2, omega=1.0, coupling=1.0, beta=2.0):
    n_up, n_down = spins
    return QuantumDot(
        n_up=n_up, n_down=n_down, dim=dim, omega=omega, coupling=coupling, beta=beta, n_shells=2
    )


def _scale(t: ExactThermo, beta: float) -> float:
    # Energy scale of a comparison: F itself can pass through zero.
    return abs(t.energy) + t.entropy / beta


@pytest.mark.parametrize("spins", SPINS)
@pytest.mark.parametrize(
    "dim, beta, omega", [(2, 1.5, 0.7), (2, 5.0, 1.0), (3, 2.0, 1.0), (3, 5.0, 0.8)]
)
def test_coupling_zero_equals_canonical_ideal_gas(dim, spins, beta, omega):
    exact = two_electron_dot(_dot(spins, dim, omega, coupling=0.0, beta=beta))
    assert all(isinstance(value, float) for value in exact)
    # Shells up to beta omega n_shells = 45: the dropped weights (times the shell
    # degeneracy) are below 1e-16 of the total.
    n_shells = math.ceil(45.0 / (beta * omega)) + 3
    energies = oscillator_spectrum(dim=dim, n_shells=n_shells, omega=omega)
    ideal = canonical_ideal_gas_spinful(energies.energies, *spins, beta)
    scale = _scale(exact, beta)
    assert abs(exact.free_energy - float(ideal.free_energy)) < 1e-12 * scale
    assert abs(exact.energy - float(ideal.energy)) < 1e-12 * scale
    assert abs(exact.entropy - float(ideal.entropy)) < 1e-12 * max(1.0, float(ideal.entropy))
    ground = omega * (dim + (1 if spins != (1, 1) else 0))  # (dim/2) omega each, + one
    assert exact.ground_energy == pytest.approx(ground, rel=1e-13)


@pytest.mark.parametrize(
    "spins, dim, omega, ground",
    [
        # Relative ground state of partial wave nu at omega = 1 / (2 nu + 1), coupling 1:
        # e_rel = omega (nu + 2); plus the centre of mass, (dim / 2) omega.
        ((1, 1), 2, 1.0, 3.0),  # nu = 0 (m = 0)
        ((2, 0), 2, 1.0 / 3.0, 4.0 / 3.0),  # nu = 1 (m = +-1)
        ((1, 1), 3, 0.5, 2.0),  # nu = 1/2 (l = 0)
        ((0, 2), 3, 0.25, 1.25),  # nu = 3/2 (l = 1)
    ],
)
def test_taut_closed_form_ground_states(spins, dim, omega, ground):
    exact = two_electron_dot(_dot(spins, dim, omega, coupling=1.0, beta=20.0))
    assert exact.ground_energy == pytest.approx(ground, rel=1e-12)


def _collocation_ground(nu: float, omega: float, coupling: float, n: int = 70) -> float:
    """Lowest level of -(f'' + (2 nu + 1) f' / r) + (omega^2 r^2 / 4 + coupling / r) f.

    f = u / r^(nu + 1/2) is smooth on [0, R]; multiplied by r, the equation is regular
    at r = 0 (where it imposes the cusp) and f(R) = 0 at R = 12 (exp(-omega R^2 / 4)
    ~ 1e-16). Chebyshev-Gauss-Lobatto collocation (Trefethen, Spectral Methods in
    MATLAB, cheb.m).
    """
    x = np.cos(np.pi * np.arange(n + 1) / n)
    c = np.r_[2.0, np.ones(n - 1), 2.0] * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d -= np.diag(d.sum(axis=1))
    radius = 12.0
    r = radius * (1.0 - x) / 2.0  # x = 1 -> r = 0
    d1 = -2.0 / radius * d
    d2 = d1 @ d1
    a = -(r[:, None] * d2) - (2.0 * nu + 1.0) * d1
    a += np.diag(omega**2 * r**3 / 4.0 + coupling)
    interior = slice(0, n)  # drop r = R (the last node), where f = 0
    # B = diag(r) is singular at r = 0: that row carries the cusp condition, and its
    # infinite eigenvalue is discarded.
    levels = scipy.linalg.eig(a[interior, interior], np.diag(r[interior]), right=False)
    finite = levels[np.isfinite(levels) & (np.abs(levels.imag) < 1e-8)].real
    return float(np.min(finite[finite > 0]))


def test_polarized_ground_state_matches_chebyshev_collocation():
    exact = two_electron_dot(_dot((2, 0), 2, 1.0, coupling=1.0, beta=3.0))
    relative = _collocation_ground(nu=1.0, omega=1.0, coupling=1.0)
    assert exact.ground_energy == pytest.approx(1.0 + relative, rel=1e-9)


def _mean_inverse_distance(dim, omega, beta, parities):
    """<1/r> of the free relative oscillator, by the closed-form diagonal elements.

    In the oscillator basis (x = omega r^2 / 2, b = sqrt(2 / omega)),
    <n nu| 1/r |n nu> = sum_k c_(n-k)^2 h_k(nu - 1/2) / (b h_n(nu)) with
    c_j = (1/2)_j / j! and h_n(a) = Gamma(n + a + 1) / n! (Laguerre connection formula).
    """
    b = math.sqrt(2.0 / omega)
    weight_sum, value_sum = 0.0, 0.0
    for angular in range(80):
        if angular % 2 not in parities:
            continue
        nu = angular + (0.5 if dim == 3 else 0.0)
        degeneracy = (1 if angular == 0 else 2) if dim == 2 else 2 * angular + 1
        for n in range(60):
            j = np.arange(n + 1)
            log_c = gammaln(j + 0.5) - gammaln(0.5) - gammaln(j + 1)
            k = n - j
            log_h_k = gammaln(k + nu + 0.5) - gammaln(k + 1)
            log_h_n = gammaln(n + nu + 1) - gammaln(n + 1)
            diagonal = np.sum(np.exp(2 * log_c + log_h_k - log_h_n)) / b
            boltzmann = degeneracy * math.exp(-beta * omega * (2 * n + nu + 1))
            weight_sum += boltzmann
            value_sum += boltzmann * diagonal
    return value_sum / weight_sum


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("spins", [(2, 0), (1, 1)])
def test_coupling_derivative_at_zero_is_free_mean_inverse_distance(dim, spins):
    beta, omega, h = 1.5, 1.0, 1e-4
    f = [two_electron_dot(_dot(spins, dim, omega, c, beta)).free_energy for c in (0, h, 2 * h)]
    # Second-order forward difference: error h^2 F''' / 3 ~ 1e-9; rounding 1e-14 / h.
    derivative = (-3 * f[0] + 4 * f[1] - f[2]) / (2 * h)
    parities = (1,) if spins != (1, 1) else (0, 1)
    expected = _mean_inverse_distance(dim, omega, beta, parities)
    assert derivative == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("spins", [(2, 0), (1, 1)])
def test_interaction_free_energy_between_zero_and_gibbs_bogoliubov_bound(spins):
    # 0 <= F(c) - F(0) <= c <1/r>_0 (concavity of F in c, and F(c) >= F(0) for c >= 0).
    for beta in (2.0, 5.0):
        free = two_electron_dot(_dot(spins, 2, 1.0, 0.0, beta)).free_energy
        for coupling in (0.5, 4.0):
            shift = two_electron_dot(_dot(spins, 2, 1.0, coupling, beta)).free_energy - free
            parities = (1,) if spins != (1, 1) else (0, 1)
            assert 0 < shift <= coupling * _mean_inverse_distance(2, 1.0, beta, parities)


@pytest.mark.slow
def test_high_temperature_limit_approaches_first_order_perturbation():
    # As beta omega -> 0 the pair spreads out: F(c) - F(0) -> c <1/r>_0 (first order),
    # whose relative miss falls with the temperature (0.22, 0.17, 0.11 here).
    misses = []
    for beta in (4.0, 1.0, 0.5):
        shift = (
            two_electron_dot(_dot((1, 1), 2, 1.0, 1.0, beta)).free_energy
            - two_electron_dot(_dot((1, 1), 2, 1.0, 0.0, beta)).free_energy
        )
        misses.append(1.0 - shift / _mean_inverse_distance(2, 1.0, beta, (0, 1)))
    assert misses[0] > misses[1] > misses[2] > 0


@pytest.mark.parametrize("spins, degeneracy", [((1, 1), 1), ((2, 0), 2)])
def test_low_temperature_limit(spins, degeneracy):
    # 2D ground states: singlet m = 0 (one state), polarized m = +-1 (two states).
    results = [two_electron_dot(_dot(spins, 2, 1.0, 2.0, beta)) for beta in (5.0, 20.0, 150.0)]
    gaps = [t.energy - t.ground_energy for t in results]
    # The lowest excitation is 0.42 here (m = 0 -> 1 of the singlet), so at beta = 150
    # E - E0 and S - ln g are below 1e-25 (rounding of the centre-of-mass plus relative
    # sum aside).
    assert gaps[0] > gaps[1] > 0
    assert abs(gaps[2]) < 1e-14
    assert results[2].entropy == pytest.approx(math.log(degeneracy), abs=1e-14)
    assert results[2].free_energy == pytest.approx(
        results[2].ground_energy - math.log(degeneracy) / 150.0, rel=1e-14
    )


def test_center_of_mass_closed_form_matches_level_sum():
    n = np.arange(400)
    levels = n + 1.0  # 2D: omega (n + 1), degeneracy n + 1
    reference = thermo_from_levels(levels, 0.7, degeneracies=n + 1.0)
    np.testing.assert_allclose(
        np.array(oscillator_thermo(dim=2, omega=1.0, beta=0.7)), np.array(reference), rtol=1e-13
    )


@pytest.mark.parametrize("spins, dim", [((2, 1), 2), ((1, 0), 2), ((1, 1), 1)])
def test_rejects_anything_but_two_electrons_in_2d_or_3d(spins, dim):
    with pytest.raises(ValueError, match="two_electron_dot solves 2 electrons"):
        two_electron_dot(_dot(spins, dim))

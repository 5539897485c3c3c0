"""Tests of two electrons in the periodic box with the Ewald interaction.

References: the exact canonical ideal gas over twisted plane waves (coupling 0, from
fermiflow.hamiltonians.free_fermions); the symmetries of the square/cubic box under
twist reflections and axis swaps; the zero-temperature limit; and the truncation error
estimate of two_electron_box_converged against a larger cutoff. The brute-force check of
the block method itself is in test_box_relative.py.
"""

import math

import numpy as np
import pytest

from fermiflow.exact.two_electron_box import two_electron_box, two_electron_box_converged
from fermiflow.hamiltonians.free_fermions import canonical_ideal_gas_spinful
from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.hamiltonians.systems import ElectronGas

TWIST = {2: (0.25, 0.25), 3: (0.1, -0.2, 0.3)}


def _gas(spins, dim=2, rs=1.0, theta=1.0, twist=None):
    twist = TWIST[dim] if twist is None else twist
    return ElectronGas(
        n_up=spins[0], n_down=spins[1], dim=dim, rs=rs, theta=theta, emax=1, twist=twist
    )


@pytest.mark.parametrize(
    "spins, dim, rs, theta, augment",
    [
        ((2, 0), 2, 1.0, 1.0, True),
        ((1, 1), 2, 1.0, 1.0, True),
        ((0, 2), 2, 5.0, 0.5, True),
        ((1, 1), 2, 5.0, 0.5, True),
        ((2, 0), 3, 2.0, 0.5, False),
        ((1, 1), 3, 2.0, 0.5, False),
    ],
)
def test_coupling_zero_equals_canonical_ideal_gas(spins, dim, rs, theta, augment):
    gas = _gas(spins, dim, rs, theta)
    # |n_1 - n_2| <= n_cut keeps every relative level with beta p^2 < 55: beta p^2 is
    # pi d^2 / (4 theta) (2D) and 0.815 d^2 / theta (3D) for the polarized pair, more
    # for 1 up + 1 down.
    n_cut = 12 if dim == 2 else 6
    exact = two_electron_box(gas, n_cut=n_cut, coupling=0.0, augment=augment, n_aug=4)
    assert all(isinstance(value, float) for value in exact)
    modes = plane_wave_spectrum(
        dim=dim, emax=100 if dim == 2 else 40, box_length=gas.box_length, twist=gas.twist
    )
    ideal = canonical_ideal_gas_spinful(modes.energies, *spins, gas.beta)
    scale = abs(exact.energy) + exact.entropy / gas.beta  # F itself may be near zero
    assert abs(exact.free_energy - float(ideal.free_energy)) < 1e-12 * scale
    assert abs(exact.energy - float(ideal.energy)) < 1e-12 * scale
    assert exact.entropy == pytest.approx(float(ideal.entropy), rel=1e-12)
    lowest = np.sort(modes.energies)
    ground = lowest[0] + lowest[1] if spins != (1, 1) else 2 * lowest[0]
    assert exact.ground_energy == pytest.approx(ground, rel=1e-12)


@pytest.mark.parametrize("spins", [(2, 0), (1, 1)])
def test_square_box_symmetries_of_the_twist(spins):
    # Reflecting the twist (k -> -k) or swapping the axes leaves the spectrum unchanged.
    reference = two_electron_box(_gas(spins, twist=(0.1, 0.3)), n_cut=8, n_aug=4)
    for twist in [(-0.1, -0.3), (0.3, 0.1), (-0.3, 0.1)]:
        other = two_electron_box(_gas(spins, twist=twist), n_cut=8, n_aug=4)
        np.testing.assert_allclose(np.array(other), np.array(reference), rtol=1e-11)


def test_low_temperature_limit():
    # 1 up + 1 down at rs = 2: the ground state is non-degenerate for this twist.
    results = [
        two_electron_box(_gas((1, 1), rs=2.0, theta=theta), n_cut=12, n_aug=4)
        for theta in (0.2, 0.05, 0.005)
    ]
    gaps = [t.energy - t.ground_energy for t in results]
    assert gaps[0] > gaps[1] > 0 and abs(gaps[2]) < 1e-12
    assert results[2].entropy < 1e-12
    assert results[0].ground_energy == pytest.approx(results[2].ground_energy, rel=1e-13)


def test_error_estimate_bounds_the_truncation_error():
    # A small cutoff, so that the truncation error (~1e-8) is far above the ~1e-11 noise
    # of the reference at n_cut = 24.
    gas = _gas((2, 0), rs=2.0, theta=1.0)
    result = two_electron_box_converged(gas, n_cut=16, step=4)
    reference = two_electron_box(gas, n_cut=24)
    for value, error, exact in zip(result.thermo, result.error, reference, strict=True):
        assert abs(value - exact) <= error
        assert error < 1e-6 * abs(exact)  # the bound is not vacuous
    assert result.n_cut == 16


def test_polarized_free_energy_decreases_with_the_cutoff():
    # Nested plane waves: every Ritz level is an upper bound that can only decrease.
    gas = _gas((2, 0), rs=2.0, theta=0.5)
    free = [two_electron_box(gas, n_cut=n, augment=False).free_energy for n in (6, 10, 14)]
    assert free[0] > free[1] > free[2]


@pytest.mark.parametrize(
    "gas_kwargs, kwargs, match",
    [
        (dict(spins=(2, 1)), {}, "2 electrons"),
        ({}, dict(coupling=-1.0), "coupling"),
        ({}, dict(n_cut=0), "n_cut"),
        ({}, dict(n_cut=6, n_aug=8), "n_aug"),
    ],
)
def test_bad_arguments_raise(gas_kwargs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        two_electron_box(_gas(**({"spins": (2, 0)} | gas_kwargs)), **kwargs)


def test_converged_rejects_a_step_beyond_the_cutoff():
    with pytest.raises(ValueError, match="step"):
        two_electron_box_converged(_gas((2, 0)), n_cut=8, step=8)


# Benchmark cases of the project (2D, twist (1/4, 1/4)), computed here at n_cut = 44,
# n_aug = 8 (a regression reference, not an independent one): whole-system (F, E, S, E0)
# in Hartree, S in k_B. The default settings (n_cut = 32, step 8) must reproduce them
# within their own error estimate plus the ~1e-10 noise of the reference.
BENCHMARKS = {
    ((2, 0), 1.0, 0.5): (
        -0.5639743620590005,
        0.9628084425278409,
        1.526782804586842,
        0.3926760374989806,
    ),
    ((2, 0), 1.0, 1.0): (
        -2.720766998673041,
        2.6939230203019813,
        2.7073450094875113,
        0.3926760374989806,
    ),
    ((2, 0), 2.0, 0.5): (
        -0.6311773745072664,
        -0.25727590769413267,
        1.495605867252535,
        -0.3965447176588527,
    ),
    ((2, 0), 2.0, 1.0): (
        -1.1627981810176662,
        0.17642274104506994,
        2.6784418441254725,
        -0.3965447176588527,
    ),
    ((2, 0), 5.0, 0.5): (
        -0.33958347445700826,
        -0.28303213628990964,
        1.4137834541774643,
        -0.3037641836999696,
    ),
    ((2, 0), 5.0, 1.0): (
        -0.4214657222654589,
        -0.21324833762168027,
        2.602717308047233,
        -0.3037641836999696,
    ),
    ((2, 0), 10.0, 0.5): (
        -0.1862000324654659,
        -0.17314312288226744,
        1.305690958319845,
        -0.17771233353158267,
    ),
    ((2, 0), 10.0, 1.0): (
        -0.20557091328938995,
        -0.15562379631541537,
        2.497355848698729,
        -0.17771233353158267,
    ),
    ((1, 1), 1.0, 0.5): (
        -0.9825987076887354,
        -0.6155278607399546,
        0.7341416938975616,
        -0.8853649367814538,
    ),
    ((1, 1), 1.0, 1.0): (
        -1.6891911365872916,
        0.3036633721308779,
        1.9928545087181693,
        -0.8853649367814538,
    ),
    ((1, 1), 2.0, 0.5): (
        -0.7028508808049738,
        -0.6034999377847011,
        0.7948075441621816,
        -0.6734871244773004,
    ),
    ((1, 1), 2.0, 1.0): (
        -0.8816026086545253,
        -0.3862398535362054,
        1.9814510204732796,
        -0.6734871244773004,
    ),
    ((1, 1), 5.0, 0.5): (
        -0.3444856307144187,
        -0.32589084547014974,
        0.9297392622134479,
        -0.3376202306975284,
    ),
    ((1, 1), 5.0, 1.0): (
        -0.3736851203179381,
        -0.2958301120648285,
        1.94637520632774,
        -0.3376202306975284,
    ),
    ((1, 1), 10.0, 0.5): (
        -0.18654051768822094,
        -0.18121129798195085,
        1.0658439412540173,
        -0.1841384456840066,
    ),
    ((1, 1), 10.0, 1.0): (
        -0.19394127572078407,
        -0.17502952488792883,
        1.8911750832855216,
        -0.1841384456840066,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BENCHMARKS))
def test_benchmark_cases_within_their_error_estimate(case):
    spins, rs, theta = case
    result = two_electron_box_converged(_gas(spins, rs=rs, theta=theta))
    for value, error, reference in zip(result.thermo, result.error, BENCHMARKS[case], strict=True):
        assert abs(value - reference) <= error + 1e-10 * max(1.0, abs(reference))
        assert error < 1e-8 * max(1.0, abs(reference))


@pytest.mark.slow
def test_3d_polarized_error_estimate_against_a_larger_cutoff():
    gas = _gas((2, 0), dim=3, rs=1.0, theta=1.0, twist=(0.25, 0.25, 0.25))
    result = two_electron_box_converged(gas)
    reference = two_electron_box(gas, n_cut=16)
    for value, error, exact in zip(result.thermo, result.error, reference, strict=True):
        assert abs(value - exact) <= error
        assert error < 1e-7 * max(1.0, abs(exact))
    assert math.isfinite(result.thermo.entropy)

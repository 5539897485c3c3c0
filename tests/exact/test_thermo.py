"""Tests of canonical thermodynamics from energy levels (closed forms and identities)."""

import math

import numpy as np
import pytest

from fermiflow.exact.thermo import (
    ExactThermo,
    thermo_from_levels,
    thermo_mixture,
    thermo_product,
)

RTOL = 1e-13


def _close(actual: ExactThermo, desired: ExactThermo, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.array(actual), np.array(desired), rtol=rtol, atol=atol)


@pytest.mark.parametrize("beta", [0.1, 1.0, 30.0])
def test_two_level_system_closed_form(beta):
    gap = 0.7
    t = thermo_from_levels([0.3, 0.3 + gap], beta)
    x = beta * gap
    log_z = math.log1p(math.exp(-x))
    excited = 1.0 / (math.exp(x) + 1.0)
    expected = ExactThermo(
        free_energy=0.3 - log_z / beta,
        energy=0.3 + gap * excited,
        entropy=x * excited + log_z,
        ground_energy=0.3,
    )
    _close(t, expected)


def test_entropy_is_beta_times_energy_minus_free_energy():
    levels = np.array([-2.0, -1.5, -1.5, 0.3, 4.0])
    for beta in (0.2, 1.0, 5.0):
        t = thermo_from_levels(levels, beta)
        assert t.entropy >= 0
        np.testing.assert_allclose(t.entropy, beta * (t.energy - t.free_energy), rtol=1e-13)


def test_degeneracies_equal_repeated_levels():
    repeated = thermo_from_levels([1.0, 1.0, 1.0, 2.5], 0.8)
    weighted = thermo_from_levels([1.0, 2.5], 0.8, degeneracies=[3, 1])
    _close(repeated, weighted, rtol=1e-14)


def test_low_temperature_limit_without_overflow():
    # exp(-beta e) under- and overflows here; the log-space sums do not.
    t = thermo_from_levels([1e4, 1e4 + 1.0], beta=1e5, degeneracies=[2, 1])
    assert t.free_energy == pytest.approx(1e4 - math.log(2.0) / 1e5, rel=1e-15)
    assert t.energy == 1e4
    assert t.entropy == pytest.approx(math.log(2.0), rel=1e-14)
    assert t.ground_energy == 1e4


def test_product_equals_outer_sum_of_levels():
    a, b = np.array([0.0, 0.4, 1.3]), np.array([-1.0, 0.2])
    beta = 1.7
    composite = thermo_product([thermo_from_levels(a, beta), thermo_from_levels(b, beta)])
    _close(composite, thermo_from_levels((a[:, None] + b[None, :]).ravel(), beta))


def test_mixture_equals_union_of_levels():
    a, b = np.array([0.0, 0.4, 1.3]), np.array([-1.0, 0.2])
    beta = 0.9
    union = thermo_mixture([thermo_from_levels(a, beta), thermo_from_levels(b, beta)], beta)
    _close(union, thermo_from_levels(np.concatenate([a, b]), beta))


def test_constant_shift_by_product_with_one_level():
    t = thermo_from_levels([0.0, 1.0], 2.0)
    shifted = thermo_product([t, thermo_from_levels([-3.0], 2.0)])
    _close(shifted, thermo_from_levels([-3.0, -2.0], 2.0))


def test_outputs_are_float64_scalars_for_float32_input():
    t = thermo_from_levels(np.array([0.0, 1.0], np.float32), 1.0)
    assert all(isinstance(v, float) and np.shape(v) == () for v in t)
    for combined in (thermo_product([t, t]), thermo_mixture([t, t], 1.0)):
        assert all(isinstance(v, float) for v in combined)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(energies=[], beta=1.0), "energies"),
        (dict(energies=[0.0, np.nan], beta=1.0), "energies"),
        (dict(energies=[[0.0]], beta=1.0), "energies"),
        (dict(energies=[0.0], beta=0.0), "beta"),
        (dict(energies=[0.0, 1.0], beta=1.0, degeneracies=[1, 0]), "degeneracies"),
        (dict(energies=[0.0, 1.0], beta=1.0, degeneracies=[1]), "degeneracies"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        thermo_from_levels(**kwargs)


def test_empty_combinations_raise():
    with pytest.raises(ValueError, match="parts"):
        thermo_product([])
    with pytest.raises(ValueError, match="parts"):
        thermo_mixture([], 1.0)

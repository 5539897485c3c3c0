"""Tests of the frozen system descriptions: validation and derived properties."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot
from fermiflow.hamiltonians.units import electron_gas_scales

GAS = dict(n_up=13, n_down=0, dim=2, rs=1.5, theta=0.15, emax=25, twist=(0.25, 0.25))
DOT = dict(n_up=3, n_down=2, dim=2, omega=0.5, coupling=1.0, beta=4.0, n_shells=3)


def test_electron_gas_derived_properties():
    gas = ElectronGas(**GAS)
    scales = electron_gas_scales(n_up=13, n_down=0, dim=2, rs=1.5, theta=0.15)
    assert gas.scales == scales
    assert gas.box_length == scales.box_length
    assert gas.beta == scales.beta
    assert gas.n_particles == 13
    expected = plane_wave_spectrum(
        dim=2, emax=25, box_length=scales.box_length, twist=(0.25, 0.25)
    )
    assert gas.spectrum.energies.shape == (81,)
    for actual, desired in zip(gas.spectrum, expected, strict=True):
        np.testing.assert_array_equal(actual, desired)


def test_electron_gas_unpolarized_3d():
    gas = ElectronGas(n_up=7, n_down=7, dim=3, rs=2.0, theta=1.0, emax=2)
    assert gas.n_particles == 14
    assert gas.twist == (0.0, 0.0, 0.0)
    assert gas.spectrum.energies.shape == (19,)
    np.testing.assert_allclose(gas.box_length, (4 * np.pi * 14 / 3) ** (1 / 3) * 2.0)


def test_electron_gas_is_frozen_hashable_and_normalized():
    gas = ElectronGas(**{**GAS, "twist": [0.25, 0.25]})
    assert gas.twist == (0.25, 0.25)
    assert isinstance(gas.twist, tuple)
    same = ElectronGas(**{**GAS, "rs": 3 / 2, "twist": np.array([0.25, 0.25])})
    assert same == gas
    assert hash(same) == hash(gas)
    assert {gas: 1}[same] == 1
    assert type(gas.rs) is float and type(gas.n_up) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        gas.rs = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        ElectronGas(13, 0, 2, 1.0, 0.15, 25)  # type: ignore[misc]


def test_electron_gas_can_be_a_static_jit_argument():
    gas = ElectronGas(**GAS)
    traces = []

    def energy_scale(system, x):
        traces.append(None)
        return x / system.beta

    jitted = jax.jit(energy_scale, static_argnums=0)
    jitted(gas, jnp.ones(()))
    jitted(ElectronGas(**GAS), jnp.ones(()))
    assert len(traces) == 1


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (dict(emax=3), r"emax keeps only 9 single-particle modes for 13 .*raise emax"),
        (dict(n_up=5, n_down=6, emax=1), r"emax keeps only 5 .* for 6"),
        (dict(emax=-1), r"emax must be an integer >= 0"),
        (dict(twist=(0.6, 0.0)), r"twist must lie in \[-1/2, 1/2\]\^dim.*Shift"),
        (dict(twist=(0.25,)), r"twist must have dim=2 components"),
        (dict(rs=0.0), r"rs must be a finite number > 0"),
        (dict(theta=-1.0), r"theta must be a finite number > 0"),
        (dict(dim=1, twist=None), r"dim must be one of \(2, 3\)"),
        (dict(n_up=-1), r"n_up must be an integer >= 0"),
        (dict(n_down=-1), r"n_down must be an integer >= 0.*n_down=0"),
        (dict(n_up=0, n_down=0), r"n_up \+ n_down must be >= 1"),
    ],
)
def test_electron_gas_rejects_bad_input(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        ElectronGas(**{**GAS, **change})


def test_electron_gas_cutoff_counts_the_majority_species():
    # 2D emax=1 keeps 5 modes: 5 electrons of each spin fit.
    gas = ElectronGas(n_up=5, n_down=5, dim=2, rs=1.0, theta=1.0, emax=1)
    assert gas.spectrum.energies.shape == (5,)


def test_quantum_dot_derived_properties():
    dot = QuantumDot(**DOT)
    assert dot.n_particles == 5
    expected = oscillator_spectrum(dim=2, n_shells=3, omega=0.5)
    for actual, desired in zip(dot.spectrum, expected, strict=True):
        np.testing.assert_array_equal(actual, desired)
    assert QuantumDot(**{**DOT, "coupling": 0}).coupling == 0.0
    assert hash(dot) == hash(QuantumDot(**DOT))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (dict(omega=0.0), r"omega must be a finite number > 0"),
        (dict(beta=-1.0), r"beta must be a finite number > 0"),
        (dict(coupling=-0.5), r"coupling must be a finite number >= 0.*coupling=0"),
        (dict(coupling=float("nan")), r"coupling must be"),
        (dict(n_shells=2, n_up=4), r"n_shells keeps only 3 .* for 4 .*raise n_shells"),
        (dict(n_shells=0), r"n_shells must be an integer >= 1"),
        (dict(dim=4), r"dim must be one of \(1, 2, 3\)"),
        (dict(n_up=0, n_down=0), r"n_up \+ n_down must be >= 1"),
    ],
)
def test_quantum_dot_rejects_bad_input(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        QuantumDot(**{**DOT, **change})


def test_classical_coulomb_gas():
    gas = ClassicalCoulombGas(n=6, dim=2, temperature=0.25)
    assert gas.beta == 4.0
    assert (gas.omega, gas.coupling) == (1.0, 1.0)
    assert hash(gas) == hash(ClassicalCoulombGas(n=6, dim=2, temperature=0.25))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (dict(n=0), r"n must be an integer >= 1"),
        (dict(temperature=0.0), r"temperature must be a finite number > 0"),
        (dict(omega=-1.0), r"omega must be"),
        (dict(coupling=-1.0), r"coupling must be a finite number >= 0"),
        (dict(dim=0), r"dim must be one of"),
    ],
)
def test_classical_coulomb_gas_rejects_bad_input(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        ClassicalCoulombGas(**{**dict(n=6, dim=2, temperature=0.5), **change})

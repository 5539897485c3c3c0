"""Tests of the electron-gas scales and the Hartree / Rydberg conversions."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.units import (
    ElectronGasScales,
    electron_gas_scales,
    from_rydberg_per_rs2,
    hartree_to_rydberg,
    rydberg_to_hartree,
    to_rydberg_per_rs2,
)

RTOL = 1e-13  # closed forms evaluated in double precision


def assert_close(actual, desired):
    np.testing.assert_allclose(actual, desired, rtol=RTOL, atol=0.0)


# Closed forms of the reference README, in Rydberg where it states them in Rydberg.
POLARIZED_KF = {2: lambda rs: 2.0 / rs, 3: lambda rs: (9 * math.pi / 2) ** (1 / 3) / rs}
UNPOLARIZED_KF = {
    2: lambda rs: math.sqrt(2.0) / rs,
    3: lambda rs: (9 * math.pi / 4) ** (1 / 3) / rs,
}
POLARIZED_EF_RY = {
    2: lambda rs: 4.0 / rs**2,
    3: lambda rs: (9 * math.pi / 2) ** (2 / 3) / rs**2,
}
BOX = {
    2: lambda n, rs: math.sqrt(math.pi * n) * rs,
    3: lambda n, rs: (4 * math.pi * n / 3) ** (1 / 3) * rs,
}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("rs", [0.25, 1.0, 3.7])
@pytest.mark.parametrize("theta", [0.0625, 0.15, 2.0])
def test_polarized_closed_forms(dim, rs, theta):
    n = 13
    scales = electron_gas_scales(n_up=n, n_down=0, dim=dim, rs=rs, theta=theta)
    assert isinstance(scales, ElectronGasScales)
    assert_close(scales.fermi_wavevector, POLARIZED_KF[dim](rs))
    assert_close(hartree_to_rydberg(scales.fermi_energy), POLARIZED_EF_RY[dim](rs))
    assert_close(scales.box_length, BOX[dim](n, rs))
    assert_close(scales.temperature, theta * scales.fermi_energy)
    assert_close(scales.beta, 1.0 / (theta * scales.fermi_energy))
    wigner_seitz_volume = math.pi * rs**2 if dim == 2 else 4 * math.pi * rs**3 / 3
    assert_close(scales.density, 1.0 / wigner_seitz_volume)
    assert_close(scales.density, n / scales.box_length**dim)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("rs", [0.5, 2.0])
def test_unpolarized_closed_forms(dim, rs):
    n_spin = 7
    scales = electron_gas_scales(n_up=n_spin, n_down=n_spin, dim=dim, rs=rs, theta=0.5)
    assert_close(scales.fermi_wavevector, UNPOLARIZED_KF[dim](rs))
    assert_close(scales.fermi_energy, 0.5 * UNPOLARIZED_KF[dim](rs) ** 2)
    assert_close(scales.box_length, BOX[dim](2 * n_spin, rs))
    assert_close(scales.beta, 1.0 / (0.5 * scales.fermi_energy))


@pytest.mark.parametrize("dim", [2, 3])
def test_partial_polarization_uses_majority_density(dim):
    rs, theta = 1.3, 0.4
    partial = electron_gas_scales(n_up=5, n_down=3, dim=dim, rs=rs, theta=theta)
    # A polarized gas of the majority density n * 5/8 has rs_major^dim = rs^dim 8/5.
    rs_major = rs * (8 / 5) ** (1 / dim)
    assert_close(partial.fermi_wavevector, POLARIZED_KF[dim](rs_major))
    assert_close(partial.beta, 1.0 / (theta * 0.5 * POLARIZED_KF[dim](rs_major) ** 2))
    assert_close(partial.box_length, BOX[dim](8, rs))
    swapped = electron_gas_scales(n_up=3, n_down=5, dim=dim, rs=rs, theta=theta)
    assert swapped == partial


@pytest.mark.parametrize("dim", [2, 3])
def test_partial_polarization_reaches_both_limits(dim):
    rs = 2.0
    # The majority k_F lies between the unpolarized and the polarized value.
    values = [
        electron_gas_scales(n_up=10 + p, n_down=10 - p, dim=dim, rs=rs, theta=1.0)
        for p in range(11)
    ]
    k_f = [v.fermi_wavevector for v in values]
    assert_close(k_f[0], UNPOLARIZED_KF[dim](rs))
    assert_close(k_f[-1], POLARIZED_KF[dim](rs))
    assert all(a < b for a, b in zip(k_f, k_f[1:], strict=False))


def test_energy_in_rydberg_per_rs2_does_not_depend_on_rs():
    for rs in (0.5, 1.0, 10.0):
        scales = electron_gas_scales(n_up=13, n_down=0, dim=2, rs=rs, theta=0.15)
        assert_close(to_rydberg_per_rs2(scales.fermi_energy, rs), 4.0)
        assert_close(from_rydberg_per_rs2(4.0, rs), scales.fermi_energy)


def test_round_trips():
    energies = np.array([-3.5, 0.0, 1.25, 7e5])
    assert_close(rydberg_to_hartree(hartree_to_rydberg(energies)), energies)
    assert_close(hartree_to_rydberg(1.0), 2.0)
    assert_close(rydberg_to_hartree(1.0), 0.5)
    for rs in (0.3, 4.0):
        assert_close(
            from_rydberg_per_rs2(to_rydberg_per_rs2(energies, rs), rs), energies
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("module", [np, jnp])
def test_conversions_keep_dtype_and_shape(dtype, module):
    energy = module.ones((2, 3), dtype=dtype)
    for out in (
        hartree_to_rydberg(energy),
        rydberg_to_hartree(energy),
        to_rydberg_per_rs2(energy, 2.0),
        from_rydberg_per_rs2(energy, 2.0),
    ):
        assert out.dtype == dtype
        assert out.shape == (2, 3)


def test_scales_are_python_floats():
    scales = electron_gas_scales(n_up=2, n_down=1, dim=3, rs=1.0, theta=1.0)
    assert all(type(value) is float for value in scales)


GOOD = dict(n_up=4, n_down=2, dim=3, rs=1.0, theta=0.5)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (dict(n_up=-1), r"n_up must be an integer >= 0"),
        (dict(n_down=-2), r"n_down must be an integer >= 0.*n_down=0"),
        (dict(n_up=1.5), r"n_up must be an integer"),
        (dict(n_up=0, n_down=0), r"n_up \+ n_down must be >= 1.*at least one"),
        (dict(dim=1), r"dim must be one of \(2, 3\).*Pass dim=2"),
        (dict(dim=4), r"dim must be one of"),
        (dict(rs=0.0), r"rs must be a finite number > 0.*Wigner-Seitz"),
        (dict(rs=-1.0), r"rs must be"),
        (dict(rs=math.inf), r"rs must be"),
        (dict(theta=0.0), r"theta must be a finite number > 0.*T / T_F"),
        (dict(theta=-0.1), r"theta must be"),
        (dict(theta=math.nan), r"theta must be"),
    ],
)
def test_bad_input_names_the_parameter_and_the_fix(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        electron_gas_scales(**{**GOOD, **change})


def test_bad_rs_in_conversions():
    with pytest.raises(ValueError, match="rs must be"):
        to_rydberg_per_rs2(1.0, 0.0)
    with pytest.raises(ValueError, match="rs must be"):
        from_rydberg_per_rs2(1.0, -2.0)

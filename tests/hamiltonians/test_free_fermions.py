"""Tests of the exact ideal Fermi gas against independent references.

References: brute-force enumeration of all C(m, N) occupations and a 50-digit mpmath
evaluation of the symmetric polynomials (exact tests, rtol 1e-10); the grand-canonical
ensemble with its saddle-point (Darwin-Fowler / Edgeworth) corrections (large-N
limit); a published non-interacting reference value (arXiv:2201.03156 set-up).
"""

import itertools
import math

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from fermiflow.hamiltonians.free_fermions import (
    GrandCanonicalThermo,
    IdealGasThermo,
    canonical_ideal_gas,
    canonical_ideal_gas_spinful,
    chemical_potential,
    electron_gas_ideal_thermo,
    grand_canonical_ideal_gas,
    pressure_ideal_electron_gas,
)
from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.hamiltonians.units import electron_gas_scales, to_rydberg_per_rs2

RTOL = 1e-10
SCALARS = ("log_partition", "free_energy", "energy", "entropy", "heat_capacity")


def assert_thermo_close(actual: IdealGasThermo, desired: dict, rtol=RTOL):
    for name in SCALARS:
        np.testing.assert_allclose(
            float(getattr(actual, name)),
            float(desired[name]),
            rtol=rtol,
            atol=0.0,
            err_msg=name,
        )


# Small spectra (energies in Hartree, O(1) spacings): irregular, degenerate
# oscillator shells, twisted plane waves in a box with (2 pi / L)^2 / 2 = 1, and a
# spectrum with negative levels.
SMALL_SPECTRA = {
    "irregular": np.array(
        [0.3, 1.7, 0.9, 2.2, 0.9, 3.1, 0.05, 1.3, 2.9, 4.0, 0.6, 1.1]
    ),
    "oscillator": oscillator_spectrum(dim=2, n_shells=4, omega=1.0).energies,
    "plane_waves": plane_wave_spectrum(
        dim=2, emax=2, box_length=math.sqrt(2) * math.pi, twist=(0.25, -0.1)
    ).energies,
    "negative": np.array([-1.0, 0.5, 0.5, 2.0, -0.3, 1.0, -2.5]),
}


def brute_force(energies, n, beta, dps=200):
    """Enumerate all occupations in mpmath (enough digits for any S and C_V here)."""
    with mpmath.workdps(dps):
        beta = mpmath.mpf(beta)
        configs = list(itertools.combinations(range(len(energies)), n))
        level = [mpmath.mpf(float(e)) for e in energies]
        config_energy = [mpmath.fsum(level[i] for i in c) for c in configs]
        weights = [mpmath.exp(-beta * e) for e in config_energy]
        z = mpmath.fsum(weights)
        prob = [w / z for w in weights]
        energy = mpmath.fsum(p * e for p, e in zip(prob, config_energy, strict=True))
        variance = mpmath.fsum(
            p * (e - energy) ** 2 for p, e in zip(prob, config_energy, strict=True)
        )
        occupations = [
            mpmath.fsum(p for p, c in zip(prob, configs, strict=True) if k in c)
            for k in range(len(energies))
        ]
        log_z = mpmath.log(z)
        return {
            "log_partition": log_z,
            "free_energy": -log_z / beta,
            "energy": energy,
            "entropy": -mpmath.fsum(p * mpmath.log(p) for p in prob),
            "heat_capacity": beta**2 * variance,
            "occupations": np.array([float(o) for o in occupations]),
        }


@pytest.mark.parametrize("spectrum", sorted(SMALL_SPECTRA))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("beta", [0.05, 0.7, 5.0, 40.0])
def test_matches_brute_force_enumeration(spectrum, n, beta):
    energies = SMALL_SPECTRA[spectrum]
    thermo = canonical_ideal_gas(energies, n, beta)
    exact = brute_force(energies, n, beta)
    assert_thermo_close(thermo, exact)
    np.testing.assert_allclose(thermo.occupations, exact["occupations"], rtol=RTOL)


def mp_symmetric_polynomials(energies, n, beta, dps=50):
    """ln Z, E, S, C_V from e_j, sum_S E(S) w(S), sum_S E(S)^2 w(S) in mpmath.

    Energies are measured from c = (ground-state energy) / N, so that the second
    moment needs no large cancellation.
    """
    with mpmath.workdps(dps):
        beta = mpmath.mpf(beta)
        levels = [mpmath.mpf(float(e)) for e in energies]
        c = mpmath.fsum(sorted(levels)[:n]) / n
        a = [mpmath.mpf(1)] + [mpmath.mpf(0)] * n  # sum_S w(S) over |S| = j
        b = [mpmath.mpf(0)] * (n + 1)  # sum_S (E(S) - j c) w(S)
        s = [mpmath.mpf(0)] * (n + 1)  # sum_S (E(S) - j c)^2 w(S)
        for k, level in enumerate(levels):
            e = level - c
            x = mpmath.exp(-beta * e)
            for j in range(min(k + 1, n), 0, -1):
                s[j] += x * (s[j - 1] + 2 * e * b[j - 1] + e * e * a[j - 1])
                b[j] += x * (b[j - 1] + e * a[j - 1])
                a[j] += x * a[j - 1]
        log_z = mpmath.log(a[n]) - beta * n * c
        energy = b[n] / a[n] + n * c
        return {
            "log_partition": log_z,
            "free_energy": -log_z / beta,
            "energy": energy,
            "entropy": beta * energy + log_z,
            "heat_capacity": beta**2 * (s[n] / a[n] - (b[n] / a[n]) ** 2),
        }


def mp_occupation(energies, n, beta, k, dps=50):
    """<n_k> = x_k e_(N-1)(all but k) / e_N(all), both in mpmath."""
    with mpmath.workdps(dps):

        def log_esp(levels, j_max):
            e = [mpmath.mpf(1)] + [mpmath.mpf(0)] * j_max
            for level in levels:
                x = mpmath.exp(-beta * (mpmath.mpf(float(level)) - shift))
                for j in range(j_max, 0, -1):
                    e[j] += x * e[j - 1]
            return mpmath.log(e[j_max])

        beta = mpmath.mpf(beta)
        shift = mpmath.mpf(float(np.sort(energies)[n - 1]))
        rest = np.delete(energies, k)
        log_occ = (
            -beta * (mpmath.mpf(float(energies[k])) - shift)
            + log_esp(rest, n - 1)
            - log_esp(energies, n)
        )
        return float(mpmath.exp(log_occ))


# 3D spin-polarized plane waves at the Gamma point; beta E_F = 1 / theta.
LARGE_CASES = [
    (123, 0.01, 12),  # closed shell, beta E_F = 100, 179 modes
    (100, 0.01, 12),  # open shell: degenerate ground states
    (123, 0.002, 14),  # beta E_F = 500, 251 modes
    pytest.param(300, 0.001, 30, marks=pytest.mark.slow),  # 739 modes
    pytest.param(500, 0.005, 40, marks=pytest.mark.slow),  # 1045 modes
]


@pytest.mark.parametrize(("n", "theta", "emax"), LARGE_CASES)
def test_large_n_low_temperature_matches_50_digit_reference(n, theta, emax):
    gas = ElectronGas(n_up=n, n_down=0, dim=3, rs=1.0, theta=theta, emax=emax)
    energies = gas.spectrum.energies
    thermo = canonical_ideal_gas(energies, n, gas.beta)
    assert_thermo_close(thermo, mp_symmetric_polynomials(energies, n, gas.beta))
    # Occupations deep in the sea, around the Fermi level and at the top.
    for k in (0, n - 1, n, len(energies) - 1):
        exact = mp_occupation(energies, n, gas.beta, k)
        np.testing.assert_allclose(thermo.occupations[k], exact, rtol=RTOL, err_msg=k)


@pytest.mark.parametrize(("n", "theta"), [(123, 0.01), (300, 0.001), (300, 1e-5)])
def test_large_n_low_temperature_is_finite_and_consistent(n, theta):
    gas = ElectronGas(n_up=n, n_down=0, dim=3, rs=1.0, theta=theta, emax=30)
    thermo = canonical_ideal_gas(gas.spectrum.energies, n, gas.beta)
    assert all(np.isfinite(float(v)) for v in thermo[:5])
    assert thermo.entropy >= 0 and thermo.heat_capacity >= 0
    assert abs(thermo.occupations.sum() - n) <= RTOL * n
    assert np.all((thermo.occupations >= 0) & (thermo.occupations <= 1 + 1e-14))
    ground = np.sort(gas.spectrum.energies)[:n].sum()
    # Lower levels are never less occupied.
    by_energy = thermo.occupations[np.argsort(gas.spectrum.energies, kind="stable")]
    assert np.all(np.diff(by_energy) <= 1e-14)
    # Z >= exp(-beta E0) gives F <= E0, and E >= E0.
    assert thermo.free_energy <= ground <= thermo.energy


def alternating_recursion(energies, n, beta):
    """The classic Z_N = (1/N) sum_k (-1)^(k+1) Z_1(k beta) Z_(N-k) in float64."""
    z = [1.0]
    for j in range(1, n + 1):
        terms = [
            (-1) ** (k + 1) * np.sum(np.exp(-k * beta * energies)) * z[j - k]
            for k in range(1, j + 1)
        ]
        z.append(sum(terms) / j)
    return z[n]


def test_alternating_recursion_fails_where_ours_does_not():
    # The claim of the module docstring. The naive recursion is right at small
    # beta * N (so this test is not vacuous) ...
    energies = SMALL_SPECTRA["irregular"]
    naive = math.log(alternating_recursion(energies, 3, 0.5))
    np.testing.assert_allclose(
        naive, canonical_ideal_gas(energies, 3, 0.5).log_partition
    )
    # ... but already wrong for the N=13 reference system at theta = 0.15, whatever
    # constant shift of the energies is used to keep Z in range; ours stays exact.
    gas = ElectronGas(
        n_up=13, n_down=0, dim=2, rs=1.0, theta=0.15, emax=25, twist=(0.25, 0.25)
    )
    energies, beta = gas.spectrum.energies, gas.beta
    exact = float(mp_symmetric_polynomials(energies, 13, beta)["log_partition"])
    levels = np.sort(energies)
    for shift in (0.0, levels[:13].mean(), levels[12]):
        with np.errstate(all="ignore"):
            z = alternating_recursion(energies - shift, 13, beta)
        naive = math.log(z) - beta * 13 * shift if z > 0 else math.nan
        assert not abs(naive - exact) < 1e-3 * abs(exact)
    ours = canonical_ideal_gas(energies, 13, beta).log_partition
    np.testing.assert_allclose(ours, exact, rtol=RTOL)


def test_filled_band_has_no_fluctuations():
    energies = np.array([3.0, 1.0, 2.0, 2.0])
    thermo = canonical_ideal_gas(energies, 4, beta=2.0)
    np.testing.assert_allclose(thermo.log_partition, -2.0 * 8.0, rtol=1e-15)
    np.testing.assert_allclose(thermo.energy, 8.0, rtol=1e-15)
    np.testing.assert_allclose(thermo.free_energy, 8.0, rtol=1e-15)
    assert thermo.entropy == 0.0 and thermo.heat_capacity == 0.0
    np.testing.assert_array_equal(thermo.occupations, 1.0)


def test_zero_temperature_limit_counts_degenerate_ground_states():
    # 2D Gamma point: one level at 0, four at (2 pi / L)^2 / 2. Two fermions have
    # 4 degenerate ground states, so S -> ln 4 and E -> the ground-state energy.
    energies = plane_wave_spectrum(dim=2, emax=2, box_length=2 * math.pi).energies
    thermo = canonical_ideal_gas(energies, 2, beta=2000.0)
    np.testing.assert_allclose(thermo.entropy, math.log(4), rtol=RTOL)
    np.testing.assert_allclose(thermo.energy, 0.5, rtol=RTOL)
    np.testing.assert_allclose(thermo.occupations[:5], [1, 0.25, 0.25, 0.25, 0.25])
    assert thermo.heat_capacity < 1e-300 or thermo.heat_capacity == 0.0


def test_reference_value_2d_polarized_n13():
    # README: N=13, 2D, theta=0.15, twist (1/4, 1/4), Emax=25 (81 orbitals),
    # F and E in Ry / rs^2 for the whole system, S in k_B.
    for rs in (1.0, 2.5, 10.0):
        gas = ElectronGas(
            n_up=13, n_down=0, dim=2, rs=rs, theta=0.15, emax=25, twist=(0.25, 0.25)
        )
        assert gas.spectrum.energies.shape == (81,)
        thermo = electron_gas_ideal_thermo(gas)
        free_energy = to_rydberg_per_rs2(float(thermo.free_energy), rs)
        energy = to_rydberg_per_rs2(float(thermo.energy), rs)
        np.testing.assert_allclose(free_energy, 24.8110517643, rtol=RTOL)
        np.testing.assert_allclose(energy, 27.5242582385, rtol=RTOL)
        np.testing.assert_allclose(thermo.entropy, 4.52201079026, rtol=RTOL)
        np.testing.assert_allclose(
            thermo.entropy, gas.beta * (thermo.energy - thermo.free_energy), rtol=1e-13
        )


def test_spinful_is_the_product_of_the_two_species():
    energies = SMALL_SPECTRA["irregular"]
    beta = 1.3
    up, down = (
        canonical_ideal_gas(energies, 5, beta),
        canonical_ideal_gas(energies, 3, beta),
    )
    both = canonical_ideal_gas_spinful(energies, 5, 3, beta)
    for name in SCALARS:
        np.testing.assert_allclose(
            getattr(both, name), getattr(up, name) + getattr(down, name), rtol=1e-14
        )
    np.testing.assert_array_equal(
        both.occupations, np.stack([up.occupations, down.occupations])
    )
    polarized = canonical_ideal_gas_spinful(energies, 0, 4, beta)
    single = canonical_ideal_gas(energies, 4, beta)
    np.testing.assert_array_equal(polarized.occupations[0], 0.0)
    assert_thermo_close(polarized, single._asdict(), rtol=1e-15)


def test_unpolarized_electron_gas_doubles_one_species():
    gas = ElectronGas(n_up=7, n_down=7, dim=3, rs=2.0, theta=0.3, emax=4)
    thermo = electron_gas_ideal_thermo(gas)
    single = canonical_ideal_gas(gas.spectrum.energies, 7, gas.beta)
    for name in SCALARS:
        np.testing.assert_allclose(getattr(thermo, name), 2 * getattr(single, name))
    assert thermo.occupations.shape == (2, gas.spectrum.energies.shape[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("module", [np, jnp])
def test_dtype_and_shape(dtype, module):
    energies = module.asarray(SMALL_SPECTRA["irregular"], dtype=dtype)
    m = energies.shape[0]
    results = [
        (canonical_ideal_gas(energies, 3, 2.0), (m,)),
        (canonical_ideal_gas_spinful(energies, 3, 1, 2.0), (2, m)),
        (grand_canonical_ideal_gas(energies, 1.0, 2.0), (m,)),
    ]
    for result, shape in results:
        for value in result[:-1]:
            assert value.dtype == dtype and value.shape == ()
        assert result.occupations.dtype == dtype
        assert result.occupations.shape == shape
    assert isinstance(results[2][0], GrandCanonicalThermo)
    # float32 results agree with float64 to float32 precision.
    reference = canonical_ideal_gas(SMALL_SPECTRA["irregular"], 3, 2.0)
    for name in SCALARS:
        np.testing.assert_allclose(
            getattr(results[0][0], name), getattr(reference, name), rtol=1e-6
        )


def test_integer_energies_give_float64():
    thermo = canonical_ideal_gas([0, 1, 2, 3], 2, 1.0)
    assert thermo.energy.dtype == np.float64


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: canonical_ideal_gas([0.0, 1.0], 3, 1.0), r"keeps only 2 .* for 3"),
        (lambda: canonical_ideal_gas([0.0, 1.0], 0, 1.0), r"n_particles must be"),
        (lambda: canonical_ideal_gas([0.0, 1.0], 1, 0.0), r"beta must be"),
        (lambda: canonical_ideal_gas([0.0, 1.0], 1, -2.0), r"beta must be"),
        (lambda: canonical_ideal_gas([[0.0, 1.0]], 1, 1.0), r"energies must be"),
        (lambda: canonical_ideal_gas([], 1, 1.0), r"energies must be"),
        (lambda: canonical_ideal_gas([0.0, np.nan], 1, 1.0), r"energies must be"),
        (lambda: canonical_ideal_gas_spinful([0.0], 0, 0, 1.0), r"n_up \+ n_down"),
        (lambda: canonical_ideal_gas_spinful([0.0], -1, 1, 1.0), r"n_up must be"),
        (lambda: canonical_ideal_gas_spinful([0.0], 1, 2, 1.0), r"keeps only 1 .*"),
        (lambda: grand_canonical_ideal_gas([0.0], 0.0, 0.0), r"beta must be"),
        (lambda: chemical_potential([0.0, 1.0], 2.0, 1.0), r"n_mean must lie in"),
        (lambda: chemical_potential([0.0, 1.0], 0.0, 1.0), r"n_mean must lie in"),
    ],
)
def test_bad_input(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_cutoff_error_names_the_cutoff():
    with pytest.raises(ValueError, match=r"emax.*raise the cutoff"):
        canonical_ideal_gas(np.zeros(3), 4, 1.0)


def brute_force_grand_canonical(energies, mu, beta):
    """Enumerate all 2^m occupations in mpmath."""
    with mpmath.workdps(60):
        beta, mu = mpmath.mpf(beta), mpmath.mpf(mu)
        level = [mpmath.mpf(float(e)) for e in energies]
        configs = list(itertools.product((0, 1), repeat=len(energies)))
        energy = [
            mpmath.fsum(e * c for e, c in zip(level, cfg, strict=True))
            for cfg in configs
        ]
        number = [sum(cfg) for cfg in configs]
        weight = [
            mpmath.exp(-beta * (e - mu * k))
            for e, k in zip(energy, number, strict=True)
        ]
        xi = mpmath.fsum(weight)
        prob = [w / xi for w in weight]

        def mean(values):
            return mpmath.fsum(p * v for p, v in zip(prob, values, strict=True))

        e_mean, n_mean = mean(energy), mean(number)
        var_e = mean([(e - e_mean) ** 2 for e in energy])
        var_n = mean([(k - n_mean) ** 2 for k in number])
        cov = mean(
            [(e - e_mean) * (k - n_mean) for e, k in zip(energy, number, strict=True)]
        )
        log_xi = mpmath.log(xi)
        return {
            "mean_number": n_mean,
            "log_grand_partition": log_xi,
            "free_energy": -log_xi / beta + mu * n_mean,
            "energy": e_mean,
            "entropy": -mean([mpmath.log(p) for p in prob]),
            "heat_capacity": beta**2 * (var_e - cov**2 / var_n),
        }


@pytest.mark.parametrize("beta", [0.3, 2.0, 25.0])
def test_grand_canonical_matches_brute_force(beta):
    energies = SMALL_SPECTRA["negative"]
    mu = 0.4
    thermo = grand_canonical_ideal_gas(energies, mu, beta)
    exact = brute_force_grand_canonical(energies, mu, beta)
    for name, value in exact.items():
        np.testing.assert_allclose(
            float(getattr(thermo, name)), float(value), rtol=RTOL, err_msg=name
        )


def test_chemical_potential_gives_the_mean_number():
    energies = SMALL_SPECTRA["oscillator"]
    for n_mean, beta in [(3.0, 0.5), (6.0, 4.0), (1.5, 40.0), (9.9, 1.0)]:
        mu = chemical_potential(energies, n_mean, beta)
        number = grand_canonical_ideal_gas(energies, mu, beta).mean_number
        np.testing.assert_allclose(number, n_mean, rtol=1e-12)


def canonical_and_grand_canonical(n, theta):
    """2D polarized gas, twist (1/4, 1/4), modes up to ~30 T above E_F."""
    scales = electron_gas_scales(n_up=n, n_down=0, dim=2, rs=1.0, theta=theta)
    emax = math.ceil((1 + 30 * theta) * n / math.pi)  # E_F sits at |n|^2 = N / pi
    energies = plane_wave_spectrum(
        dim=2, emax=emax, box_length=scales.box_length, twist=(0.25, 0.25)
    ).energies
    canonical = canonical_ideal_gas(energies, n, scales.beta)

    def grand(beta):
        return grand_canonical_ideal_gas(
            energies, chemical_potential(energies, n, beta), beta
        )

    return scales, canonical, grand


def test_grand_canonical_limit_at_large_n():
    # Darwin-Fowler: Z_N = Xi exp(-beta mu N) P_gc(N), and the local Edgeworth
    # expansion of P_gc at its mean gives, with cumulants k2, k3, k4 of N,
    #   beta (F_can - F_gc) = ln(2 pi k2) / 2 - k4 / (8 k2^2) + 5 k3^2 / (24 k2^3)
    #                         + O(1/N^2),
    # and E_can - E_gc = d/dbeta [ln k2 / 2] at fixed N + O(1/N). With k2 ~ N the
    # free energies per particle differ by ~ ln N / N and the energies by ~ 1 / N.
    theta, sizes = 0.5, (20, 40, 80, 160)
    free_residual, energy_residual, energy_gap = [], [], []
    for n in sizes:
        scales, canonical, grand = canonical_and_grand_canonical(n, theta)
        beta = scales.beta
        gc = grand(beta)
        assert abs(gc.mean_number - n) < 1e-10 * n
        w = gc.occupations * (1 - gc.occupations)
        k2, k3, k4 = (
            w.sum(),
            (w * (1 - 2 * gc.occupations)).sum(),
            (w * (1 - 6 * w)).sum(),
        )
        saddle = (
            0.5 * math.log(2 * math.pi * k2)
            - k4 / (8 * k2**2)
            + 5 * k3**2 / (24 * k2**3)
        )
        free_residual.append(beta * (canonical.free_energy - gc.free_energy) - saddle)
        h = 1e-4 * beta

        def log_k2(b, grand=grand):
            f = grand(b).occupations
            return math.log(np.sum(f * (1 - f)))

        slope = (log_k2(beta + h) - log_k2(beta - h)) / (2 * h)
        energy_residual.append(
            (canonical.energy - gc.energy - 0.5 * slope) / scales.fermi_energy
        )
        energy_gap.append((canonical.energy - gc.energy) / (n * scales.fermi_energy))
        # The leading term alone: F per particle differs by ln(2 pi k2) / (2 beta N).
        per_particle = (canonical.free_energy - gc.free_energy) * beta / n
        np.testing.assert_allclose(
            per_particle, math.log(2 * math.pi * k2) / (2 * n), rtol=0.01
        )
    for small, large in itertools.pairwise(range(len(sizes))):
        # Doubling N divides O(1/N^2) by ~4 and O(1/N) by ~2.
        assert abs(free_residual[large]) < abs(free_residual[small]) / 3.5
        assert abs(energy_residual[large]) < abs(energy_residual[small]) / 1.8
        assert 1.8 < energy_gap[small] / energy_gap[large] < 2.2
    assert abs(free_residual[-1]) < 1e-6  # vs beta dF ~ ln(2 pi k2) / 2 ~ 3
    assert abs(energy_residual[-1]) < 1e-3
    assert abs(energy_gap[-1]) < 2e-3


@pytest.mark.parametrize(
    "gas",
    [
        ElectronGas(
            n_up=13, n_down=0, dim=2, rs=1.0, theta=0.15, emax=25, twist=(0.25, 0.25)
        ),
        ElectronGas(
            n_up=7, n_down=5, dim=3, rs=2.0, theta=0.5, emax=6, twist=(0.1, 0.0, -0.3)
        ),
    ],
)
def test_pressure_matches_finite_difference_of_free_energy(gas):
    # F(L) at fixed N, beta and integer vectors; P = -F'(L) / (dim L^(dim - 1)).
    def free_energy(box_length):
        energies = plane_wave_spectrum(
            dim=gas.dim, emax=gas.emax, box_length=box_length, twist=gas.twist
        ).energies
        return float(
            canonical_ideal_gas_spinful(
                energies, gas.n_up, gas.n_down, gas.beta
            ).free_energy
        )

    length, h = gas.box_length, 1e-3 * gas.box_length
    # Five-point stencil: truncation error ~ h^4 F^(5) / 30.
    slope = (
        -free_energy(length + 2 * h)
        + 8 * free_energy(length + h)
        - 8 * free_energy(length - h)
        + free_energy(length - 2 * h)
    ) / (12 * h)
    expected = -slope / (gas.dim * length ** (gas.dim - 1))
    np.testing.assert_allclose(pressure_ideal_electron_gas(gas), expected, rtol=1e-9)

"""m*/m = S / S_0 is 1 for the ideal gas, with S_0 exact or from a 'pretrained' model."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.estimate import Estimate
from fermiflow.hamiltonians.free_fermions import (
    canonical_ideal_gas_spinful,
    electron_gas_ideal_thermo,
)
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.observables import (
    effective_mass_from_entropy,
    effective_mass_from_occupations,
    effective_mass_ratio,
    effective_mass_ratio_pretrained,
    estimate,
    ideal_entropy,
    thermodynamic_estimates,
)
from tests.observables.ideal_gas_samples import K_SIGMA, chains, exact_canonical_problem


def _entropy(samples):
    out = thermodynamic_estimates(
        samples.values, temperature=samples.problem.temperature,
        n_particles=samples.gas.n_particles,
    )
    return out["entropy"]


def test_ideal_gas_has_unit_effective_mass(ideal_samples):
    gas = ideal_samples.gas
    s0 = ideal_entropy(gas)
    np.testing.assert_allclose(s0, electron_gas_ideal_thermo(gas).entropy, rtol=1e-14)
    result = effective_mass_ratio(_entropy(ideal_samples), s0)
    assert result.error < 0.01, f"too noisy: {result.error:.3g}"
    assert abs(result.value - 1.0) < K_SIGMA * result.error
    entropy = _entropy(ideal_samples)
    np.testing.assert_allclose([result.value, result.error],
                               [entropy.value / s0, entropy.error / s0], rtol=1e-14)


def _entropy_of_fresh_draws(key, problem, params, n_chains=64, n_draws=128):
    """S from exact draws of K only (x does not enter S_loc = -ln p(K))."""
    model = problem.occupation_model
    keys = jax.random.split(key, n_draws)
    _, log_p = jax.lax.map(lambda k: model.sample(k, params.occupation, n_chains), keys)
    return estimate(chains(np.asarray(log_p)) * -1.0, name="S")


def test_pretrained_estimator_is_one_and_its_error_adds_in_quadrature():
    gas = ElectronGas(n_up=3, n_down=2, dim=2, rs=1.0, theta=0.5, emax=2, twist=(0.25, 0.25))
    problem, params = exact_canonical_problem(gas)
    key_a, key_b = jax.random.split(jax.random.key(11))
    trained = _entropy_of_fresh_draws(key_a, problem, params)
    pretrained = _entropy_of_fresh_draws(key_b, problem, params)  # independent draws
    result = effective_mass_ratio_pretrained(trained, pretrained)
    assert result.error < 0.01
    assert abs(result.value - 1.0) < K_SIGMA * result.error
    expected = result.value * math.hypot(
        trained.error / trained.value, pretrained.error / pretrained.value
    )
    np.testing.assert_allclose(result.error, expected, rtol=1e-14)


def test_error_propagation_formulas():
    s = Estimate(4.0, 0.2, "blocking")
    s_pre = Estimate(5.0, 0.1, "blocking")
    exact = effective_mass_ratio(s, 5.0)
    np.testing.assert_allclose([exact.value, exact.error], [0.8, 0.04], rtol=1e-14)
    assert exact.method == "blocking"
    pre = effective_mass_ratio_pretrained(s, s_pre)
    np.testing.assert_allclose([pre.value, pre.error], [0.8, 0.8 * math.hypot(0.05, 0.02)],
                               rtol=1e-14)


def test_validation():
    s = Estimate(4.0, 0.2, "blocking")
    with pytest.raises(ValueError, match="entropy must be > 0"):
        effective_mass_ratio(Estimate(-1.0, 0.2), 5.0)
    with pytest.raises(ValueError, match="reference_entropy"):
        effective_mass_ratio(s, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        effective_mass_ratio_pretrained(s, Estimate(0.0, 0.1))
    dot = QuantumDot(n_up=1, n_down=0, dim=2, omega=1.0, coupling=0.0, beta=1.0, n_shells=2)
    with pytest.raises(ValueError, match="ElectronGas"):
        ideal_entropy(dot)
    assert ideal_entropy(ElectronGas(n_up=2, n_down=0, dim=2, rs=1.0, theta=1.0, emax=1)) > 0


MASSES = [1.0, 1.5, 0.7]


@pytest.mark.parametrize("mass", MASSES)
def test_entropy_inversion_is_exact_for_an_ideal_gas_of_rescaled_mass(mass):
    """Levels eps / m* at temperature T have the entropy of eps at T m*: x = m* exactly."""
    gas = ElectronGas(n_up=5, n_down=3, dim=2, rs=1.0, theta=0.2, emax=9, twist=(0.25, 0.25))
    thermo = canonical_ideal_gas_spinful(gas.spectrum.energies / mass, 5, 3, gas.beta)
    result = effective_mass_from_entropy(Estimate(float(thermo.entropy), 0.01, "blocking"), gas)
    np.testing.assert_allclose(result.value, mass, rtol=1e-9)
    # Error propagation: dS0/dx = C0(T x) / x.
    slope = float(canonical_ideal_gas_spinful(gas.spectrum.energies, 5, 3,
                                              gas.beta / mass).heat_capacity) / mass
    np.testing.assert_allclose(result.error, 0.01 / slope, rtol=1e-9)
    # The ratio S / S0 is biased at finite N and Theta (S0 is not linear in T).
    ratio = float(thermo.entropy) / ideal_entropy(gas)
    if mass != 1.0:
        assert abs(ratio - mass) > 1e-3


@pytest.mark.parametrize("mass", MASSES)
def test_occupation_fit_recovers_the_mass_from_exact_samples(key, mass):
    gas = ElectronGas(n_up=3, n_down=0, dim=2, rs=1.0, theta=0.5, emax=4, twist=(0.25, 0.25))
    problem, params = exact_canonical_problem(gas)
    energies = np.asarray(problem.mode_energies)[problem.occupation_states].sum(-1)
    logits = -gas.beta * energies / mass  # an ideal gas of mass m*, exactly
    occ, log_p = jax.jit(problem.occupation_model.sample, static_argnums=2)(
        key, jnp.asarray(logits), 4096)
    e0 = np.asarray(problem.mode_energies)[np.asarray(occ)].sum(-1)
    fit = effective_mass_from_occupations(np.asarray(log_p), e0, gas.beta)
    np.testing.assert_allclose(fit.mass_ratio.value, mass, rtol=1e-9)
    assert fit.residual_rms < 1e-9 and fit.r_squared > 1 - 1e-12
    # Entropy route from the same samples: consistent within its (statistical) error.
    entropy = estimate(-np.asarray(log_p).reshape(64, 64), name="S")
    x = effective_mass_from_entropy(entropy, gas)
    assert x.error < 0.05 and abs(x.value - mass) < K_SIGMA * x.error


def test_occupation_fit_validation_and_residuals():
    rng_e0 = np.linspace(0.0, 1.0, 50)
    curved = -(2.0 * rng_e0 + 0.5 * rng_e0**2)  # not of the Fermi-liquid form
    fit = effective_mass_from_occupations(curved, rng_e0, beta=2.0)
    assert fit.residual_rms > 1e-3 and fit.mass_ratio.error > 0
    with pytest.raises(ValueError, match="constant"):
        effective_mass_from_occupations([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], beta=1.0)
    with pytest.raises(ValueError, match="same >= 3 samples"):
        effective_mass_from_occupations([0.0, 1.0], [1.0, 2.0], beta=1.0)

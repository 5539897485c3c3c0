"""m*/m = S / S_0 is 1 for the ideal gas, with S_0 exact or from a 'pretrained' model."""

import math

import jax
import numpy as np
import pytest

from fermiflow.estimate import Estimate
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.observables import (
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

"""Thermodynamic estimates and the virial pressure against the exact ideal gas."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.free_fermions import (
    electron_gas_ideal_thermo,
    pressure_ideal_electron_gas,
)
from fermiflow.observables import (
    blocked_thermodynamics,
    observables_to_json,
    thermodynamic_estimates,
    thermodynamic_traces,
    thermodynamic_units,
    virial_pressure,
)
from fermiflow.training.loss import LocalValues
from tests.observables.ideal_gas_samples import K_SIGMA


def _estimates(samples):
    gas = samples.gas
    return thermodynamic_estimates(
        samples.values, temperature=samples.problem.temperature,
        n_particles=gas.n_particles, dim=gas.dim, volume=gas.box_length**gas.dim,
    )


def test_free_energy_is_exact_per_sample(ideal_samples):
    # p(K) = exp(-beta E0(K)) / Z over all sets and E_loc = E0(K) (identity flow):
    # F_loc = T ln p(K) + E_loc = -T ln Z for every sample, whatever x is.
    gas, samples = ideal_samples.gas, ideal_samples
    traces = thermodynamic_traces(samples.values, temperature=samples.problem.temperature)
    exact = electron_gas_ideal_thermo(gas)
    np.testing.assert_allclose(traces["free_energy"], exact.free_energy, rtol=1e-10)
    out = _estimates(samples)
    np.testing.assert_allclose(out["free_energy"].value, exact.free_energy, rtol=1e-10)
    assert out["free_energy"].error < 1e-10 * abs(float(exact.free_energy))


@pytest.mark.parametrize("name", ["energy", "kinetic", "entropy", "pressure"])
def test_estimates_match_exact_ideal_gas(ideal_samples, name):
    gas = ideal_samples.gas
    exact_thermo = electron_gas_ideal_thermo(gas)
    exact = {
        "energy": exact_thermo.energy,
        "kinetic": exact_thermo.energy,
        "entropy": exact_thermo.entropy,
        "pressure": pressure_ideal_electron_gas(gas),  # exact -dF/dV
    }[name]
    obs = _estimates(ideal_samples)[name]
    # Relative error of 1% or better makes the comparison meaningful.
    assert obs.error < 1e-2 * abs(float(exact)), f"too noisy: {obs.error:.2e}"
    dev = abs(obs.value - float(exact))
    assert dev < K_SIGMA * obs.error, (
        f"{name}: {obs.value:.6f} vs {float(exact):.6f}: {dev / obs.error:.1f} sigma"
    )
    assert obs.r_hat < 1.05
    assert obs.n_samples == ideal_samples.occ.shape[0] * ideal_samples.occ.shape[1]


def test_per_particle_and_units(ideal_samples):
    out = _estimates(ideal_samples)
    n = ideal_samples.gas.n_particles
    for name in ("free_energy", "energy", "kinetic", "potential", "entropy"):
        total, per = out[name], out[f"{name}_per_particle"]
        np.testing.assert_allclose(per.value * n, total.value, rtol=1e-12)
        np.testing.assert_allclose(per.error * n, total.error, rtol=1e-12)
        assert per.method == total.method
    units = thermodynamic_units(2)
    assert set(units) == set(out)
    assert units["entropy"] == "k_B" and units["energy_per_particle"] == "Hartree"
    assert units["pressure"] == "Hartree/Bohr^2"
    assert "pressure_per_particle" not in out
    json = observables_to_json(out, units)
    assert json["entropy"]["units"] == "k_B"
    assert json["energy"]["value"] == out["energy"].value


def test_blocked_thermodynamics_leaves_out_nonfinite_walkers_and_says_so(key):
    steps, batch = 16, 6
    kinetic = 1.0 + 0.1 * jax.random.normal(key, (steps, batch))
    kinetic = kinetic.at[3, 2].set(jnp.nan)  # walker 2 is left out
    values = LocalValues(kinetic, jnp.full((steps, batch), -0.5), jnp.full((steps, batch), -2.0))
    estimates, info = blocked_thermodynamics(values, temperature=0.5)
    assert info["n_excluded_walkers"] == 1 and info["n_samples"] == steps * (batch - 1)
    finite = np.delete(np.asarray(kinetic), 2, axis=1)
    np.testing.assert_allclose(estimates.kinetic.value, finite.mean(), rtol=1e-12)
    np.testing.assert_allclose(estimates.free_energy.value, finite.mean() - 0.5 - 1.0,
                               rtol=1e-12)
    assert estimates.entropy.value == 2.0 and estimates.entropy.method == "exact"
    assert estimates.kinetic.method == "blocking" and estimates.kinetic.error > 0
    all_bad = LocalValues(jnp.full((8, 2), jnp.nan), jnp.zeros((8, 2)), jnp.zeros((8, 2)))
    with pytest.raises(ValueError, match="every walker"):
        blocked_thermodynamics(all_bad, temperature=0.5)


def test_virial_pressure_formula_2d_and_3d():
    np.testing.assert_allclose(virial_pressure(3.0, -1.0, dim=2, volume=2.0), (3 - 0.5) / 2)
    np.testing.assert_allclose(virial_pressure(3.0, -1.0, dim=3, volume=2.0), (6 - 1) / 6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_traces_shape_and_orientation(dtype):
    steps, batch = 8, 3
    kinetic = jnp.arange(steps * batch, dtype=dtype).reshape(steps, batch)
    values = LocalValues(kinetic + 0j, jnp.ones_like(kinetic), -jnp.ones_like(kinetic))
    traces = thermodynamic_traces(values, temperature=0.5, dim=3, volume=1.0)
    for trace in traces.values():
        chex.assert_shape(trace, (batch, steps))
        assert trace.dtype == np.float64  # host-side statistics are float64
    np.testing.assert_array_equal(traces["kinetic"], np.asarray(kinetic).T)
    np.testing.assert_allclose(traces["free_energy"], np.asarray(kinetic).T + 1 - 0.5)


def test_validation():
    values = LocalValues(jnp.zeros(4), jnp.zeros(4), jnp.zeros(4))
    with pytest.raises(ValueError, match=r"\(steps, batch\)"):
        thermodynamic_traces(values, temperature=1.0)
    good = LocalValues(*(jnp.zeros((8, 2)),) * 3)
    with pytest.raises(ValueError, match="temperature"):
        thermodynamic_traces(good, temperature=-1.0)
    with pytest.raises(ValueError, match="volume needs dim"):
        thermodynamic_traces(good, temperature=1.0, volume=1.0)
    with pytest.raises(ValueError, match="volume"):
        virial_pressure(1.0, 1.0, dim=2, volume=0.0)
    with pytest.raises(ValueError, match="n_particles"):
        thermodynamic_estimates(good, temperature=1.0, n_particles=0)

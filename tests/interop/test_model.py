"""A fermiflow wavefunction sampled by NetKet: energies agree with fermiflow's.

References: fermiflow's own local energy (``make_local_energy`` of ``model.log_psi``
with the Ewald potential) on NetKet's samples, NetKet's own ``KineticEnergy``, and the
exact free-fermion ground-state energy of the dot (zero-variance local energy).
"""

import chex
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from fermiflow.hamiltonians.ewald import make_ewald_potential
from fermiflow.hamiltonians.kinetic import make_local_energy
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.interop.model import SlaterFlowModel, make_ground_state_model
from fermiflow.interop.operators import (
    electron_gas_hamiltonian,
    ewald_operator,
    particle_hilbert,
    quantum_dot_hamiltonian,
    quantum_dot_operator,
)
from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import make_identity_flow

# Twist (1/4, 1/4) closes the polarized 2D shells at N = 1, 3, 4, 6, 8, 11, 13.
GAS = ElectronGas(
    n_up=3, n_down=0, dim=2, rs=1.0, theta=1.0, emax=4, twist=(0.25, 0.25)
)
# 3 up electrons fill the two lowest 2D oscillator shells, 1 down the lowest.
DOT = QuantumDot(n_up=3, n_down=1, dim=2, omega=1.0, coupling=1.0, beta=1.0, n_shells=2)
FREE_DOT = QuantumDot(
    n_up=3, n_down=1, dim=2, omega=1.0, coupling=0.0, beta=1.0, n_shells=2
)
FREE_DOT_ENERGY = 1.0 + 2.0 + 2.0 + 1.0  # sum of occupied omega (n_x + n_y + 1)


def small_backflow(system, box_length):
    """A cheap but visibly non-trivial backflow (init_scale 0.1)."""
    return make_backflow(
        n_up=system.n_up,
        n_down=system.n_down,
        dim=system.dim,
        box_length=box_length,
        depth=1,
        width_one=4,
        width_two=4,
        n_frequencies=1,
        init_scale=0.1,
    )


def gas_model(backflow=True):
    flow = small_backflow(GAS, GAS.box_length) if backflow else make_identity_flow()
    return make_ground_state_model(GAS, flow=flow)


def dot_model(backflow=True):
    flow = small_backflow(DOT, None) if backflow else make_identity_flow()
    return make_ground_state_model(DOT, flow=flow)


# The wrapper's reshaping is what these tests check; the backflow variants cost
# ~10 s of compilation each and run with -m slow.
FLOWS = [False, pytest.param(True, marks=pytest.mark.slow)]


def our_local_energies(model, flow_params, potential, samples, dim):
    """fermiflow's local energy of model.log_psi on NetKet samples (..., n * dim)."""
    local_energy = make_local_energy(model.log_psi, potential)
    x = samples.reshape(-1, samples.shape[-1] // dim, dim)
    batched = jax.jit(jax.vmap(local_energy, in_axes=(None, 0)))
    return batched(flow_params, x).reshape(samples.shape[:-1])


@pytest.mark.parametrize("backflow", FLOWS)
@pytest.mark.parametrize("make_model", [gas_model, dot_model])
def test_unbatched_call_matches_batched(key, make_model, backflow):
    model = make_model(backflow)
    x = jax.random.uniform(key, (4, 8 if make_model is dot_model else 6)) * 2.0
    variables = jax.jit(model.init)(jax.random.key(1), x)
    apply = jax.jit(model.apply)
    batched = apply(variables, x)
    assert batched.shape == (4,) and batched.dtype == jnp.complex128
    single = jnp.stack([apply(variables, xi) for xi in x])
    assert apply(variables, x[0]).shape == ()
    np.testing.assert_allclose(single, batched, rtol=1e-12)
    nested = apply(variables, x.reshape(2, 2, -1))
    np.testing.assert_allclose(nested, batched.reshape(2, 2), rtol=1e-12)


@pytest.mark.parametrize("backflow", FLOWS)
@pytest.mark.parametrize(("make_model", "i", "j"), [(gas_model, 0, 2), (dot_model, 0, 1)])
def test_exchanging_two_same_spin_electrons_flips_the_sign(key, make_model, i, j, backflow):
    model = make_model(backflow)
    n_coords = 8 if make_model is dot_model else 6
    x = jax.random.uniform(key, (3, n_coords)) * 2.0
    variables = jax.jit(model.init)(jax.random.key(2), x)
    swapped = x.reshape(3, -1, 2)
    swapped = swapped.at[:, [i, j]].set(swapped[:, [j, i]]).reshape(3, -1)
    apply = jax.jit(model.apply)
    value, value_swapped = apply(variables, x), apply(variables, swapped)
    # exp(log psi') = -exp(log psi): same modulus, phase shifted by pi.
    np.testing.assert_allclose(value_swapped.real, value.real, rtol=1e-10)
    np.testing.assert_allclose(
        jnp.exp(1j * (value_swapped.imag - value.imag)), -1.0, atol=1e-10
    )


def gas_vstate(model, seed, n_samples):
    hilbert = particle_hilbert(GAS)
    sampler = nk.sampler.MetropolisGaussian(
        hilbert, sigma=0.15 * GAS.box_length, n_chains=8, sweep_size=6
    )
    return nk.vqs.MCState(
        sampler,
        model,
        n_samples=n_samples,
        n_discard_per_chain=16,
        seed=seed,
        sampler_seed=seed + 1,
    )


@pytest.mark.parametrize("backflow", FLOWS)
def test_netket_energy_of_the_gas_matches_ours(seed, backflow):
    """Per sample: our Hamiltonian in NetKet, NetKet's own KineticEnergy, and
    fermiflow's local energy; then the sampled means and error bars."""
    model = gas_model(backflow)
    vstate = gas_vstate(model, seed, n_samples=256)
    hamiltonian = electron_gas_hamiltonian(GAS)
    own = nk.operator.KineticEnergy(vstate.hilbert, mass=1.0) + ewald_operator(GAS)
    theirs = vstate.local_estimators(hamiltonian).data
    theirs_own = vstate.local_estimators(own).data
    ewald = make_ewald_potential(dim=2, box_length=GAS.box_length)
    flow_params = vstate.parameters["flow"]
    ours = our_local_energies(model, flow_params, ewald, vstate.samples, 2)
    assert jnp.all(jnp.isfinite(ours)) and ours.shape == (8, 32)
    np.testing.assert_allclose(theirs, ours, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(theirs_own, ours, rtol=1e-10, atol=1e-10)

    netket_stats = vstate.expect(hamiltonian)
    our_stats = nk.stats.statistics(ours)
    # Not vacuous: the error bar is well below the kinetic scale E_F ~ 1 Hartree.
    assert netket_stats.error_of_mean < 0.1
    assert abs(netket_stats.mean - our_stats.mean) < 5 * our_stats.error_of_mean
    assert abs(netket_stats.mean - our_stats.mean) < 1e-10


def test_model_parameters_are_the_flow_parameters(key):
    """The module's params are {"flow": flow.init(...)} and it evaluates log_psi."""
    flow = small_backflow(GAS, GAS.box_length)
    model = make_ground_state_model(GAS, flow=flow)
    x = jax.random.uniform(key, (2, 6)) * GAS.box_length
    variables = jax.jit(model.init)(jax.random.key(3), x)
    expected = jax.jit(flow.init)(jax.random.key(3), x[0].reshape(3, 2))
    chex.assert_trees_all_equal_structs(variables["params"]["flow"], expected)
    assert jax.tree.leaves(variables["params"]["flow"])  # the backflow has weights
    direct = jax.vmap(model.log_psi, in_axes=(None, 0))
    np.testing.assert_allclose(
        jax.jit(model.apply)(variables, x),
        jax.jit(direct)(variables["params"]["flow"], x.reshape(2, 3, 2)),
        rtol=1e-12,
    )


def test_free_dot_ground_state_has_exact_zero_variance_energy(seed):
    """Identity flow, no interaction: E_loc = sum of occupied levels at every sample.

    Sampled with NetKet's Langevin rule, which calls the model on unbatched
    (n * dim,) configurations. The kinetic energy uses method="jvp_loop": folx's
    forward Laplacian rejects the lax.scan in the Hermite-function recurrence.
    """
    model = make_ground_state_model(FREE_DOT, flow=make_identity_flow())
    hilbert = particle_hilbert(FREE_DOT)
    sampler = nk.sampler.MetropolisAdjustedLangevin(hilbert, dt=0.1, n_chains=8)
    vstate = nk.vqs.MCState(
        sampler, model, n_samples=64, seed=seed, sampler_seed=seed + 1
    )
    hamiltonian = quantum_dot_hamiltonian(FREE_DOT, method="jvp_loop")
    ours = vstate.local_estimators(hamiltonian).data
    own = nk.operator.KineticEnergy(hilbert, mass=1.0) + quantum_dot_operator(FREE_DOT)
    theirs = vstate.local_estimators(own).data
    assert jnp.ptp(vstate.samples) > 0.5  # the chains moved
    np.testing.assert_allclose(ours, FREE_DOT_ENERGY, rtol=1e-10)
    np.testing.assert_allclose(theirs, FREE_DOT_ENERGY, rtol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_model_keeps_dtype(key, dtype):
    model = make_ground_state_model(DOT, flow=make_identity_flow())
    x = jax.random.normal(key, (2, 8), dtype)
    out = jax.jit(model.apply)(jax.jit(model.init)(jax.random.key(0), x), x)
    expected = jnp.complex64 if dtype == jnp.float32 else jnp.complex128
    assert out.dtype == expected and out.shape == (2,)


def test_bad_input_raises():
    open_shell = ElectronGas(
        n_up=2, n_down=0, dim=2, rs=1.0, theta=1.0, emax=4, twist=(0.25, 0.25)
    )
    with pytest.raises(ValueError, match="n_up=2"):
        make_ground_state_model(open_shell)
    with pytest.raises(ValueError, match="system"):
        make_ground_state_model("a gas")
    model = make_ground_state_model(DOT, flow=make_identity_flow())
    with pytest.raises(ValueError, match="shape"):
        model.init(jax.random.key(0), jnp.zeros((2, 7)))
    assert isinstance(model, SlaterFlowModel)

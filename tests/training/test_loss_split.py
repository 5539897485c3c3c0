"""The free-energy loss with the split (Hutchinson) kinetic energy, and SR gradients J^T r."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.kinetic_split import make_flow_kinetic_energy
from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.models.categorical import make_categorical_model
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import make_joint_state
from fermiflow.training.loss import make_free_energy_loss
from fermiflow.training.natural_gradient import jacobian_transpose_residual, make_sr_inputs

L, N, T, BATCH = 2.0, 2, 0.7, 16
K_SIGMA = 5


def _flow_apply(params, x):
    """A cheap nonlinear periodic pair flow: zeta_i = x_i +- a sin(2 pi (x_1 - x_2) / L).

    In (x_1 + x_2, x_1 - x_2) coordinates the Jacobian is 1 and 1 + 2 ds/dd, so
    log|det| = sum_k log|1 + 2 a_k (2 pi / L) cos(2 pi d_k / L)| (|a| < L / (4 pi)).
    """
    phase = 2 * jnp.pi * (x[0] - x[1]) / L
    shift = params["a"] * jnp.sin(phase)
    log_det = jnp.sum(jnp.log(jnp.abs(1 + 2 * params["a"] * (2 * jnp.pi / L) * jnp.cos(phase))))
    return x + jnp.stack([shift, -shift]), log_det


def _setup():
    """Two polarized electrons in a 2D box with a visibly nonlinear flow."""
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L, twist=(0.25, 0.1))
    orbitals = make_plane_wave_orbitals(spectrum, L)
    sets = np.array(list(itertools.combinations(range(6), N)))
    model = make_categorical_model(sets, param_dtype=jnp.float64)
    log_psi = make_log_psi(orbitals=orbitals, flow_apply=_flow_apply, n_up=N, n_down=0)
    slater = make_log_psi(orbitals=orbitals, flow_apply=make_identity_flow().apply,
                          n_up=N, n_down=0)
    kinetic = make_flow_kinetic_energy(lambda occ, z: slater({}, occ, z), _flow_apply)
    key_logits, key_occ, key_x = jax.random.split(jax.random.key(0), 3)
    params = JointParams(jax.random.normal(key_logits, (len(sets),)),
                         {"a": jnp.array([0.05, -0.03])})
    occ = jnp.asarray(sets)[jax.random.randint(key_occ, (BATCH,), 0, len(sets))]
    x = jax.random.uniform(key_x, (BATCH, N, 2)) * L
    potential = lambda x: 1.0 / jnp.linalg.norm(x[0] - x[1])  # noqa: E731
    return model, log_psi, kinetic, potential, params, make_joint_state(occ, x)


def test_split_loss_mean_matches_exact_loss():
    # Same walkers, 64 probe draws: the split local kinetic energy averages to the
    # exact (forward-Laplacian) one walker by walker and in the batch mean.
    model, log_psi, kinetic, potential, params, state = _setup()
    common = dict(temperature=T, clip_width=None, n_micro_batches=2)
    exact = make_free_energy_loss(model.log_prob, log_psi, potential, **common)
    split = make_free_energy_loss(model.log_prob, log_psi, potential,
                                  kinetic_energy=kinetic, **common)
    reference = jax.jit(exact.local_values)(params, state)
    keys = jax.random.split(jax.random.key(1), 64)
    split_values = jax.jit(split.local_values)
    values = jax.tree.map(lambda *a: np.stack(a), *[split_values(params, state, k) for k in keys])
    np.testing.assert_array_equal(values.potential[0], reference.potential)
    np.testing.assert_array_equal(values.log_p[0], reference.log_p)
    diff = np.real(np.asarray(values.kinetic) - np.asarray(reference.kinetic)[None])
    # The probes matter (the flow is not linear) but are a small noise.
    scale = float(np.mean(np.abs(np.real(reference.kinetic))))
    assert 1e-4 * scale < diff.std() < 0.5 * scale
    per_walker_err = diff.std(0) / np.sqrt(diff.shape[0] - 1)
    assert np.all(np.abs(diff.mean(0)) < K_SIGMA * per_walker_err + 1e-12)
    # The batch mean over walkers, one value per probe draw: unbiased.
    err = diff.mean(1).std() / np.sqrt(diff.shape[0] - 1)
    assert abs(diff.mean()) < K_SIGMA * err and err < 0.05 * scale


def test_split_loss_needs_a_key():
    model, log_psi, kinetic, potential, params, state = _setup()
    loss = make_free_energy_loss(model.log_prob, log_psi, potential, temperature=T,
                                 kinetic_energy=kinetic)
    with pytest.raises(ValueError, match="key"):
        loss.local_values(params, state)


def test_sr_residual_gradient_equals_surrogate_gradient():
    # train.py uses J^T r of the SR inputs as the gradient when both networks use SR;
    # it must equal the surrogate gradient of the loss (the same clipped weights), here
    # with the split kinetic energy (the weights hold its probe noise).
    model, log_psi, kinetic, potential, params, state = _setup()
    loss = make_free_energy_loss(model.log_prob, log_psi, potential, temperature=T,
                                 kinetic_energy=kinetic)
    sr = make_sr_inputs(model.log_prob, log_psi, temperature=T)
    (_, values), grads = jax.jit(loss.value_and_grad)(params, state, jax.random.key(2))
    jacobians, residuals = jax.jit(sr)(params, state, values)
    from_sr = JointParams(*map(jacobian_transpose_residual, jacobians, residuals))
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(from_sr), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12 * float(jnp.max(jnp.abs(a))))

"""Stochastic reconfiguration: the two solves agree, and its inputs match the loss."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from blackjax.mcmc.random_walk import RWState

from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import enumerate_sets, make_categorical_model
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import JointState
from fermiflow.sampling.metropolis import MetropolisState
from fermiflow.training.loss import make_free_energy_loss
from fermiflow.training.natural_gradient import make_sr_inputs, natural_gradient


def _random_problem(key, n_rows, n_params):
    key_j, key_r = jax.random.split(key)
    rows = jax.random.normal(key_j, (n_rows, n_params))
    residual = jax.random.normal(key_r, (n_rows,))
    jacobian = {"a": rows[:, :3], "b": rows[:, 3:].reshape(n_rows, -1, 1)}
    grads = jax.tree.map(lambda j: jnp.einsum("m...,m->...", j, residual), jacobian)
    return jacobian, residual, grads


@pytest.mark.parametrize(("n_rows", "n_params"), [(8, 21), (30, 11)])
@pytest.mark.parametrize("damping", [1e-6, 1e-2, 1.0])
def test_parameter_and_sample_space_solves_agree(key, n_rows, n_params, damping):
    jacobian, residual, grads = _random_problem(key, n_rows, n_params)
    updates = {}
    for solver in ("parameter", "sample"):
        opt = natural_gradient(0.3, damping=damping, solver=solver)
        updates[solver], _ = opt.update(
            grads, opt.init(grads), jacobian=jacobian, residual=residual
        )
    rows = np.concatenate([np.asarray(jacobian["a"]), np.asarray(jacobian["b"])[..., 0]], 1)
    fisher = rows.T @ rows + damping * np.eye(n_params)
    gram = rows @ rows.T + damping * np.eye(n_rows)
    # Round-off of a Cholesky solve is ~ eps * cond; the rank-deficient side (J J^T when
    # M > P, S when P > M) is conditioned like |J|^2 / lambda. Allow 100 eps cond.
    cond = max(np.linalg.cond(fisher), np.linalg.cond(gram))
    rtol = max(1e-12, 100 * np.finfo(np.float64).eps * cond)
    for name in grads:
        np.testing.assert_allclose(
            updates["sample"][name], updates["parameter"][name], rtol=rtol, atol=1e-14
        )
    # And both solve (S + lambda) delta = g.
    delta = np.linalg.solve(fisher, rows.T @ np.asarray(residual))
    np.testing.assert_allclose(-updates["parameter"]["a"] / 0.3, delta[:3], rtol=rtol)
    if damping >= 1e-2:  # well conditioned on both sides: agreement to round-off
        assert rtol < 1e-9


def test_trust_region_caps_the_fisher_norm(key):
    jacobian, residual, grads = _random_problem(key, 10, 6)
    opt = natural_gradient(1.0, damping=1e-3, max_norm=1e-2)
    updates, _ = opt.update(grads, opt.init(grads), jacobian=jacobian, residual=residual)
    rows = jnp.concatenate([jacobian["a"], jacobian["b"][..., 0]], 1)
    step = jnp.concatenate([updates["a"], updates["b"][:, 0]])
    np.testing.assert_allclose(jnp.linalg.norm(rows @ step), 1e-2, rtol=1e-10)


def test_schedule_uses_the_step_count(key):
    jacobian, residual, grads = _random_problem(key, 10, 6)
    opt = natural_gradient(optax.exponential_decay(1.0, 1, 0.5), solver="parameter")
    state = opt.init(grads)
    first, state = opt.update(grads, state, jacobian=jacobian)
    second, _ = opt.update(grads, state, jacobian=jacobian)
    np.testing.assert_allclose(second["a"], 0.5 * first["a"], rtol=1e-12)


def test_sr_inputs_reproduce_the_loss_gradients(key):
    # J^T r must be the loss gradient of each network, on the same samples.
    box, n, batch, temperature = 2.0, 2, 16, 0.5
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=box, twist=(0.25, 0.1))
    model = make_categorical_model(enumerate_sets(5, n), param_dtype=jnp.float64)
    flow = make_backflow(n_up=n, n_down=0, dim=2, box_length=box)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, box), flow_apply=flow.apply,
        n_up=n, n_down=0,
    )
    key_p, key_f, key_k, key_x = jax.random.split(key, 4)
    params = JointParams(
        jax.random.normal(key_p, (10,)), flow.init(key_f, jnp.zeros((n, 2)))
    )
    occ, _ = model.sample(key_k, params.occupation, batch)
    x = jax.random.uniform(key_x, (batch, n, 2)) * box
    walkers = MetropolisState(RWState(x, jnp.zeros(batch)), jnp.asarray(0.1))
    state = JointState(occ, jnp.zeros(batch), walkers)
    potential = lambda y: jnp.sum(jnp.cos(2 * jnp.pi * y / box))  # noqa: E731
    loss = make_free_energy_loss(model.log_prob, log_psi, potential, temperature=temperature)
    (_, values), grads = jax.jit(loss.value_and_grad)(params, state)
    sr_inputs = make_sr_inputs(model.log_prob, log_psi, temperature=temperature)
    jacobians, residuals = jax.jit(sr_inputs)(params, state, values)
    for name in ("occupation", "wavefunction"):
        jac, res, grad = getattr(jacobians, name), getattr(residuals, name), getattr(grads, name)
        rebuilt = jax.tree.map(lambda j, r=res: jnp.einsum("m...,m->...", j, r), jac)
        for a, b in zip(jax.tree.leaves(rebuilt), jax.tree.leaves(grad), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert jax.tree.leaves(jacobians.wavefunction)[0].shape[0] == 2 * batch
    # Micro-batches change only the order of the per-sample work, not the rows.
    chunked = make_sr_inputs(model.log_prob, log_psi, temperature=temperature,
                             n_micro_batches=4)
    chex.assert_trees_all_close(jax.jit(chunked)(params, state, values),
                                (jacobians, residuals), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="divisible"):
        make_sr_inputs(model.log_prob, log_psi, temperature=temperature,
                       n_micro_batches=3)(params, state, values)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="damping"):
        natural_gradient(0.1, damping=0.0)
    with pytest.raises(ValueError, match="max_norm"):
        natural_gradient(0.1, max_norm=-1.0)
    with pytest.raises(ValueError, match="solver"):
        natural_gradient(0.1, solver="cg")
    with pytest.raises(ValueError, match="n_micro_batches"):
        make_sr_inputs(lambda p, o: o, lambda p, o, x: x, temperature=1.0, n_micro_batches=0)

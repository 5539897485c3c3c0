"""Training step: convergence to the exact ideal free energy, NaN guard, one trace."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp

from fermiflow.models.density_matrix import make_quantum_problem, occupation_energies
from fermiflow.run.build import build_pieces
from fermiflow.run.config import load_config
from fermiflow.training.loss import make_free_energy_loss
from fermiflow.training.natural_gradient import make_sr_inputs, natural_gradient
from fermiflow.training.step import make_evaluate, make_train_step

BATCH = 128


DOT = ["system.n_up=2", "system.n_down=0", "system.coupling=0.0", "system.beta=2.0",
       "system.n_shells=3", "model.max_excitation=6.0", f"sampler.batch={BATCH}",
       "sampler.n_sweeps=5", "sampler.n_extra_sweeps=5"]


def _pieces(flow="identity"):
    """The ideal 2-electron dot, built the way every run builds it (build_pieces)."""
    return build_pieces(load_config(None, [*DOT, f"model.flow={flow}"]))


def _trainer(pieces, potential=None, flow_optimizer=None):
    problem, loss = pieces.problem, pieces.loss
    if potential is not None:
        loss = make_free_energy_loss(problem.occupation_model.log_prob, problem.log_psi,
                                     potential, temperature=problem.temperature)
    sr = make_sr_inputs(
        problem.occupation_model.log_prob, problem.log_psi, temperature=problem.temperature,
        wavefunction=False,
    )
    trainer = make_train_step(
        sampler=pieces.sampler, loss=loss,
        occupation_optimizer=natural_gradient(1.0, damping=1e-3, max_norm=1.0),
        wavefunction_optimizer=flow_optimizer, sr_inputs=sr, occupation_sr=True,
    )
    return pieces.sampler, loss, trainer


def _exact_free_energy(problem):
    energies = occupation_energies(problem.mode_energies, problem.occupation_states)
    beta = 1.0 / problem.temperature
    return -logsumexp(-beta * energies) / beta


@pytest.mark.slow  # ~35 s of training; the quick bench tier checks a dot against exact
def test_ideal_dot_converges_to_exact_free_energy(key):
    pieces = _pieces()
    problem = pieces.problem
    sampler, loss, trainer = _trainer(pieces)
    key_params, key_init, key_eval = jax.random.split(key, 3)
    state = trainer.init(key_init, problem.init_params(key_params), 2)
    step = jax.jit(trainer.step)
    for _ in range(40):
        state, metrics = step(state)
        assert bool(metrics.update_applied)
    evaluate = jax.jit(make_evaluate(sampler, loss), static_argnums=3)
    final, values, _ = evaluate(key_eval, state.sampler_state, state.params, 8)
    energy = jnp.real(values.kinetic + values.potential)
    free = np.asarray(problem.temperature * values.log_p + energy)
    # Walkers' K are exact independent draws each step; x does not enter (ideal,
    # identity flow: E_loc = E0(K) exactly), so the samples are independent.
    mean, err = free.mean(), free.std(ddof=1) / np.sqrt(free.size)
    exact = _exact_free_energy(problem)
    assert err < 2e-3, f"too noisy to test: {err:.2e}"
    assert abs(mean - exact) < 5 * err + 1e-12, (mean, exact, err)
    # Local energies of the identity flow are the ideal energies, exactly.
    energies = occupation_energies(problem.mode_energies, np.asarray(final.occ))
    np.testing.assert_allclose(
        np.asarray(values.kinetic[-1].real + values.potential[-1]), energies, rtol=1e-10
    )


def test_guard_skips_updates_with_nonfinite_local_energies(key):
    pieces = _pieces()
    problem = pieces.problem

    def broken(x):  # NaN for walkers with x_0 > 0: about half of them
        return jnp.where(x[0, 0] > 0, jnp.nan, 0.0) + problem.potential(x)

    _, _, trainer = _trainer(pieces, potential=broken)
    params = problem.init_params(key)
    state = trainer.init(jax.random.key(1), params, 0)
    new_state, metrics = jax.jit(trainer.step)(state)
    assert not bool(metrics.update_applied)
    assert int(metrics.n_nonfinite_local) > 0
    chex.assert_trees_all_equal(new_state.params, state.params)
    chex.assert_trees_all_equal(new_state.opt_state, state.opt_state)
    assert int(new_state.step) == 1


@pytest.mark.slow  # compiles the backflow step, about 35 s
def test_step_is_traced_once(key):
    pieces = _pieces(flow="backflow")
    problem = pieces.problem
    _, _, trainer = _trainer(pieces, flow_optimizer=optax.adam(1e-3))
    state = trainer.init(key, problem.init_params(key), 0)
    step = jax.jit(chex.assert_max_traces(trainer.step, n=1))
    for _ in range(3):
        state, metrics = step(state)
    assert bool(metrics.update_applied) and int(state.step) == 3


def test_validation():
    pieces = _pieces()
    problem = pieces.problem
    sampler, loss = pieces.sampler, pieces.loss
    with pytest.raises(ValueError, match="occupation_sr=True needs sr_inputs"):
        make_train_step(
            sampler=sampler, loss=loss, occupation_optimizer=optax.adam(1e-3),
            wavefunction_optimizer=None, occupation_sr=True,
        )
    with pytest.raises(ValueError, match="wavefunction_sr=True needs an optimizer"):
        make_train_step(
            sampler=sampler, loss=loss, occupation_optimizer=None,
            wavefunction_optimizer=None, wavefunction_sr=True,
        )
    with pytest.raises(ValueError, match="max_excitation"):
        make_quantum_problem(problem.system, occupation="categorical")
    with pytest.raises(ValueError, match="occupation must be one of"):
        make_quantum_problem(problem.system, occupation="gibbs")

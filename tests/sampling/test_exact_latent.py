"""Exact latent joint sampler: x = T^{-1}(zeta), zeta from the DPP, vs the Metropolis sampler."""

import functools
import math
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import make_categorical_model
from fermiflow.models.density_matrix import JointParams, make_quantum_problem
from fermiflow.observables import estimate
from fermiflow.sampling.dpp import make_plane_wave_dpp_sampler
from fermiflow.sampling.exact_latent import ExactLatentInfo, make_exact_latent_joint_sampler
from fermiflow.sampling.joint import make_joint_sampler
from fermiflow.sampling.latent import LatentState
from fermiflow.training.loss import make_free_energy_loss
from fermiflow.training.step import make_train_step

K_SIGMA = 5.0
GAS = ElectronGas(n_up=5, n_down=0, dim=2, rs=2.0, theta=0.5, emax=9, twist=(0.25, 0.25))
L_BOX = GAS.box_length


@functools.cache
def _problem(flow: str):
    return make_quantum_problem(GAS, flow=flow)


def _dpp():
    return make_plane_wave_dpp_sampler(
        modes_wavevectors=GAS.spectrum.wavevectors, box_length=L_BOX, n_up=5, n_down=0
    )


# A cheap p(K) for the fast tests (the transformer is slow to compile): three sets.
SETS = make_categorical_model([[0, 1, 2, 3, 4], [0, 1, 2, 3, 5], [0, 1, 2, 4, 6]])


def _exact(flow_apply, batch: int, map_batch_size: int | None = 1, occupation_model=SETS):
    return make_exact_latent_joint_sampler(
        occupation_model,
        _dpp(),
        flow_apply,
        batch=batch,
        n=5,
        dim=2,
        box_length=L_BOX,
        map_batch_size=map_batch_size,
    )


def _zeros_like_state(sampler, params):
    """A state of the right structure without compiling ``init`` (sample reads only occ)."""
    shapes = jax.eval_shape(sampler.init, jax.random.key(0), params)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


@functools.cache
def _backflow():
    # Certified (the default in a box) and small, so that its inverse compiles quickly.
    flow = make_backflow(
        n_up=5,
        n_down=0,
        dim=2,
        box_length=L_BOX,
        init_scale=0.05,
        depth=1,
        width_one=8,
        width_two=8,
        n_radial=0,
    )
    x0 = jnp.arange(10.0).reshape(5, 2) * (L_BOX / 10)
    return flow, jax.jit(flow.init)(jax.random.key(7), x0)


def _analytic_flow():
    """T(x) = x + a sin(2 pi x / L) per coordinate: periodic, |T' - 1| <= 0.1."""
    a = 0.1 * L_BOX / (2 * math.pi)

    def apply(params, x):
        slope = 1 + 0.1 * jnp.cos(2 * math.pi * x / L_BOX)
        return x + params * a * jnp.sin(2 * math.pi * x / L_BOX), jnp.sum(jnp.log(slope))

    return types.SimpleNamespace(apply=apply), jnp.asarray(1.0)


@pytest.mark.parametrize(
    "flow_kind", ["analytic", pytest.param("certified_backflow", marks=pytest.mark.slow)]
)
def test_flow_is_inverted_to_tolerance(flow_kind):
    flow, flow_params = _analytic_flow() if flow_kind == "analytic" else _backflow()
    problem = _problem("identity")
    params = JointParams(SETS.init(jax.random.key(0)), flow_params)
    sampler = _exact(flow.apply, batch=8)
    sample = jax.jit(sampler.sample)
    initial, _ = sample(jax.random.key(1), _zeros_like_state(sampler, params), params)
    state, info = sample(jax.random.key(2), initial, params)
    assert isinstance(state, LatentState) and isinstance(info, ExactLatentInfo)
    x, zeta = state.walkers.chain.position, state.latent.chain.position
    chex.assert_shape((x, zeta, state.occ), ((8, 5, 2), (8, 5, 2), (8, 5)))
    assert x.dtype == zeta.dtype == jnp.float64
    # One jitted program for the checks: eager vmaps of the flow compile op by op.
    bare = jax.vmap(lambda occ, z: 2 * jnp.real(problem.log_psi(None, occ, z)))
    image, log_bare = jax.jit(
        lambda x, occ, zeta: (jax.vmap(lambda y: flow.apply(flow_params, y)[0])(x), bare(occ, zeta))
    )(x, state.occ, zeta)
    mismatch = image - zeta
    mismatch = mismatch - L_BOX * jnp.round(mismatch / L_BOX)
    assert float(jnp.max(jnp.abs(mismatch))) < 1e-10
    assert bool(jnp.all((x >= 0) & (x < L_BOX)))
    assert float(jnp.max(jnp.abs(x - zeta))) > 1e-3  # the flow really moved x
    assert int(info.n_inversion_failed) == 0 and float(info.inversion_error) < 1e-10
    assert int(info.n_nonfinite) == 0
    chex.assert_trees_all_equal(info.acceptance, jnp.ones(8))
    assert float(info.width) == 0.0 and 0 <= int(info.n_new_occ) <= 8
    assert float(info.n_proposals) >= 5
    # Latent log density: log|D_K(zeta)|^2 = 2 Re log Psi_K of the identity flow.
    chex.assert_trees_all_close(state.latent.chain.logdensity, log_bare, rtol=1e-10)
    assert not bool(jnp.all(initial.latent.chain.position == zeta))  # fresh draws


@pytest.mark.slow
def test_vmap_and_chunked_map_give_the_same_samples():
    # Every walker draws from its own key: the batching strategy must not matter.
    params = JointParams(SETS.init(jax.random.key(0)), None)
    apply = _problem("identity").flow.apply
    states = [
        jax.jit(_exact(apply, batch=6, map_batch_size=size).init)(jax.random.key(3), params)
        for size in (None, 1, 4)
    ]
    for state in states[1:]:
        chex.assert_trees_all_equal(state.occ, states[0].occ)
        chex.assert_trees_all_close(
            state.walkers.chain.position, states[0].walkers.chain.position, atol=1e-12
        )


def test_bad_arguments_raise():
    make = functools.partial(
        make_exact_latent_joint_sampler, SETS, _dpp(), _problem("identity").flow.apply
    )
    with pytest.raises(ValueError, match="batch"):
        make(batch=0, n=5, dim=2, box_length=L_BOX)
    with pytest.raises(ValueError, match="map_batch_size"):
        make(batch=4, n=5, dim=2, box_length=L_BOX, map_batch_size=0)
    with pytest.raises(ValueError, match="n_fixed_point \\+ n_newton"):
        make(batch=4, n=5, dim=2, box_length=L_BOX, n_fixed_point=0, n_newton=0)
    with pytest.raises(ValueError, match="expected"):
        make(batch=4, n=5, dim=3, box_length=L_BOX)


def _potential_trace(sampler, params, n_steps: int, seed: int) -> np.ndarray:
    """(n_steps, batch) Ewald potential energies of the walkers after each sample call."""
    potential = jax.vmap(_problem("identity").potential)

    def run(key):
        key_init, key_therm, key_run = jax.random.split(key, 3)
        state = sampler.init(key_init, params)
        state, _ = sampler.thermalize(key_therm, state, params, 30)

        def body(state, key):
            state, _ = sampler.sample(key, state, params)
            return state, potential(state.walkers.chain.position)

        return jax.lax.scan(body, state, jax.random.split(key_run, n_steps))[1]

    return np.asarray(jax.jit(run)(jax.random.key(seed)))


@pytest.mark.slow
def test_identity_flow_potential_matches_metropolis():
    problem = _problem("identity")
    params = problem.init_params(jax.random.key(0))
    exact_sampler = _exact(problem.flow.apply, batch=256, occupation_model=problem.occupation_model)
    exact = _potential_trace(exact_sampler, params, 80, seed=1)
    # p(K) is spread over many sets, so K changes at most steps: without extra sweeps
    # the Metropolis x lags behind its new K (with n_extra_sweeps=0 its <V> was
    # -1.6706(35) vs -1.6941(36) here, 4.7 sigma, when this test was written).
    metropolis = make_joint_sampler(
        problem.occupation_model,
        problem.log_psi,
        batch=256,
        n=5,
        dim=2,
        box_length=L_BOX,
        n_sweeps=5,
        n_extra_sweeps=30,
    )
    chain = _potential_trace(metropolis, params, 200, seed=2)
    ours = estimate(exact.T)  # i.i.d.: the blocking error is the naive one
    theirs = estimate(chain.T)
    sigma = math.hypot(ours.stderr, theirs.stderr)
    naive = exact.std() / math.sqrt(exact.size)
    assert abs(ours.stderr / naive - 1) < 0.2, (ours.stderr, naive)  # no autocorrelation
    assert sigma < 0.01 * abs(theirs.mean), f"too noisy to test: {sigma:.2e}"
    assert abs(ours.mean - theirs.mean) < K_SIGMA * sigma, (ours.mean, theirs.mean, sigma)


@pytest.mark.slow
def test_train_step_runs_unchanged_with_the_exact_sampler():
    problem = _problem("backflow")
    sampler = make_exact_latent_joint_sampler(
        problem.occupation_model,
        _dpp(),
        problem.flow.apply,
        batch=8,
        n=5,
        dim=2,
        box_length=L_BOX,
        map_batch_size=1,
    )
    loss = make_free_energy_loss(
        problem.occupation_model.log_prob,
        problem.log_psi,
        problem.potential,
        temperature=problem.temperature,
    )
    trainer = make_train_step(
        sampler=sampler,
        loss=loss,
        occupation_optimizer=optax.adam(1e-3),
        wavefunction_optimizer=optax.adam(1e-3),
    )
    state = trainer.init(jax.random.key(0), problem.init_params(jax.random.key(1)), 1)
    state, metrics = jax.jit(trainer.step)(state)
    assert bool(metrics.update_applied) and bool(jnp.isfinite(metrics.estimates.free_energy))
    assert float(metrics.acceptance) == 1.0
    assert int(state.step) == 1 and isinstance(state.sampler_state, LatentState)


@pytest.mark.slow
def test_trap_backflow_is_inverted_to_tolerance():
    from fermiflow.hamiltonians.spectrum import oscillator_spectrum
    from fermiflow.sampling.dpp_trap import make_oscillator_dpp_sampler

    spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
    dpp = make_oscillator_dpp_sampler(
        quantum_numbers=spectrum.quantum_numbers, omega=1.0, n_up=2, n_down=1
    )
    # Free space: uncertified; 0.1 (1 + 2 (N - 1)) < 1 keeps it a proper bijection.
    flow = make_backflow(n_up=2, n_down=1, dim=2, box_length=None, init_scale=0.1)
    flow_params = jax.jit(flow.init)(jax.random.key(4), jnp.arange(6.0).reshape(3, 2) * 0.3)
    model = make_categorical_model([[0, 1, 0], [0, 2, 1], [1, 2, 0]], n_up=2)
    sampler = make_exact_latent_joint_sampler(
        model, dpp, flow.apply, batch=8, n=3, dim=2, map_batch_size=1
    )
    params = JointParams(model.init(jax.random.key(0)), flow_params)
    state, info = jax.jit(sampler.sample)(
        jax.random.key(1), _zeros_like_state(sampler, params), params
    )
    x, zeta = state.walkers.chain.position, state.latent.chain.position
    image = jax.jit(jax.vmap(lambda y: flow.apply(flow_params, y)[0]))(x)
    assert float(jnp.max(jnp.abs(image - zeta))) < 1e-10
    assert float(jnp.max(jnp.abs(x - zeta))) > 1e-3
    assert int(info.n_inversion_failed) == 0 and int(info.n_nonfinite) == 0

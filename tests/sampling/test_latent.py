"""Latent-space joint sampler: x = T^{-1}(zeta), zeta ~ |D_K|^2, vs the x-space sampler."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import make_categorical_model
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.observables import estimate
from fermiflow.sampling.joint import make_joint_sampler
from fermiflow.sampling.latent import LatentInfo, LatentState, make_latent_joint_sampler
from fermiflow.training.loss import make_free_energy_loss
from fermiflow.training.step import make_train_step

N, BATCH, N_STEPS, N_BURN = 3, 256, 120, 20
L_BOX = float(np.sqrt(np.pi * N))  # rs = 1 in 2D
K_SIGMA = 5.0
# Box: this flow and the one with negated scales have det dT/dx >= 0.25 on 1e5 uniform
# points, and flow key 4 moves the pair correlation by many sigma of these runs
# (asserted below). Trap: the flow is proper (0.1 * (1 + 2 (N - 1)) < 1), det > 0.
INIT_SCALE = {"box": 0.14, "trap": 0.1}
# (n_sweeps, n_extra_sweeps): |x|^2 in the trap decorrelates slowly, so more sweeps.
SWEEPS = {"box": (3, 2), "trap": (8, 4)}
FLOW_KEY = 4


@functools.cache
def _system(geometry: str):
    """Return (model, log_psi, log_slater_k, flow, params, box_length) of N=3 in 2D."""
    if geometry == "box":
        box_length = L_BOX
        spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L_BOX, twist=(0.25, 0.25))
        orbitals = make_plane_wave_orbitals(spectrum, L_BOX)
        sets = [[0, 1, 2], [0, 1, 3], [0, 2, 4]]
    else:
        box_length = None
        spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
        orbitals = make_oscillator_orbitals(spectrum, omega=1.0)
        sets = [[0, 1, 2], [0, 1, 3], [1, 2, 4]]
    # Uncapped (certify=False, no radial term): the scales below were calibrated for
    # it; the certified cap is tested in tests/models/test_certified_backflow.py.
    flow = make_backflow(
        n_up=N, n_down=0, dim=2, box_length=box_length, init_scale=INIT_SCALE[geometry],
        certify=False, n_radial=0,
    )
    log_psi = make_log_psi(orbitals=orbitals, flow_apply=flow.apply, n_up=N, n_down=0)
    bare = make_log_psi(orbitals=orbitals, flow_apply=make_identity_flow().apply, n_up=N, n_down=0)
    model = make_categorical_model(sets, param_dtype=jnp.float64)
    logits = jnp.asarray([0.3, -0.2, 0.0])  # a non-uniform p(K)
    params = JointParams(logits, flow.init(jax.random.key(FLOW_KEY), jnp.zeros((N, 2))))
    return model, log_psi, lambda occ, zeta: bare(None, occ, zeta), flow, params, box_length


def _samplers(geometry: str, batch: int = BATCH, **latent_options):
    model, log_psi, log_slater_k, flow, _, box_length = _system(geometry)
    n_sweeps, n_extra_sweeps = SWEEPS[geometry]
    options = dict(
        batch=batch,
        n=N,
        dim=2,
        box_length=box_length,
        n_sweeps=n_sweeps,
        n_extra_sweeps=n_extra_sweeps,
    )
    latent = make_latent_joint_sampler(model, log_slater_k, flow.apply, **options, **latent_options)
    return latent, make_joint_sampler(model, log_psi, **options)


def _moments(x: jax.Array, box_length) -> jax.Array:
    """(batch, n, dim) -> (2, batch): two pair/radial moments of each walker."""
    r = x[:, :, None] - x[:, None]
    upper = np.triu_indices(N, 1)
    if box_length is None:
        distance = jnp.sqrt(jnp.sum(r**2, -1)[:, upper[0], upper[1]])
        return jnp.stack([jnp.sum(x**2, (1, 2)), jnp.mean(distance, 1)])
    # (pi / L)^2 times the smooth periodic squared distance, and a contact moment.
    s2 = jnp.sum(jnp.sin(jnp.pi * r / box_length) ** 2, -1)[:, upper[0], upper[1]]
    return jnp.stack([jnp.mean(s2, 1), jnp.mean(jnp.exp(-4 * s2), 1)])


def _run(sampler, params_of_step, box_length, seed: int):
    """N_BURN + N_STEPS samples from a fresh state; moments of x and zeta after N_BURN.

    Burn-in by discarding steps (not ``thermalize``) so that one program is compiled.
    """

    def body(state, inputs):
        key, step = inputs
        state, info = sampler.sample(key, state, params_of_step(step))
        zeta = getattr(state, "latent", state.walkers).chain.position
        return state, (
            _moments(state.walkers.chain.position, box_length),
            _moments(zeta, box_length),
            info,
        )

    def run(key):
        key_init, key_run = jax.random.split(key)
        state = sampler.init(key_init, params_of_step(0))
        steps = jnp.arange(N_BURN + N_STEPS)
        keys = jax.random.split(key_run, N_BURN + N_STEPS)
        return jax.lax.scan(body, state, (keys, steps))

    state, traces = jax.jit(run)(jax.random.key(seed))
    moments_x, moments_zeta, info = jax.tree.map(lambda a: a[N_BURN:], traces)
    return np.asarray(moments_x), np.asarray(moments_zeta), info, state


def _estimates(trace: np.ndarray, every: slice = slice(None)):
    """(steps, batch) moments -> Estimate over walkers (chains) and the given steps."""
    return estimate(trace[every].T, method="ess")


def _assert_agree(a, b, *, max_stderr):
    sigma = float(np.hypot(a.error, b.error))
    assert sigma < max_stderr, f"too noisy to test: {sigma:.2e}"
    assert abs(a.value - b.value) < K_SIGMA * sigma, (a.value, b.value, sigma)


@functools.cache
def _reference(geometry: str):
    """x-space sampler moments at the fixed params (the reference law of x)."""
    _, x_space = _samplers(geometry)
    params, box_length = _system(geometry)[4], _system(geometry)[5]
    return _run(x_space, lambda step: params, box_length, seed=10)[0]


def _assert_inverse(flow, params: JointParams, state: LatentState, box_length):
    x, zeta = state.walkers.chain.position, state.latent.chain.position
    image = jax.jit(jax.vmap(lambda y: flow.apply(params.wavefunction, y)[0]))(x)
    mismatch = image - zeta
    if box_length is not None:
        assert bool(jnp.all((x >= 0) & (x < box_length)))
        mismatch = mismatch - box_length * jnp.round(mismatch / box_length)
    assert float(jnp.max(jnp.abs(mismatch))) < 1e-10
    assert float(jnp.max(jnp.abs(x - zeta))) > 1e-3  # the flow really moved x


_POWER_LOG: list = []  # (moment, deviation in sigma) of the power checks, for reports


def _negated_scales(params: JointParams) -> JointParams:
    """The same flow with its residual reversed: a genuinely different T."""
    flow_params = jax.tree_util.tree_map_with_path(
        lambda path, a: -a if "scale" in jax.tree_util.keystr(path) else a,
        params.wavefunction,
    )
    return params._replace(wavefunction=flow_params)


@pytest.mark.slow  # long chains, about 40 s
def test_box_latent_matches_x_space_when_params_change_every_step():
    # Params alternate A, B, A, B, ... at every sample call: no re-thermalization,
    # yet the x of every B step must follow |Psi_K^B|^2 exactly.
    latent, _ = _samplers("box")
    params_b = _system("box")[4]
    params_a = _negated_scales(params_b)

    def params_of_step(step):
        use_b = step % 2 == 1
        return jax.tree.map(lambda a, b: jnp.where(use_b, b, a), params_a, params_b)

    moments_x, moments_zeta, info, state = _run(latent, params_of_step, L_BOX, seed=0)
    reference = _reference("box")
    assert int(jnp.sum(info.n_inversion_failed)) == 0
    assert float(jnp.max(info.inversion_error)) < 1e-10
    assert int(jnp.sum(info.n_nonfinite)) == 0
    # Independent check of the last step (params B): x in [0, L), T(x) = zeta mod L.
    _assert_inverse(_system("box")[3], params_b, state, L_BOX)
    for i in range(2):
        at_b = _estimates(moments_x[:, i], slice(1, None, 2))
        at_a = _estimates(moments_x[:, i], slice(0, None, 2))
        expected = _estimates(reference[:, i])
        _assert_agree(at_b, expected, max_stderr=0.02 * abs(expected.value))
        # Power: a sampler that returned zeta (no flow), or x at the params of the
        # previous step (A), would fail the check above by > 2 K sigma.
        for wrong in (_estimates(moments_zeta[:, i], slice(1, None, 2)), at_a):
            sigma = np.hypot(wrong.error, expected.error)
            _POWER_LOG.append(("box", i, (wrong.value - expected.value) / sigma))
            assert abs(wrong.value - expected.value) > 2 * K_SIGMA * sigma, (i, wrong.value, sigma)


@pytest.mark.slow
def test_box_latent_matches_x_space_at_fixed_params():
    latent, _ = _samplers("box")
    params = _system("box")[4]
    moments_x, _, info, _ = _run(latent, lambda step: params, L_BOX, seed=1)
    assert int(jnp.sum(info.n_inversion_failed)) == 0
    reference = _reference("box")
    for i in range(2):
        _assert_agree(_estimates(moments_x[:, i]), _estimates(reference[:, i]), max_stderr=0.02)


@pytest.mark.slow
def test_trap_latent_matches_x_space():
    latent, _ = _samplers("trap")
    params = _system("trap")[4]
    moments_x, moments_zeta, info, _ = _run(latent, lambda step: params, None, seed=2)
    assert int(jnp.sum(info.n_inversion_failed)) == 0
    assert float(jnp.max(info.inversion_error)) < 1e-10
    reference = _reference("trap")
    for i in range(2):
        ours, theirs = _estimates(moments_x[:, i]), _estimates(reference[:, i])
        _assert_agree(ours, theirs, max_stderr=0.02 * abs(theirs.value))
        # Power: a sampler that returned zeta (no flow) would fail by > 2 K sigma.
        zeta = _estimates(moments_zeta[:, i])
        sigma = np.hypot(zeta.error, theirs.error)
        _POWER_LOG.append(("trap", i, (zeta.value - theirs.value) / sigma))
        assert abs(zeta.value - theirs.value) > 2 * K_SIGMA * sigma, (i, zeta.value, sigma)


@pytest.mark.slow
@pytest.mark.parametrize("geometry", ["trap", "box"])
def test_thermalize_and_sample_invert_exactly_and_deterministically(geometry):
    latent, _ = _samplers(geometry, batch=16)
    _, _, _, flow, params, box_length = _system(geometry)

    def run(key_sample):
        state = latent.init(jax.random.key(0), params)
        state, info_therm = latent.thermalize(jax.random.key(1), state, params, 3)
        return state, info_therm, latent.sample(key_sample, state, params)

    run = jax.jit(run)
    thermalized, info_therm, (a, info) = run(jax.random.key(2))
    b = run(jax.random.key(2))[2][0]
    assert isinstance(a, LatentState) and isinstance(info, LatentInfo)
    x = a.walkers.chain.position
    assert x.shape == a.latent.chain.position.shape == (16, N, 2) and x.dtype == jnp.float64
    assert info.acceptance.shape == info_therm.acceptance.shape == (16,)
    assert bool(jnp.all(x == b.walkers.chain.position)) and bool(jnp.all(a.occ == b.occ))
    for state, diagnostics in ((thermalized, info_therm), (a, info)):
        _assert_inverse(flow, params, state, box_length)
        assert int(diagnostics.n_inversion_failed) == 0
        assert float(diagnostics.inversion_error) < 1e-10


@pytest.mark.slow
def test_failed_inversion_is_counted():
    # One fixed-point iteration cannot invert the flow: every walker must be flagged.
    latent, _ = _samplers("trap", batch=8, n_fixed_point=1, n_newton=0)
    params = _system("trap")[4]
    state = latent.init(jax.random.key(0), params)
    _, info = jax.jit(latent.sample)(jax.random.key(1), state, params)
    assert int(info.n_inversion_failed) == 8
    assert float(info.inversion_error) > 1e-6


@pytest.mark.slow
def test_train_step_runs_unchanged_with_the_latent_sampler():
    model, log_psi, _, _, params, _ = _system("trap")
    latent, _ = _samplers("trap", batch=8)
    loss = make_free_energy_loss(
        model.log_prob, log_psi, lambda x: 0.5 * jnp.sum(x**2), temperature=0.5
    )
    trainer = make_train_step(
        sampler=latent,
        loss=loss,
        occupation_optimizer=optax.adam(1e-3),
        wavefunction_optimizer=optax.adam(1e-3),
    )
    state = trainer.init(jax.random.key(0), params, 2)
    state, metrics = jax.jit(trainer.step)(state)
    assert bool(metrics.update_applied)
    assert bool(jnp.isfinite(metrics.estimates.free_energy.value))
    assert int(state.step) == 1 and isinstance(state.sampler_state, LatentState)


def test_bad_arguments_raise():
    model, _, log_slater_k, flow, _, _ = _system("trap")
    make = functools.partial(make_latent_joint_sampler, model, log_slater_k, flow.apply)
    with pytest.raises(ValueError, match="batch"):
        make(batch=0, n=N, dim=2)
    with pytest.raises(ValueError, match="n_fixed_point"):
        make(batch=4, n=N, dim=2, n_fixed_point=-1)
    with pytest.raises(ValueError, match="n_fixed_point \\+ n_newton"):
        make(batch=4, n=N, dim=2, n_fixed_point=0, n_newton=0)
    with pytest.raises(ValueError, match="inversion_rtol"):
        make(batch=4, n=N, dim=2, inversion_rtol=0.0)
    with pytest.raises(ValueError, match="target_acceptance"):
        make(batch=4, n=N, dim=2, target_acceptance=1.0)

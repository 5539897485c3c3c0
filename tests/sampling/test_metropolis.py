"""Metropolis chains on |Psi_K|^2 of states with closed-form moments.

Statistical tests compare a chain average with its exact value within 5 sigma, sigma
from the bulk ESS of the per-step traces (chains x draws), and assert that sigma is
small enough for the comparison to mean something.
"""

import functools

import arviz
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.metropolis import adapt_width, make_metropolis

K_SIGMA = 5
BOX_LENGTH = 3.0
TWIST = (0.25, 0.25)
# Closed shell of five plane waves: n = (0,0), (+-1,0), (0,+-1).
BOX_OCC = np.arange(5)


def _identity(params, x):
    del params
    return x, jnp.zeros((), x.dtype)


def _mean_and_stderr(trace):
    """trace: (draws, chains) -> mean and ESS-based standard error."""
    data = np.asarray(trace).T  # ArviZ layout (chain, draw)
    ess = float(arviz.ess(data, method="bulk"))
    return data.mean(), data.std() / np.sqrt(ess)


def _log_prob(log_psi):
    return lambda params, occ, x: 2 * jnp.real(log_psi(params, occ, x))


@functools.cache
def _trap_traces(kernel, n, seed=0, batch=64, n_steps=300, n_sweeps=4):
    """Per-step traces of sum_i r_i^2 and radial indicators for N fermions in a 2D trap."""
    spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
    log_psi = make_log_psi(
        orbitals=make_oscillator_orbitals(spectrum, omega=1.0),
        flow_apply=_identity, n_up=n, n_down=0,
    )
    sampler = make_metropolis(_log_prob(log_psi), kernel=kernel, n_sweeps=n_sweeps)
    occ = jnp.broadcast_to(jnp.arange(n), (batch, n))
    key_x, key_burn, key_run = jax.random.split(jax.random.key(seed), 3)
    state = sampler.init(jax.random.normal(key_x, (batch, n, 2)), None, occ, 0.5)

    def step(state, key):
        state, info = sampler.step(key, state, None, occ)
        state = state._replace(width=adapt_width(state.width, info.acceptance))
        r2 = jnp.sum(state.chain.position**2, axis=-1)  # (batch, n)
        inside = jnp.mean(r2 < 1.0, axis=-1)  # fraction of electrons with r < 1
        return state, (jnp.sum(r2, -1), inside, info.acceptance.mean())

    run = jax.jit(lambda s, k: jax.lax.scan(step, s, jax.random.split(k, n_steps)))
    state, _ = run(state, key_burn)
    state, traces = run(state, key_run)
    return traces


@pytest.mark.parametrize("kernel", ["rwm", "mala"])
def test_trap_free_fermions_r2_and_radial_density(kernel):
    # N=3 in shells 0 and 1 of the 2D oscillator (omega=1): <sum r^2> = 1 + 2 + 2,
    # density (1/pi) e^{-r^2} (1 + 2 r^2), so P(r < 1) = (3 - e^{-1} (3 + 2)) / 3.
    sum_r2, inside, acceptance = _trap_traces(kernel, 3)
    mean, err = _mean_and_stderr(sum_r2)
    assert err < 0.03 * 5.0
    assert abs(mean - 5.0) < K_SIGMA * err
    exact_inside = (3 - np.exp(-1.0) * 5) / 3
    mean, err = _mean_and_stderr(inside)
    assert err < 0.02
    assert abs(mean - exact_inside) < K_SIGMA * err
    assert 0.35 < float(np.mean(acceptance[-50:])) < 0.65  # width adaptation works


def test_trap_six_fermions_r2():
    # N=6 fills shells 0, 1, 2: <sum r^2> = sum of (n_x + n_y + 1) = 1 + 2*2 + 3*3.
    sum_r2, _, _ = _trap_traces("rwm", 6)
    mean, err = _mean_and_stderr(sum_r2)
    assert err < 0.02 * 14.0
    assert abs(mean - 14.0) < K_SIGMA * err


@functools.cache
def _box_traces(seed=0, batch=64, n_steps=300, n_sweeps=4):
    spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=BOX_LENGTH, twist=TWIST)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, BOX_LENGTH),
        flow_apply=_identity, n_up=5, n_down=0,
    )
    sampler = make_metropolis(_log_prob(log_psi), box_length=BOX_LENGTH, n_sweeps=n_sweeps)
    occ = jnp.broadcast_to(jnp.asarray(BOX_OCC), (batch, 5))
    quantum_numbers = np.asarray(spectrum.quantum_numbers)[BOX_OCC]
    g_vectors = jnp.array([[1, 0], [0, 1], [1, 1], [2, 0], [1, 2]], jnp.float64)
    key_x, key_burn, key_run = jax.random.split(jax.random.key(seed), 3)
    x0 = jax.random.uniform(key_x, (batch, 5, 2)) * BOX_LENGTH
    state = sampler.init(x0, None, occ, 0.5)

    def observe(x):  # x: (n, dim)
        phase = (2 * jnp.pi / BOX_LENGTH) * x @ g_vectors.T  # (n, G)
        density = jnp.mean(jnp.cos(phase), 0)
        pair = phase[:, None, :] - phase[None, :, :]
        off_diagonal = 1 - jnp.eye(5)[..., None]
        pair_mean = jnp.sum(jnp.cos(pair) * off_diagonal, (0, 1)) / 20
        return density, pair_mean

    def step(state, key):
        state, info = sampler.step(key, state, None, occ)
        state = state._replace(width=adapt_width(state.width, info.acceptance))
        return state, jax.vmap(observe)(state.chain.position) + (state.chain.position,)

    run = jax.jit(lambda s, k: jax.lax.scan(step, s, jax.random.split(k, n_steps)))
    state, _ = run(state, key_burn)
    state, traces = run(state, key_run)
    return traces, quantum_numbers, np.asarray(g_vectors, int)


def _exchange_count(quantum_numbers, g):
    """Number of ordered pairs (k, k') in K with n_k' - n_k = G."""
    diffs = quantum_numbers[None, :, :] - quantum_numbers[:, None, :]
    return int(np.sum(np.all(diffs == g, axis=-1)))


def test_box_plane_wave_determinant_density_and_pair_correlation():
    # For one determinant of plane waves, rho(r) = N / V exactly, and the displacement
    # r = r_i - r_j of a pair is distributed as (N^2 - |sum_k e^{i k.r}|^2) / (N (N-1) V),
    # so <cos(G.r_ij)> = -c(G) / (N (N - 1)), c(G) = #{(k, k') in K: n_k' - n_k = G}.
    (density, pair, positions), quantum_numbers, g_vectors = _box_traces()
    n = 5
    for index, g in enumerate(g_vectors):
        mean, err = _mean_and_stderr(density[..., index])
        assert err < 0.01
        assert abs(mean) < K_SIGMA * err
        exact = -_exchange_count(quantum_numbers, g) / (n * (n - 1))
        mean, err = _mean_and_stderr(pair[..., index])
        assert err < 0.01
        assert abs(mean - exact) < K_SIGMA * err
    assert any(_exchange_count(quantum_numbers, g) for g in g_vectors)  # not all zero
    assert float(positions.min()) >= 0 and float(positions.max()) < BOX_LENGTH


def test_same_key_same_samples_and_different_key_different():
    log_prob = lambda params, aux, x: -0.5 * jnp.sum(x**2) * params  # noqa: E731
    sampler = make_metropolis(log_prob, n_sweeps=3)
    state = sampler.init(jnp.zeros((6, 2, 2)), 1.0, None, 0.7)
    step = jax.jit(sampler.step)
    a, _ = step(jax.random.key(1), state, 1.0, None)
    b, _ = step(jax.random.key(1), state, 1.0, None)
    c, _ = step(jax.random.key(2), state, 1.0, None)
    assert bool(jnp.all(a.chain.position == b.chain.position))
    assert not bool(jnp.all(a.chain.position == c.chain.position))


def test_step_recomputes_log_density_for_new_params():
    log_prob = lambda params, aux, x: -0.5 * jnp.sum(x**2) * params  # noqa: E731
    sampler = make_metropolis(log_prob, n_sweeps=0)
    x = jax.random.normal(jax.random.key(0), (4, 2, 2))
    state = sampler.init(x, 1.0, None, 0.5)
    state, _ = sampler.step(jax.random.key(1), state, 3.0, None)
    np.testing.assert_allclose(state.chain.logdensity, -1.5 * jnp.sum(x**2, (1, 2)))


def test_frozen_walkers_do_not_move():
    log_prob = lambda params, aux, x: -0.5 * jnp.sum(x**2)  # noqa: E731
    sampler = make_metropolis(log_prob, n_sweeps=20)
    state = sampler.init(jnp.zeros((4, 1, 2)), None, None, 0.5)
    active = jnp.array([True, False, True, False])
    state, info = sampler.step(jax.random.key(0), state, None, None, active=active)
    moved = jnp.any(state.chain.position != 0, axis=(1, 2))
    assert moved.tolist() == [True, False, True, False]
    assert info.acceptance[1] == info.acceptance[3] == 0


@pytest.mark.parametrize("kernel", ["rwm", "mala"])
def test_nonfinite_log_density_is_counted_and_rejected(kernel):
    def log_prob(params, aux, x):
        value = -0.5 * jnp.sum(x**2)
        return jnp.where(x[0, 0] > 0.5, jnp.nan, value)

    sampler = make_metropolis(log_prob, kernel=kernel, n_sweeps=50)
    state = sampler.init(jnp.zeros((8, 1, 2)), None, None, 1.0)
    state, info = sampler.step(jax.random.key(0), state, None, None)
    assert int(info.n_nonfinite) > 0
    assert bool(jnp.all(state.chain.position[:, 0, 0] <= 0.5))
    assert bool(jnp.all(jnp.isfinite(state.chain.logdensity)))


def test_adapt_width_fixed_point_and_direction():
    assert float(adapt_width(1.0, jnp.array([0.5, 0.5]))) == 1.0
    assert float(adapt_width(1.0, 0.9)) > 1.0 > float(adapt_width(1.0, 0.1))
    assert float(adapt_width(1e-6, 0.0, min_width=1e-4)) == 1e-4


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_is_kept(dtype):
    log_prob = lambda params, aux, x: -0.5 * jnp.sum(x**2)  # noqa: E731
    sampler = make_metropolis(log_prob, box_length=2.0, n_sweeps=2)
    state = sampler.init(jnp.ones((4, 2, 3), dtype), None, None, 0.3)
    state, info = sampler.step(jax.random.key(0), state, None, None)
    assert state.chain.position.dtype == dtype == info.acceptance.dtype


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kernel": "hmc"}, "kernel"),
        ({"box_length": 0.0}, "box_length"),
        ({"n_sweeps": -1}, "n_sweeps"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_metropolis(lambda p, a, x: jnp.sum(x), **kwargs)


def test_bad_init_raises():
    sampler = make_metropolis(lambda p, a, x: jnp.sum(x))
    with pytest.raises(ValueError, match="width"):
        sampler.init(jnp.zeros((2, 1, 2)), None, None, 0.0)
    with pytest.raises(ValueError, match="batch, n, dim"):
        sampler.init(jnp.zeros((2, 2)), None, None, 0.5)

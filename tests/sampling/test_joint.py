"""Joint sampler: K ~ p(K) exactly, x | K ~ |Psi_K|^2, warm starts and sharding."""

import functools
import itertools
import os
import subprocess
import sys
import textwrap

import arviz
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from fermiflow.hamiltonians.spectrum import oscillator_spectrum
from fermiflow.models.autoregressive import make_set_transformer
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.orbitals import make_oscillator_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import make_joint_sampler

N, N_MODES = 2, 6  # two fermions in the three lowest 2D oscillator shells: 15 sets
BATCH, N_STEPS = 128, 250
SIGNIFICANCE = 1e-3


def _identity(params, x):
    del params
    return x, jnp.zeros((), x.dtype)


def _setup(n_extra_sweeps=10, n_sweeps=3, batch=BATCH):
    spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
    log_psi = make_log_psi(
        orbitals=make_oscillator_orbitals(spectrum, omega=1.0),
        flow_apply=_identity, n_up=N, n_down=0,
    )
    model = make_set_transformer(n_modes=N_MODES, n_particles=N, param_dtype=jnp.float64)
    sampler = make_joint_sampler(
        model, log_psi, batch=batch, n=N, dim=2,
        n_sweeps=n_sweeps, n_extra_sweeps=n_extra_sweeps,
    )
    params = JointParams(model.init(jax.random.key(42)), None)
    return model, sampler, params, np.asarray(spectrum.energies)


@functools.cache
def _run(n_extra_sweeps=10):
    model, sampler, params, energies = _setup(n_extra_sweeps)
    key_init, key_burn, key_run = jax.random.split(jax.random.key(0), 3)
    state = sampler.init(key_init, params)
    state, _ = jax.jit(sampler.thermalize, static_argnums=3)(key_burn, state, params, 20)

    def step(state, key):
        state, info = sampler.sample(key, state, params)
        r2 = jnp.sum(state.walkers.chain.position**2, axis=(1, 2))
        return state, (state.occ, state.log_p_occ, r2, info)

    run = jax.jit(lambda s, k: jax.lax.scan(step, s, jax.random.split(k, N_STEPS)))
    _, traces = run(state, key_run)
    sets = np.array(list(itertools.combinations(range(N_MODES), N)))
    exact = np.exp(np.asarray(model.log_prob(params.occupation, jnp.asarray(sets))))
    return traces, sets, exact, energies


@pytest.mark.slow  # statistical, about 35 s
def test_occupation_frequencies_match_enumerated_p():
    (occ, log_p, _, _), sets, exact, _ = _run()
    assert abs(exact.sum() - 1) < 1e-12
    index = {tuple(s): i for i, s in enumerate(sets)}
    counts = np.bincount(
        [index[tuple(k)] for k in np.asarray(occ).reshape(-1, N)], minlength=len(sets)
    )
    total = counts.sum()
    statistic, p_value = scipy.stats.chisquare(counts, exact * total)
    assert p_value > SIGNIFICANCE, (statistic, p_value)
    # The returned log p(K) is that of the drawn K.
    lookup = np.log(exact)[[index[tuple(k)] for k in np.asarray(occ[-1])]]
    np.testing.assert_allclose(np.asarray(log_p[-1]), lookup, rtol=1e-10)
    # Power: a 20 % error in the most likely set's probability would be rejected.
    wrong = exact.copy()
    wrong[np.argmax(exact)] *= 1.2
    wrong /= wrong.sum()
    assert scipy.stats.chisquare(counts, wrong * total).pvalue < SIGNIFICANCE


@pytest.mark.slow  # statistical, 35 s
def test_joint_moment_with_extra_sweeps_matches_exact():
    # E_K E_{x|K} sum r^2 = sum_K p(K) sum_{k in K} eps_k / omega (virial, omega = 1).
    (occ, _, r2, info), sets, exact, energies = _run()
    target = float(np.sum(exact * energies[sets].sum(-1)))
    data = np.asarray(r2).T
    mean = data.mean()
    err = data.std() / np.sqrt(float(arviz.ess(data, method="bulk")))
    assert err < 0.01 * target
    assert abs(mean - target) < 5 * err, (mean, target, err)
    assert int(np.sum(info.n_nonfinite)) == 0
    assert float(np.mean(info.n_new_occ)) > 0.5 * BATCH  # K really changes


def test_same_key_same_samples():
    _, sampler, params, _ = _setup(batch=8)
    state = sampler.init(jax.random.key(0), params)
    sample = jax.jit(sampler.sample)
    a, _ = sample(jax.random.key(1), state, params)
    b, _ = sample(jax.random.key(1), state, params)
    assert bool(jnp.all(a.occ == b.occ))
    assert bool(jnp.all(a.walkers.chain.position == b.walkers.chain.position))


def test_bad_arguments_raise():
    model = make_set_transformer(n_modes=4, n_particles=2)
    log_psi = lambda p, occ, x: jnp.zeros((), jnp.complex128)  # noqa: E731
    with pytest.raises(ValueError, match="batch"):
        make_joint_sampler(model, log_psi, batch=0, n=2, dim=2)
    with pytest.raises(ValueError, match="target_acceptance"):
        make_joint_sampler(model, log_psi, batch=4, n=2, dim=2, target_acceptance=1.5)
    with pytest.raises(ValueError, match="n_extra_sweeps"):
        make_joint_sampler(model, log_psi, batch=4, n=2, dim=2, n_extra_sweeps=-1)
    with pytest.raises(ValueError, match="width"):
        make_joint_sampler(model, log_psi, batch=4, n=2, dim=2, width=-1.0)


_SHARDING_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == 4, jax.devices()
    from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
    from fermiflow.models.autoregressive import make_set_transformer
    from fermiflow.models.backflow import make_backflow
    from fermiflow.models.orbitals import make_plane_wave_orbitals
    from fermiflow.models.wavefunction import make_log_psi
    from fermiflow.models.density_matrix import JointParams
    from fermiflow.sampling.joint import make_joint_sampler
    from fermiflow.sampling.sharding import replicate, shard_walkers, walker_mesh

    L, n, batch = 3.0, 3, 16
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L, twist=(0.25, 0.25))
    flow = make_backflow(n_up=n, n_down=0, dim=2, box_length=L)
    log_psi = make_log_psi(orbitals=make_plane_wave_orbitals(spectrum, L),
                           flow_apply=flow.apply, n_up=n, n_down=0)
    model = make_set_transformer(n_modes=len(spectrum.energies), n_particles=n,
                                 param_dtype=jnp.float64)
    sampler = make_joint_sampler(model, log_psi, batch=batch, n=n, dim=2,
                                 box_length=L, n_sweeps=4, n_extra_sweeps=2)
    params = JointParams(model.init(jax.random.key(0)),
                         flow.init(jax.random.key(1), jnp.zeros((n, 2))))

    def run(mesh):
        p = replicate(params, mesh)
        state = shard_walkers(sampler.init(jax.random.key(2), params), batch, mesh)
        sample = jax.jit(sampler.sample)
        for i in range(3):
            state, info = sample(jax.random.key(10 + i), state, p)
        return state

    one = run(walker_mesh(jax.devices()[:1]))
    four = run(walker_mesh())
    x4 = four.walkers.chain.position
    assert len(x4.sharding.device_set) == 4, x4.sharding
    assert np.array_equal(np.asarray(one.occ), np.asarray(four.occ))
    diff = np.max(np.abs(np.asarray(one.walkers.chain.position) - np.asarray(x4)))
    print("MAXDIFF", diff, "BITWISE", diff == 0)
    assert diff < 1e-12
    """
)


@pytest.mark.slow  # four-device subprocess, 1 min; tests/run/test_devices stays by default
def test_four_device_mesh_gives_the_same_samples():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", _SHARDING_SCRIPT],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MAXDIFF" in result.stdout

"""Exact oscillator DPP sampler: Hermite rejection moments, one- and two-body moments, cost."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_oscillator_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.dpp_trap import (
    envelope_mass,
    hermite_rejection,
    make_oscillator_dpp_sampler,
    sample_hermite_squared,
)

K_SIGMA = 5.0
OMEGA = 1.3
SPECTRUM = oscillator_spectrum(dim=2, n_shells=4, omega=OMEGA)  # 10 modes
OCC_POLARIZED = np.array([0, 1, 3, 4, 6, 8])  # not a closed shell
OCC_SPINFUL = np.array([0, 1, 2, 0, 2, 5])  # 3 up, 3 down
BATCH = 4000


def _assert_within(mean, stderr, exact, *, max_stderr):
    mean, stderr, exact = (np.asarray(a, np.float64) for a in (mean, stderr, exact))
    assert np.all(stderr < max_stderr), f"too noisy to test: {stderr.max():.2e}"
    sigmas = np.abs(mean - exact) / stderr
    assert np.all(sigmas < K_SIGMA), f"max deviation {sigmas.max():.1f} sigma"


def test_hermite_rejection_has_the_exact_moments_and_trial_counts():
    # <y^2> = n + 1/2 and <y^4> = (6 n^2 + 6 n + 3) / 4 under h_n^2; M_n trials on average.
    batch, max_order = 10000, 4
    orders = jnp.tile(jnp.arange(max_order + 1), (batch, 1))
    run = jax.jit(lambda key: hermite_rejection(key, orders, max_order, jnp.float64))
    y, trials = (np.asarray(a, np.float64) for a in run(jax.random.key(0)))
    n = np.arange(max_order + 1)
    for power, exact in ((2, n + 0.5), (4, (6 * n**2 + 6 * n + 3) / 4)):
        values = y**power
        stderr = values.std(0) / math.sqrt(batch)
        _assert_within(values.mean(0), stderr, exact, max_stderr=0.05 * exact)
    mass = np.array([envelope_mass(k) for k in n])
    stderr = np.sqrt(mass * (mass - 1) / batch) + 1e-12  # geometric variance; 0 at n = 0
    _assert_within(trials.mean(0), stderr, mass, max_stderr=0.02 * mass)
    assert np.all(trials[:, 0] == 1)  # h_0^2 is its own envelope


@functools.cache
def _samples(n_up: int, n_down: int, dtype: str = "float64"):
    sampler = make_oscillator_dpp_sampler(
        quantum_numbers=SPECTRUM.quantum_numbers,
        omega=OMEGA,
        n_up=n_up,
        n_down=n_down,
        dtype=dtype,
    )
    occ = jnp.asarray(OCC_POLARIZED if n_down == 0 else OCC_SPINFUL)
    run = jax.jit(lambda keys: jax.lax.map(lambda key: sampler(key, occ), keys))
    return run(jax.random.split(jax.random.key(n_up), BATCH))


def _exact_moments(occ: np.ndarray, n_up: int) -> tuple[float, float]:
    """Exact <sum_i |x_i|^2> and <|sum_i x_i|^2> of the product of two determinants.

    One body: sum_a <a|r^2|a> = sum_a sum_d (n_ad + 1/2) / omega. Two body (exchange):
    <|sum x|^2> = sum_a <a|r^2|a> - sum_{a, b in K_s} |<a|r|b>|^2 per spin block s,
    with <n|x|n+1> = sqrt((n + 1) / (2 omega)) in one coordinate, the others equal.
    """
    numbers = SPECTRUM.quantum_numbers
    one_body = float(sum((numbers[a] + 0.5).sum() for a in occ) / OMEGA)
    exchange = 0.0
    for block in (occ[:n_up], occ[n_up:]):
        for a in block:
            for b in block:
                step = numbers[a] - numbers[b]
                if np.abs(step).sum() == 1:  # one coordinate differs, by one quantum
                    d = int(np.flatnonzero(step)[0])
                    exchange += max(numbers[a][d], numbers[b][d]) / (2 * OMEGA)
    return one_body, one_body - exchange


@pytest.mark.parametrize(("n_up", "n_down"), [(6, 0), pytest.param(3, 3, marks=pytest.mark.slow)])
def test_one_and_two_body_moments_are_exact(n_up, n_down):
    sample = _samples(n_up, n_down)
    occ = OCC_POLARIZED if n_down == 0 else OCC_SPINFUL
    one_body, center = _exact_moments(occ, n_up)
    x = np.asarray(sample.position)
    assert np.all(np.isfinite(x))
    r2 = (x**2).sum((1, 2))
    com2 = sum((x[:, lo:hi].sum(1) ** 2).sum(-1) for lo, hi in ((0, n_up), (n_up, n_up + n_down)))
    # The blocks are independent with zero mean, so cross-block terms of |sum x|^2 vanish:
    # the per-block sum keeps the test of the exchange term sharp.
    for values, exact in ((r2, one_body), (com2, center)):
        stderr = values.std() / math.sqrt(BATCH)
        _assert_within(values.mean(), stderr, exact, max_stderr=0.1)
    # Power: without the exchange hole <|sum x|^2> would equal the one-body value.
    stderr = com2.std() / math.sqrt(BATCH)
    assert abs(one_body - center) > 4 * K_SIGMA * stderr
    moments = [sum(n / r for r in range(1, n + 1)) for n in (n_up, n_down)]
    variances = [sum((1 - r / n) * (n / r) ** 2 for r in range(1, n + 1)) for n in (n_up, n_down)]
    _assert_within(
        np.mean(sample.n_proposals),
        math.sqrt(sum(variances) / BATCH),
        sum(moments),
        max_stderr=0.2,
    )


def test_log_density_is_the_latent_log_psi():
    sample = jax.tree.map(lambda a: a[:16], _samples(6, 0))
    log_psi = make_log_psi(
        orbitals=make_oscillator_orbitals(SPECTRUM, OMEGA),
        flow_apply=make_identity_flow().apply,
        n_up=6,
        n_down=0,
    )
    occ = jnp.asarray(OCC_POLARIZED)
    expected = jax.jit(jax.vmap(lambda x: 2 * jnp.real(log_psi(None, occ, x))))
    chex.assert_trees_all_close(sample.log_density, expected(sample.position), rtol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtypes(dtype):
    sampler = make_oscillator_dpp_sampler(
        quantum_numbers=SPECTRUM.quantum_numbers, omega=OMEGA, n_up=2, n_down=1, dtype=dtype
    )
    shapes = jax.eval_shape(sampler, jax.random.key(0), jnp.zeros(3, jnp.int32))
    assert shapes.position.shape == (3, 2) and shapes.position.dtype == dtype
    assert shapes.log_density.shape == () and shapes.log_density.dtype == dtype
    y = jax.eval_shape(
        lambda k: sample_hermite_squared(k, jnp.zeros((4, 2), int), max_order=3, dtype=dtype),
        jax.random.key(0),
    )
    assert y.shape == (4, 2) and y.dtype == dtype


@pytest.mark.slow
def test_float32_samples_are_finite_and_match_the_one_body_moment():
    sample = _samples(6, 0, "float32")
    x = np.asarray(sample.position, np.float64)
    assert sample.position.dtype == jnp.float32 and np.all(np.isfinite(x))
    r2 = (x**2).sum((1, 2))
    one_body, _ = _exact_moments(OCC_POLARIZED, 6)
    _assert_within(r2.mean(), r2.std() / math.sqrt(BATCH), one_body, max_stderr=0.1)


def test_bad_arguments_raise():
    make = functools.partial(make_oscillator_dpp_sampler, quantum_numbers=SPECTRUM.quantum_numbers)
    with pytest.raises(ValueError, match="omega"):
        make(omega=0.0, n_up=1, n_down=0)
    with pytest.raises(ValueError, match="n_up \\+ n_down"):
        make(omega=1.0, n_up=0, n_down=0)
    with pytest.raises(ValueError, match="quantum_numbers"):
        make_oscillator_dpp_sampler(quantum_numbers=np.zeros((3, 2)), omega=1.0, n_up=1, n_down=0)
    with pytest.raises(ValueError, match="max_order"):
        sample_hermite_squared(jax.random.key(0), jnp.zeros(2, int), max_order=-1)

"""Tests of fermiflow.observables.diagnostics on AR(1) series with known answers.

An AR(1) series x_t = phi x_{t-1} + sqrt(1 - phi^2) eps_t started from x_0 ~ N(0, 1) is
stationary with unit variance, autocorrelation phi^|t| and integrated autocorrelation
time tau = (1 + phi) / (1 - phi). The exact variance of the mean of N draws is
(1 + 2 sum_{t=1}^{N-1} (1 - t/N) phi^t) / N.
"""

import math

import arviz
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.estimate import Estimate
from fermiflow.observables.blocking import blocking_analysis, blocking_error
from fermiflow.observables.diagnostics import (
    acceptance_summary,
    diagnose,
    estimate,
    integrated_autocorrelation_time,
    to_inference_data,
)

K_SIGMA = 5.0


def ar1(key, phi, n_chains, n_draws):
    """(n_chains, n_draws) stationary AR(1) series with unit variance, float64."""
    eps = jax.random.normal(key, (n_draws, n_chains), dtype=jnp.float64)
    scale = math.sqrt(1.0 - phi**2)

    def step(x, e):
        x = phi * x + scale * e
        return x, x

    _, xs = jax.lax.scan(step, eps[0], eps[1:])
    return np.array(jnp.concatenate([eps[:1], xs]).T)  # writable copy


def exact_stderr(phi, n_chains, n_draws):
    """Exact standard error of the grand mean of independent stationary AR(1) chains."""
    lag = np.arange(1, n_draws)
    var_chain_mean = (1.0 + 2.0 * np.sum((1.0 - lag / n_draws) * phi**lag)) / n_draws
    return math.sqrt(var_chain_mean / n_chains)


def ess_relative_error(tau, n_total):
    """One-sigma relative error of the ESS standard error.

    Sokal's variance of an integrated autocorrelation time summed over a window of M
    lags is var(tau_hat) / tau^2 = 2 (2M + 1) / N; the stderr goes as sqrt(tau), so its
    relative error is half of that of tau. Geyer's initial monotone sequence (ArviZ)
    stops where the estimated correlations reach noise level, about 3.5 tau for AR(1)
    at these N; M = 5 tau + 5 over-estimates the window, so the tolerance is safe.
    """
    window = 5.0 * tau + 5.0
    return 0.5 * math.sqrt(2.0 * (2.0 * window + 1.0) / n_total)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ar1_error_bars_match_exact(phi, key):
    n_chains, n_draws = 16, 2**16
    x = ar1(jax.random.fold_in(key, int(10 * phi)), phi, n_chains, n_draws)
    exact = exact_stderr(phi, n_chains, n_draws)
    tau = (1.0 + phi) / (1.0 - phi)
    est = estimate(x, name="ar1")
    diag = diagnose(x, name="ar1")
    by_ess, by_blocking = (estimate(x, name="ar1", method=m) for m in ("ess", "blocking"))
    blocking = blocking_analysis(x)
    assert blocking.plateau_reached
    # The blocking stderr from n blocks in all has relative error 1 / sqrt(2 (n - 1))
    # (chi^2 of the block variance), i.e. sqrt(B / (2 N)) for blocks of B draws; B is
    # chosen so that its bias is below a quarter of that (blocking.py).
    rel_blocking = blocking.stderr_error / blocking.stderr
    rel_ess = ess_relative_error(tau, x.size)
    assert K_SIGMA * rel_blocking < 0.12, f"blocking too noisy to test: {rel_blocking:.3f}"
    assert K_SIGMA * rel_ess < 0.06, f"ESS too noisy to test: {rel_ess:.3f}"
    ratio_blocking = by_blocking.error / exact
    ratio_ess = by_ess.error / exact
    print(
        f"phi={phi}: blocking/exact={ratio_blocking:.4f} (B={blocking.block_size}), "
        f"ess/exact={ratio_ess:.4f}, tau={diag.tau_int:.3f} vs {tau:.3f}"
    )
    assert est.error == max(by_ess.error, by_blocking.error)
    assert (by_ess.method, by_blocking.method) == ("ess", "blocking")
    assert abs(ratio_blocking - 1.0) < K_SIGMA * rel_blocking
    assert abs(ratio_ess - 1.0) < K_SIGMA * rel_ess
    # Both error bars agree with each other (their errors add at most in quadrature
    # when independent; they are positively correlated, so this is conservative).
    assert abs(ratio_blocking - ratio_ess) < K_SIGMA * math.hypot(rel_blocking, rel_ess)
    # The bulk ESS (rank-normalized) is a monotone transform of a Gaussian here, so
    # std / sqrt(ess_bulk) must give the same error bar.
    ratio_bulk = np.std(x, ddof=1) / math.sqrt(diag.ess_bulk) / exact
    assert abs(ratio_bulk - 1.0) < K_SIGMA * rel_ess
    # tau_int = stderr^2 N / var: twice the relative error of the stderr.
    assert abs(diag.tau_int / tau - 1.0) < K_SIGMA * 2.0 * rel_ess
    assert abs(est.value) < K_SIGMA * exact
    assert est.r_hat == diag.r_hat < 1.01 and est.ess == diag.ess_mean
    assert diag.ess_tail > 0.0
    assert (diag.n_chains, diag.n_draws, est.n_samples) == (n_chains, n_draws, x.size)


def test_stderr_is_std_over_sqrt_ess_mean(key):
    x = ar1(key, 0.7, 3, 1001)
    est, diag = estimate(x, method="ess"), diagnose(x)
    ess_mean = float(arviz.ess(x, method="mean"))
    np.testing.assert_allclose([est.ess, diag.ess_mean], ess_mean, rtol=1e-12)
    np.testing.assert_allclose(est.error, np.std(x, ddof=1) / math.sqrt(ess_mean), rtol=1e-12)
    np.testing.assert_allclose(diag.tau_int, x.size / ess_mean, rtol=1e-12)
    np.testing.assert_allclose(integrated_autocorrelation_time(x), diag.tau_int, rtol=1e-12)
    np.testing.assert_allclose(est.value, np.mean(x), rtol=1e-12)


def test_coverage_of_both_error_bars(key):
    """95% intervals of independent replicates cover the exact mean 0 95% of the time."""
    n_replicates, n_draws, phi = 1000, 2**14, 0.5
    x = ar1(key, phi, n_replicates, n_draws)
    means = x.mean(axis=1)
    stderr_blocking = np.array([blocking_error(row) for row in x])
    stderr_ess = np.array([np.asarray(arviz.mcse(row[None], method="mean")).item() for row in x])
    exact = exact_stderr(phi, 1, n_draws)
    # Binomial sigma of a coverage fraction; 4 sigma as the brief asks (p ~ 6e-5).
    sigma = math.sqrt(0.95 * 0.05 / n_replicates)
    for stderr in (stderr_blocking, stderr_ess):
        coverage = np.mean(np.abs(means) < 1.96 * stderr)
        print(f"coverage {coverage:.3f}, mean stderr / exact {np.mean(stderr) / exact:.4f}")
        assert abs(coverage - 0.95) < 4.0 * sigma


def test_r_hat_of_identical_chains_is_one(key):
    x = ar1(key, 0.5, 4, 2**13)
    assert estimate(x).r_hat < 1.01


def test_r_hat_flags_a_shifted_chain(key):
    x = ar1(key, 0.5, 4, 2**13)
    x[0] += 3.0  # one chain stuck 3 sigma away
    assert estimate(x).r_hat > 1.1


def test_single_chain_r_hat_compares_halves(key):
    x = ar1(key, 0.5, 1, 2**13)
    assert estimate(x).r_hat < 1.01
    x[0, : 2**12] += 3.0  # not stationary: the first half sits elsewhere
    with pytest.warns(RuntimeWarning, match="no plateau"):
        assert estimate(x).r_hat > 1.1


def test_constant_trace_has_zero_error():
    est = estimate(np.full((3, 64), 1.5))
    assert est.value == 1.5
    assert est.error == 0.0 and est.method == "exact"
    assert est.r_hat == 1.0
    assert all(math.isfinite(v) for v in diagnose(np.full((3, 64), 1.5)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_raise_naming_the_observable(bad):
    x = np.zeros((2, 16))
    x[1, 7] = bad
    with pytest.raises(ValueError, match="energy.*non-finite.*chain 1, draw 7"):
        estimate(x, name="energy")
    with pytest.raises(ValueError, match="energy"):
        integrated_autocorrelation_time(x, name="energy")
    with pytest.raises(ValueError, match="'energy'.*NaN/inf"):
        to_inference_data({"kinetic": np.zeros((2, 16)), "energy": x})


@pytest.mark.parametrize("shape", [(16,), (2, 3, 16), (2, 3), (1, 7)])
def test_estimate_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="energy"):
        estimate(np.zeros(shape), name="energy")


def test_to_inference_data_rejects_bad_shapes():
    with pytest.raises(ValueError, match="empty"):
        to_inference_data({})
    with pytest.raises(ValueError, match="'energy'"):
        to_inference_data({"energy": np.zeros(5)})
    with pytest.raises(ValueError, match="'kinetic'"):
        to_inference_data({"energy": np.zeros((2, 5)), "kinetic": np.zeros((2, 6))})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_inference_data_round_trips(dtype):
    energy = np.arange(12, dtype=dtype).reshape(3, 4) / 7
    occupations = np.arange(24, dtype=dtype).reshape(3, 4, 2)
    idata = to_inference_data({"energy": jnp.asarray(energy), "occupations": occupations})
    assert idata.posterior["energy"].dims == ("chain", "draw")
    assert idata.posterior["occupations"].dims[:2] == ("chain", "draw")
    assert idata.posterior["energy"].dtype == dtype
    np.testing.assert_array_equal(idata.posterior["energy"].values, energy)
    np.testing.assert_array_equal(idata.posterior["occupations"].values, occupations)
    # ArviZ reads it back with the same (chains, draws) layout.
    assert float(arviz.ess(idata, var_names=["energy"])["energy"]) == pytest.approx(
        float(arviz.ess(energy.astype(np.float64), method="bulk")), rel=1e-6
    )


def test_estimate_computes_in_float64_for_float32_input(key):
    x32 = ar1(key, 0.5, 2, 512).astype(np.float32)
    est32 = estimate(jnp.asarray(x32))
    est64 = estimate(x32.astype(np.float64))
    assert isinstance(est32, Estimate)
    assert all(isinstance(v, float) for v in (est32.value, est32.error, est32.ess, est32.r_hat))
    chex.assert_trees_all_close(est32, est64, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_acceptance_summary(dtype):
    flags = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    summary = acceptance_summary(jnp.asarray(flags, dtype))
    chex.assert_shape(summary.per_chain, (3,))
    chex.assert_shape(summary.overall, ())
    assert summary.per_chain.dtype == dtype and summary.overall.dtype == dtype
    np.testing.assert_allclose(summary.per_chain, [0.75, 0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(summary.overall, 7 / 12, rtol=1e-6)
    one_step = jax.jit(acceptance_summary)(jnp.asarray([0.2, 0.4], dtype))
    np.testing.assert_allclose(one_step.per_chain, [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(one_step.overall, 0.3, rtol=1e-6)


def test_acceptance_summary_of_int_flags_and_bad_shape():
    summary = acceptance_summary(jnp.asarray([[1, 0], [1, 1]]))
    assert jnp.issubdtype(summary.overall.dtype, jnp.floating)
    np.testing.assert_allclose(summary.per_chain, [1.0, 0.5])
    with pytest.raises(ValueError, match="acceptance"):
        acceptance_summary(jnp.zeros((2, 2, 2)))


def test_constant_trace_is_exact_with_zero_error():
    est = estimate(np.full((4, 50), 2.5), name="entropy")
    assert est.value == 2.5 and est.error == 0.0 and est.method == "exact"
    assert est.ess == 200 and est.r_hat == 1.0

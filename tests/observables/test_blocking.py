"""Tests of fermiflow.observables.blocking: exact level statistics and edge cases.

The AR(1) accuracy and coverage tests of the blocking error are in test_diagnostics.py.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.observables.blocking import BlockingResult, blocking_analysis, blocking_error


def reshape_stderr(x, block_size):
    """Independent stderr of the grand mean from blocks made by reshaping each chain."""
    n_chains, n_draws = x.shape
    n_blocks = n_draws // block_size
    blocks = x[:, : n_blocks * block_size].reshape(n_chains, n_blocks, block_size).mean(-1)
    var_chain_means = blocks.var(axis=1, ddof=1) / n_blocks
    return math.sqrt(var_chain_means.sum()) / n_chains


@pytest.mark.parametrize("shape", [(1, 1024), (3, 1000), (2, 777), (5, 4)])
def test_levels_match_reshaped_blocks(shape, key):
    x = np.asarray(jax.random.normal(key, shape, dtype=jnp.float64)).cumsum(axis=1)
    result = blocking_analysis(x)
    n_levels = int(math.floor(math.log2(shape[1])))  # down to 2 blocks per chain
    assert result.stderr_by_level.shape == (n_levels,)
    expected = [reshape_stderr(x, 2**k) for k in range(n_levels)]
    np.testing.assert_allclose(result.stderr_by_level, expected, rtol=1e-10)
    level = int(math.log2(result.block_size))
    assert result.stderr == result.stderr_by_level[level]
    assert result.n_blocks == shape[1] // result.block_size


def test_one_dimensional_trace_is_one_chain(key):
    x = np.asarray(jax.random.normal(key, (512,), dtype=jnp.float64))
    one, batched = blocking_analysis(x), blocking_analysis(x[None])
    np.testing.assert_array_equal(one.stderr_by_level, batched.stderr_by_level)
    assert one._replace(stderr_by_level=None) == batched._replace(stderr_by_level=None)
    assert blocking_error(x) == blocking_error(x[None])


def test_white_noise_stderr_error_formula(key):
    x = np.asarray(jax.random.normal(key, (4, 4096), dtype=jnp.float64))
    result = blocking_analysis(x)
    dof = 4 * (result.n_blocks - 1)
    np.testing.assert_allclose(result.stderr_error, result.stderr / math.sqrt(2 * dof))
    # Independent draws: 1 / sqrt(N) within 5 of its own sigmas.
    assert abs(result.stderr * 128.0 - 1.0) < 5.0 * result.stderr_error / result.stderr


def test_periodic_trace_has_exact_zero_error():
    x = np.tile([1.0, -2.0, 0.5, 0.5], (3, 256))  # every block of 4 has mean 0
    result = blocking_analysis(x)
    assert result.block_size == 4
    assert result.stderr == 0.0
    assert result.plateau_reached


def test_constant_trace_has_zero_error_and_no_warning(recwarn):
    result = blocking_analysis(np.full((2, 100), 3.25))
    assert result.stderr == 0.0 and result.stderr_error == 0.0
    assert result.block_size == 1 and result.plateau_reached
    assert blocking_error(np.full(64, -1.0)) == 0.0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_drifting_trace_warns_no_plateau():
    # A linear drift (not stationary) is correlated at every block size; deterministic.
    x = np.linspace(0.0, 1.0, 512)[None]
    result = blocking_analysis(x)
    assert not result.plateau_reached
    assert result.n_blocks == 2
    with pytest.warns(RuntimeWarning, match="energy.*no plateau"):
        blocking_error(x, name="energy")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_raises_naming_the_observable(bad):
    x = np.zeros((2, 32))
    x[0, 3] = bad
    with pytest.raises(ValueError, match="energy.*non-finite.*chain 0, draw 3"):
        blocking_error(x, name="energy")


@pytest.mark.parametrize("shape", [(2, 3, 8), (2, 3), (3,), ()])
def test_bad_shapes_raise(shape):
    with pytest.raises(ValueError, match="energy"):
        blocking_analysis(np.zeros(shape), name="energy")


def test_float32_input_gives_float64_result(key):
    x32 = jax.random.normal(key, (2, 256), dtype=jnp.float32)
    result32 = blocking_analysis(x32)
    result64 = blocking_analysis(np.asarray(x32, dtype=np.float64))
    assert isinstance(result32, BlockingResult)
    assert isinstance(result32.stderr, float)
    assert result32.stderr_by_level.dtype == np.float64
    np.testing.assert_array_equal(result32.stderr_by_level, result64.stderr_by_level)
    assert result32.stderr == result64.stderr

"""Iterate averaging: the running mean is the exact mean of the iterates given."""

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.training.averaging import init_average, update_average


def test_running_mean_is_the_mean_of_the_iterates():
    iterates = [
        {"w": jax.random.normal(jax.random.key(i), (3, 2)), "b": jnp.asarray(float(i))}
        for i in range(7)
    ]
    average = init_average(iterates[0])
    assert float(average.count) == 0
    for params in iterates:
        average = update_average(average, params)
    assert float(average.count) == 7
    np.testing.assert_allclose(average.mean["w"], np.mean([p["w"] for p in iterates], 0),
                               rtol=1e-12, atol=1e-14)
    assert float(average.mean["b"]) == np.mean(np.arange(7.0))
    assert average.mean["w"].dtype == iterates[0]["w"].dtype


def test_first_iterate_replaces_the_initial_mean():
    average = update_average(init_average({"a": jnp.zeros(2)}), {"a": jnp.full(2, 3.0)})
    np.testing.assert_array_equal(average.mean["a"], [3.0, 3.0])

"""fold_fraction: the share of configurations where a flow is not locally invertible."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import fold_fraction, value_and_log_det

L = 3.0


def _folding_apply(params, x):
    # zeta = x + a L/(2 pi) sin(2 pi x / L) per coordinate; det = prod(1 + a cos(.)),
    # which for one particle in 1D is <= 0 where cos(2 pi x / L) <= -1 / a.
    return value_and_log_det(
        lambda y: y + params * L / (2 * jnp.pi) * jnp.sin(2 * jnp.pi * y / L), x
    )


@pytest.mark.parametrize("a", [0.5, 2.0, 4.0])
def test_fraction_of_a_folding_map_matches_the_exact_value(a):
    x = jax.random.uniform(jax.random.key(0), (20000, 1, 1)) * L
    fraction, err = fold_fraction(_folding_apply, a, x)
    # 1 + a cos(t) <= 0  <=>  cos(t) <= -1/a: a share 1 - arccos(-1/a) / pi of t.
    exact = 0.0 if a <= 1 else 1 - np.arccos(-1 / a) / np.pi
    if exact == 0:
        assert float(fraction) == 0.0
    else:
        assert float(err) < 0.01
        assert abs(float(fraction) - exact) < 5 * float(err)


def test_fresh_backflow_does_not_fold():
    flow = make_backflow(n_up=3, n_down=0, dim=2, box_length=L)
    params = flow.init(jax.random.key(1), jnp.zeros((3, 2)))
    x = jax.random.uniform(jax.random.key(2), (512, 3, 2)) * L
    fraction, _ = fold_fraction(flow.apply, params, x)
    assert float(fraction) == 0.0

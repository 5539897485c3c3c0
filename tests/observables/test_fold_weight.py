"""The fold weight against an exactly folding map of one particle on a ring.

T(x) = x + a L / (2 pi) sin(2 pi x / L) has det J = 1 + a cos(2 pi x / L), which is
negative where cos < -1 / a for a > 1. With one plane wave (|D|^2 constant),
|Psi|^2 is proportional to |det J|, so the weight of the fold region is a
one-dimensional integral, done here on a fine grid.
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.observables.fold_weight import fold_weight, make_flow_log_weight

L = 2.0
CHAINS = 256


def _ring_flow(a):
    def jacobian(params, x):
        del params
        zeta = x + a * L / (2 * np.pi) * jnp.sin(2 * np.pi * x / L)
        return zeta, (1 + a * jnp.cos(2 * np.pi * x / L)).reshape(1, 1)

    return SimpleNamespace(jacobian=jacobian)


def _exact(a, delta=0.0):
    theta = np.linspace(0, 2 * np.pi, 2_000_001)[:-1]
    det = 1 + a * np.cos(theta)
    return np.sum(np.abs(det) * (det < delta)) / np.sum(np.abs(det))


def _estimate(a, key=0, delta=0.0, gamma=0.3, n_steps=200):
    log_weight = make_flow_log_weight(_ring_flow(a), lambda occ, zeta: jnp.zeros((), complex))
    x0 = jnp.full((CHAINS, 1, 1), 0.01)  # all chains start far from the fold (x = L / 2)
    run = jax.jit(lambda k: fold_weight(k, log_weight, None, None, x0, box_length=L,
                                        gamma=gamma, delta=delta, n_steps=n_steps))
    return run(jax.random.key(key))


@pytest.mark.parametrize("a, delta", [(2.0, 0.0), (1.1, 0.0), (0.8, 0.5)])
def test_fold_weight_matches_the_exact_ring_integral(a, delta):
    exact = _exact(a, delta)
    result = _estimate(a, delta=delta)
    assert 0.2 < float(result.acceptance) < 0.9
    assert float(result.error) < 0.2 * exact  # the error bar means something
    assert abs(float(result.value) - exact) < 4 * float(result.error), (result, exact)
    assert float(result.tempered_fraction) > float(result.value)  # tempering over-samples R


def test_no_fold_gives_zero_weight_and_counts_its_samples():
    result = _estimate(0.9)  # det >= 0.1 everywhere
    assert float(result.value) == 0.0 and float(result.tempered_fraction) == 0.0
    assert int(result.n_samples) == CHAINS * 200


def test_bad_arguments_raise_before_sampling():
    log_weight = make_flow_log_weight(_ring_flow(2.0), lambda occ, zeta: jnp.zeros((), complex))
    x0 = jnp.zeros((4, 1, 1))
    with pytest.raises(ValueError, match="gamma"):
        fold_weight(jax.random.key(0), log_weight, None, None, x0, box_length=L, gamma=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        fold_weight(jax.random.key(0), log_weight, None, None, x0, box_length=L, n_steps=1)

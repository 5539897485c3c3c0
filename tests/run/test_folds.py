"""The fold check of uncertified box flows, including spin-adapted and several flows."""

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.observables.fold_weight import make_flow_log_weight
from fermiflow.run.build import build_pieces, log_slater_k
from fermiflow.run.config import config_from_toml
from fermiflow.run.folds import make_fold_check

PAIR = """
[system]
kind = "electron_gas"
dim = 2
n_up = 1
n_down = 1
rs = 2.0
theta = 0.5
emax = 4
twist = [0.25, 0.25]
[model]
spin_adapted = true
parity_flows = true
certify = false
depth = 1
width_one = 4
width_two = 4
n_frequencies = 1
init_scale = 0.3
[sampler]
batch = 8
"""


def test_fold_log_weight_is_the_log_density_of_each_state():
    """log|Psi_K|^2 of the fold check equals 2 Re log Psi_K of the model, K by K.

    The even and odd flows get different params, so a check that used one flow for
    every K (the pre-existing single-flow path) would fail for the odd states.
    """
    config = config_from_toml(PAIR)
    problem = build_pieces(config).problem
    assert make_fold_check(config, problem, log_slater_k(problem)) is not None
    key_params, key_x = jax.random.split(jax.random.PRNGKey(3))
    _, params = problem.init_params(key_params)
    params = jax.tree.map(  # move every leaf off its init, differently per flow
        lambda leaf: leaf + 0.2 * jax.random.normal(jax.random.PRNGKey(leaf.size), leaf.shape),
        params)
    log_weight = jax.jit(make_flow_log_weight(problem.base_flow.apply, log_slater_k(problem),
                                              flow_of=problem.flow_of))
    length = problem.box_length
    x = jax.random.uniform(key_x, (4, 2, 2), jnp.float64, 0.0, length)
    for occ in ([0, 1], [1, 0], [2, 2], [3, 1]):  # even, odd, doubly occupied, odd
        occ = jnp.asarray(occ)
        for xi in x:
            value, margin = log_weight(params, occ, xi)
            expected = 2 * jnp.real(problem.log_psi(params, occ, xi))
            assert float(margin) > 0  # no fold at these points
            np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-10)


def test_certified_and_trap_flows_need_no_fold_check():
    config = config_from_toml(PAIR, ("model.certify=true",))
    problem = build_pieces(config).problem
    assert make_fold_check(config, problem, log_slater_k(problem)) is None

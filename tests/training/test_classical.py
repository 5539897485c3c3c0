"""Tests of the classical Coulomb gas mode (fermiflow.training.classical).

Exact: the pair free energy against the coupling = 0 closed form and an independent
Gauss-Legendre quadrature; the reparameterized gradient against central finite
differences at fixed base noise; the NaN bookkeeping, the scale bound and the
evaluator against hand computations. Statistical: training at coupling = 0 (the exact
density is a Gaussian) converges to F_exact within 5 sigma. The acceptance case (N = 2,
2D, coupling 1, T = 0.5) is the bench case ``classical_pair`` (tests/test_acceptance.py).

Coupling 0 closed form: H = sum_i |x_i|^2 / 2 (omega = 1) for two particles in 2D gives
Z = int d^4 x exp(-H / T) = (2 pi T)^2, so F = -T ln((2 pi T)^2).
"""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fermiflow.hamiltonians.classical_exact import classical_pair_free_energy
from fermiflow.hamiltonians.harmonic import make_classical_coulomb_gas_energy
from fermiflow.models.classical_flow import make_classical_flow
from fermiflow.training.classical import (
    ClassicalMetrics,
    classical_adam,
    make_classical_evaluator,
    make_classical_step,
    train_classical,
)

T = 0.5


def _assert_consistent(metrics, exact, *, k=5.0, max_stderr):
    """|F - F_exact| < k sigma, with a sigma small enough to make it a test."""
    stderr = float(metrics.estimates.free_energy.error)
    assert stderr < max_stderr, f"too noisy to test: stderr={stderr:.2e}"
    deviation = float(metrics.estimates.free_energy.value) - exact
    assert abs(deviation) < k * stderr, (
        f"F - F_exact = {deviation:.3e} = {deviation / stderr:.1f} sigma"
    )


def _params(flow, seed=0, dtype=jnp.float64):
    # jit: the eager (op-by-op) flax init is many times slower than its compile.
    return jax.jit(flow.init)(jax.random.key(seed), jnp.zeros((2, 2), dtype))


def _batch_free_energy(flow, energy, params, key, batch):
    x, log_prob = flow.sample(key, params, batch)
    return jnp.mean(T * log_prob + jax.vmap(energy)(x))


def test_reparameterized_gradient_matches_finite_differences(key):
    """grad of the batch F at fixed base noise: sample's log_prob is differentiable."""
    # A small backflow (cheap to compile); the code path is the one of any size.
    flow = make_classical_flow(n=2, dim=2, depth=1, width_one=4, width_two=4, init_scale=0.2)
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=1.0)
    params = _params(flow, seed=1)
    key_sample, key_direction = jax.random.split(key)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key_direction, len(leaves))
    direction = treedef.unflatten(
        [jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)]
    )
    value_and_grad = jax.jit(
        jax.value_and_grad(lambda p: _batch_free_energy(flow, energy, p, key_sample, 64))
    )
    _, grad = value_and_grad(params)
    pairs = zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
    directional = sum(jnp.vdot(g, d) for g, d in pairs)
    eps = 1e-5

    def along(shift):
        return value_and_grad(jax.tree.map(lambda p, d: p + shift * d, params, direction))[0]

    plus, minus = along(eps), along(-eps)
    assert abs(float(directional)) > 1e-2  # the test is not vacuous
    np.testing.assert_allclose(directional, (plus - minus) / (2 * eps), rtol=1e-7)


class _ToyFlow:
    """x = w (1 + scale_one) z, z ~ N(0, I), log_prob = -|x|^2 / 2 (normalization irrelevant).

    With nan_every, every nan_every-th sample gets a NaN log_prob; ``0 * sqrt(c)`` has a
    NaN gradient at c = 0.
    """

    def __init__(self, nan_every=None):
        self.nan_every = nan_every

    def sample(self, key, params, batch):
        p = params["params"]
        z = jax.random.normal(key, (batch, 2, 2), p["w"].dtype)
        x = p["w"] * (1 + p["scale_one"] + 0 * p["scale_pair"]) * z
        log_prob = -0.5 * jnp.sum(x**2, (1, 2)) + 0 * jnp.sqrt(p["c"])
        if self.nan_every is None:
            return x, log_prob
        return x, jnp.where(jnp.arange(batch) % self.nan_every == 0, jnp.nan, log_prob)


def _toy_params(c=1.0, w=0.7, scale_one=0.0, scale_pair=0.0, dtype=jnp.float64):
    values = dict(w=w, c=c, scale_one=scale_one, scale_pair=scale_pair)
    return {"params": {k: jnp.asarray(v, dtype) for k, v in values.items()}}


def _toy_setup(c=1.0, nan_every=4, batch=16, optimizer=None, dtype=jnp.float64, **kwargs):
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=0.0)
    optimizer = optax.sgd(0.1) if optimizer is None else optimizer
    trainer = make_classical_step(
        _ToyFlow(nan_every), energy, temperature=T, batch=batch, optimizer=optimizer, **kwargs
    )
    return trainer, trainer.init(jax.random.key(3), _toy_params(c=c, dtype=dtype))


def test_nonfinite_samples_are_counted_and_left_out():
    trainer, state = _toy_setup(c=1.0)
    new_state, metrics = jax.jit(trainer.step)(state)
    key_sample = jax.random.split(state.key)[0]
    z = np.asarray(jax.random.normal(key_sample, (16, 2, 2)))
    good = np.arange(16) % 4 != 0
    z2 = np.sum(z**2, (1, 2))[good]
    w = 0.7
    f_loc = (1 - T) * w**2 * z2 / 2  # T (-w^2 z^2 / 2) + w^2 z^2 / 2
    assert int(metrics.n_nonfinite) == 4 and int(metrics.skipped) == 0
    np.testing.assert_allclose(metrics.estimates.free_energy.value, f_loc.mean(), rtol=1e-12)
    np.testing.assert_allclose(metrics.estimates.free_energy.error,
                               f_loc.std(ddof=1) / np.sqrt(12), rtol=1e-12)
    np.testing.assert_allclose(metrics.estimates.energy.value, (w**2 * z2 / 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(metrics.estimates.entropy.value, (w**2 * z2 / 2).mean(), rtol=1e-12)
    grad_w = ((1 - T) * w * z2).mean()
    np.testing.assert_allclose(new_state.params["params"]["w"], w - 0.1 * grad_w, rtol=1e-12)
    assert int(new_state.step) == 1


def test_nonfinite_gradient_skips_the_update():
    trainer, state = _toy_setup(c=0.0)
    new_state, metrics = jax.jit(trainer.step)(state)
    assert int(metrics.skipped) == 1 and np.isfinite(metrics.estimates.free_energy.value)
    chex.assert_trees_all_equal(new_state.params, state.params)
    chex.assert_trees_all_equal(new_state.opt_state, state.opt_state)
    assert int(new_state.step) == 1
    assert not np.array_equal(jax.random.key_data(new_state.key), jax.random.key_data(state.key))


def test_scale_bound_projects_the_residual_scales():
    trainer, _ = _toy_setup(nan_every=None, optimizer=optax.sgd(0.0), scale_bound=0.9)
    params = _toy_params(scale_one=-0.6, scale_pair=0.9)
    state, _ = jax.jit(trainer.step)(trainer.init(jax.random.key(0), params))
    scales = state.params["params"]
    # n = 2: |s_one| + 2 |s_pair| = 2.4 is shrunk by 0.9 / 2.4 onto the bound.
    np.testing.assert_allclose(scales["scale_one"], -0.6 * 0.9 / 2.4, rtol=1e-12)
    np.testing.assert_allclose(scales["scale_pair"], 0.9 * 0.9 / 2.4, rtol=1e-12)
    np.testing.assert_allclose(scales["w"], 0.7, rtol=1e-12)
    inside = _toy_params(scale_one=0.1, scale_pair=0.2)
    state, _ = jax.jit(trainer.step)(trainer.init(jax.random.key(0), inside))
    chex.assert_trees_all_equal(state.params, inside)
    with pytest.raises(ValueError, match="scale_bound"):
        trainer.init(jax.random.key(0), {"w": jnp.ones(())})


def test_evaluator_pools_the_chunks(key):
    flow = _ToyFlow(nan_every=5)
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=1.0)
    params = _toy_params(w=1.3)
    evaluate = make_classical_evaluator(flow, energy, temperature=T, batch=32, n_chunks=3)
    metrics = jax.jit(evaluate)(key, params)
    chex.assert_shape(list(metrics), ())
    samples = [flow.sample(k, params, 32) for k in jax.random.split(key, 3)]
    x = np.concatenate([s[0] for s in samples])
    log_prob = np.concatenate([s[1] for s in samples])
    h = np.asarray(jax.vmap(energy)(x))
    good = np.isfinite(log_prob)
    h, log_prob = h[good], log_prob[good]
    f_loc = T * log_prob + h
    n = good.sum()
    assert n == 96 - 3 * 7  # indices 0, 5, ..., 30 of each chunk
    expected = [
        f_loc.mean(),
        f_loc.std(ddof=1) / np.sqrt(n),
        h.mean(),
        h.std(ddof=1) / np.sqrt(n),
        -log_prob.mean(),
        log_prob.std(ddof=1) / np.sqrt(n),
    ]
    e = metrics.estimates
    got = [x for q in (e.free_energy, e.energy, e.entropy) for x in (q.value, q.error)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert int(metrics.n_nonfinite) == 96 - n and int(metrics.skipped) == 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_step_and_evaluator_keep_the_dtype(dtype):
    trainer, state = _toy_setup(nan_every=None, dtype=dtype)
    state, metrics = jax.jit(trainer.step)(state)
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=0.0)
    evaluate = make_classical_evaluator(_ToyFlow(), energy, temperature=T, batch=8, n_chunks=2)
    evaluated = jax.jit(evaluate)(jax.random.key(0), state.params)
    values = [x for m in (metrics, evaluated) for e in m.estimates if e is not None
              for x in (e.value, e.error)]
    for leaf in jax.tree.leaves(state.params) + values:
        assert leaf.dtype == dtype
    assert metrics.n_nonfinite.dtype == jnp.int32 and metrics.skipped.dtype == jnp.int32


def test_step_is_traced_once():
    trainer, state = _toy_setup()
    step = jax.jit(chex.assert_max_traces(trainer.step, n=1))
    for _ in range(3):
        state, _ = step(state)
    assert int(state.step) == 3


def test_train_classical_matches_single_steps():
    trainer, state = _toy_setup(nan_every=None, optimizer=classical_adam(1e-2))
    blocks = []
    final, history = train_classical(
        trainer.step,
        state,
        n_steps=5,
        log_every=2,
        callback=lambda s, m: blocks.append(len(m.estimates.free_energy.value)),
    )
    assert blocks == [2, 2, 1] and int(final.step) == 5
    assert isinstance(history, ClassicalMetrics)
    chex.assert_shape(jax.tree.leaves(history), (5,))
    step = jax.jit(trainer.step)
    manual = []
    for _ in range(5):
        state, metrics = step(state)
        manual.append(metrics.estimates.free_energy.value)
    np.testing.assert_allclose(history.estimates.free_energy.value, manual, rtol=1e-10)
    chex.assert_trees_all_close(final.params, state.params, rtol=1e-10)


def test_validation_errors():
    flow = make_classical_flow(n=2, dim=2)
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=0.0)
    adam = classical_adam(1e-2)
    kwargs = dict(temperature=T, batch=8, optimizer=adam)
    with pytest.raises(ValueError, match="temperature"):
        make_classical_step(flow, energy, **{**kwargs, "temperature": 0.0})
    with pytest.raises(ValueError, match="batch"):
        make_classical_step(flow, energy, **{**kwargs, "batch": 0})
    with pytest.raises(ValueError, match="optimizer"):
        make_classical_step(flow, energy, **{**kwargs, "optimizer": "adam"})
    with pytest.raises(ValueError, match="scale_bound"):
        make_classical_step(flow, energy, **kwargs, scale_bound=1.0)
    with pytest.raises(ValueError, match="flow"):
        make_classical_step(object(), energy, **kwargs)
    with pytest.raises(ValueError, match="energy_fn"):
        make_classical_step(flow, None, **kwargs)
    with pytest.raises(ValueError, match="n_chunks"):
        make_classical_evaluator(flow, energy, temperature=T, batch=8, n_chunks=0)
    with pytest.raises(ValueError, match="learning_rate"):
        classical_adam(-1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        classical_adam(1e-2, n_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="final_fraction"):
        classical_adam(1e-2, n_steps=10, final_fraction=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        train_classical(lambda s: (s, None), None, n_steps=0)
    for bad in [
        dict(temperature=-1.0),
        dict(temperature=1.0, coupling=-1.0),
        dict(temperature=1.0, dim=4),
        dict(temperature=1.0, omega=0.0),
    ]:
        with pytest.raises(ValueError, match=next(iter(bad)) if len(bad) == 1 else list(bad)[1]):
            classical_pair_free_energy(**bad)


def test_training_at_zero_coupling_converges_to_the_gaussian():
    """Two oscillators: the exact p is N(0, T I); the base N(0, 0.64 I) starts 0.035 above.

    Measured (seed 0): F - F_exact = 2.6e-6 +- 3.2e-6 after 300 steps (65536 samples).
    """
    flow = make_classical_flow(n=2, dim=2, base_scale=0.8)
    energy = make_classical_coulomb_gas_energy(dim=2, coupling=0.0)
    n_steps = 300
    optimizer = classical_adam(1e-2, n_steps=n_steps, final_fraction=0.1)
    trainer = make_classical_step(flow, energy, temperature=T, batch=256, optimizer=optimizer)
    state = trainer.init(jax.random.key(1), _params(flow))
    state, history = train_classical(trainer.step, state, n_steps=n_steps, log_every=n_steps)
    exact = classical_pair_free_energy(temperature=T, coupling=0.0)
    assert history.estimates.free_energy.value[0] - exact > 0.03  # it started far away
    assert history.n_nonfinite.sum() == 0 and history.skipped.sum() == 0
    evaluate = make_classical_evaluator(flow, energy, temperature=T, batch=4096, n_chunks=4)
    metrics = jax.jit(evaluate)(jax.random.key(2), state.params)
    assert int(metrics.n_nonfinite) == 0
    # The variance of F_loc vanishes at the optimum, so sigma shrinks with the error.
    _assert_consistent(metrics, exact, max_stderr=1e-4)


def _start_at_identity(params, *, scale_one, scale_pair):
    """As benchmarks/bench_classical.py: zero amplitude heads, large residual scales."""
    inner = dict(params["params"])
    for name, leaf in inner.items():
        if isinstance(leaf, dict) and leaf["kernel"].shape[-1] == 1:
            inner[name] = jax.tree.map(jnp.zeros_like, leaf)
    inner["scale_one"] = jnp.full_like(inner["scale_one"], scale_one)
    inner["scale_pair"] = jnp.full_like(inner["scale_pair"], scale_pair)
    return {**params, "params": inner}


def test_start_at_identity_is_the_identity(key):
    flow = make_classical_flow(n=2, dim=2, base_scale=2.0)
    params = _start_at_identity(_params(flow), scale_one=1.0, scale_pair=2.0)
    x, log_prob = jax.jit(flow.sample, static_argnums=2)(key, params, 8)
    z = 2.0 * jax.random.normal(key, (8, 2, 2))
    np.testing.assert_allclose(x, z, rtol=1e-12)
    log_normal = -0.5 * np.sum(np.asarray(z) ** 2, (1, 2)) / 4 - 4 * np.log(2 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(log_prob, log_normal, rtol=1e-12)

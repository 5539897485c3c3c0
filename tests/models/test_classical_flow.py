"""Tests of the classical flow density log p(x) = log N(z; 0, s^2) - log|det dT/dz|.

The normalization integral of p is computed by quadrature for N = 2 in 1D and 2D,
with the residual scales raised so that the flow is far from the identity (asserted).
The flow parameters are fixed (PARAMS_KEY): for them det dT/dz > 0 on the whole
quadrature domain (in 1D the first fold is at |z| = 12.5; the integrand is finite on
both grids, asserted). Other seeds at SCALE fold space from |z| = 6.2-18.7 on (1D,
seeds 0-5): negligible mass, but Newton fails there and log_prob is NaN.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.models.backflow import make_backflow
from fermiflow.models.classical_flow import make_classical_flow

PARAMS_KEY = 1  # seed of the flow parameters (see module docstring)
SCALE = 0.2  # residual scales for N = 2: |s_one| + 2 (N - 1) |s_pair| = 0.6 < 1
N_SAMPLES = 64


def _with_scales(params, value):
    """Set every learnable residual scale ('scale*' leaves) to value."""

    def set_scale(path, leaf):
        is_scale = str(path[-1].key).startswith("scale")
        return jnp.full_like(leaf, value) if is_scale else leaf

    return jax.tree_util.tree_map_with_path(set_scale, params)


@functools.cache
def _flow_and_params(n, dim, scale):
    flow = make_classical_flow(n=n, dim=dim)
    params = flow.init(jax.random.key(PARAMS_KEY), jnp.zeros((n, dim)))
    return flow, _with_scales(params, scale)


def _trapezoid(half_width, spacing):
    """Nodes and weights of the trapezoid rule on [-half_width, half_width]."""
    nodes = np.arange(-half_width, half_width + spacing / 2, spacing)
    weights = np.full(len(nodes), spacing)
    weights[[0, -1]] = spacing / 2
    return nodes, weights


def _gauss_legendre(length, n_nodes):
    """Nodes and weights of Gauss-Legendre on [0, length] (no node at 0)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    return (nodes + 1) * length / 2, weights * length / 2


def _grid_1d():
    """Quadrature for N = 2 in 1D in x1 = c + r/2, x2 = c - r/2 (dx1 dx2 = dc dr).

    p has a kink on x1 = x2 (the flow reads |x1 - x2|) and log_prob is NaN exactly
    there (0/0 in the derivative of |r|), so r uses Gauss-Legendre on [-12, 0] and
    [0, 12] separately (spectral on each smooth piece, no node at r = 0), and c the
    trapezoid rule on [-6, 6] (spectral for smooth, fast-decaying integrands).
    Convergence of integral - 1 (c half-width, c spacing, r length, r nodes per side):
      (8, 0.15, 14, 50) -4.3e-7;  (8, 0.125, 14, 50) 9.6e-8;  (8, 0.1, 14, 50) -1.0e-8
      (8, 0.08, 14, 30) -4.5e-6;  (8, 0.08, 14, 40) 1.8e-7;   (8, 0.08, 14, 50) -6.1e-9
      (8, 0.08, 10, 50) -1.2e-6 (r truncated);  (6, 0.08, 14, 50) -6.1e-9
      (6, 0.12, 12, 60) 1.5e-8;   (6, 0.1, 12, 60) -9.5e-9 (used here)
      (6, 0.08, 14, 80) -5.2e-11; (7, 0.06, 14, 90) -9.4e-12
    so this grid is accurate to ~1e-8 (TOLERANCE 1e-7).
    """
    center, center_weights = _trapezoid(6.0, 0.1)
    half, half_weights = _gauss_legendre(12.0, 60)
    r = np.concatenate([half, -half])
    r_weights = np.concatenate([half_weights, half_weights])
    c_grid, r_grid = np.meshgrid(center, r, indexing="ij")
    x = np.stack([c_grid + r_grid / 2, c_grid - r_grid / 2], -1)
    return x.reshape(-1, 2, 1), np.outer(center_weights, r_weights).reshape(-1)


def _grid_2d():
    """Quadrature for N = 2 in 2D, reduced to 3D by rotation invariance.

    With x1 = c + r/2, x2 = c - r/2 (unit Jacobian) and r = rho (cos t, sin t), the
    integral over c of p does not depend on t (p is rotation invariant, tested here
    too), so the integral is 2 pi int rho drho int d^2c p(c + rho e/2, c - rho e/2)
    with e = (1, 0): Gauss-Legendre in rho on [0, 10] (no node at the cone point
    rho = 0), the trapezoid rule in c on [-5, 5]^2.
    Convergence of integral - 1 (c half-width, c spacing, rho length, rho nodes):
      (5, 0.3, 10, 16) 6.9e-5;  (5, 0.25, 10, 16) 5.8e-5;  (5, 0.25, 10, 24) 6.9e-6
      (6, 0.2, 12, 32) -2.4e-6; (6, 0.15, 12, 48) 8.3e-8
    so this grid (5, 0.25, 10, 24) is accurate to ~1e-5 (TOLERANCE 1e-4).
    """
    center, center_weights = _trapezoid(5.0, 0.25)
    rho, rho_weights = _gauss_legendre(10.0, 24)
    cx, cy, rr = np.meshgrid(center, center, rho, indexing="ij")
    c_grid = np.stack([cx, cy], -1)
    r_grid = np.stack([rr, np.zeros_like(rr)], -1)
    x = np.stack([c_grid + r_grid / 2, c_grid - r_grid / 2], -2)
    weights = np.einsum("i,j,k->ijk", center_weights, center_weights, rho_weights)
    return x.reshape(-1, 2, 2), (weights * 2 * np.pi * rr).reshape(-1)


GRIDS = {1: _grid_1d, 2: _grid_2d}
TOLERANCE = {1: 1e-7, 2: 1e-4}


def _orthogonal(key, dim):
    """A random rotation (det +1) in 2D; parity x -> -x in 1D."""
    if dim == 1:
        return -jnp.eye(1)
    q, _ = jnp.linalg.qr(jax.random.normal(key, (dim, dim)))
    return q * jnp.sign(jnp.linalg.det(q))


@functools.cache
def _evaluate(dim, seed):
    """Evaluate everything the N = 2 tests compare in ONE jitted call.

    Compiling log_prob dominates the run time, so it is vmapped once over the grid
    and the samples together.

    The grid is also read as base points z, where N(z) |det dT/dz| is what log_prob
    would integrate to without its log-det term (same integral by z = T^-1(x)).
    """
    n = 2
    flow, params = _flow_and_params(n, dim, SCALE)
    backflow = make_backflow(n_up=n, n_down=0, dim=dim, box_length=None)
    grid, weights = GRIDS[dim]()
    key_sample, key_rotation = jax.random.split(jax.random.key(seed))
    rotation = _orthogonal(key_rotation, dim)

    @jax.jit
    def check(grid, key):
        x, sample_log_prob = flow.sample(key, params, N_SAMPLES)
        images = [x, x[:, ::-1], jnp.einsum("ed,bnd->bne", rotation, x)]
        points = jnp.concatenate([grid, *images])
        log_prob = jax.vmap(flow.log_prob, in_axes=(None, 0))(params, points)
        moved, log_det = jax.vmap(backflow.apply, in_axes=(None, 0))(params, grid)
        return dict(
            grid=log_prob[: len(grid)],
            images=log_prob[len(grid) :].reshape(3, N_SAMPLES),
            sample=sample_log_prob,
            log_det=log_det,
            move=jnp.max(jnp.abs(moved - grid), axis=(1, 2)),
        )

    out = {k: np.asarray(v) for k, v in check(grid, key_sample).items()}
    log_base = -0.5 * np.sum(grid**2, axis=(1, 2)) - n * dim * np.log(2 * np.pi) / 2
    return out | dict(weights=weights, log_base=log_base)


@pytest.mark.parametrize("dim", [pytest.param(1, marks=pytest.mark.slow), 2])  # 1D: 20 s
def test_normalization_by_quadrature(dim, seed):
    """The integral of exp(log_prob) over R^(2 dim) is 1 (see _grid_1d, _grid_2d)."""
    r = _evaluate(dim, seed)
    assert r["grid"].dtype == np.float64
    assert np.all(np.isfinite(r["grid"]))
    integral = np.sum(r["weights"] * np.exp(r["grid"]))
    assert abs(integral - 1) < TOLERANCE[dim], f"integral - 1 = {integral - 1:.2e}"


@pytest.mark.parametrize("dim", [1, 2])
def test_normalization_has_teeth(dim, seed):
    """Guard the normalization test against passing for a near-identity flow.

    The flow moves points where the base has mass, and dropping the log-det term
    would change the integral by far more than the tolerance.
    """
    r = _evaluate(dim, seed)
    mass = np.exp(r["log_base"]) > 1e-4
    assert np.max(r["move"][mass]) > 0.1  # Bohr; up to ~1 Bohr
    assert np.max(np.abs(r["log_det"][mass])) > 0.3  # up to 0.7 (1D), 1.1 (2D)
    without_det = np.sum(r["weights"] * np.exp(r["log_base"] + r["log_det"]))
    assert abs(without_det - 1) > 0.1, f"{without_det=}"  # 1.27 (1D), 1.84 (2D)


@pytest.mark.parametrize("dim", [1, 2])
def test_sample_log_prob_consistent_and_symmetric(dim, seed):
    r = _evaluate(dim, seed)
    chex.assert_shape(r["sample"], (N_SAMPLES,))
    assert r["sample"].dtype == r["images"].dtype == np.float64
    assert np.all(np.isfinite(r["sample"]))
    x, swapped, rotated = r["images"]
    # The Newton inverse converged: log_prob(x) reproduces the sample's log p.
    np.testing.assert_allclose(x, r["sample"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(swapped, x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(rotated, x, rtol=0, atol=1e-10)


def test_identity_flow_samples_the_base(key):
    """init_scale=0: T = identity, p = N(0, s^2 I) exactly; sample moments match."""
    n, dim, base_scale, batch = 3, 2, 1.7, 20_000
    # A small network: with init_scale=0 its size is irrelevant, and it runs faster.
    flow = make_classical_flow(
        n=n,
        dim=dim,
        base_scale=base_scale,
        init_scale=0.0,
        depth=1,
        width_one=4,
        width_two=4,
    )
    key_init, key_sample = jax.random.split(key)
    params = flow.init(key_init, jnp.zeros((n, dim)))
    x, log_prob = jax.jit(flow.sample, static_argnums=2)(key_sample, params, batch)
    chex.assert_shape(x, (batch, n, dim))
    exact = -0.5 * np.sum((np.asarray(x) / base_scale) ** 2, axis=(1, 2)) - n * dim * (
        np.log(base_scale) + 0.5 * np.log(2 * np.pi)
    )
    # log p(x) = log N(x; 0, s^2): z = x and log det = 0 exactly.
    np.testing.assert_allclose(log_prob, exact, rtol=1e-12)
    values = np.asarray(x).reshape(-1)  # all coordinates are iid N(0, s^2)
    count = values.size
    mean_stderr = base_scale / np.sqrt(count)
    var_stderr = base_scale**2 * np.sqrt(2 / count)
    assert mean_stderr < 1e-2 and var_stderr < 1e-2 * base_scale**2
    assert abs(values.mean()) < 5 * mean_stderr
    assert abs(np.mean(values**2) - base_scale**2) < 5 * var_stderr


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=0, dim=2), "n must be"),
        (dict(n=-1, dim=2), "n must be"),
        (dict(n=2, dim=2, base_scale=0.0), "base_scale"),
        (dict(n=2, dim=2, base_scale=-1.0), "base_scale"),
        (dict(n=2, dim=2, base_scale=float("inf")), "base_scale"),
        (dict(n=2, dim=2, n_newton=0), "n_newton"),
        (dict(n=2, dim=4), "dim"),
        (dict(n=2, dim=0), "dim"),
        (dict(n=2, dim=2, init_scale=-0.1), "init_scale"),
        (dict(n=2, dim=2, depth=0), "depth"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_classical_flow(**kwargs)


def test_float32_params_give_float32():
    """float64 is checked in the tests above (x64 is on)."""
    n, dim, dtype = 2, 2, jnp.float32
    flow = make_classical_flow(n=n, dim=dim, depth=1, width_one=4, width_two=4)
    params = flow.init(jax.random.key(0), jnp.zeros((n, dim), dtype))
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))

    @jax.jit
    def sample_and_log_prob(key):
        x, sample_log_prob = flow.sample(key, params, 4)
        return x, sample_log_prob, flow.log_prob(params, x[0])

    x, sample_log_prob, log_prob = sample_and_log_prob(jax.random.key(1))
    assert x.dtype == sample_log_prob.dtype == log_prob.dtype == dtype
    np.testing.assert_allclose(log_prob, sample_log_prob[0], rtol=1e-5)

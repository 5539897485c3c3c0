"""Structured derivatives of the backflow (jets) against plain JAX autodiff.

The reference is ``jax.jacfwd`` / ``jax.hessian`` of the backflow's plain forward pass
(order 0 of the same function, no custom JVP), for every architecture option: box and
trap, one and two spin blocks, certified cap, radial pair term and radial blocks, the
free one-body displacement, the Fourier pair field, a fully symmetric network, 1D to
3D, depth 1 to 3. Scales are raised far from the identity so that every term contributes.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import JetApply, invert_flow

CASES = {
    "box_two_spins": dict(n_up=3, n_down=2, dim=2, box_length=2.0, free_displacement=True,
                          pair_field=2),
    "box_3d_radial_blocks": dict(n_up=4, n_down=0, dim=3, box_length=3.0, radial_blocks=2,
                                 pair_field=1),
    "box_uncertified": dict(n_up=3, n_down=2, dim=2, box_length=2.0, certify=False,
                            n_radial=0, free_displacement=True),
    "box_symmetric": dict(n_up=3, n_down=1, dim=2, box_length=2.5, spin_symmetric=True,
                          radial_blocks=1),
    "trap_two_spins": dict(n_up=3, n_down=2, dim=2, box_length=None),
    "trap_3d_depth3": dict(n_up=2, n_down=2, dim=3, box_length=None, depth=3),
    "trap_1d_depth1": dict(n_up=5, n_down=0, dim=1, box_length=None, depth=1, width_one=3),
}
# Two cases (box and trap, two spin blocks) run by default; the rest with -m slow
# (one compile of 15-25 s each).
DEFAULT = ("box_two_spins", "trap_two_spins")
NAMES = [name if name in DEFAULT else pytest.param(name, marks=pytest.mark.slow)
         for name in CASES]
SCALE = {True: 20.0, False: 2.0}  # box (capped or small), trap: uncapped, keep it unfolded


@functools.cache
def _case(name, dtype=jnp.float64):
    kwargs = CASES[name]
    flow = make_backflow(**kwargs)
    n, dim, box = kwargs["n_up"] + kwargs["n_down"], kwargs["dim"], kwargs["box_length"]
    x = jax.random.normal(jax.random.key(1), (n, dim), dtype) * (box or 1.0)
    params = flow.init(jax.random.key(0), x)
    factor = SCALE[box is not None] * (0.1 if "uncertified" in name else 1.0)
    params = jax.tree_util.tree_map_with_path(
        lambda path, a: a * factor if str(path[-1].key).startswith("scale") else a, params
    )
    if "pair_field" in params["params"]:  # starts at zero: give it a field of its own
        field = params["params"]["pair_field"]
        params["params"]["pair_field"] = 0.05 * box * jax.random.normal(
            jax.random.key(2), field.shape, field.dtype)
    return flow, params, x


def _plain(flow, params):
    return lambda y: flow.apply.jet(params, y, 0).value


@functools.cache
def _compare(name):
    """One jitted program per case: structured results and their autodiff references."""
    flow, params, x = _case(name)
    n, dim = x.shape
    weights = jax.random.normal(jax.random.key(2), x.shape, x.dtype)

    def compare(params, x):
        plain = _plain(flow, params)
        hessian = jax.hessian(lambda v: plain(v.reshape(n, dim)).reshape(-1))(x.reshape(-1))
        zeta, jac, lap = flow.apply.forward_laplacian(params, x)

        def loss(apply):
            return lambda p: jnp.sum(weights * apply(p))

        return dict(
            zeta=zeta, jac=jac, lap=lap, jac_1=flow.apply.jacobian(params, x)[1],
            apply=flow.apply(params, x),
            plain=plain(x), reference_jac=jax.jacfwd(plain)(x).reshape(n * dim, n * dim),
            reference_lap=jnp.trace(hessian, axis1=1, axis2=2).reshape(n, dim),
            # jacfwd, the parameter gradients and the Hessian of zeta through the custom JVP
            custom_jac=jax.jacfwd(lambda y: flow.apply(params, y)[0])(x),
            custom_grad=jax.grad(loss(lambda p: flow.apply(p, x)[0]))(params),
            direct_grad=jax.grad(loss(lambda p: flow.apply.jet(p, x, 0).value))(params),
            custom_hessian=jax.hessian(lambda y: flow.apply(params, y)[0][0, 0])(x),
            reference_hessian=hessian[0].reshape(n, dim, n, dim),
        )

    return jax.jit(compare)(params, x), x


@pytest.mark.parametrize("name", NAMES)
def test_jacobian_and_laplacian_match_autodiff(name):
    out, x = _compare(name)
    assert float(jnp.max(jnp.abs(out["zeta"] - x))) > 1e-4  # away from the identity
    scale = max(1.0, float(jnp.max(jnp.abs(out["reference_lap"]))))
    assert scale > 1e-3
    np.testing.assert_allclose(out["zeta"], out["plain"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(out["jac"], out["reference_jac"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["jac_1"], out["jac"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(out["lap"], out["reference_lap"], rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_and_custom_jvp_match_autodiff(name):
    out, x = _compare(name)
    zeta, log_det = out["apply"]
    sign, reference = jnp.linalg.slogdet(out["reference_jac"])
    assert float(sign) > 0
    np.testing.assert_allclose(log_det, reference, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(zeta, out["plain"], rtol=0, atol=1e-13)
    n, dim = x.shape
    np.testing.assert_allclose(out["custom_jac"].reshape(n * dim, n * dim),
                               out["reference_jac"], rtol=0, atol=1e-12)
    chex.assert_trees_all_close(out["custom_grad"], out["direct_grad"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(out["custom_hessian"], out["reference_hessian"], atol=1e-10)


@pytest.mark.slow  # 27 s; the exact sampler's tests invert the backflow by default
def test_newton_inverse_uses_the_structured_jacobian():
    flow, params, x = _case("box_two_spins")
    zeta, _ = flow.apply(params, x)
    np.testing.assert_allclose(invert_flow(flow.apply, params, zeta), x, atol=1e-12)


@pytest.mark.slow  # float32 and vmapped compiles, 40 s
def test_vmapped_walkers_and_float32():
    flow, params, x = _case("box_two_spins")
    assert isinstance(flow.apply, JetApply)
    batch = x[None] + jax.random.uniform(jax.random.key(3), (4, *x.shape))
    zeta, log_det = jax.jit(jax.vmap(flow.apply, (None, 0)))(params, batch)
    chex.assert_shape([zeta, log_det], [batch.shape, (4,)])
    for b in range(4):
        np.testing.assert_allclose(log_det[b], flow.apply(params, batch[b])[1], atol=1e-12)
    zeta32, log_det32 = flow.apply(params, batch[0].astype(jnp.float32))
    lap32 = flow.apply.forward_laplacian(params, batch[0].astype(jnp.float32))[2]
    assert zeta32.dtype == log_det32.dtype == lap32.dtype == jnp.float32
    np.testing.assert_allclose(log_det32, log_det[0], rtol=1e-4, atol=1e-4)

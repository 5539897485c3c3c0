"""Tests of the permutation-equivariant flows: residual backflow and neural ODE.

Every flow is checked in a periodic box and in free space (a trap), in 2D and 3D, for
two seeds, with its residual scales raised (STRONG) so that it moves particles by
0.05-0.35 Bohr and changes volumes by e^0.5 or more (asserted). One jitted function
per flow evaluates everything the property tests compare (compilation dominates the
run time), cached per seed.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import pytest

from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import dense_slogdet, invert_flow
from fermiflow.models.ode_flow import make_ode_flow

N_UP, N_DOWN = 3, 2
BOX_LENGTH = 2.0
WITHIN = jnp.array([1, 2, 0, 4, 3])  # a 3-cycle of the up spins, a swap of the downs
ACROSS = jnp.array([3, 1, 2, 0, 4])  # swaps an up and a down particle
N_CONFIGS = 4
SEEDS = (0, 1)
# The backflow's architecture is tested uncapped (certify=False) so that it can be
# driven far from the identity; the certified cap (a scalar factor on the pair scale)
# and the radial pair term are tested in test_certified_backflow.py.
FACTORIES = {
    "backflow": functools.partial(make_backflow, certify=False, n_radial=0),
    "ode": make_ode_flow,
}
# Residual scales that make the flows far from the identity (see test_far_from_identity).
# They are the largest round values for which no configuration here folds space and
# Newton inverts to 1e-14; max |log_det| is 0.7-5, a volume change of e^0.7 to e^5.
STRONG = {
    ("backflow", "box"): 0.2,
    ("backflow", "trap"): 0.03,
    ("ode", "box"): 0.8,
    ("ode", "trap"): 0.1,
}
CASES = [
    (kind, geometry, dim, seed)
    for kind in FACTORIES
    for geometry in ("box", "trap")
    for dim in (2, 3)
    for seed in SEEDS
]


def _box_length(geometry):
    return BOX_LENGTH if geometry == "box" else None


@functools.cache
def _flow(kind, geometry, dim):
    return FACTORIES[kind](
        n_up=N_UP, n_down=N_DOWN, dim=dim, box_length=_box_length(geometry)
    )


def _with_scales(params, value):
    """Set every learnable residual scale ('scale*' leaves) to value."""

    def set_scale(path, leaf):
        is_scale = str(path[-1].key).startswith("scale")
        return jnp.full_like(leaf, value) if is_scale else leaf

    return jax.tree_util.tree_map_with_path(set_scale, params)


def _configs(key, geometry, dim, dtype=jnp.float64):
    shape = (N_CONFIGS, N_UP + N_DOWN, dim)
    if geometry == "box":  # anywhere, not only in [0, L): flows never wrap
        return jax.random.uniform(key, shape, dtype, -BOX_LENGTH, 2 * BOX_LENGTH)
    return jax.random.normal(key, shape, dtype)


@functools.cache
def _check_fn(kind, geometry, dim):
    flow = _flow(kind, geometry, dim)

    def check(params, x, lattice, shift, rotation):
        images = {
            "zeta": x,
            "within": x[WITHIN],
            "across": x[ACROSS],
            "lattice": x + BOX_LENGTH * lattice,
            "shift": x + shift,
            "rotated": x @ rotation.T,
        }
        # One vmapped apply for all images keeps the compiled program small.
        zetas, log_dets = jax.vmap(flow.apply, in_axes=(None, 0))(
            params, jnp.stack(list(images.values()))
        )
        out = dict(zip(images, zetas, strict=True))
        sign, reference = dense_slogdet(lambda y: flow.apply(params, y)[0], x)
        inverse = invert_flow(flow.apply, params, out["zeta"])
        values = dict(log_det=log_dets[0], sign=sign, reference=reference)
        return out | values | {"inverse": inverse, "x": x}

    return jax.jit(jax.vmap(check, in_axes=(None, 0, 0, 0, None)))


@functools.cache
def _evaluate(kind, geometry, dim, seed, scale="strong"):
    key_x, key_init, key_lattice, key_shift, key_rotation = jax.random.split(
        jax.random.key(seed), 5
    )
    x = _configs(key_x, geometry, dim)
    params = _flow(kind, geometry, dim).init(key_init, x[0])
    if scale == "strong":
        params = _with_scales(params, STRONG[kind, geometry])
    elif scale is not None:
        params = _with_scales(params, scale)
    lattice = jax.random.randint(key_lattice, x.shape, -2, 3).astype(x.dtype)
    shift = jax.random.uniform(key_shift, (N_CONFIGS, 1, dim), x.dtype, -3, 3)
    rotation, _ = jnp.linalg.qr(jax.random.normal(key_rotation, (dim, dim)))
    out = _check_fn(kind, geometry, dim)(params, x, lattice, shift, rotation)
    symmetries = {
        "lattice_shift": BOX_LENGTH * lattice,
        "common_shift": shift,
        "rotation": rotation,
    }
    return out | symmetries | {"params": params}


def _max_abs(a):
    return float(jnp.max(jnp.abs(a)))


parametrize_cases = pytest.mark.parametrize("kind,geometry,dim,seed", CASES)
parametrize_box_cases = pytest.mark.parametrize(
    "kind,geometry,dim,seed", [c for c in CASES if c[1] == "box"]
)
parametrize_trap_cases = pytest.mark.parametrize(
    "kind,geometry,dim,seed", [c for c in CASES if c[1] == "trap"]
)


@parametrize_cases
def test_shapes_and_float64(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    chex.assert_shape(r["zeta"], (N_CONFIGS, N_UP + N_DOWN, dim))
    chex.assert_shape(r["log_det"], (N_CONFIGS,))
    assert r["zeta"].dtype == r["log_det"].dtype == jnp.float64


@parametrize_cases
def test_far_from_identity(kind, geometry, dim, seed):
    # Guards the other property tests against passing for a near-identity flow.
    r = _evaluate(kind, geometry, dim, seed)
    typical = BOX_LENGTH if geometry == "box" else 1.0
    assert _max_abs(r["zeta"] - r["x"]) > 0.04 * typical
    assert _max_abs(r["log_det"]) > 0.5


@parametrize_cases
def test_equivariant_under_permutations_within_spin_blocks(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert _max_abs(r["within"] - r["zeta"][:, WITHIN]) < 1e-10


@parametrize_cases
def test_swapping_opposite_spins_is_not_a_symmetry(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert _max_abs(r["across"] - r["zeta"][:, ACROSS]) > 1e-4


@parametrize_box_cases  # lattice shifts and translations: symmetries of the box only
def test_box_images_and_translations(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert _max_abs(r["lattice"] - (r["zeta"] + r["lattice_shift"])) < 1e-10
    assert _max_abs(r["shift"] - (r["zeta"] + r["common_shift"])) < 1e-10


@parametrize_trap_cases  # rotations about the centre: symmetries of the trap only
def test_trap_rotations(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert _max_abs(r["rotated"] - r["zeta"] @ r["rotation"].T) < 1e-10


@parametrize_cases
def test_log_det_equals_dense_jacobian_slogdet(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert bool(jnp.all(r["sign"] > 0)), "the flow folds space here"
    assert _max_abs(r["log_det"] - r["reference"]) < 1e-10


@parametrize_cases
def test_numerical_inverse_recovers_x(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed)
    assert _max_abs(r["inverse"] - r["x"]) < 1e-10


@parametrize_cases
def test_default_init_is_near_identity(kind, geometry, dim, seed):
    # Default init (init_scale = 1e-2) is in the linear regime around the identity:
    # the displacement and the log-det shrink tenfold with the scales.
    default = _evaluate(kind, geometry, dim, seed, scale=None)
    small = _evaluate(kind, geometry, dim, seed, scale=1e-3)
    typical = BOX_LENGTH if geometry == "box" else 1.0
    assert bool(jnp.all(jnp.isfinite(default["log_det"])))
    displacement = _max_abs(default["zeta"] - default["x"])
    assert 0 < displacement < 0.1 * typical
    assert _max_abs(default["log_det"]) < 0.5
    ratio = displacement / _max_abs(small["zeta"] - small["x"])
    assert 9 < ratio < 11
    log_det_ratio = _max_abs(default["log_det"]) / _max_abs(small["log_det"])
    assert 9 < log_det_ratio < 11


@parametrize_cases
def test_zero_scale_is_exactly_the_identity(kind, geometry, dim, seed):
    r = _evaluate(kind, geometry, dim, seed, scale=0.0)
    assert _max_abs(r["zeta"] - r["x"]) == 0
    assert _max_abs(r["log_det"]) == 0


@pytest.mark.parametrize("kind", FACTORIES)
@pytest.mark.parametrize("geometry", ["box", "trap"])
def test_float32_stays_float32_and_agrees_with_float64(kind, geometry):
    r = _evaluate(kind, geometry, 2, SEEDS[0])
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), r["params"])
    apply = jax.jit(jax.vmap(_flow(kind, geometry, 2).apply, in_axes=(None, 0)))
    zeta, log_det = apply(params32, r["x"].astype(jnp.float32))
    assert zeta.dtype == log_det.dtype == jnp.float32
    # float32 round-off relative to the size of the coordinates and of the log-det.
    typical = BOX_LENGTH if geometry == "box" else 1.0
    chex.assert_trees_all_close(
        zeta, r["zeta"].astype(jnp.float32), rtol=1e-5, atol=1e-5 * typical
    )
    chex.assert_trees_all_close(
        log_det, r["log_det"].astype(jnp.float32), rtol=1e-5, atol=1e-5
    )

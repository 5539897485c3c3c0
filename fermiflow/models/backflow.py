"""Discrete residual backflow zeta = x + residual(x) with an exact log-Jacobian.

FermiNet-style one- and two-particle streams (arXiv:1909.02487) feed a residual that
moves each particle along equivariant vectors:

  zeta_i = x_i + s_pair sum_{j != i} tanh(b_ij) u_ij  [+ s_one tanh(a_i) x_i  (trap)],

where u_ij is r_ij = x_i - x_j in free space and (L / 2 pi) sin(2 pi r_ij / L) in the
box, a_i and b_ij are read off the streams, and s_one, s_pair are learnable scales
initialised to ``init_scale``. Spin enters as a +-1 feature of each particle and the
streams average over each spin block separately, so T is equivariant under
permutations within a spin block but not across blocks.

Box: the streams start from periodic pair features only (cos / sin of 2 pi m r_ij / L
and the smooth periodic distance), never from absolute positions, hence
T(x + c) = T(x) + c and T(x + L e_i) = T(x) + L e_i. Free space: the streams start
from |x_i|^2 and |r_ij|, hence T commutes with rotations (and parity in 1D).

Invertibility is checked, not guaranteed: the residual amplitudes are tanh-bounded
times small learnable scales, and the log-det (``slogdet`` of the dense
``(n dim, n dim)`` Jacobian) is NaN wherever det <= 0. A positive determinant
everywhere makes T a bijection (a degree-one covering of the torus in the box; a
proper local diffeomorphism of R^(n dim) in free space while |s_one| + 2 (n - 1)
|s_pair| < 1 keeps T proper).

Units: Hartree atomic units, lengths in Bohr. Acts on a single configuration
``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax.numpy as jnp

from fermiflow.models.features import pair_geometry, periodic_harmonics, spin_feature
from fermiflow.models.flow import (
    Flow,
    check_flow_system,
    check_init_scale,
    value_and_log_det,
)
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = ["make_backflow"]


def _residual(old: Array, new: Array) -> Array:
    return old + new if old.shape == new.shape else new


class _Backflow(nn.Module):
    """zeta = x + residual(x) for one configuration (n, dim)."""

    n_up: int
    n_down: int
    box_length: float | None
    depth: int
    width_one: int
    width_two: int
    n_frequencies: int
    init_scale: float

    def _input_streams(self, x: Array, distance: Array) -> tuple[Array, Array]:
        spin = spin_feature(self.n_up, self.n_down, x.dtype)
        if self.box_length is None:
            one = jnp.concatenate([spin, jnp.sum(x**2, -1, keepdims=True)], -1)
            return one, distance[..., None]
        harmonics = periodic_harmonics(x, self.box_length, self.n_frequencies)
        scaled = distance[..., None] / jnp.asarray(self.box_length, x.dtype)
        return spin, jnp.concatenate([harmonics, scaled], -1)

    def _block_means(self, h_one: Array, h_two: Array) -> list[Array]:
        n = h_one.shape[0]
        blocks = [(0, self.n_up), (self.n_up, n)]
        means = []
        for start, stop in blocks:
            if stop > start:
                block_one = h_one[start:stop].mean(0, keepdims=True)
                means.append(jnp.broadcast_to(block_one, (n, h_one.shape[1])))
                means.append(h_two[:, start:stop].mean(1))
        return means

    def _scale(self, name: str, dtype) -> Array:
        init = nn.initializers.constant(self.init_scale)
        # Params initialised in float64 must not promote a float32 forward pass.
        return self.param(name, init, (), dtype).astype(dtype)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        dense = functools.partial(nn.Dense, dtype=x.dtype, param_dtype=x.dtype)
        geometry = pair_geometry(x, self.box_length)
        h_one, h_two = self._input_streams(x, geometry.distance)
        for _ in range(self.depth):
            mixed = jnp.concatenate([h_one, *self._block_means(h_one, h_two)], -1)
            h_one = _residual(h_one, jnp.tanh(dense(self.width_one)(mixed)))
            h_two = _residual(h_two, jnp.tanh(dense(self.width_two)(h_two)))
        n = x.shape[0]
        pair_in = jnp.concatenate(
            [
                h_two,
                jnp.broadcast_to(h_one[:, None, :], (n, n, h_one.shape[1])),
                jnp.broadcast_to(h_one[None, :, :], (n, n, h_one.shape[1])),
            ],
            -1,
        )
        amplitude = jnp.tanh(dense(1)(pair_in)[..., 0])
        # u_ii = 0 exactly in both geometries, so j = i drops out of the sum.
        shift = self._scale("scale_pair", x.dtype) * jnp.einsum(
            "ij,ijd->id", amplitude, geometry.direction
        )
        if self.box_length is None:
            one_body = jnp.tanh(dense(1)(h_one))
            shift = shift + self._scale("scale_one", x.dtype) * one_body * x
        return x + shift


def make_backflow(
    *,
    n_up: int,
    n_down: int,
    dim: int,
    box_length: float | None,
    depth: int = 2,
    width_one: int = 16,
    width_two: int = 16,
    n_frequencies: int = 3,
    init_scale: float = 1e-2,
) -> Flow:
    """Build the residual backflow and its exact dense log-Jacobian.

    Args:
      n_up: static, number of spin-up particles (first in x).
      n_down: static, number of spin-down particles (last in x).
      dim: static, 2 or 3 in the box; 1, 2 or 3 in free space.
      box_length: static, side L of the periodic box in Bohr, or None for a trap.
      depth: static, number of stream layers, >= 1.
      width_one: static, width of the one-particle stream.
      width_two: static, width of the two-particle stream.
      n_frequencies: static, number of harmonics m of the periodic pair features
        (box only; free space uses |r_ij|).
      init_scale: static, initial value of the learnable residual scales; the flow
        starts within about ``init_scale (n - 1) L / (2 pi)`` of the identity.
        0 gives exactly the identity.

    Returns:
      A :class:`Flow`; ``apply(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``
      with ``log_det`` NaN where ``det d zeta / d x <= 0`` (see module docstring).

    Raises:
      ValueError: for bad particle numbers, dim, box_length, widths, depth or scale.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_backflow(n_up=2, n_down=1, dim=2, box_length=3.0)
      >>> x = jax.random.uniform(jax.random.key(0), (3, 2)) * 3.0
      >>> zeta, log_det = flow.apply(flow.init(jax.random.key(1), x), x)
      >>> zeta.shape, log_det.shape, bool(jnp.abs(zeta - x).max() < 0.1)
      ((3, 2), (), True)
    """
    n_up, n_down, dim, box_length = check_flow_system(n_up, n_down, dim, box_length)
    module = _Backflow(
        n_up=n_up,
        n_down=n_down,
        box_length=box_length,
        depth=check_positive_int("depth", depth, "Use at least one stream layer."),
        width_one=check_positive_int("width_one", width_one),
        width_two=check_positive_int("width_two", width_two),
        n_frequencies=check_positive_int("n_frequencies", n_frequencies),
        init_scale=check_init_scale(init_scale),
    )
    shape = (n_up + n_down, dim)

    def init(key: PRNGKey, x: ArrayLike) -> Params:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        return module.init(key, x)

    def apply(params: Params, x: ArrayLike) -> tuple[Array, Array]:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        return value_and_log_det(lambda y: module.apply(params, y), x)

    return Flow(init, apply)

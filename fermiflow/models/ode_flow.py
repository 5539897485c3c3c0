"""Continuous flow: a neural ODE dx/dt = v(x) integrated by fixed-step RK4 on [0, 1].

The velocity field is permutation-equivariant within spin blocks:

  free space: v_i = sum_{j != i} eta_ij (x_j - x_i) + mu_i x_i,
  box:        v_i = sum_{j != i} eta_ij (L / 2 pi) sin(2 pi (x_j - x_i) / L),

with eta_ij = eta(d_ij, s_i s_j, s_i) and mu_i = mu(|x_i|^2, s_i) small MLPs, d_ij the
pair distance (smooth periodic distance / L in the box), s_i = +-1 the spin, and an
overall learnable scale initialised to ``init_scale``. The box field has no one-body
term and is periodic in every x_i, so the flow is translation-equivariant and
commutes with lattice shifts of single particles; the free-space field commutes with
rotations (FermiFlow, arXiv:2105.08644).

The log-Jacobian comes in three flavours: ``"dense"`` (default) is the exact
``slogdet`` of the Jacobian of the discrete RK4 map actually applied, which is what
the normalization of Psi_K needs; ``"divergence"`` integrates the exact divergence of
v along the trajectory with the same RK4 steps (the continuous-time log-det, off by
O(h^4) from the map applied); :func:`make_hutchinson_ode_flow` replaces the
divergence by a one-probe Hutchinson estimate (its apply needs a key).

Units: Hartree atomic units, lengths in Bohr. Acts on a single configuration
``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from fermiflow.models.features import pair_geometry, spin_feature
from fermiflow.models.flow import (
    Flow,
    check_flow_system,
    check_init_scale,
    value_and_log_det,
)
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = ["StochasticFlow", "make_hutchinson_ode_flow", "make_ode_flow"]


class StochasticFlow(NamedTuple):
    """A flow whose log-det is a stochastic estimate.

    Attributes:
      init: ``(key, x: (n, dim)) -> params``.
      apply: ``(key, params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())`` with
        ``E[log_det]`` the RK4-integrated divergence.
    """

    init: Callable[[PRNGKey, Array], Params]
    apply: Callable[[PRNGKey, Params, Array], tuple[Array, Array]]


class _Mlp(nn.Module):
    """Two tanh hidden layers and a scalar output on the last axis."""

    hidden: int

    @nn.compact
    def __call__(self, h: Array) -> Array:
        dense = functools.partial(nn.Dense, dtype=h.dtype, param_dtype=h.dtype)
        h = jnp.tanh(dense(self.hidden)(h))
        h = jnp.tanh(dense(self.hidden)(h))
        return dense(1)(h)[..., 0]


class _Velocity(nn.Module):
    """Equivariant velocity field v(x) of one configuration (n, dim)."""

    n_up: int
    n_down: int
    box_length: float | None
    hidden: int
    init_scale: float

    @nn.compact
    def __call__(self, x: Array) -> Array:
        n = x.shape[0]
        geometry = pair_geometry(x, self.box_length)
        spin = spin_feature(self.n_up, self.n_down, x.dtype)
        distance = geometry.distance
        if self.box_length is not None:
            distance = distance / jnp.asarray(self.box_length, x.dtype)
        pair_in = jnp.stack(
            [distance, spin * spin.T, jnp.broadcast_to(spin, (n, n))], axis=-1
        )
        eta = _Mlp(self.hidden, name="eta")(pair_in)
        # direction_ij points from j to i and is zero for j = i.
        velocity = -jnp.einsum("ij,ijd->id", eta, geometry.direction)
        if self.box_length is None:
            one_in = jnp.concatenate([jnp.sum(x**2, -1, keepdims=True), spin], -1)
            velocity = velocity + _Mlp(self.hidden, name="mu")(one_in)[:, None] * x
        init = nn.initializers.constant(self.init_scale)
        return self.param("scale", init, (), x.dtype).astype(x.dtype) * velocity


def _rk4(field: Callable, state, n_steps: int):
    """Integrate d state / dt = field(state) over t in [0, 1] with n_steps RK4 steps."""
    h = 1.0 / n_steps

    def axpy(a: float, k, y):
        return jax.tree.map(lambda ki, yi: yi + jnp.asarray(a, yi.dtype) * ki, k, y)

    def step(y, _):
        k1 = field(y)
        k2 = field(axpy(h / 2, k1, y))
        k3 = field(axpy(h / 2, k2, y))
        k4 = field(axpy(h, k3, y))
        increment = jax.tree.map(lambda a, b, c, d: a + 2 * b + 2 * c + d, k1, k2, k3, k4)
        return axpy(h / 6, increment, y), None

    return jax.lax.scan(step, state, None, length=n_steps)[0]


def _build(n_up, n_down, dim, box_length, n_steps, hidden, init_scale):
    """Validate the arguments and return (velocity module, n_steps, x shape)."""
    n_up, n_down, dim, box_length = check_flow_system(n_up, n_down, dim, box_length)
    module = _Velocity(
        n_up=n_up,
        n_down=n_down,
        box_length=box_length,
        hidden=check_positive_int("hidden", hidden),
        init_scale=check_init_scale(init_scale),
    )
    n_steps = check_positive_int("n_steps", n_steps, "Use about 8 RK4 steps.")
    return module, n_steps, (n_up + n_down, dim)


def _make_init(module: nn.Module, shape: tuple[int, int]):
    def init(key: PRNGKey, x: ArrayLike) -> Params:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        return module.init(key, x)

    return init


def make_ode_flow(
    *,
    n_up: int,
    n_down: int,
    dim: int,
    box_length: float | None,
    n_steps: int = 8,
    hidden: int = 16,
    init_scale: float = 1e-2,
    log_det: str = "dense",
) -> Flow:
    """Build the RK4-integrated neural-ODE flow with an exact log-Jacobian.

    Args:
      n_up: static, number of spin-up particles (first in x).
      n_down: static, number of spin-down particles (last in x).
      dim: static, 2 or 3 in the box; 1, 2 or 3 in free space.
      box_length: static, side L of the periodic box in Bohr, or None for a trap.
      n_steps: static, number of RK4 steps on t in [0, 1].
      hidden: static, width of the hidden layers of eta and mu.
      init_scale: static, initial value of the learnable velocity scale; 0 gives
        exactly the identity.
      log_det: static, ``"dense"`` (exact for the RK4 map applied; NaN where its
        determinant is <= 0) or ``"divergence"`` (RK4 integral of the exact
        divergence, the continuous-time log-det).

    Returns:
      A :class:`Flow`; ``apply(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``.

    Raises:
      ValueError: for bad particle numbers, dim, box_length, n_steps, hidden,
        init_scale or log_det.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_ode_flow(n_up=2, n_down=1, dim=2, box_length=None)
      >>> x = jax.random.normal(jax.random.key(0), (3, 2))
      >>> zeta, log_det = flow.apply(flow.init(jax.random.key(1), x), x)
      >>> zeta.shape, log_det.shape, bool(jnp.abs(zeta - x).max() < 0.1)
      ((3, 2), (), True)
    """
    if log_det not in ("dense", "divergence"):
        raise ValueError(
            f"log_det must be 'dense' or 'divergence', got {log_det!r}. For a "
            "Hutchinson estimate use make_hutchinson_ode_flow."
        )
    module, n_steps, shape = _build(
        n_up, n_down, dim, box_length, n_steps, hidden, init_scale
    )

    def apply(params: Params, x: ArrayLike) -> tuple[Array, Array]:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        velocity = functools.partial(module.apply, params)
        if log_det == "dense":
            return value_and_log_det(lambda y: _rk4(velocity, y, n_steps), x)

        def field(state):
            jac = jax.jacfwd(velocity)(state[0])
            return velocity(state[0]), jnp.einsum("idid->", jac)

        return _rk4(field, (x, jnp.zeros((), x.dtype)), n_steps)

    return Flow(_make_init(module, shape), apply)


def make_hutchinson_ode_flow(
    *,
    n_up: int,
    n_down: int,
    dim: int,
    box_length: float | None,
    n_steps: int = 8,
    hidden: int = 16,
    init_scale: float = 1e-2,
) -> StochasticFlow:
    """Build the neural-ODE flow with a one-probe Hutchinson log-det estimate.

    One Rademacher probe e, fixed along the trajectory, replaces the divergence by
    e^T (dv/dx) e (one jvp per RK4 stage instead of n * dim), so ``log_det`` is an
    unbiased estimate of the ``"divergence"`` log-det of :func:`make_ode_flow` with the
    same parameters; zeta is the same RK4 map. Arguments as in :func:`make_ode_flow`.

    Returns:
      A :class:`StochasticFlow`;
      ``apply(key, params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``.

    Raises:
      ValueError: for bad particle numbers, dim, box_length, n_steps, hidden or
        init_scale.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_hutchinson_ode_flow(n_up=3, n_down=0, dim=2, box_length=2.0)
      >>> x = jax.random.uniform(jax.random.key(0), (3, 2)) * 2.0
      >>> params = flow.init(jax.random.key(1), x)
      >>> zeta, log_det = flow.apply(jax.random.key(2), params, x)
      >>> zeta.shape, log_det.shape
      ((3, 2), ())
    """
    module, n_steps, shape = _build(
        n_up, n_down, dim, box_length, n_steps, hidden, init_scale
    )

    def apply(key: PRNGKey, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        velocity = functools.partial(module.apply, params)
        probe = jax.random.rademacher(key, shape, x.dtype)

        def field(state):
            value, tangent = jax.jvp(velocity, (state[0],), (probe,))
            return value, jnp.sum(probe * tangent)

        return _rk4(field, (x, jnp.zeros((), x.dtype)), n_steps)

    return StochasticFlow(_make_init(module, shape), apply)

"""Bijective flows zeta = T(x) of one configuration and their exact log-Jacobians.

A :class:`Flow` is a pair of pure functions ``init(key, x) -> params`` and
``apply(params, x) -> (zeta, log_det)`` with ``log_det = log|det d zeta / d x|``.
The helpers here are shared by every flow: the dense Jacobian log-determinant (a
``(n * dim, n * dim)`` ``slogdet`` of ``jax.jacfwd``), the identity flow, a Newton
inverse, and :class:`JetApply`, the ``apply`` of a flow that computes its own
Jacobian and Laplacian in structured form (the backflow): its log-det is the
``slogdet`` of that Jacobian, and ``jax.jacfwd``/``jax.jvp`` of its zeta use it too
(a custom JVP), so callers such as Newton inverses never push n * dim tangents
through the network.

Units: Hartree atomic units, lengths in Bohr. Every function acts on a single
configuration ``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from einops import rearrange

from fermiflow.models.jets import Jet
from fermiflow.types import Array, ArrayLike, Flow, Params, PRNGKey
from fermiflow.validation import (
    check_dim,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)

__all__ = [
    "Flow",
    "JetApply",
    "check_flow_system",
    "check_init_scale",
    "dense_slogdet",
    "fold_fraction",
    "invert_flow",
    "make_identity_flow",
    "value_and_log_det",
]


def _square(jac: Array) -> Array:
    return rearrange(jac, "i d j e -> (i d) (j e)")


def _with_aux(fn: Callable[[Array], Array]) -> Callable[[Array], tuple[Array, Array]]:
    """Return ``y -> (fn(y), fn(y))`` so jacfwd(has_aux=True) yields value and Jacobian."""

    def fn_with_aux(y: Array) -> tuple[Array, Array]:
        value = fn(y)
        return value, value

    return fn_with_aux


def dense_slogdet(fn: Callable[[Array], Array], x: ArrayLike) -> tuple[Array, Array]:
    """Return sign and log|det| of the Jacobian of ``fn`` at ``x``.

    Args:
      fn: ``(n, dim) -> (n, dim)`` differentiable map.
      x: (n, dim) point.

    Returns:
      ``(sign, log_abs_det)``, both (), of the (n * dim, n * dim) Jacobian.
    """
    return jnp.linalg.slogdet(_square(jax.jacfwd(fn)(jnp.asarray(x))))


def value_and_log_det(fn: Callable[[Array], Array], x: Array) -> tuple[Array, Array]:
    """Return ``fn(x)`` and its log-Jacobian from one forward-mode pass.

    A map of the torus homotopic to the identity (``T(x + L e_i) = T(x) + L e_i``), or
    a proper map of free space, is a bijection exactly when its Jacobian determinant is
    positive everywhere. Where it is not, the map folds space, ``Psi_K`` would not be
    normalized, and the returned log-det is NaN so that the failure is loud.

    Args:
      fn: ``(n, dim) -> (n, dim)`` differentiable map.
      x: (n, dim) point.

    Returns:
      ``(fn(x): (n, dim), log_det: ())``; log_det is NaN where ``det <= 0``.
    """
    jac, value = jax.jacfwd(_with_aux(fn), has_aux=True)(x)
    sign, log_abs = jnp.linalg.slogdet(_square(jac))
    return value, _nan_unless_positive(sign, log_abs)


def _square_jet(jac: Array) -> Array:
    """(n * dim, n, dim) jet Jacobian -> the (n * dim, n * dim) matrix d zeta_flat / d x_flat."""
    return rearrange(jac, "t n d -> (n d) t")


def _nan_unless_positive(sign: Array, log_abs: Array) -> Array:
    return jnp.where(sign > 0, log_abs, jnp.asarray(jnp.nan, log_abs.dtype))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _transform(jet: Callable, params: Params, x: Array) -> Array:
    return jet(params, x, 0).value


def _instantiate(tangent, primal):
    if isinstance(tangent, jax.custom_derivatives.SymbolicZero):
        return jnp.zeros(jnp.shape(primal), jnp.result_type(primal))
    return tangent


@functools.partial(_transform.defjvp, symbolic_zeros=True)
def _transform_jvp(jet, primals, tangents):
    params, x = primals
    d_params, d_x = tangents
    is_zero = lambda t: isinstance(t, jax.custom_derivatives.SymbolicZero)  # noqa: E731
    if is_zero(d_x):
        zeta, d_zeta = jnp.asarray(jet(params, x, 0).value), None
    else:
        full = jet(params, x, 1)  # J once, whatever the number of tangents batched on d_x
        zeta = full.value
        d_zeta = jnp.einsum("tia,t->ia", full.jac, rearrange(d_x, "n d -> (n d)"))
    if not all(map(is_zero, jax.tree.leaves(d_params, is_leaf=is_zero))):
        d_params = jax.tree.map(_instantiate, d_params, params, is_leaf=is_zero)
        from_params = jax.jvp(lambda p: jet(p, x, 0).value, (params,), (d_params,))[1]
        d_zeta = from_params if d_zeta is None else d_zeta + from_params
    return zeta, jnp.zeros_like(zeta) if d_zeta is None else d_zeta


@dataclasses.dataclass(frozen=True)
class JetApply:
    """``apply(params, x) -> (zeta, log_det)`` of a flow with structured derivatives.

    Attributes:
      jet: static, ``(params, x: (n, dim), order) -> Jet`` (static order 0, 1 or 2):
        zeta with its Jacobian ``jac: (n * dim, n, dim)`` and Laplacian ``(n, dim)``
        (:mod:`fermiflow.models.jets`).

    Calling it gives ``(zeta, log_det)``, log_det NaN where ``det <= 0``, like every
    :class:`Flow` apply; zeta carries a custom JVP ``J(x) dx + (d zeta / d params)
    dparams`` with J from one structured pass, so ``jax.jacfwd`` costs one pass.
    """

    jet: Callable[[Params, Array, int], Jet]

    def __call__(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """Return ``(zeta: (n, dim), log_det: ())``."""
        x = jnp.asarray(x)
        sign, log_abs = jnp.linalg.slogdet(_square_jet(self.jet(params, x, 1).jac))
        return _transform(self.jet, params, x), _nan_unless_positive(sign, log_abs)

    def jacobian(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """Return ``(zeta: (n, dim), jac: (n * dim, n * dim))``, jac = d zeta_flat / d x_flat."""
        jet = self.jet(params, jnp.asarray(x), 1)
        return jet.value, _square_jet(jet.jac)

    def forward_laplacian(self, params: Params, x: ArrayLike) -> tuple[Array, Array, Array]:
        """Return ``(zeta: (n, dim), jac: (n * dim, n * dim), laplacian: (n, dim))``."""
        jet = self.jet(params, jnp.asarray(x), 2)
        return jet.value, _square_jet(jet.jac), jet.lap


def fold_fraction(apply: Callable, params, x: ArrayLike) -> tuple[Array, Array]:
    """Return the fraction of configurations where a flow folds space, and its error.

    A trained flow is a bijection only where ``det d zeta / d x > 0`` everywhere;
    Metropolis walkers never see a fold (log Psi_K is NaN there, so such proposals
    are rejected), so check on configurations drawn independently of |Psi_K|^2,
    e.g. uniform in the box. A nonzero fraction means Psi_K is not normalized and
    the variational bound F >= -T ln Z is no longer guaranteed.

    Args:
      apply: ``(params, x: (n, dim)) -> (zeta, log_det)``, NaN log_det at a fold.
      params: the flow parameters.
      x: (m, n, dim) test configurations.

    Returns:
      ``(fraction: (), stderr: ())``, the binomial standard error sqrt(f (1-f) / m).
    """
    x = jnp.asarray(x)
    log_det = jax.lax.map(lambda y: apply(params, y)[1], x, batch_size=min(256, x.shape[0]))
    fraction = jnp.mean(jnp.isnan(log_det))
    return fraction, jnp.sqrt(fraction * (1 - fraction) / x.shape[0])


def make_identity_flow() -> Flow:
    """Return the identity flow: ``zeta = x`` and ``log_det = 0``, no parameters.

    Returns:
      A :class:`Flow` whose params are an empty dict.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_identity_flow()
      >>> x = jnp.ones((3, 2))
      >>> zeta, log_det = flow.apply(flow.init(jax.random.key(0), x), x)
      >>> bool((zeta == x).all()), float(log_det)
      (True, 0.0)
    """

    def init(key: PRNGKey, x: ArrayLike) -> Params:
        del key, x  # the identity has no parameters
        return {}

    def apply(params: Params, x: ArrayLike) -> tuple[Array, Array]:
        del params
        x = jnp.asarray(x)
        return x, jnp.zeros((), x.dtype)

    return Flow(init, apply)


def invert_flow(
    flow_apply: Callable[[Params, Array], tuple[Array, Array]],
    params: Params,
    zeta: ArrayLike,
    *,
    x0: ArrayLike | None = None,
    n_iter: int = 12,
) -> Array:
    """Solve ``T(x) = zeta`` for x by Newton's method with the dense Jacobian.

    Newton converges quadratically from ``x0 = zeta`` for flows near the identity; a
    fixed number of steps keeps it traceable. It does not report failure: callers that
    need certainty compare ``flow_apply(params, x)[0]`` with ``zeta``. Only zeta of
    ``flow_apply`` is used; the log-det it also computes is dead code that XLA removes
    (the loop body is compiled even outside ``jax.jit``).

    Args:
      flow_apply: ``(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``.
      params: parameters of the flow.
      zeta: (n, dim) image point.
      x0: (n, dim) starting point; default ``zeta``.
      n_iter: static, number of Newton steps.

    Returns:
      (n, dim) x with ``T(x) = zeta`` (to rounding, when Newton converged).

    Raises:
      ValueError: if ``n_iter`` is not a positive integer.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> apply = lambda p, x: (x + p * jnp.sin(x), None)
      >>> x = invert_flow(apply, 0.5, jnp.ones((2, 2)))
      >>> bool(jnp.allclose(apply(0.5, x)[0], 1.0, atol=1e-6))
      True
    """
    n_iter = check_positive_int("n_iter", n_iter, "Use about 10 Newton steps.")
    zeta = jnp.asarray(zeta)
    x0 = zeta if x0 is None else jnp.asarray(x0, zeta.dtype)

    def transform(x: Array) -> Array:
        return flow_apply(params, x)[0]

    def newton_step(_, x: Array) -> Array:
        jac, value = jax.jacfwd(_with_aux(transform), has_aux=True)(x)
        delta = jnp.linalg.solve(_square(jac), (value - zeta).reshape(-1))
        return x - delta.reshape(x.shape)

    return jax.lax.fori_loop(0, n_iter, newton_step, x0)


def check_flow_system(
    n_up: int, n_down: int, dim: int, box_length: float | None
) -> tuple[int, int, int, float | None]:
    """Validate the particle numbers and geometry shared by every flow factory.

    Args:
      n_up: number of spin-up particles (they come first), >= 0.
      n_down: number of spin-down particles, >= 0; n_up + n_down >= 1.
      dim: 2 or 3 in a periodic box; 1, 2 or 3 in free space.
      box_length: side L > 0 of the periodic box, or None for free space (a trap).

    Returns:
      The validated ``(n_up, n_down, dim, box_length)``.

    Raises:
      ValueError: naming the bad parameter.
    """
    n_up = check_nonnegative_int("n_up", n_up)
    n_down = check_nonnegative_int("n_down", n_down)
    if n_up + n_down < 1:
        raise ValueError("n_up + n_down must be >= 1, got 0. Give the flow particles.")
    if box_length is None:
        return n_up, n_down, check_dim(dim, (1, 2, 3)), None
    box_length = check_positive(
        "box_length", box_length, "Pass None for free space (a harmonic trap)."
    )
    return n_up, n_down, check_dim(dim), box_length


def check_init_scale(init_scale: float) -> float:
    """Return ``float(init_scale)`` or raise if it is not finite and >= 0."""
    init_scale = float(init_scale)
    if not (math.isfinite(init_scale) and init_scale >= 0):
        raise ValueError(
            f"init_scale must be a finite number >= 0, got {init_scale}. "
            "Use a small value (about 1e-2) to start near the identity."
        )
    return init_scale

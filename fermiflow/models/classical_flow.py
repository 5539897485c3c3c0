"""Normalizing flow for classical particles in a trap: x = T(z), z ~ N(0, s^2 I).

The density is exact: log p(x) = log N(z; 0, s^2 I) - log|det dT/dz| with z = T^-1(x).
T is the free-space residual backflow of :mod:`fermiflow.models.backflow` (one spin
species), so p is symmetric under permutations of the particles and under rotations.
``sample`` is exact and cheap (forward flow); ``log_prob`` inverts the flow by Newton's
method and is meant for tests and diagnostics.

Units: Hartree atomic units, lengths in Bohr. ``log_prob`` acts on a single
configuration ``(n, dim)``; ``sample`` returns a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import invert_flow
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_positive, check_positive_int

__all__ = ["ClassicalFlow", "make_classical_flow"]


class ClassicalFlow(NamedTuple):
    """A normalized density of n classical particles.

    Attributes:
      init: ``(key, x: (n, dim)) -> params``; params take the dtype of x.
      sample: ``(key, params, batch) -> (x: (batch, n, dim), log_prob: (batch,))``
        exact samples in the dtype of params, with their log-density.
      log_prob: ``(params, x: (n, dim)) -> ()`` log-density at x (Newton inverse).
    """

    init: Callable[[PRNGKey, Array], Params]
    sample: Callable[[PRNGKey, Params, int], tuple[Array, Array]]
    log_prob: Callable[[Params, Array], Array]


def _log_normal(z: Array, base_scale: float) -> Array:
    """Log N(z; 0, base_scale^2 I) of one configuration (n, dim)."""
    scale = jnp.asarray(base_scale, z.dtype)
    return -0.5 * jnp.sum((z / scale) ** 2) - z.size * (
        jnp.log(scale) + 0.5 * jnp.log(jnp.asarray(2 * jnp.pi, z.dtype))
    )


def make_classical_flow(
    *,
    n: int,
    dim: int,
    base_scale: float = 1.0,
    depth: int = 2,
    width_one: int = 16,
    width_two: int = 16,
    init_scale: float = 1e-2,
    n_newton: int = 12,
) -> ClassicalFlow:
    """Build a permutation-equivariant flow density from a Gaussian base.

    Args:
      n: static, number of particles.
      dim: static, 1, 2 or 3.
      base_scale: static, standard deviation s of the Gaussian base in Bohr.
      depth: static, stream layers of the backflow.
      width_one: static, width of its one-particle stream.
      width_two: static, width of its two-particle stream.
      init_scale: static, initial residual scale of the backflow (0: p is the base).
      n_newton: static, Newton steps of the inverse in ``log_prob``.

    Returns:
      A :class:`ClassicalFlow`.

    Raises:
      ValueError: for a bad n, dim, base_scale, backflow argument or n_newton.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_classical_flow(n=3, dim=2)
      >>> params = flow.init(jax.random.key(0), jnp.zeros((3, 2)))
      >>> x, log_prob = flow.sample(jax.random.key(1), params, 5)
      >>> x.shape, log_prob.shape
      ((5, 3, 2), (5,))
    """
    n = check_positive_int("n", n, "A classical flow needs at least one particle.")
    base_scale = check_positive("base_scale", base_scale)
    n_newton = check_positive_int("n_newton", n_newton)
    flow = make_backflow(
        n_up=n,
        n_down=0,
        dim=dim,
        box_length=None,
        depth=depth,
        width_one=width_one,
        width_two=width_two,
        init_scale=init_scale,
    )

    def sample(key: PRNGKey, params: Params, batch: int) -> tuple[Array, Array]:
        dtype = jax.tree.leaves(params)[0].dtype
        z = jnp.asarray(base_scale, dtype) * jax.random.normal(
            key, (batch, n, dim), dtype
        )
        x, log_det = jax.vmap(flow.apply, in_axes=(None, 0))(params, z)
        log_base = jax.vmap(_log_normal, in_axes=(0, None))(z, base_scale)
        return x, log_base - log_det

    def log_prob(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        chex.assert_shape(x, (n, dim))
        z = invert_flow(flow.apply, params, x, n_iter=n_newton)
        return _log_normal(z, base_scale) - flow.apply(params, z)[1]

    return ClassicalFlow(flow.init, sample, log_prob)

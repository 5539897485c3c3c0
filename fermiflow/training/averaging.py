"""Iterate averaging (Polyak-Ruppert) of the parameters of a noisy optimization.

A stochastic-gradient run with a step eta does not converge to the minimum theta*:
near it, theta fluctuates with a covariance of order eta times the gradient noise,
and the objective sits above its minimum by a stationary bias of the same order. The
running mean of the iterates over the last part of a run has a fluctuation that
shrinks like 1/(steps averaged) instead, so evaluating at the averaged parameters
removes most of that bias (Polyak & Juditsky, SIAM J. Control Optim. 30, 838 (1992)).
It matters most where the minimum is known exactly, e.g. the ideal gas, whose optimal
flow is the identity and whose F must come out within its error bar.

Pure functions on a NamedTuple state, on any parameter pytree; in a host loop::

    average = init_average(state.params)
    for step in range(n):
        state, _ = train_step(state)
        if step >= n // 2:
            average = update_average(average, state.params)
    # then evaluate at average.mean

Examples:
  >>> import jax.numpy as jnp
  >>> average = init_average({"w": jnp.zeros(2)})
  >>> for w in (1.0, 2.0, 6.0):
  ...     average = update_average(average, {"w": jnp.full(2, w)})
  >>> average.mean["w"].tolist(), int(average.count)
  ([3.0, 3.0], 3)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.types import Array

__all__ = ["IterateAverage", "init_average", "update_average"]


class IterateAverage(NamedTuple):
    """Running mean of parameter iterates.

    Attributes:
      mean: pytree like the parameters, the mean of the iterates added so far (the
        first parameters given to :func:`init_average` while ``count`` is 0).
      count: () float, how many iterates the mean holds.
    """

    mean: Any
    count: Array


def init_average(params: Any) -> IterateAverage:
    """An empty average with the structure (and dtypes) of ``params``."""
    return IterateAverage(jax.tree.map(jnp.asarray, params), jnp.zeros((), jnp.float64))


@jax.jit
def update_average(average: IterateAverage, params: Any) -> IterateAverage:
    """Add one iterate: mean <- mean + (params - mean) / (count + 1).

    Args:
      average: the state so far.
      params: pytree with the structure of ``average.mean``.

    Returns:
      The new :class:`IterateAverage`; exact for any count (the first iterate
      replaces the initial mean).
    """
    count = average.count + 1.0
    mean = jax.tree.map(
        lambda m, p: (m + (p - m) / count.astype(jnp.result_type(m))).astype(jnp.result_type(m)),
        average.mean,
        params,
    )
    return IterateAverage(mean, count)

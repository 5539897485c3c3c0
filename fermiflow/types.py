"""Type aliases, the one Flow type and the one (init, step) algorithm contract.

Shapes use this axis vocabulary: ``batch`` (walkers), ``n`` (particles), ``dim``
(space), ``m`` (single-particle modes), ``steps`` (Monte Carlo time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
from jax.typing import ArrayLike

Array = jax.Array
PRNGKey = jax.Array
Params = Any

__all__ = [
    "Algorithm",
    "Array",
    "ArrayLike",
    "EnergyFn",
    "Flow",
    "LogPsiFn",
    "PRNGKey",
    "Params",
]


class EnergyFn(Protocol):
    """Potential energy of ONE configuration: ``x: (n, dim) -> ()``."""

    def __call__(self, x: ArrayLike) -> Array: ...


class LogPsiFn(Protocol):
    """Log-amplitude of ONE configuration: ``(params, x: (n, dim)) -> ()``.

    The value may be real (log|psi|) or complex (log|psi| + i arg psi).
    """

    def __call__(self, params: Params, x: ArrayLike) -> Array: ...


class Flow(NamedTuple):
    """A bijection zeta = T(x) of ONE configuration with its log-Jacobian.

    Attributes:
      init: ``(key, x: (n, dim)) -> params``.
      apply: ``(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())`` with
        ``log_det = log|det d zeta / d x|``.
      prepare: ``params -> params`` that precomputes what depends on the params
        alone (the certified cap of the box backflow), for callers that select
        params per walker (outside the walker vmap, so that no per-walker SVD runs),
        or None where there is nothing to precompute. ``apply`` gives the same
        result on prepared and plain params.
    """

    init: Callable[[PRNGKey, Array], Params]
    apply: Callable[[Params, Array], tuple[Array, Array]]
    prepare: Callable[[Params], Params] | None = None


class Algorithm(NamedTuple):
    """A stateful algorithm as two pure functions (optax/BlackJAX style).

    The train step, the classical trainer and pretraining are all of this type. The
    state carries its own PRNG key, so ``step`` is a function of the state alone
    (one jit boundary; a checkpointed state resumes bit for bit).

    Attributes:
      init: ``(key, params, ...) -> state``: a NamedTuple state holding the key of
        the next step.
      step: ``(state) -> (state, info)``: one update and its diagnostics (a
        NamedTuple of arrays).
    """

    init: Callable[..., Any]
    step: Callable[[Any], tuple[Any, Any]]

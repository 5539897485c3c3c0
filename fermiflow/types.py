"""Type aliases and protocols shared by the whole package.

Shapes use the axis vocabulary of STYLE.md: ``batch`` (walkers), ``n`` (particles),
``dim`` (space), ``m`` (single-particle modes), ``steps`` (Monte Carlo time).
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
from jax.typing import ArrayLike

Array = jax.Array
PRNGKey = jax.Array
Params = Any

__all__ = [
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


class Flow(Protocol):
    """A bijection zeta = T(x) of ONE configuration with its log-Jacobian.

    ``init(key, x: (n, dim)) -> params`` and
    ``apply(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())`` where
    ``log_det = log|det d zeta / d x|``.
    """

    def init(self, key: PRNGKey, x: ArrayLike) -> Params: ...

    def apply(self, params: Params, x: ArrayLike) -> tuple[Array, Array]: ...

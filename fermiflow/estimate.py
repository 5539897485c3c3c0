"""One estimate type: a value, its error bar, and how the error was obtained.

Every Monte Carlo number in fermiflow is an :class:`Estimate`: the per-step batch
estimates of the train step, pretraining and the classical trainer, the blocked
estimates of a run's final evaluation, and the ArviZ/blocking estimates of
:mod:`fermiflow.observables`. It is a JAX pytree (``value``, ``error`` and the optional
diagnostics are leaves; ``method`` is static), so it can be returned from a jitted
step; on the host its leaves are Python floats.

``method`` names the error estimator:

- ``"batch"``: standard error of the mean of a batch of walkers treated as
  independent (:func:`batch_estimate`);
- ``"independent"``: the same formula for exact independent samples (p(K), the
  classical flow), where it is exact rather than an approximation;
- ``"blocking"``: automated blocking along Monte Carlo time (walkers as chains);
- ``"ess"``: ArviZ's Monte Carlo standard error from the effective sample size;
- ``"max(ess,blocking)"``: the larger of the two, reported by
  :func:`fermiflow.observables.estimate`;
- ``"exact"``: no statistical error (a constant trace).

:class:`Thermodynamics` groups the estimates of F, E, K, V, S of one system (a field
is None where the calculation does not define it, e.g. K and V of pretraining).

Units: those of the estimated quantity (fermiflow: Hartree, k_B, Bohr).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.types import ArrayLike

__all__ = ["METHODS", "Estimate", "Thermodynamics", "batch_estimate"]

METHODS = ("batch", "independent", "blocking", "ess", "max(ess,blocking)", "exact")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and the name of the error estimator.

    Attributes:
      value: () the mean (array under jit, float on the host).
      error: () its standard error, in the units of value.
      method: static, how ``error`` was obtained (one of :data:`METHODS`).
      n_samples: () samples behind the mean, or None.
      ess: () effective sample size of the mean, or None.
      r_hat: () rank-normalized split R-hat across chains, or None.
    """

    value: Any
    error: Any
    method: str = "batch"
    n_samples: Any = None
    ess: Any = None
    r_hat: Any = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}.")

    def scaled(self, factor: float) -> Estimate:
        """Return the estimate of ``factor`` times the quantity (e.g. 1/N per particle).

        ESS and R-hat are invariant under a constant factor.
        """
        return dataclasses.replace(self, value=factor * self.value,
                                   error=abs(factor) * self.error)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of Python scalars (None where absent)."""

        def scalar(v):
            return None if v is None else v.item() if hasattr(v, "item") else v

        return {f.name: scalar(getattr(self, f.name)) for f in dataclasses.fields(self)}


jax.tree_util.register_dataclass(
    Estimate, data_fields=["value", "error", "n_samples", "ess", "r_hat"],
    meta_fields=["method"],
)


class Thermodynamics(NamedTuple):
    """Estimates of the thermodynamic quantities of one system (whole system).

    Attributes:
      free_energy: F = E - T S, Hartree.
      energy: E, Hartree.
      kinetic: K, Hartree, or None.
      potential: V, Hartree, or None.
      entropy: S, k_B.
    """

    free_energy: Estimate
    energy: Estimate
    kinetic: Estimate | None
    potential: Estimate | None
    entropy: Estimate


def batch_estimate(
    values: ArrayLike, *, method: str = "batch", where: ArrayLike | None = None
) -> Estimate:
    """Return the mean of a batch and its standard error, samples as independent.

    Jittable. The error is std / sqrt(n - 1) (the unbiased variance over n).

    Args:
      values: (batch,) real samples, batch >= 1.
      method: "batch" (Markov chains treated as independent) or "independent"
        (exact independent samples).
      where: (batch,) bool mask of the samples to use, or None for all. Callers that
        mask must report how many samples they left out.

    Returns:
      An :class:`Estimate` of () arrays; ``n_samples`` is the batch size (an int) or,
      with ``where``, the () count of samples used.

    Examples:
      >>> import jax.numpy as jnp
      >>> e = batch_estimate(jnp.array([1.0, 2.0, 3.0]))
      >>> float(e.value), round(float(e.error), 12), e.method
      (2.0, 0.57735026919, 'batch')
    """
    values = jnp.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must have shape (batch,), got {values.shape}.")
    if where is None:
        n = values.shape[0]
        error = jnp.std(values) * jnp.sqrt(jnp.asarray(1.0 / max(n - 1, 1), values.dtype))
        return Estimate(jnp.mean(values), error, method, n_samples=n)
    count = jnp.sum(where)
    safe = jnp.maximum(count, 1).astype(values.dtype)
    mean = jnp.sum(jnp.where(where, values, 0)) / safe
    square = jnp.sum(jnp.where(where, (values - mean) ** 2, 0))
    error = jnp.sqrt(square / jnp.maximum(safe - 1, 1) / safe)
    return Estimate(mean, error, method, n_samples=count)

"""Monte Carlo diagnostics of local-value traces: error bars, ESS, R-hat, acceptance.

Layout: every trace is (chains, draws), the ArviZ convention; a chain is one walker
and a draw one sampler step. A sampler scan that stacks (steps, batch) must be
transposed (``trace.T``) before it comes here; a wrong orientation cannot be detected.

:func:`estimate` returns the one :class:`~fermiflow.estimate.Estimate` type; its error
bar is obtained one of two ways that must agree (tests check it on AR(1) series with
a known variance of the mean), or the larger of them (the default):

* ``method="ess"``: ``arviz.mcse(method="mean")`` = std / sqrt(ESS_mean), where
  ESS_mean is ArviZ's split-chain ESS of the raw values (Geyer's initial monotone
  sequence; Vehtari et al., arXiv:1903.08008). The rank-normalized bulk ESS is
  reported by :func:`diagnose` but not used for the error: it is the ESS of the
  ranks, not of the mean, and differs from it for heavy-tailed local energies.
* ``method="blocking"``: automated blocking (``fermiflow.observables.blocking``).

:func:`diagnose` gives the convergence diagnostics of a trace. ``tau_int`` = chains *
draws / ESS_mean is the integrated autocorrelation time in draws, so that the ESS
error obeys ``error**2 = var * tau_int / (chains * draws)``. R-hat is ArviZ's rank-normalized
split R-hat (``arviz.rhat``, method "rank"); a single chain is compared with itself
by splitting it in halves. NaN or inf in a trace raises ``ValueError`` naming the
observable: they are never averaged.

Units: those of the trace; nothing is converted.

These are host-side NumPy/ArviZ functions for finished traces, outside jit, except
``acceptance_summary``, which is pure jax.numpy and may run inside the train step.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

with warnings.catch_warnings():  # ArviZ announces its refactor on every import
    warnings.filterwarnings("ignore", "\\s*ArviZ is undergoing", FutureWarning)
    import arviz

from fermiflow.estimate import Estimate
from fermiflow.observables.blocking import as_chains, blocking_analysis, warn_if_no_plateau
from fermiflow.types import Array, ArrayLike

__all__ = [
    "AcceptanceSummary",
    "Diagnostics",
    "acceptance_summary",
    "diagnose",
    "estimate",
    "integrated_autocorrelation_time",
    "to_inference_data",
]


class Diagnostics(NamedTuple):
    """Convergence diagnostics of one scalar trace (host floats).

    Attributes:
      ess_bulk: () rank-normalized bulk effective sample size.
      ess_tail: () tail effective sample size (5% and 95% quantiles).
      ess_mean: () effective sample size of the mean (the one behind the ESS error).
      r_hat: () rank-normalized split R-hat; > 1.01 signals unmixed chains.
      tau_int: () integrated autocorrelation time in draws, chains * draws / ess_mean.
      n_chains: () number of chains.
      n_draws: () draws per chain.
    """

    ess_bulk: float
    ess_tail: float
    ess_mean: float
    r_hat: float
    tau_int: float
    n_chains: int
    n_draws: int


class AcceptanceSummary(NamedTuple):
    """Metropolis acceptance of each chain and of all of them.

    Attributes:
      per_chain: (chains,) mean acceptance of each chain.
      overall: () mean acceptance over all chains and steps.
    """

    per_chain: Array
    overall: Array


def _check_trace(trace: ArrayLike, name: str) -> np.ndarray:
    """Return a finite float64 (chains, draws) array, or raise ValueError."""
    if np.ndim(trace) != 2:
        raise ValueError(
            f"{name} must have shape (chains, draws), got {np.shape(trace)}. "
            "Use trace[None] for a single chain, trace.T for a (steps, batch) scan."
        )
    if np.shape(trace)[0] == 1 and np.shape(trace)[1] < 8:
        raise ValueError(
            f"{name} is a single chain of {np.shape(trace)[1]} draws; it needs at least 8 "
            "(R-hat compares its halves, each split again). Sample more draws."
        )
    return as_chains(trace, name)


def _as_float(value: object) -> float:
    """ArviZ returns 0-d or (1,) arrays depending on the path taken."""
    return float(np.asarray(value).reshape(()))


def integrated_autocorrelation_time(trace: ArrayLike, *, name: str = "trace") -> float:
    """Return the integrated autocorrelation time in draws, chains * draws / ESS_mean.

    Args:
      trace: (chains, draws) samples of one scalar observable.
      name: name of the observable, used in error messages.

    Returns:
      () tau_int, 1 for independent draws, (1 + phi) / (1 - phi) for AR(1).

    Raises:
      ValueError: if the shape is not (chains, draws), a chain has fewer than 4 draws
        (8 for a single chain), or any value is NaN or inf.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (4, 1000))
      >>> 0.8 < integrated_autocorrelation_time(x) < 1.2
      True
    """
    x = _check_trace(trace, name)
    return x.size / _as_float(arviz.ess(x, method="mean"))


def _r_hat(x: np.ndarray) -> float:
    """Rank-normalized split R-hat; 1 for a constant trace (ArviZ gives 0/0)."""
    if np.ptp(x) == 0.0:
        return 1.0
    if x.shape[0] == 1:  # ArviZ needs two chains: compare the halves of the one
        half = x.shape[1] // 2
        x = np.stack([x[0, :half], x[0, -half:]])
    return _as_float(arviz.rhat(x))


def diagnose(trace: ArrayLike, *, name: str = "trace") -> Diagnostics:
    """Return the ESS, R-hat and autocorrelation time of a trace.

    A constant trace is exact: ESS = its size, R-hat = 1, tau_int = 1.

    Args:
      trace: (chains, draws) samples of one scalar observable.
      name: name of the observable, used in error messages.

    Returns:
      :class:`Diagnostics` of Python floats and ints.

    Raises:
      ValueError: as :func:`estimate`.

    Examples:
      >>> import jax
      >>> d = diagnose(jax.random.normal(jax.random.key(0), (4, 1000)))
      >>> d.n_chains, d.n_draws, d.r_hat < 1.01
      (4, 1000, True)
    """
    x = _check_trace(trace, name)
    if np.ptp(x) == 0:
        size = float(x.size)
        return Diagnostics(size, size, size, 1.0, 1.0, x.shape[0], x.shape[1])
    ess_mean = _as_float(arviz.ess(x, method="mean"))
    return Diagnostics(
        ess_bulk=_as_float(arviz.ess(x, method="bulk")),
        ess_tail=_as_float(arviz.ess(x, method="tail")),
        ess_mean=ess_mean,
        r_hat=_r_hat(x),
        tau_int=x.size / ess_mean,
        n_chains=x.shape[0],
        n_draws=x.shape[1],
    )


_ERROR_METHODS = ("ess", "blocking", "max(ess,blocking)")


def estimate(
    trace: ArrayLike, *, name: str = "trace", method: str = "max(ess,blocking)"
) -> Estimate:
    """Estimate the mean of an observable with its error bar, ESS and R-hat.

    A constant trace is exact: zero error (``method="exact"``), ESS = its size,
    R-hat = 1. Blocking warns (RuntimeWarning) when it reaches no plateau: the trace
    is then shorter than a few correlation times and no error bar is reliable.

    Args:
      trace: (chains, draws) samples of one scalar observable, any float dtype
        (computed in float64 on the host).
      name: name of the observable, used in error and warning messages.
      method: "ess" (ArviZ mcse), "blocking", or "max(ess,blocking)" (the larger,
        the default; conservative where the two disagree on short traces).

    Returns:
      An :class:`~fermiflow.estimate.Estimate` of Python floats with ``n_samples``,
      ``ess`` (of the mean) and ``r_hat``.

    Raises:
      ValueError: if the shape is not (chains, draws), a chain has fewer than 4 draws
        (8 for a single chain), any value is NaN or inf, or the method is unknown.

    Examples:
      >>> import jax
      >>> x = 1.5 + jax.random.normal(jax.random.key(0), (4, 1000))
      >>> est = estimate(x, name="energy")
      >>> est.n_samples, est.r_hat < 1.01, est.method
      (4000, True, 'max(ess,blocking)')
      >>> abs(est.value - 1.5) < 5 * est.error < 5 * 0.02
      True
    """
    if method not in _ERROR_METHODS:
        raise ValueError(f"method must be one of {_ERROR_METHODS}, got {method!r}.")
    x = _check_trace(trace, name)
    diagnostics = diagnose(x, name=name)
    if np.ptp(x) == 0:  # a constant (e.g. S = 0 at T = 0): exact, no error to estimate
        return Estimate(float(x.flat[0]), 0.0, "exact", x.size, float(x.size), 1.0)
    errors = {}
    if method != "blocking":
        errors["ess"] = _as_float(arviz.mcse(x, method="mean"))
    if method != "ess":
        blocking = blocking_analysis(x, name=name)
        warn_if_no_plateau(blocking, name)
        errors["blocking"] = blocking.stderr
    return Estimate(float(np.mean(x)), max(errors.values()), method, x.size,
                    diagnostics.ess_mean, diagnostics.r_hat)


def to_inference_data(traces: Mapping[str, ArrayLike]) -> arviz.InferenceData:
    """Collect local-value traces into an ArviZ ``InferenceData``.

    The traces go into the ``posterior`` group (where ArviZ's ``ess``, ``rhat`` and
    ``summary`` look by default) with dims ("chain", "draw", ...), values and dtypes
    unchanged.

    Args:
      traces: name -> (chains, draws, ...) array; all share (chains, draws).

    Returns:
      ``InferenceData`` with ``posterior[name]`` of dims ("chain", "draw", ...).

    Raises:
      ValueError: naming the key, if a trace has fewer than 2 axes, a (chains, draws)
        different from the first trace's, or any NaN or inf.

    Examples:
      >>> import numpy as np
      >>> idata = to_inference_data({"energy": np.zeros((2, 5))})
      >>> idata.posterior["energy"].dims
      ('chain', 'draw')
    """
    if not traces:
        raise ValueError("traces is empty: pass a dict of name -> (chains, draws) arrays.")
    arrays = {str(key): np.asarray(value) for key, value in traces.items()}
    leading = None
    for key, value in arrays.items():
        if value.ndim < 2:
            raise ValueError(
                f"trace {key!r} must have shape (chains, draws, ...), got {value.shape}. "
                "Use value[None] for a single chain."
            )
        leading = value.shape[:2] if leading is None else leading
        if value.shape[:2] != leading:
            raise ValueError(
                f"trace {key!r} has (chains, draws) = {value.shape[:2]}, but an earlier "
                f"trace has {leading}. Record every observable at every step."
            )
        n_bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        if n_bad:
            raise ValueError(
                f"trace {key!r} has {n_bad} NaN/inf values; they are never averaged. "
                "Find where the sampler or local energy produced them."
            )
    return arviz.from_dict(posterior=arrays)


def acceptance_summary(acceptance: ArrayLike) -> AcceptanceSummary:
    """Summarize Metropolis acceptance per chain and overall (jit-compatible).

    Args:
      acceptance: (chains,) acceptance of one step or (steps, chains) of several,
        each entry a fraction in [0, 1] (or a 0/1 accepted flag).

    Returns:
      ``AcceptanceSummary(per_chain (chains,), overall ())`` in the input's float
      dtype (integer flags become the default float dtype).

    Raises:
      ValueError: if ``acceptance`` is not 1-d or 2-d.

    Examples:
      >>> summary = acceptance_summary(jnp.array([[1.0, 0.0], [1.0, 1.0]]))
      >>> summary.per_chain.tolist(), float(summary.overall)
      ([1.0, 0.5], 0.75)
    """
    acceptance = jnp.asarray(acceptance)
    if acceptance.ndim not in (1, 2):
        raise ValueError(
            f"acceptance must have shape (chains,) or (steps, chains), got {acceptance.shape}."
        )
    if not jnp.issubdtype(acceptance.dtype, jnp.floating):
        acceptance = acceptance.astype(jnp.result_type(float))
    per_chain = acceptance if acceptance.ndim == 1 else jnp.mean(acceptance, axis=0)
    return AcceptanceSummary(per_chain=per_chain, overall=jnp.mean(acceptance))

"""Standard error of a correlated mean by the blocking transformation.

The Flyvbjerg-Petersen blocking transformation (J. Chem. Phys. 91, 461 (1989)) halves a
trace by averaging neighbouring pairs. The variance of the mean is invariant under it,
while the naive estimate ``var(x_k) / n_k`` of level ``k`` (``n_k`` blocks of
``B = 2**k`` draws) rises to a plateau once the blocks are uncorrelated. The level is
chosen automatically as the first one that passes two criteria:

1. No detectable correlation between blocks: the hypothesis test of M. Jonsson,
   Phys. Rev. E 98, 043304 (2018), arXiv:1804.06290. With ``gamma_k`` the lag-1
   autocovariance and ``s_k^2`` the variance of level ``k``,
   ``M_j = sum_{k >= j} n_k (gamma_k / s_k^2)^2 ~ chi^2(levels >= j)`` if the blocks of
   levels >= j are uncorrelated; it must lie below the 99% quantile.
2. Bias below a quarter of the statistical error. A test alone accepts block
   correlations just below its detection limit, a few times 1/sqrt(blocks), and the
   stderr is then biased low by several of its own error bars. For exponentially
   decaying correlations with integrated time ``tau`` the blocked variance of the mean is
   low by ``(tau^2 - 1) / (2 B tau)`` (AR(1): sum_t t rho_t = (tau^2 - 1) / 4), so the
   stderr by ``(tau^2 - 1) / (4 B tau)``, while its noise is ``sqrt(B / (2 N))`` for
   N draws in all. Bias <= noise / 4 gives ``B^3 >= 2 N (tau_B - 1 / tau_B)^2``, with
   ``tau_B = (stderr_B / stderr_1)^2`` measured at the level itself: the criterion of
   Lee, Needs and Towler, Phys. Rev. E 83, 066706 (2011), ``B^3 > 2 N tau_B^2``, with
   ``tau_B^2`` -> ``(tau_B - 1 / tau_B)^2`` so that uncorrelated data keep ``B = 1``.
   Anticorrelated blocks (``tau_B <= 1``) make the blocked error an over-estimate, so
   this criterion is skipped for them.

Several chains (shape (chains, draws)) are independent: each chain is blocked on its
own, Jonsson's statistic and its degrees of freedom are summed over chains, and the
variance of the grand mean is ``sum_c var(chain mean c) / chains^2`` at the common
level. This assumes every chain is stationary around the same mean; a disagreement
between chains is not in this error bar (R-hat in ``diagnostics.py`` reports it).

Units: those of the trace; nothing is converted.

Host-side NumPy on traces (outside jit); results are Python floats in float64.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import scipy.stats

from fermiflow.types import ArrayLike

__all__ = [
    "BlockingResult",
    "as_chains",
    "blocking_analysis",
    "blocking_error",
    "warn_if_no_plateau",
]

_QUANTILE = 0.99  # of the chi^2 test (Jonsson 2018)
_MIN_DRAWS = 4


class BlockingResult(NamedTuple):
    """Outcome of an automated blocking analysis.

    Attributes:
      stderr: () standard error of the grand mean at the chosen level.
      stderr_error: () its own one-sigma error, stderr / sqrt(2 dof) with
        dof = chains * (n_blocks - 1) (chi^2 of Gaussian block means).
      block_size: () draws per block at the chosen level, a power of 2.
      n_blocks: () blocks per chain at the chosen level.
      plateau_reached: () False when no level before the last (2 blocks per chain)
        passes both criteria: the trace is too short and stderr is a lower bound.
      stderr_by_level: (levels,) standard error of each level k = 0, 1, ...
    """

    stderr: float
    stderr_error: float
    block_size: int
    n_blocks: int
    plateau_reached: bool
    stderr_by_level: np.ndarray


def as_chains(trace: ArrayLike, name: str) -> np.ndarray:
    """Return a finite float64 (chains, draws) array (a 1-d trace is one chain).

    Args:
      trace: (draws,) or (chains, draws) samples.
      name: the observable, named in the error message.

    Raises:
      ValueError: for another shape, fewer than 4 draws per chain, or NaN/inf.
    """
    x = np.asarray(trace, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape (draws,) or (chains, draws), got {x.shape}. "
            "Reduce extra axes first (one scalar observable per trace)."
        )
    if x.shape[1] < _MIN_DRAWS:
        raise ValueError(
            f"{name} needs at least {_MIN_DRAWS} draws per chain, got shape {x.shape}. "
            "Pass a (chains, draws) trace, not (draws, chains)."
        )
    bad = ~np.isfinite(x)
    if bad.any():
        chain, draw = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite values (first at chain {chain}, "
            f"draw {draw}); NaN/inf are never averaged. Find where the sampler or "
            "local energy produced them."
        )
    return x


def _levels(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-level blocks, variance of the mean and lag-1 correlation statistic.

    Args:
      x: (chains, draws) finite trace.

    Returns:
      n_blocks: (levels,) blocks per chain at level k.
      var_mean: (levels,) variance of the grand mean estimated at level k.
      stat: (levels,) n_k sum_c (gamma_ck / s_ck^2)^2, Jonsson's per-level term.
    """
    n_chains = x.shape[0]
    n_blocks, var_mean, stat = [], [], []
    while x.shape[1] >= 2:
        n = x.shape[1]
        centred = x - x.mean(axis=1, keepdims=True)
        s2 = np.mean(centred**2, axis=1)
        gamma = np.sum(centred[:, :-1] * centred[:, 1:], axis=1) / n
        # A constant chain has s2 = 0 and no correlation to test: rho = 0, not NaN.
        rho = np.divide(gamma, s2, out=np.zeros_like(gamma), where=s2 > 0)
        n_blocks.append(n)
        var_mean.append(np.sum(s2 * n / (n - 1)) / (n * n_chains**2))
        stat.append(n * np.sum(rho**2))
        half = n // 2  # an odd last draw is dropped, as in Flyvbjerg-Petersen
        x = 0.5 * (x[:, 0 : 2 * half : 2] + x[:, 1 : 2 * half : 2])
    return np.array(n_blocks), np.array(var_mean), np.array(stat)


def blocking_analysis(trace: ArrayLike, *, name: str = "trace") -> BlockingResult:
    """Estimate the standard error of the mean by automated blocking.

    Args:
      trace: (draws,) or (chains, draws) samples of one scalar observable; chains
        are independent, draws are in Markov-chain order.
      name: name of the observable, used in error messages.

    Returns:
      A ``BlockingResult``; ``stderr`` is the standard error of the mean over all
      chains and draws.

    Raises:
      ValueError: if the shape is not (draws,) or (chains, draws), a chain has fewer
        than 4 draws, or any value is NaN or inf.

    Examples:
      >>> import numpy as np
      >>> x = np.tile([1.0, 2.0, 3.0, 4.0], 256)  # period 4: block means are exact
      >>> result = blocking_analysis(x)
      >>> result.block_size, float(result.stderr)
      (4, 0.0)
    """
    x = as_chains(trace, name)
    n_chains = x.shape[0]
    n_blocks, var_mean, stat = _levels(x)
    level = _choose_level(n_chains, x.size, n_blocks, var_mean, stat)
    stderr = math.sqrt(var_mean[level])
    dof = n_chains * (int(n_blocks[level]) - 1)
    return BlockingResult(
        stderr=stderr,
        stderr_error=stderr / math.sqrt(2.0 * dof),
        block_size=2**level,
        n_blocks=int(n_blocks[level]),
        plateau_reached=level < len(n_blocks) - 1,
        stderr_by_level=np.sqrt(var_mean),
    )


def _choose_level(
    n_chains: int, n_total: int, n_blocks: np.ndarray, var_mean: np.ndarray, stat: np.ndarray
) -> int:
    """First level that passes Jonsson's test and the bias criterion (module docstring).

    Returns the last level (2 blocks per chain) when none passes.
    """
    n_levels = len(n_blocks)
    tail_sums = np.cumsum(stat[::-1])[::-1]  # M_j = sum_{k >= j} stat_k
    dof = n_chains * (n_levels - np.arange(n_levels))
    uncorrelated = tail_sums < scipy.stats.chi2.ppf(_QUANTILE, dof)
    if not uncorrelated.any():
        return n_levels - 1
    block_size = 2.0 ** np.arange(n_levels)
    # tau_B = 1 for a constant trace (0 / 0), whose stderr is 0 at every level.
    tau = np.divide(var_mean, var_mean[0], out=np.ones_like(var_mean), where=var_mean[0] > 0)
    # tau_B <= 1 (anticorrelated draws): blocking over-estimates, no bias criterion.
    tau = np.maximum(tau, 1.0)
    unbiased = block_size**3 >= 2.0 * n_total * (tau - 1.0 / tau) ** 2
    first = int(np.argmax(uncorrelated))
    passed = np.flatnonzero(unbiased[first:])
    return first + int(passed[0]) if passed.size else n_levels - 1


def blocking_error(trace: ArrayLike, *, name: str = "trace") -> float:
    """Return the blocking standard error of the mean; warn if it has no plateau.

    Args:
      trace: (draws,) or (chains, draws) samples of one scalar observable.
      name: name of the observable, used in error and warning messages.

    Returns:
      () standard error of the mean over all chains and draws.

    Raises:
      ValueError: as ``blocking_analysis``.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (4, 1024))
      >>> 0.5 / 64 < blocking_error(x) < 2.0 / 64  # independent: 1 / sqrt(4096)
      True
    """
    result = blocking_analysis(trace, name=name)
    warn_if_no_plateau(result, name)
    return result.stderr


def warn_if_no_plateau(result: BlockingResult, name: str) -> None:
    """Warn (RuntimeWarning) when blocking found no plateau for ``name``."""
    if not result.plateau_reached:
        warnings.warn(
            f"blocking of {name} reached no plateau: the correlation time is too long "
            "for this trace and the stderr is a lower bound. Sample more draws.",
            RuntimeWarning,
            stacklevel=3,
        )

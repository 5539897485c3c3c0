"""Quasi-particle effective mass from the entropy: m*/m = S / S_0 (arXiv:2201.03156).

At low temperature a Fermi liquid has S = (m*/m) S_0 to leading order in T, so the
ratio of the variational entropy to that of the ideal gas at the same N, Theta, twist
and plane-wave cutoff measures m*/m. Two estimators:

- :func:`effective_mass_ratio`: S_0 is the exact canonical entropy of the ideal gas
  (:func:`ideal_entropy`, from :mod:`fermiflow.hamiltonians.free_fermions`), so the
  error of the ratio is that of S alone, error(S) / S_0.
- :func:`effective_mass_ratio_pretrained`: S_0 is the entropy of the same occupation
  model pretrained on the ideal gas, as in the m* paper; the model's own bias then
  partly cancels. S and S_pre come from independent samples, so their relative errors
  add in quadrature.

For the ideal gas both ratios are 1 (within error); the S = m*/m S_0 relation itself
is a low-temperature statement, and this module does not extrapolate in T.

Units: entropies in k_B (total, not per particle); ratios are dimensionless.
Host-side on finished estimates.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.observables.thermodynamics import Observable

__all__ = [
    "EffectiveMass",
    "effective_mass_ratio",
    "effective_mass_ratio_pretrained",
    "ideal_entropy",
]


class EffectiveMass(NamedTuple):
    """m*/m with its propagated error and the entropies it came from.

    Attributes:
      ratio: () m*/m = S / S_0.
      error: () one-sigma error of the ratio from the ESS errors.
      error_blocking: () the same from the blocking errors.
      entropy: () S of the state, in k_B.
      reference_entropy: () S_0, in k_B.
      reference_error: () error of S_0 (0 for the exact ideal entropy).
    """

    ratio: float
    error: float
    error_blocking: float
    entropy: float
    reference_entropy: float
    reference_error: float


def ideal_entropy(system: ElectronGas) -> float:
    """Return the exact canonical entropy S_0 (k_B) of the system's ideal gas.

    Same N (both spins), beta, twist and cutoff emax as ``system``.

    Examples:
      >>> gas = ElectronGas(n_up=1, n_down=0, dim=2, rs=1.0, theta=1.0, emax=1)
      >>> 0.0 < ideal_entropy(gas) < math.log(5)
      True
    """
    if not isinstance(system, ElectronGas):
        raise ValueError(
            f"system must be an ElectronGas for S_0, got {type(system).__name__}. "
            "For other systems pass the reference entropy to effective_mass_ratio."
        )
    return float(electron_gas_ideal_thermo(system).entropy)


def _check_entropy(name: str, obs: Observable) -> None:
    if obs.units != "k_B":
        raise ValueError(f"{name} must be an entropy in k_B, got units {obs.units!r}.")
    if not obs.value > 0:
        raise ValueError(f"{name} must be > 0 for a ratio, got {obs.value}.")


def effective_mass_ratio(entropy: Observable, reference_entropy: float) -> EffectiveMass:
    """Return m*/m = S / S_0 with S_0 exact.

    Args:
      entropy: total entropy of the state, e.g. ``thermodynamic_estimates(...)
        ["entropy"]`` (not the per-particle value: both are fine as long as S_0
        matches, here S_0 is total).
      reference_entropy: S_0 in k_B, e.g. :func:`ideal_entropy` of the system.

    Returns:
      An :class:`EffectiveMass`; error = error(S) / S_0.

    Raises:
      ValueError: for an observable that is not an entropy, or S, S_0 <= 0.

    Examples:
      >>> from fermiflow.observables.thermodynamics import Observable
      >>> s = Observable(4.0, 0.2, 0.25, 1.0, 100.0, 1000, "k_B")
      >>> effective_mass_ratio(s, 5.0)[:3]
      (0.8, 0.04, 0.05)
    """
    _check_entropy("entropy", entropy)
    if not reference_entropy > 0:
        raise ValueError(f"reference_entropy must be > 0 (k_B), got {reference_entropy}.")
    s0 = float(reference_entropy)
    return EffectiveMass(
        ratio=entropy.value / s0,
        error=entropy.error / s0,
        error_blocking=entropy.error_blocking / s0,
        entropy=entropy.value,
        reference_entropy=s0,
        reference_error=0.0,
    )


def effective_mass_ratio_pretrained(
    entropy: Observable, pretrained_entropy: Observable
) -> EffectiveMass:
    """Return m*/m = S / S_pre relative to the pretrained (ideal-gas) model.

    Args:
      entropy: total entropy of the trained state.
      pretrained_entropy: total entropy of the occupation model pretrained on the
        ideal gas, estimated from samples independent of ``entropy``'s.

    Returns:
      An :class:`EffectiveMass`; relative errors add in quadrature.

    Raises:
      ValueError: for observables that are not entropies, or values <= 0.
    """
    _check_entropy("entropy", entropy)
    _check_entropy("pretrained_entropy", pretrained_entropy)
    ratio = entropy.value / pretrained_entropy.value

    def propagate(a: float, b: float) -> float:
        return abs(ratio) * math.hypot(a / entropy.value, b / pretrained_entropy.value)

    return EffectiveMass(
        ratio=ratio,
        error=propagate(entropy.error, pretrained_entropy.error),
        error_blocking=propagate(entropy.error_blocking, pretrained_entropy.error_blocking),
        entropy=entropy.value,
        reference_entropy=pretrained_entropy.value,
        reference_error=pretrained_entropy.error,
    )

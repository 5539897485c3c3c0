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

from fermiflow.estimate import Estimate
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas

__all__ = [
    "effective_mass_ratio",
    "effective_mass_ratio_pretrained",
    "ideal_entropy",
]


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


def _check_entropy(name: str, entropy: Estimate) -> None:
    if not entropy.value > 0:
        raise ValueError(f"{name} must be > 0 (k_B) for a ratio, got {entropy.value}.")


def effective_mass_ratio(entropy: Estimate, reference_entropy: float) -> Estimate:
    """Return m*/m = S / S_0 with S_0 exact.

    Args:
      entropy: total entropy of the state in k_B, e.g. ``thermodynamic_estimates(...)
        ["entropy"]`` (S_0 must be the total entropy too).
      reference_entropy: S_0 in k_B, e.g. :func:`ideal_entropy` of the system.

    Returns:
      An :class:`~fermiflow.estimate.Estimate` of the ratio; error = error(S) / S_0,
      with the method of the entropy's error.

    Raises:
      ValueError: for S <= 0 or S_0 <= 0.

    Examples:
      >>> from fermiflow.estimate import Estimate
      >>> m = effective_mass_ratio(Estimate(4.0, 0.2, "blocking"), 5.0)
      >>> m.value, m.error, m.method
      (0.8, 0.04, 'blocking')
    """
    _check_entropy("entropy", entropy)
    if not reference_entropy > 0:
        raise ValueError(f"reference_entropy must be > 0 (k_B), got {reference_entropy}.")
    return entropy.scaled(1.0 / float(reference_entropy))


def effective_mass_ratio_pretrained(entropy: Estimate, pretrained_entropy: Estimate) -> Estimate:
    """Return m*/m = S / S_pre relative to the pretrained (ideal-gas) model.

    Args:
      entropy: total entropy of the trained state, k_B.
      pretrained_entropy: total entropy of the occupation model pretrained on the
        ideal gas, estimated from samples independent of ``entropy``'s.

    Returns:
      An :class:`~fermiflow.estimate.Estimate`; relative errors add in quadrature.

    Raises:
      ValueError: for entropies <= 0.
    """
    _check_entropy("entropy", entropy)
    _check_entropy("pretrained_entropy", pretrained_entropy)
    ratio = entropy.value / pretrained_entropy.value
    error = abs(ratio) * math.hypot(entropy.error / entropy.value,
                                    pretrained_entropy.error / pretrained_entropy.value)
    method = (entropy.method if entropy.method == pretrained_entropy.method
              else "max(ess,blocking)")
    return Estimate(ratio, error, method)

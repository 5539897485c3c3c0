"""Quasi-particle effective mass m*/m from the entropy and from p(K) (arXiv:2201.03156).

At low temperature a Fermi liquid has S = (m*/m) S_0 to leading order in T, so the
ratio of the variational entropy to that of the ideal gas at the same N, Theta, twist
and plane-wave cutoff measures m*/m. At finite N and Theta, S_0 is not linear in T
(S_0 ~ T^1.1-1.4 at Theta = 0.15), so the ratio is biased; two consistent estimators
do not assume linearity:

- :func:`effective_mass_from_entropy` inverts S = S_0(T m*/m): an ideal gas of mass m*
  has levels eps m / m*, i.e. the entropy of the mass-m gas at temperature T m*/m; it
  solves that equation with the exact canonical S_0 of the same N, cutoff and twist;
- :func:`effective_mass_from_occupations` fits -ln p(K) = c + beta (m / m*) E_0(K) over
  samples of p(K): the Boltzmann weights of quasi-particles of mass m*; the residuals
  of the fit test the Fermi-liquid form.

Both are exact (1) for the ideal gas and give m* for an ideal gas of rescaled mass.
The ratio estimators:

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

import numpy as np
import scipy.optimize

from fermiflow.estimate import Estimate
from fermiflow.hamiltonians.free_fermions import (
    canonical_ideal_gas_spinful,
    electron_gas_ideal_thermo,
)
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.types import ArrayLike

__all__ = [
    "OccupationFit",
    "effective_mass_from_entropy",
    "effective_mass_from_occupations",
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
      >>> m.value, round(m.error, 12), m.method
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


def effective_mass_from_entropy(entropy: Estimate, system: ElectronGas) -> Estimate:
    """Return x = m*/m solving S = S_0(T x), with S_0 the exact canonical ideal entropy.

    Args:
      entropy: total entropy S of the state, k_B.
      system: the ElectronGas (N, spins, cutoff, twist and T of S_0).

    Returns:
      An :class:`~fermiflow.estimate.Estimate`; error = error(S) x / C_0(T x) from
      dS_0/dx = C_0(T x) / x (C_0 the ideal heat capacity), with the entropy's method.

    Raises:
      ValueError: if S is not between S_0(T / 100) and S_0(100 T).

    Examples:
      >>> gas = ElectronGas(n_up=3, n_down=0, dim=2, rs=1.0, theta=0.3, emax=4)
      >>> s0 = electron_gas_ideal_thermo(gas).entropy
      >>> round(effective_mass_from_entropy(Estimate(float(s0), 0.01), gas).value, 10)
      1.0
    """
    energies, beta = system.spectrum.energies, system.beta

    def ideal(x: float):
        return canonical_ideal_gas_spinful(energies, system.n_up, system.n_down, beta / x)

    low, high = 1e-2, 1e2
    target = float(entropy.value)
    if not float(ideal(low).entropy) < target < float(ideal(high).entropy):
        raise ValueError(f"S = {target:.6g} k_B lies outside S_0(T x) for x in [{low}, "
                         f"{high}]: no effective mass in that range.")
    x = scipy.optimize.brentq(lambda y: float(ideal(y).entropy) - target, low, high,
                              xtol=1e-14, rtol=1e-13)
    capacity = float(ideal(x).heat_capacity)
    return Estimate(x, float(entropy.error) * x / capacity, entropy.method,
                    n_samples=entropy.n_samples)


class OccupationFit(NamedTuple):
    """Least-squares fit of -ln p(K) = c + slope E_0(K) over samples of p(K).

    Attributes:
      mass_ratio: m*/m = beta / slope, with its error (independent samples).
      slope: () fitted slope, 1/Hartree.
      intercept: () fitted c.
      residual_rms: () rms residual of -ln p about the line (0 for a Boltzmann p).
      r_squared: () fraction of the variance of -ln p explained by E_0.
    """

    mass_ratio: Estimate
    slope: float
    intercept: float
    residual_rms: float
    r_squared: float


def effective_mass_from_occupations(
    log_p: ArrayLike, reference_energy: ArrayLike, beta: float
) -> OccupationFit:
    """Fit -ln p(K) = c + beta (m / m*) E_0(K) over exact samples K ~ p.

    Args:
      log_p: (samples,) ln p(K) of independent exact samples (p(K) is sampled exactly).
      reference_energy: (samples,) E_0(K), the ideal energy of each set, Hartree.
      beta: 1 / T in 1/Hartree.

    Returns:
      An :class:`OccupationFit`; the slope's error is the ordinary least-squares
      standard error (independent samples), propagated to m*/m = beta / slope.

    Raises:
      ValueError: for shapes that differ, fewer than 3 samples, non-finite values or a
        constant E_0 (no slope to fit).

    Examples:
      >>> e0 = np.array([0.0, 1.0, 2.0, 3.0])
      >>> fit = effective_mass_from_occupations(-2.0 * e0 - 1.0, e0, beta=2.0)
      >>> fit.mass_ratio.value, fit.residual_rms
      (1.0, 0.0)
    """
    y = -np.asarray(log_p, np.float64).ravel()
    e0 = np.asarray(reference_energy, np.float64).ravel()
    if y.shape != e0.shape or y.size < 3:
        raise ValueError(f"log_p and reference_energy must hold the same >= 3 samples, got "
                         f"{np.shape(log_p)} and {np.shape(reference_energy)}.")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(e0))):
        raise ValueError("log_p and reference_energy must be finite (never averaged).")
    centred = e0 - e0.mean()
    spread = float(np.sum(centred**2))
    if spread == 0.0:
        raise ValueError("reference_energy is constant: the slope of -ln p is undefined.")
    slope = float(np.sum(centred * (y - y.mean())) / spread)
    intercept = float(y.mean() - slope * e0.mean())
    residual = y - intercept - slope * e0
    dof = y.size - 2
    slope_error = math.sqrt(float(np.sum(residual**2)) / dof / spread)
    total = float(np.sum((y - y.mean()) ** 2))
    ratio = beta / slope
    mass = Estimate(ratio, abs(ratio) * slope_error / abs(slope), "independent",
                    n_samples=y.size)
    return OccupationFit(mass, slope, intercept, float(np.sqrt(np.mean(residual**2))),
                         1.0 - float(np.sum(residual**2)) / total if total > 0 else 1.0)

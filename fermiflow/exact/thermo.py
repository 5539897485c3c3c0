"""Canonical thermodynamics of a system from its energy levels, in log space.

Units: Hartree atomic units; S in k_B, beta in 1/Hartree. Host-side float64 NumPy;
all quantities are whole-system (never per particle).

For levels e_k with degeneracies g_k and ground energy E0 = min e_k, every sum is taken
relative to E0, so nothing overflows at low temperature:

  Z' = sum_k g_k exp(-beta (e_k - E0)) >= 1,   F = E0 - ln Z' / beta,
  E = E0 + <e - E0>,                            S = beta <e - E0> + ln Z'.

Both terms of S are >= 0, so S never comes from the difference of two large numbers.
Systems are built from parts with :func:`thermo_product` (independent subsystems, e.g.
centre of mass and relative motion: Z = Z_a Z_b) and :func:`thermo_mixture` (disjoint
sectors of one Hilbert space: Z = sum_i Z_i), which keep the same property: the mixture
entropy is sum_i w_i S_i - sum_i w_i ln w_i with w_i = Z_i / Z.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.special
from jax.typing import ArrayLike

from fermiflow.validation import check_positive

__all__ = ["ExactThermo", "thermo_from_levels", "thermo_mixture", "thermo_product"]


class ExactThermo(NamedTuple):
    """Canonical thermodynamics of a whole system; every field is a () Python float.

    Attributes:
      free_energy: F = -ln Z / beta.
      energy: E = <H>.
      entropy: S = beta (E - F), in k_B.
      ground_energy: E0, the lowest level.
    """

    free_energy: float
    energy: float
    entropy: float
    ground_energy: float


def thermo_from_levels(
    energies: ArrayLike, beta: float, degeneracies: ArrayLike | None = None
) -> ExactThermo:
    """Return the canonical thermodynamics of a list of levels.

    Args:
      energies: (m,) energy levels, any order, finite.
      beta: inverse temperature, > 0.
      degeneracies: (m,) positive multiplicity of each level; default all 1.

    Returns:
      The :class:`ExactThermo`, computed in float64.

    Raises:
      ValueError: for empty or non-finite energies, a shape mismatch, degeneracies
        <= 0 or beta <= 0.

    Examples:
      >>> t = thermo_from_levels([0.0, 1.0], beta=1.0)
      >>> bool(np.isclose(t.free_energy, -np.log1p(np.exp(-1.0)), rtol=1e-14))
      True
      >>> thermo_from_levels([2.0, 2.0], beta=3.0) == thermo_from_levels(
      ...     [2.0], beta=3.0, degeneracies=[2])
      True
    """
    beta = check_positive("beta", beta, "beta = 1 / T in 1/Hartree.")
    levels = np.asarray(energies, dtype=np.float64)
    if levels.ndim != 1 or levels.shape[0] == 0 or not np.all(np.isfinite(levels)):
        raise ValueError(
            f"energies must be a non-empty 1D array of finite numbers, got shape "
            f"{levels.shape}. Pass the energy levels of the system."
        )
    if degeneracies is None:
        weights = np.ones_like(levels)
    else:
        weights = np.asarray(degeneracies, dtype=np.float64)
        if weights.shape != levels.shape or not np.all(weights > 0):
            raise ValueError(
                f"degeneracies must be positive with the shape {levels.shape} of "
                f"energies, got shape {weights.shape}. Drop levels of multiplicity 0."
            )
    ground = float(levels.min())
    excitation = levels - ground
    log_terms = np.log(weights) - beta * excitation
    log_z = float(scipy.special.logsumexp(log_terms))
    mean_excitation = float(np.sum(np.exp(log_terms - log_z) * excitation))
    return ExactThermo(
        free_energy=ground - log_z / beta,
        energy=ground + mean_excitation,
        entropy=beta * mean_excitation + log_z,
        ground_energy=ground,
    )


def thermo_product(parts: Sequence[ExactThermo]) -> ExactThermo:
    """Return the thermodynamics of independent subsystems (Z = prod_i Z_i).

    F, E, S and E0 all add. A single level e (``thermo_from_levels([e], beta)``) is a
    constant energy shift.

    Args:
      parts: one or more :class:`ExactThermo` at the same beta.

    Returns:
      The :class:`ExactThermo` of the composite system.

    Examples:
      >>> a = thermo_from_levels([0.0, 1.0], beta=2.0)
      >>> thermo_product([a, thermo_from_levels([5.0], beta=2.0)]).ground_energy
      5.0
    """
    if len(parts) == 0:
        raise ValueError("parts must hold at least one ExactThermo.")
    return ExactThermo(*(float(sum(field)) for field in zip(*parts, strict=True)))


def thermo_mixture(parts: Sequence[ExactThermo], beta: float) -> ExactThermo:
    """Return the thermodynamics of disjoint sectors of one system (Z = sum_i Z_i).

    Args:
      parts: one or more :class:`ExactThermo` of the sectors, all at ``beta``.
      beta: the inverse temperature of the parts, > 0.

    Returns:
      The :class:`ExactThermo` of the union of the sectors.

    Examples:
      >>> half = thermo_from_levels([0.0, 1.0], beta=1.5)
      >>> both = thermo_mixture([half, half], beta=1.5)
      >>> bool(np.isclose(both.entropy - half.entropy, np.log(2.0), rtol=1e-14))
      True
    """
    beta = check_positive("beta", beta, "Pass the beta at which the parts were made.")
    if len(parts) == 0:
        raise ValueError("parts must hold at least one ExactThermo.")
    free = np.array([p.free_energy for p in parts])
    ground = min(p.ground_energy for p in parts)
    log_z = float(scipy.special.logsumexp(-beta * free))
    weights = np.exp(-beta * free - log_z)
    # w ln w with w = 0 contributes 0; the shift by ground keeps the energies small.
    log_weights = np.where(weights > 0, -beta * free - log_z, 0.0)
    excitation = np.array([p.energy - ground for p in parts])
    entropy = np.array([p.entropy for p in parts])
    return ExactThermo(
        free_energy=-log_z / beta,
        energy=ground + float(np.sum(weights * excitation)),
        entropy=float(np.sum(weights * entropy) - np.sum(weights * log_weights)),
        ground_energy=float(ground),
    )

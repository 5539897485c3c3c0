"""Exact canonical thermodynamics of two electrons in a 2D or 3D harmonic dot.

Units: Hartree atomic units; whole-system F, E, S (k_B) and E0. Host-side float64.

The Hamiltonian is that of :class:`~fermiflow.hamiltonians.systems.QuantumDot`,
H = sum_i (-lap_i / 2 + omega^2 |x_i|^2 / 2) + coupling / |x_1 - x_2|. It separates
into the centre of mass (mass 2, frequency omega: levels omega (n + dim / 2) with the
dim-dimensional oscillator degeneracies; closed-form thermodynamics) and the relative
motion -lap_r + omega^2 r^2 / 4 + coupling / r, solved per partial wave by
:func:`~fermiflow.exact.laguerre_radial.radial_levels` (2D: m = 0, +-1, ..., weight 2
for m != 0; 3D: l = 0, 1, ..., weight 2 l + 1). Exchange of the electrons maps r to -r,
so the relative parity is (-1)^m or (-1)^l:

* spin-polarized (n_up, n_down) = (2, 0) or (0, 2): odd partial waves only (spin
  multiplicity 1, the S_z = +-1 triplet state);
* 1 up + 1 down (the S_z = 0 sector, with the up and down electrons as distinguishable
  labels): every partial wave once.

Truncation. The Coulomb term is >= 0, so each relative level lies above its coupling-0
value omega (2 n + nu + 1) (min-max). Partial waves and radial levels are kept while
that lower bound is below e0 + window, where e0 is the lowest relative level; the window
is widened until the coupling-0 Boltzmann weight of everything dropped is below
``tolerance`` times that of the ground state, a rigorous bound on the relative error of
Z. Each partial wave is solved in 3 n_keep + 30 basis functions, which converges its
n_keep kept levels to about 1e-12 (module docstring of ``laguerre_radial``).

References: M. Taut, Phys. Rev. A 48, 3561 (1993) (3D) and J. Phys. A 27, 1045 (1994)
(2D) give closed-form states. In the notation of ``laguerre_radial``, partial wave nu
at omega = coupling^2 / (2 nu + 1) has the relative ground state
u(r) = (1 + coupling r / (2 nu + 1)) r^(nu + 1/2) exp(-omega r^2 / 4) with relative
energy omega (nu + 2) (insert it in the radial equation), so the 2D singlet at
omega = coupling = 1 has E0 = 1 + 2 = 3 and the 3D singlet at omega = 1/2, coupling = 1
(Hooke's atom) has E0 = 3/4 + 5/4 = 2.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fermiflow.exact.laguerre_radial import radial_levels
from fermiflow.exact.thermo import ExactThermo, thermo_from_levels, thermo_product
from fermiflow.hamiltonians.systems import QuantumDot
from fermiflow.validation import check_nonnegative_int, check_positive, check_positive_int

__all__ = ["oscillator_thermo", "two_electron_dot"]


class _Channel(NamedTuple):
    nu: float  # partial-wave index |m| (2D) or l + 1/2 (3D)
    weight: int  # angular degeneracy times spin multiplicity
    n_keep: int  # radial levels kept


def oscillator_thermo(*, dim: int, omega: float, beta: float) -> ExactThermo:
    """Return the closed-form thermodynamics of one isotropic oscillator.

    Levels omega (n + dim / 2), n = 0, 1, ..., with degeneracy C(n + dim - 1, dim - 1);
    this is the centre of mass of the dot (its frequency does not depend on the mass).

    Args:
      dim: number of dimensions, >= 1.
      omega: frequency in Hartree, > 0.
      beta: inverse temperature in 1/Hartree, > 0.

    Returns:
      The :class:`ExactThermo` (dim independent 1D oscillators).

    Examples:
      >>> oscillator_thermo(dim=2, omega=1.0, beta=1e3).energy
      1.0
    """
    dim = check_positive_int("dim", dim)
    omega = check_positive("omega", omega, "It is in Hartree.")
    beta = check_positive("beta", beta, "beta = 1 / T in 1/Hartree.")
    x = beta * omega
    # Bose factor e^-x / (1 - e^-x): neither overflows nor cancels for small or large x.
    occupation = math.exp(-x) / -math.expm1(-x)
    log_z_excited = -math.log1p(-math.exp(-x))  # -ln(1 - e^-x) >= 0
    return ExactThermo(
        free_energy=dim * (0.5 * omega - log_z_excited / beta),
        energy=dim * omega * (0.5 + occupation),
        entropy=dim * (x * occupation + log_z_excited),
        ground_energy=0.5 * dim * omega,
    )


def _check_system(system: QuantumDot) -> tuple[int, ...]:
    """Return the allowed relative parities (0 even, 1 odd) of a two-electron dot."""
    if not isinstance(system, QuantumDot):
        raise ValueError(f"system must be a QuantumDot, got {type(system).__name__}.")
    if system.n_particles != 2 or system.dim not in (2, 3):
        raise ValueError(
            f"two_electron_dot solves 2 electrons in 2D or 3D, got n_up={system.n_up}, "
            f"n_down={system.n_down}, dim={system.dim}; use n_up + n_down = 2, dim 2 or 3."
        )
    return (1,) if system.n_up != 1 else (0, 1)


def _channels(
    dim: int, parities: tuple[int, ...], energy_cut: float, omega: float
) -> list[_Channel]:
    """Partial waves whose coupling-0 levels omega (2 n + nu + 1) lie below energy_cut."""
    channels = []
    for angular in range(int(energy_cut / omega) + 1):
        nu = angular if dim == 2 else angular + 0.5
        n_keep = math.ceil((energy_cut / omega - nu - 1.0) / 2.0)
        if n_keep <= 0 or angular % 2 not in parities:
            continue
        weight = (1 if angular == 0 else 2) if dim == 2 else 2 * angular + 1
        channels.append(_Channel(nu, weight, n_keep))
    return channels


def _dropped_weight(
    dim: int, parities: tuple[int, ...], energy_cut: float, omega: float, beta: float
) -> float:
    """Coupling-0 weight sum_dropped g exp(-beta e), e >= energy_cut, relative to e^(-beta cut).

    The coupling-0 relative levels are omega (j + dim / 2) with j = 2 n + angular, and
    each j carries a finite number of states of either parity; the series is summed
    until its terms are negligible.
    """
    total, j = 0.0, max(math.floor(energy_cut / omega - dim / 2.0), 0)
    while True:
        excess = omega * (j + dim / 2.0) - energy_cut
        angular = np.arange(j % 2, j + 1, 2)  # the partial waves at j share its parity
        count = np.sum(np.where(angular == 0, 1, 2)) if dim == 2 else np.sum(2 * angular + 1)
        term = count * math.exp(-beta * excess) if excess >= 0 else 0.0
        if j % 2 in parities:
            total += term
        if excess > 0 and term < 1e-18 * max(total, 1e-300):
            return total
        j += 1


def two_electron_dot(
    system: QuantumDot,
    *,
    tolerance: float = 1e-14,
    n_basis: int | None = None,
    max_angular: int | None = None,
) -> ExactThermo:
    """Return the exact canonical thermodynamics of two electrons in a harmonic dot.

    Args:
      system: a :class:`QuantumDot` with n_up + n_down = 2 and dim 2 or 3; its beta,
        omega, coupling and spins are used (n_shells plays no role: this is the
        complete-basis answer).
      tolerance: bound on the relative weight of the dropped relative levels, > 0.
      n_basis: radial basis functions per partial wave; default 3 n_keep + 30.
      max_angular: largest |m| (2D) or l (3D) kept; default from ``tolerance``.

    Returns:
      The :class:`ExactThermo` of the whole system (centre of mass + relative).

    Raises:
      ValueError: for anything but 2 electrons in 2D or 3D, or bad accuracy settings.

    Examples:
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=2.0, n_shells=1)
      >>> round(two_electron_dot(dot).ground_energy, 10)  # Taut's closed form
      3.0
    """
    parities = _check_system(system)
    tolerance = check_positive("tolerance", tolerance, "Use e.g. 1e-14.")
    dim, omega, beta, coupling = system.dim, system.omega, system.beta, system.coupling
    lowest_nu = (0.0 if 0 in parities else 1.0) + (0.5 if dim == 3 else 0.0)
    e0 = radial_levels(nu=lowest_nu, omega=omega, coupling=coupling, n_basis=40, n_levels=1)[0]
    window = math.log(1.0 / tolerance) / beta
    while (
        _dropped_weight(dim, parities, e0 + window, omega, beta) * math.exp(-beta * window)
        > tolerance
    ):
        window += 1.0 / beta
    channels = _channels(dim, parities, e0 + window, omega)
    if max_angular is not None:
        max_angular = check_nonnegative_int("max_angular", max_angular)
        channels = [c for c in channels if c.nu - (dim - 2) * 0.5 <= max_angular]
    levels, weights = [], []
    for channel in channels:
        size = 3 * channel.n_keep + 30 if n_basis is None else n_basis
        size = check_positive_int("n_basis", size)
        kept = radial_levels(
            nu=channel.nu,
            omega=omega,
            coupling=coupling,
            n_basis=size,
            n_levels=min(channel.n_keep, size),
        )
        levels.append(kept)
        weights.append(np.full(kept.shape, float(channel.weight)))
    relative = thermo_from_levels(np.concatenate(levels), beta, np.concatenate(weights))
    center = oscillator_thermo(dim=dim, omega=omega, beta=beta)
    return thermo_product([center, relative])

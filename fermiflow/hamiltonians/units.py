"""Scales of the electron gas and conversions between Hartree and Rydberg units.

Units: Hartree atomic units (hbar = m_e = e = k_B = 1; lengths in Bohr, energies in
Hartree, beta in 1/Hartree). This module is the one place where the dimensionless
parameters (N, dim, rs, theta) of a uniform electron gas become a box side ``L`` and an
inverse temperature ``beta``; everything downstream works with ``L`` and ``beta``.

Conventions (as in arXiv:2201.03156 and Brown et al., PRL 110, 146405 (2013)):

* rs is the Wigner-Seitz radius in Bohr: the total density is n = 1 / (pi rs^2) in 2D
  and n = 3 / (4 pi rs^3) in 3D, so the box side is L = sqrt(pi N) rs (2D) or
  L = (4 pi N / 3)^(1/3) rs (3D).
* theta = T / T_F with T_F = E_F = k_F^2 / 2 (k_B = 1). For a partially polarized gas
  E_F is that of the MAJORITY species, whose density is max(n_up, n_down) / L^dim:
  k_F = sqrt(4 pi n_major) in 2D and (6 pi^2 n_major)^(1/3) in 3D. This reduces to the
  standard definitions in both limits: polarized k_F = 2 / rs (2D),
  (9 pi / 2)^(1/3) / rs (3D); unpolarized k_F = sqrt(2) / rs (2D),
  (9 pi / 4)^(1/3) / rs (3D).
* One Rydberg is half a Hartree. Energies of the ideal gas at fixed theta scale as
  1 / rs^2; "Ry / rs^2" means the energy in Rydberg times rs^2.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from jax.typing import ArrayLike

from fermiflow.validation import check_dim, check_nonnegative_int, check_positive

__all__ = [
    "ElectronGasScales",
    "electron_gas_scales",
    "from_rydberg_per_rs2",
    "hartree_to_rydberg",
    "rydberg_to_hartree",
    "to_rydberg_per_rs2",
]


class ElectronGasScales(NamedTuple):
    """Derived scales of a uniform electron gas, all Python floats in Hartree a.u.

    Attributes:
      box_length: side L of the periodic box in Bohr.
      beta: inverse temperature 1 / T in 1/Hartree.
      temperature: T = theta * E_F in Hartree.
      fermi_energy: E_F = k_F^2 / 2 of the majority species in Hartree.
      fermi_wavevector: k_F of the majority species in 1/Bohr.
      density: total number density N / L^dim in Bohr^-dim.
    """

    box_length: float
    beta: float
    temperature: float
    fermi_energy: float
    fermi_wavevector: float
    density: float


def electron_gas_scales(
    *, n_up: int, n_down: int, dim: int, rs: float, theta: float
) -> ElectronGasScales:
    """Convert (n_up, n_down, dim, rs, theta) into box side, beta and Fermi scales.

    Args:
      n_up: number of spin-up electrons, >= 0.
      n_down: number of spin-down electrons, >= 0 (n_up + n_down >= 1).
      dim: 2 or 3.
      rs: Wigner-Seitz radius in Bohr, > 0.
      theta: reduced temperature T / T_F of the majority species, > 0.

    Returns:
      The :class:`ElectronGasScales` of the system.

    Raises:
      ValueError: for a negative spin count, no electrons, a bad dim, rs or theta.

    Examples:
      >>> s = electron_gas_scales(n_up=13, n_down=0, dim=2, rs=1.0, theta=0.15)
      >>> round(hartree_to_rydberg(s.fermi_energy), 12)  # E_F = 4 / rs^2 Ry
      4.0
      >>> round(s.box_length**2 / (13 * math.pi), 12)  # L = sqrt(pi N) rs
      1.0
    """
    n_up = check_nonnegative_int("n_up", n_up, "Pass the number of up electrons.")
    n_down = check_nonnegative_int(
        "n_down", n_down, "Pass n_down=0 for a spin-polarized gas."
    )
    n_total = n_up + n_down
    if n_total < 1:
        raise ValueError(
            f"n_up + n_down must be >= 1, got n_up={n_up}, n_down={n_down}. "
            "Put at least one electron in the box."
        )
    dim = check_dim(dim)
    rs = check_positive("rs", rs, "rs is the Wigner-Seitz radius in Bohr.")
    theta = check_positive("theta", theta, "theta = T / T_F must be positive.")
    if dim == 2:
        density = 1.0 / (math.pi * rs**2)
        fermi_wavevector = math.sqrt(
            4.0 * math.pi * density * max(n_up, n_down) / n_total
        )
    else:
        density = 3.0 / (4.0 * math.pi * rs**3)
        fermi_wavevector = (
            6.0 * math.pi**2 * density * max(n_up, n_down) / n_total
        ) ** (1.0 / 3.0)
    box_length = (n_total / density) ** (1.0 / dim)
    fermi_energy = 0.5 * fermi_wavevector**2
    temperature = theta * fermi_energy
    return ElectronGasScales(
        box_length=box_length,
        beta=1.0 / temperature,
        temperature=temperature,
        fermi_energy=fermi_energy,
        fermi_wavevector=fermi_wavevector,
        density=density,
    )


def hartree_to_rydberg(energy: ArrayLike) -> ArrayLike:
    """Return an energy (any shape) in Rydberg; keeps the dtype of array inputs."""
    return energy * 2


def rydberg_to_hartree(energy: ArrayLike) -> ArrayLike:
    """Return an energy (any shape) in Hartree; keeps the dtype of array inputs."""
    return energy / 2


def to_rydberg_per_rs2(energy: ArrayLike, rs: float) -> ArrayLike:
    """Return an energy in Hartree (any shape) in units of Ry / rs^2 (E_Ry * rs^2).

    At fixed theta the ideal-gas energies scale as 1 / rs^2, so this unit makes them
    independent of rs. Keeps the dtype of array inputs.
    """
    rs = check_positive("rs", rs, "rs is the Wigner-Seitz radius in Bohr.")
    return energy * (2.0 * rs**2)


def from_rydberg_per_rs2(value: ArrayLike, rs: float) -> ArrayLike:
    """Return a value in Ry / rs^2 (any shape) as an energy in Hartree."""
    rs = check_positive("rs", rs, "rs is the Wigner-Seitz radius in Bohr.")
    return value / (2.0 * rs**2)

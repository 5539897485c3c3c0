"""Frozen, hashable descriptions of the physical systems fermiflow studies.

Units: Hartree atomic units. Each description validates its fields eagerly in
``__post_init__`` (a ``ValueError`` naming the field and the fix), stores them as plain
Python ints, floats and tuples (so it is hashable and can be static under jit), and
derives box sides, temperatures and single-particle spectra on demand.
"""

from __future__ import annotations

import dataclasses

from fermiflow.hamiltonians.spectrum import (
    Spectrum,
    check_enough_modes,
    oscillator_spectrum,
    plane_wave_spectrum,
)
from fermiflow.hamiltonians.units import ElectronGasScales, electron_gas_scales
from fermiflow.validation import (
    check_dim,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_twist,
)

__all__ = ["ClassicalCoulombGas", "ElectronGas", "QuantumDot"]


def _set(obj: object, name: str, value: object) -> None:
    # Normalizing a field of a frozen dataclass in __post_init__.
    object.__setattr__(obj, name, value)


def _check_spins(n_up: int, n_down: int) -> tuple[int, int]:
    n_up = check_nonnegative_int("n_up", n_up)
    n_down = check_nonnegative_int(
        "n_down", n_down, "Pass n_down=0 for a spin-polarized system."
    )
    if n_up + n_down < 1:
        raise ValueError(
            f"n_up + n_down must be >= 1, got n_up={n_up}, n_down={n_down}. "
            "Put at least one particle in the system."
        )
    return n_up, n_down


def _check_coupling(coupling: float, fix: str) -> float:
    coupling = float(coupling)
    if not (0 <= coupling < float("inf")):
        raise ValueError(
            f"coupling must be a finite number >= 0, got {coupling}. {fix}"
        )
    return coupling


@dataclasses.dataclass(frozen=True, kw_only=True)
class ElectronGas:
    """Uniform electron gas in a periodic box with a twisted plane-wave basis.

    Attributes:
      n_up: number of spin-up electrons.
      n_down: number of spin-down electrons (0 for the spin-polarized gas).
      dim: 2 or 3.
      rs: Wigner-Seitz radius in Bohr.
      theta: T / T_F of the majority species (see :mod:`fermiflow.hamiltonians.units`).
      emax: cutoff |n|^2 <= emax on the integer grid of plane waves.
      twist: (dim,) twist in [-1/2, 1/2]^dim; None means the Gamma point. Stored as a
        tuple of floats.

    Examples:
      >>> gas = ElectronGas(n_up=13, n_down=0, dim=2, rs=1.0, theta=0.15, emax=25,
      ...                   twist=(0.25, 0.25))
      >>> gas.spectrum.energies.shape, gas.n_particles
      ((81,), 13)
    """

    n_up: int
    n_down: int
    dim: int
    rs: float
    theta: float
    emax: int
    twist: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        n_up, n_down = _check_spins(self.n_up, self.n_down)
        _set(self, "n_up", n_up)
        _set(self, "n_down", n_down)
        _set(self, "dim", check_dim(self.dim))
        _set(self, "rs", check_positive("rs", self.rs, "rs is in Bohr."))
        _set(self, "theta", check_positive("theta", self.theta, "theta = T / T_F."))
        _set(
            self,
            "emax",
            check_nonnegative_int("emax", self.emax, "It is a cutoff on |n|^2."),
        )
        twist = (0.0,) * self.dim if self.twist is None else self.twist
        _set(self, "twist", check_twist(twist, self.dim))
        n_modes = self.spectrum.energies.shape[0]
        check_enough_modes(max(self.n_up, self.n_down), n_modes, "emax")

    @property
    def n_particles(self) -> int:
        """Total number of electrons."""
        return self.n_up + self.n_down

    @property
    def scales(self) -> ElectronGasScales:
        """Box side, beta, temperature and Fermi scales in Hartree a.u."""
        return electron_gas_scales(
            n_up=self.n_up,
            n_down=self.n_down,
            dim=self.dim,
            rs=self.rs,
            theta=self.theta,
        )

    @property
    def box_length(self) -> float:
        """Side L of the periodic box in Bohr."""
        return self.scales.box_length

    @property
    def beta(self) -> float:
        """Inverse temperature in 1/Hartree."""
        return self.scales.beta

    @property
    def spectrum(self) -> Spectrum:
        """Twisted plane waves with |n|^2 <= emax, shared by both spin species."""
        return plane_wave_spectrum(
            dim=self.dim, emax=self.emax, box_length=self.box_length, twist=self.twist
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantumDot:
    """Electrons in an isotropic harmonic trap with a scaled Coulomb repulsion.

    H = sum_i (-1/2 lap_i + omega^2 |x_i|^2 / 2) + coupling * sum_{i<j} 1 / |x_i - x_j|.

    Attributes:
      n_up: number of spin-up electrons.
      n_down: number of spin-down electrons.
      dim: 1, 2 or 3.
      omega: trap frequency in Hartree.
      coupling: strength of the Coulomb repulsion, >= 0 (0 = free fermions).
      beta: inverse temperature in 1/Hartree.
      n_shells: oscillator shells kept in the single-particle basis.

    Examples:
      >>> dot = QuantumDot(n_up=3, n_down=3, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=2.0, n_shells=4)
      >>> dot.spectrum.energies.shape
      (10,)
    """

    n_up: int
    n_down: int
    dim: int
    omega: float
    coupling: float
    beta: float
    n_shells: int

    def __post_init__(self) -> None:
        n_up, n_down = _check_spins(self.n_up, self.n_down)
        _set(self, "n_up", n_up)
        _set(self, "n_down", n_down)
        _set(self, "dim", check_dim(self.dim, allowed=(1, 2, 3)))
        _set(self, "omega", check_positive("omega", self.omega, "It is in Hartree."))
        _set(self, "beta", check_positive("beta", self.beta, "beta = 1 / T."))
        fix = "Use coupling=0 for free fermions, 1 for the physical Coulomb force."
        _set(self, "coupling", _check_coupling(self.coupling, fix))
        _set(self, "n_shells", check_positive_int("n_shells", self.n_shells))
        n_modes = self.spectrum.energies.shape[0]
        check_enough_modes(max(self.n_up, self.n_down), n_modes, "n_shells")

    @property
    def n_particles(self) -> int:
        """Total number of electrons."""
        return self.n_up + self.n_down

    @property
    def spectrum(self) -> Spectrum:
        """Oscillator levels of the first ``n_shells`` shells."""
        return oscillator_spectrum(
            dim=self.dim, n_shells=self.n_shells, omega=self.omega
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassicalCoulombGas:
    """Classical point charges in a harmonic trap at temperature T.

    E = sum_i omega^2 |x_i|^2 / 2 + coupling * sum_{i<j} 1 / |x_i - x_j|.

    Attributes:
      n: number of particles.
      dim: 1, 2 or 3.
      omega: trap frequency in Hartree.
      coupling: strength of the repulsion, >= 0.
      temperature: T in Hartree.

    Examples:
      >>> ClassicalCoulombGas(n=6, dim=2, temperature=0.5).beta
      2.0
    """

    n: int
    dim: int
    omega: float = 1.0
    coupling: float = 1.0
    temperature: float

    def __post_init__(self) -> None:
        _set(self, "n", check_positive_int("n", self.n, "It counts the particles."))
        _set(self, "dim", check_dim(self.dim, allowed=(1, 2, 3)))
        _set(self, "omega", check_positive("omega", self.omega, "It is in Hartree."))
        fix = "Use coupling=0 for an ideal gas in the trap."
        _set(self, "coupling", _check_coupling(self.coupling, fix))
        _set(
            self,
            "temperature",
            check_positive("temperature", self.temperature, "It is in Hartree."),
        )

    @property
    def beta(self) -> float:
        """Inverse temperature in 1/Hartree."""
        return 1.0 / self.temperature

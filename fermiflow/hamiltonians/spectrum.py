"""Single-particle spectra: twisted plane waves in a box and harmonic-oscillator levels.

These are static, host-side tables (NumPy) that the exact free-fermion module, the
orbitals and the autoregressive models share, so every part of the package agrees on
the order of the modes.

Units: Hartree atomic units. Plane waves in a periodic box of side ``L`` have wave
vectors k = 2 pi (n + twist) / L with integer n, and energies k^2 / 2. The cutoff is on
the integer grid, |n|^2 <= emax (so emax=25 in 2D gives 81 modes for any twist), as in
arXiv:2201.03156. Oscillator levels of frequency omega have energies
omega (sum_i n_i + dim / 2).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fermiflow.validation import (
    check_dim,
    check_nonnegative_int,
    check_positive,
    check_twist,
)

__all__ = [
    "Spectrum",
    "check_enough_modes",
    "oscillator_spectrum",
    "plane_wave_spectrum",
]


class Spectrum(NamedTuple):
    """A sorted table of single-particle modes.

    Attributes:
      quantum_numbers: (m, dim) int64 integer labels n of each mode.
      energies: (m,) float64 single-particle energies in Hartree, ascending.
      wavevectors: (m, dim) float64 k = 2 pi (n + twist) / L for plane waves; for
        oscillator levels, the quantum numbers as floats.
    """

    quantum_numbers: np.ndarray
    energies: np.ndarray
    wavevectors: np.ndarray


def plane_wave_spectrum(
    *, dim: int, emax: int, box_length: float, twist: Sequence[float] | None = None
) -> Spectrum:
    """Enumerate twisted plane waves with |n|^2 <= emax, sorted by energy.

    Ties in energy are broken by the integer vector in lexicographic order, so the
    order is deterministic.

    Args:
      dim: static, 2 or 3.
      emax: static, cutoff on |n|^2 for integer n (units of (2 pi / L)^2).
      box_length: static, side L of the periodic box in Bohr.
      twist: static, (dim,) twist in [-1/2, 1/2]^dim; default zero (Gamma point).

    Returns:
      A :class:`Spectrum` with m modes.

    Raises:
      ValueError: for a bad dim, emax, box_length or twist.

    Examples:
      >>> s = plane_wave_spectrum(dim=2, emax=25, box_length=1.0, twist=(0.25, 0.25))
      >>> s.quantum_numbers.shape
      (81, 2)
    """
    dim = check_dim(dim)
    emax = check_nonnegative_int("emax", emax, "Use an integer cutoff on |n|^2.")
    box_length = check_positive("box_length", box_length)
    twist_arr = np.asarray(check_twist(twist or (0.0,) * dim, dim), dtype=np.float64)
    nmax = math.isqrt(emax)
    grid = np.array(
        list(itertools.product(range(-nmax, nmax + 1), repeat=dim)), dtype=np.int64
    )
    grid = grid[(grid**2).sum(axis=1) <= emax]
    shifted = grid + twist_arr
    reduced = (shifted**2).sum(axis=1)
    # lexsort uses the last key as primary: energy first, then n lexicographically.
    order = np.lexsort(tuple(grid[:, d] for d in reversed(range(dim))) + (reduced,))
    grid, shifted = grid[order], shifted[order]
    wavevectors = 2.0 * np.pi / box_length * shifted
    energies = 0.5 * (wavevectors**2).sum(axis=1)
    return Spectrum(grid, energies, wavevectors)


def oscillator_spectrum(*, dim: int, n_shells: int, omega: float = 1.0) -> Spectrum:
    """Enumerate Cartesian oscillator levels with sum_i n_i < n_shells.

    Args:
      dim: static, 1, 2 or 3.
      n_shells: static, number of shells kept (shell s has sum_i n_i = s).
      omega: static, trap frequency in Hartree.

    Returns:
      A :class:`Spectrum`; energies omega (sum_i n_i + dim / 2).

    Examples:
      >>> oscillator_spectrum(dim=2, n_shells=3).energies.tolist()
      [1.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    """
    dim = check_dim(dim, allowed=(1, 2, 3))
    n_shells = check_nonnegative_int("n_shells", n_shells)
    omega = check_positive("omega", omega, "The trap frequency must be positive.")
    levels = [
        n
        for n in itertools.product(range(n_shells), repeat=dim)
        if sum(n) < n_shells
    ]
    grid = np.array(levels, dtype=np.int64).reshape(-1, dim)
    shell = grid.sum(axis=1)
    order = np.lexsort(tuple(-grid[:, d] for d in reversed(range(dim))) + (shell,))
    grid = grid[order]
    energies = omega * (grid.sum(axis=1) + 0.5 * dim)
    return Spectrum(grid, energies.astype(np.float64), grid.astype(np.float64))


def check_enough_modes(n_particles: int, n_modes: int, cutoff_name: str) -> None:
    """Raise ``ValueError`` if a cutoff keeps fewer modes than particles."""
    if n_modes < n_particles:
        raise ValueError(
            f"{cutoff_name} keeps only {n_modes} single-particle modes for "
            f"{n_particles} particles of one spin; raise {cutoff_name}."
        )

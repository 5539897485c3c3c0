"""Exact reference values of a system for run reports: the ideal gas, the classical pair.

- :func:`ideal_reference`: the exact non-interacting F, E, K, V, S of an electron gas
  or a quantum dot with the same modes, N and T (the canonical ideal Fermi gas of
  :mod:`fermiflow.hamiltonians.free_fermions`; at T = 0 the closed shell). In the box
  all of E is kinetic and V (Coulomb) is None; in the trap the virial theorem of each
  oscillator level gives K = V = E / 2.
- :func:`classical_reference`: the ideal (non-repelling) classical gas in the trap,
  and the exact F of the interacting pair (n = 2).

Units: Hartree atomic units; whole-system values, S in k_B.
"""

from __future__ import annotations

import math

import numpy as np

from fermiflow.hamiltonians.classical_exact import classical_pair_free_energy
from fermiflow.hamiltonians.free_fermions import canonical_ideal_gas_spinful
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot

__all__ = ["classical_reference", "ideal_reference"]


def ideal_reference(system: ElectronGas | QuantumDot, temperature: float) -> dict:
    """Return the exact non-interacting F, E, K, V, S (whole system) of a system.

    Args:
      system: an ElectronGas or a QuantumDot (its spectrum and spins are used).
      temperature: T in Hartree; 0 gives the closed-shell ground state.

    Returns:
      ``{"F", "E", "K", "V", "S"}`` floats (V None in the box).

    Examples:
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0, beta=1.0,
      ...                  n_shells=1)
      >>> ideal_reference(dot, 0.0)
      {'F': 2.0, 'E': 2.0, 'K': 1.0, 'V': 1.0, 'S': 0.0}
    """
    energies = np.asarray(system.spectrum.energies, np.float64)
    if temperature == 0:
        ordered = np.sort(energies)
        free = energy = float(ordered[: system.n_up].sum() + ordered[: system.n_down].sum())
        entropy = 0.0
    else:
        thermo = canonical_ideal_gas_spinful(energies, system.n_up, system.n_down,
                                             1.0 / temperature)
        free, energy, entropy = map(float, (thermo.free_energy, thermo.energy, thermo.entropy))
    if isinstance(system, ElectronGas):
        return {"F": free, "E": energy, "K": energy, "V": None, "S": entropy}
    return {"F": free, "E": energy, "K": energy / 2, "V": energy / 2, "S": entropy}


def classical_reference(system: ClassicalCoulombGas) -> tuple[dict, dict]:
    """Return (ideal, exact) whole-system references of a ClassicalCoulombGas.

    Labelled charges, configurational part only (as :mod:`fermiflow.training.classical`):
    without repulsion Z0 = (2 pi T / omega^2)^(n dim / 2), F0 = -T ln Z0,
    E0 = n dim T / 2. The exact F of the interacting gas is known for n = 2.

    Examples:
      >>> gas = ClassicalCoulombGas(n=1, dim=2, temperature=1.0)
      >>> ideal, exact = classical_reference(gas)
      >>> round(ideal["E"], 12), exact
      (1.0, {})
    """
    n, dim, temperature, omega = system.n, system.dim, system.temperature, system.omega
    free = -temperature * n * dim / 2 * math.log(2 * math.pi * temperature / omega**2)
    energy = n * dim * temperature / 2
    ideal = {"F": free, "E": energy, "K": None, "V": None, "S": (energy - free) / temperature}
    exact = {}
    if n == 2:
        exact = {"F": classical_pair_free_energy(temperature=temperature, omega=omega,
                                                 coupling=system.coupling, dim=dim)}
    return ideal, exact

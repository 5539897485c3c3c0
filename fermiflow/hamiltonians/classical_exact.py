"""Exact configurational free energy of two classical charges in a harmonic trap.

The reference of the classical Coulomb-gas mode (:mod:`fermiflow.training.classical`): labelled
particles, Z = int dx exp(-H(x) / T) with no 1/N!, reduced to a 1D radial quadrature.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special

from fermiflow.validation import check_dim, check_positive

__all__ = ["classical_pair_free_energy"]


def classical_pair_free_energy(
    *, temperature: float, omega: float = 1.0, coupling: float = 1.0, dim: int = 2
) -> float:
    """Return F_exact = -T ln Z of two labelled charges in a harmonic trap.

    With R = (x1 + x2) / 2 and r = x1 - x2 (Jacobian 1), H = omega^2 R^2 +
    omega^2 r^2 / 4 + coupling / r, so Z = (pi T / omega^2)^(dim / 2) A_dim
    int_0^inf r^(dim - 1) exp(-(omega^2 r^2 / 4 + coupling / r) / T) dr with the
    sphere area A_dim = 2 pi^(dim / 2) / Gamma(dim / 2). The radial integral is done by
    adaptive quadrature (scipy ``quad``, relative accuracy 1e-13) on both sides of the
    peak of the integrand, which is factored out. coupling = 0 gives (2 pi T / omega^2)^dim.

    Args:
      temperature: T > 0 in Hartree.
      omega: trap frequency > 0.
      coupling: >= 0.
      dim: 1, 2 or 3.

    Returns:
      F_exact in Hartree (a Python float).

    Raises:
      ValueError: for a bad temperature, omega, coupling or dim.

    Examples:
      >>> round(classical_pair_free_energy(temperature=0.5, coupling=0.0), 10)
      -1.1447298858
    """
    temperature = check_positive("temperature", temperature, "T is in Hartree.")
    omega = check_positive("omega", omega, "The trap frequency must be positive.")
    c = float(coupling)
    if not (math.isfinite(c) and c >= 0):
        raise ValueError(f"coupling must be a finite number >= 0, got {coupling}.")
    dim = check_dim(dim, allowed=(1, 2, 3))
    a = omega**2 / 4

    def exponent(r):
        return (a * r * r + c / r) / temperature - (dim - 1) * math.log(r)

    # The integrand exp(-exponent) peaks at the positive root of 2a r^3 - (d-1) T r - c.
    roots = np.roots([2 * a, 0, -(dim - 1) * temperature, -c])
    r0 = max(z.real for z in roots if abs(z.imag) <= 1e-9 * (1 + abs(z)))
    shift = exponent(r0) if r0 > 0 else 0.0

    def integrand(r):
        return math.exp(shift - exponent(r)) if r > 0 else 0.0

    bounds = ((0.0, r0), (r0, math.inf)) if r0 > 0 else ((0.0, math.inf),)
    radial = sum(
        integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0] for lo, hi in bounds
    )
    log_area = math.log(2) + 0.5 * dim * math.log(math.pi) - special.gammaln(0.5 * dim)
    log_z = 0.5 * dim * math.log(math.pi * temperature / omega**2) + log_area
    return float(-temperature * (log_z + math.log(radial) - shift))

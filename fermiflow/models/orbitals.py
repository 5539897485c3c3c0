"""Single-particle orbitals: twisted plane waves in a box and oscillator functions.

An orbital function maps ``(modes: (N,) int, r: (n, dim)) -> (N, n)`` with entry
``[a, j] = phi_{modes[a]}(r_j)``; ``modes`` index the energy-sorted mode table of
:mod:`fermiflow.hamiltonians.spectrum`, so the orbitals, the exact free-fermion
references and the autoregressive occupation models agree on the order of the modes.

Units: Hartree atomic units; r in Bohr. Acts on a single configuration; vmap over
walkers at the call site.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.spectrum import Spectrum
from fermiflow.types import Array, ArrayLike
from fermiflow.validation import check_positive

__all__ = [
    "hermite_functions",
    "make_oscillator_orbitals",
    "make_plane_wave_orbitals",
]

OrbitalFn = Callable[[ArrayLike, ArrayLike], Array]


def make_plane_wave_orbitals(spectrum: Spectrum, box_length: float) -> OrbitalFn:
    """Build phi_a(r) = exp(i k_a . r) / sqrt(L^dim) on a periodic (twisted) box.

    Args:
      spectrum: static, a plane-wave :class:`Spectrum`; its ``wavevectors`` (m, dim)
        are k = 2 pi (n + twist) / L.
      box_length: static, side L of the box in Bohr (the one the spectrum was made
        with).

    Returns:
      ``orbitals(modes: (N,) int, r: (n, dim)) -> (N, n)`` complex, complex64 for
      float32 ``r`` and complex128 for float64 ``r``.

    Raises:
      ValueError: if box_length is not a positive number.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=2.0)
      >>> orbitals = make_plane_wave_orbitals(spectrum, box_length=2.0)
      >>> phi = orbitals(jnp.arange(3), jnp.zeros((4, 2)))
      >>> phi.shape, bool(jnp.allclose(phi, 0.5))
      ((3, 4), True)
    """
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    wavevectors = np.asarray(spectrum.wavevectors, dtype=np.float64)
    dim = wavevectors.shape[1]
    log_norm = -0.5 * dim * math.log(box_length)

    def orbitals(modes: ArrayLike, r: ArrayLike) -> Array:
        r = jnp.asarray(r)
        k = jnp.asarray(wavevectors, r.dtype)[jnp.asarray(modes)]
        phase = k @ r.T
        norm = jnp.exp(jnp.asarray(log_norm, r.dtype))
        return jax.lax.complex(norm * jnp.cos(phase), norm * jnp.sin(phase))

    return orbitals


def hermite_functions(y: ArrayLike, max_order: int) -> Array:
    """Evaluate normalized Hermite functions h_0..h_max_order by their recurrence.

    h_n(y) = H_n(y) exp(-y^2/2) / sqrt(2^n n! sqrt(pi)), orthonormal on the real line
    with weight 1. The three-term recurrence
    h_{n+1} = sqrt(2/(n+1)) y h_n - sqrt(n/(n+1)) h_{n-1} never forms n! or H_n, so it
    neither overflows nor cancels catastrophically; it underflows only where
    exp(-y^2/2) does (|y| > 37 in float64, |y| > 13 in float32).

    Args:
      y: any shape ``s``, dimensionless coordinate.
      max_order: static, highest order >= 0.

    Returns:
      (max_order + 1, *s) array with the dtype of ``y``.
    """
    y = jnp.asarray(y)
    h0 = jnp.exp(-0.5 * y * y) * jnp.asarray(math.pi**-0.25, y.dtype)
    if max_order == 0:
        return h0[None]
    h1 = jnp.asarray(math.sqrt(2.0), y.dtype) * y * h0
    # A Python loop (max_order is static and small), not lax.scan: folx's forward
    # Laplacian cannot trace a scan over input-dependent carries.
    table = [h0, h1]
    for order in range(1, max_order):
        c_up = jnp.asarray(math.sqrt(2.0 / (order + 1.0)), y.dtype)
        c_down = jnp.asarray(math.sqrt(order / (order + 1.0)), y.dtype)
        table.append(c_up * y * table[-1] - c_down * table[-2])
    return jnp.stack(table, axis=0)


def make_oscillator_orbitals(spectrum: Spectrum, omega: float) -> OrbitalFn:
    """Build real oscillator eigenfunctions phi_n(r) = prod_d psi_{n_d}(r_d).

    psi_n(x) = omega^(1/4) h_n(sqrt(omega) x) solves
    -1/2 psi'' + omega^2 x^2 / 2 psi = omega (n + 1/2) psi and is normalized.

    Args:
      spectrum: static, an oscillator :class:`Spectrum`; its ``quantum_numbers``
        (m, dim) are the Cartesian quantum numbers n_d.
      omega: static, trap frequency in Hartree (the one the spectrum was made with).

    Returns:
      ``orbitals(modes: (N,) int, r: (n, dim)) -> (N, n)`` real, in the dtype of
      ``r``.

    Raises:
      ValueError: if omega is not a positive number.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import oscillator_spectrum
      >>> spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
      >>> orbitals = make_oscillator_orbitals(spectrum, omega=1.0)
      >>> phi = orbitals(jnp.arange(3), jnp.zeros((2, 2)))
      >>> phi.shape, round(float(phi[0, 0]) ** 2 * math.pi, 5)
      ((3, 2), 1.0)
    """
    omega = check_positive("omega", omega, "The trap frequency must be positive.")
    quantum_numbers = np.asarray(spectrum.quantum_numbers, dtype=np.int32)
    dim = quantum_numbers.shape[1]
    max_order = int(quantum_numbers.max(initial=0))

    def orbitals(modes: ArrayLike, r: ArrayLike) -> Array:
        r = jnp.asarray(r)
        sqrt_omega = jnp.asarray(math.sqrt(omega), r.dtype)
        table = hermite_functions(sqrt_omega * r, max_order)  # (order, n, dim)
        orders = jnp.asarray(quantum_numbers)[jnp.asarray(modes)]  # (N, dim)
        particle = jnp.arange(r.shape[0])[None, :, None]
        axis = jnp.arange(dim)[None, None, :]
        factors = table[orders[:, None, :], particle, axis]  # (N, n, dim)
        return jnp.prod(factors, axis=-1) * jnp.asarray(omega ** (dim / 4), r.dtype)

    return orbitals

"""Flow-transformed Slater determinants Psi_K, the pure states of rho = sum_K p(K)|Psi_K><Psi_K|.

log Psi_K(x) = log det[phi_k(zeta_j)]_up + log det[phi_k(zeta_j)]_down
               - 1/2 log(n_up! n_down!) + 1/2 log|det d zeta / d x|,   zeta = T(x),

so that <Psi_K|Psi_K'> = delta_KK' for any bijection T of configuration space
(arXiv:2201.03156, eq. 5). Electrons are labelled by spin block: ``x`` holds the
n_up up electrons first, then the n_down down electrons, and ``occ`` holds n_up
up-mode indices followed by n_down down-mode indices into one mode table.

Units: Hartree atomic units; x in Bohr. Acts on a single configuration; vmap over
walkers at the call site.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import chex
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.spectrum import Spectrum, check_enough_modes
from fermiflow.models.slater import log_slater
from fermiflow.types import Array, ArrayLike, Params
from fermiflow.validation import check_nonnegative_int

__all__ = ["closed_shell_occupation", "exchange_sign", "make_log_psi", "make_log_psi_fixed"]

OrbitalFn = Callable[[ArrayLike, ArrayLike], Array]
FlowApply = Callable[[Params, ArrayLike], tuple[Array, Array]]
LogPsiK = Callable[[Params, ArrayLike, ArrayLike], Array]
LogPsi = Callable[[Params, ArrayLike], Array]


def make_log_psi(
    *, orbitals: OrbitalFn, flow_apply: FlowApply, n_up: int, n_down: int,
    spin_adapted: bool = False,
    parity_flows: bool = False,
    flow_select: Callable[[Params, Array], Params] | None = None,
) -> LogPsiK:
    """Build log Psi_K(x) for a flow and a set of single-particle orbitals.

    Args:
      orbitals: static, ``(modes: (N,) int, r: (N, dim)) -> (N, N)`` matrix
        phi_{modes[a]}(r_j), e.g. from :func:`make_plane_wave_orbitals`.
      flow_apply: static, ``(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``,
        a bijection of configuration space with log|det d zeta / d x|.
      n_up: static, number of up electrons (>= 0).
      n_down: static, number of down electrons (>= 0).
      spin_adapted: static, n_up = n_down only (module docstring): for K = (A, B)
        with up set A and down set B, Psi_K = [D_AB + s D_BA] / sqrt(2) with D_BA the
        product with the spin blocks' sets exchanged, s = +1 if sorted(A) precedes
        sorted(B) lexicographically and -1 if it follows, and Psi_K = D_AA for A = B.
      parity_flows: static, with spin_adapted: params is ``{"even": p, "odd": q}`` and
        the even states (s = +1, A = B) use the flow at p, the odd ones (s = -1) the flow
        at q. For a flow equivariant under the exchange P of the spin blocks, Psi_K(P x)
        = s Psi_K(x) whatever the flow, so even and odd states stay orthogonal with
        different flows, and each sector is orthonormal with its own.
      flow_select: static, None or ``(params, occ: (n,)) -> params``: the flow params
        (of each exchange sector) hold several flows and Psi_K uses
        ``flow_select(params, K)``; valid where states of different sectors are
        orthogonal whatever the flows, e.g. one flow per total-momentum class
        (:func:`~fermiflow.models.sector_flows.make_sector_select`).

    Returns:
      ``log_psi(params, occ: (n,) int, x: (n, dim)) -> ()`` complex, n = n_up +
      n_down: log|Psi_K| + i arg Psi_K. complex128 for float64 x and params.

    Raises:
      ValueError: if n_up or n_down is negative or both are zero, or spin_adapted
        with n_up != n_down.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> from fermiflow.models.orbitals import make_plane_wave_orbitals
      >>> spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=1.0)
      >>> identity = lambda params, x: (x, jnp.zeros((), x.dtype))
      >>> log_psi = make_log_psi(
      ...     orbitals=make_plane_wave_orbitals(spectrum, box_length=1.0),
      ...     flow_apply=identity, n_up=2, n_down=0)
      >>> x = jnp.array([[0.1, 0.2], [0.6, 0.3]])
      >>> value = log_psi(None, jnp.array([0, 1]), x)
      >>> swapped = log_psi(None, jnp.array([0, 1]), x[::-1])
      >>> bool(jnp.isclose(jnp.exp(value), -jnp.exp(swapped)))
      True
    """
    n_up = check_nonnegative_int("n_up", n_up)
    n_down = check_nonnegative_int("n_down", n_down)
    n = n_up + n_down
    if n == 0:
        raise ValueError("n_up + n_down must be >= 1, got n_up=0 and n_down=0.")
    if spin_adapted and n_up != n_down:
        raise ValueError(f"spin_adapted=True needs n_up = n_down, got {n_up} and {n_down}.")
    if parity_flows and not spin_adapted:
        raise ValueError("parity_flows=True needs spin_adapted=True (the sectors are the "
                         "exchange parities of the spin-adapted states).")
    log_norm = 0.5 * (math.lgamma(n_up + 1) + math.lgamma(n_down + 1))
    blocks = [(lo, hi) for lo, hi in ((0, n_up), (n_up, n)) if hi > lo]

    def products(occ: Array, zeta: Array) -> Array:
        value = jnp.zeros((), jnp.result_type(zeta.dtype, jnp.complex64))
        for lo, hi in blocks:
            value = value + log_slater(orbitals(occ[lo:hi], zeta[lo:hi]))
        return value

    def log_psi(params: Params, occ: ArrayLike, x: ArrayLike) -> Array:
        occ, x = jnp.asarray(occ), jnp.asarray(x)
        chex.assert_shape(occ, (n,))
        chex.assert_rank(x, 2)
        chex.assert_axis_dimension(x, 0, n)
        if not jnp.issubdtype(occ.dtype, jnp.integer):
            raise TypeError(f"occ must hold integer mode indices, got {occ.dtype}.")
        if not parity_flows:
            return combination(params, occ, x)
        even = combination(params["even"], occ, x)
        odd = combination(params["odd"], occ, x)
        return jnp.where(exchange_sign(occ[:n_up], occ[n_up:]) > 0, even, odd)

    def combination(params: Params, occ: Array, x: Array) -> Array:
        if flow_select is not None:
            params = flow_select(params, occ)
        zeta, log_det = flow_apply(params, x)
        value = 0.5 * log_det - log_norm + products(occ, zeta)
        if not spin_adapted:
            return value
        swapped = 0.5 * log_det - log_norm + products(jnp.roll(occ, n_up), zeta)
        return _exchange_combination(occ[:n_up], occ[n_up:], value, swapped)

    return log_psi


def exchange_sign(up: Array, down: Array) -> Array:
    """Return +1. when sorted(up) precedes sorted(down) lexicographically or equals it, else -1.

    Args:
      up: (n_up,) int mode indices of the up block.
      down: (n_down,) int mode indices of the down block, n_down = n_up.

    Returns:
      () float, the sign s of the spin-adapted Psi_K (:func:`make_log_psi`).
    """
    a, b = jnp.sort(up), jnp.sort(down)
    differ = a != b
    first = jnp.argmax(differ)
    return jnp.where(~jnp.any(differ) | (a[first] < b[first]), 1.0, -1.0)


def _exchange_combination(up: Array, down: Array, direct: Array, swapped: Array) -> Array:
    """Return log[(e^direct + s e^swapped) / sqrt 2], or direct for equal sets (complex).

    s = +1 when sorted(up) precedes sorted(down) lexicographically, -1 when it follows.
    """
    same = jnp.all(jnp.sort(up) == jnp.sort(down))
    sign = exchange_sign(up, down)  # +1 for equal sets keeps the unused branch from log 0
    shift = jnp.maximum(direct.real, swapped.real)
    mixed = shift + jnp.log(jnp.exp(direct - shift) + sign * jnp.exp(swapped - shift))
    return jnp.where(same, direct, mixed - 0.5 * jnp.log(2.0))


def make_log_psi_fixed(log_psi: LogPsiK, occ: ArrayLike) -> LogPsi:
    """Fix the occupation K of a ``log_psi``, e.g. the closed-shell ground state.

    Args:
      log_psi: static, ``(params, occ: (n,) int, x: (n, dim)) -> ()`` from
        :func:`make_log_psi`.
      occ: static, (n,) integer mode indices (up block, then down block).

    Returns:
      ``(params, x: (n, dim)) -> ()`` complex log Psi_K(x).

    Raises:
      ValueError: if occ is not a 1-d array of integers.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import oscillator_spectrum
      >>> from fermiflow.models.orbitals import make_oscillator_orbitals
      >>> spectrum = oscillator_spectrum(dim=2, n_shells=2)
      >>> identity = lambda params, x: (x, jnp.zeros((), x.dtype))
      >>> log_psi = make_log_psi(
      ...     orbitals=make_oscillator_orbitals(spectrum, omega=1.0),
      ...     flow_apply=identity, n_up=1, n_down=1)
      >>> ground = make_log_psi_fixed(log_psi, [0, 0])
      >>> round(float(ground(None, jnp.zeros((2, 2))).real), 6)  # log(1/pi)
      -1.14473
    """
    occ = np.asarray(occ)
    if occ.ndim != 1 or not np.issubdtype(occ.dtype, np.integer):
        raise ValueError(
            f"occ must be a 1-d array of integer mode indices, got shape "
            f"{occ.shape} and dtype {occ.dtype}."
        )

    def log_psi_fixed(params: Params, x: ArrayLike) -> Array:
        return log_psi(params, jnp.asarray(occ), x)

    return log_psi_fixed


def closed_shell_occupation(spectrum: Spectrum, n_up: int, n_down: int) -> np.ndarray:
    """Return the lowest-energy occupation K, refusing an open (degenerate) shell.

    Args:
      spectrum: static, the energy-sorted mode table.
      n_up: static, number of up electrons (>= 0).
      n_down: static, number of down electrons (>= 0).

    Returns:
      (n_up + n_down,) int array [0..n_up-1, 0..n_down-1].

    Raises:
      ValueError: if a spin block has fewer modes than electrons or fills a shell
        only partly (then the ground state is degenerate and K is not unique).

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> spectrum = plane_wave_spectrum(dim=2, emax=4, box_length=1.0)
      >>> closed_shell_occupation(spectrum, 5, 1).tolist()
      [0, 1, 2, 3, 4, 0]
    """
    energies = np.asarray(spectrum.energies)
    for name, count in (("n_up", n_up), ("n_down", n_down)):
        count = check_nonnegative_int(name, count)
        check_enough_modes(count, len(energies), "the spectrum cutoff")
        if 0 < count < len(energies) and math.isclose(
            energies[count - 1], energies[count], rel_tol=1e-12, abs_tol=1e-12
        ):
            raise ValueError(
                f"{name}={count} fills a degenerate shell only partly (energy "
                f"{energies[count]:.6g}); choose a closed-shell particle number."
            )
    return np.concatenate([np.arange(n_up), np.arange(n_down)]).astype(np.int64)

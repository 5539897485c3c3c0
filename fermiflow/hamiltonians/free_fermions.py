"""Exact thermodynamics of ideal Fermi gases in any single-particle spectrum.

Units: Hartree a.u.; S and C_V in k_B. Host-side float64 NumPy exact references.

Canonical N fermions in m levels eps_k: Z_N = e_N(x), the elementary symmetric
polynomial of x_k = exp(-beta eps_k). The sign-alternating recursion
Z_N = (1/N) sum_k (-1)^(k+1) Z_1(k beta) Z_(N-k) is already wrong in float64 for the
13-electron reference gas at theta = 0.15. Instead the levels are added one at a time
in ascending order, e_j <- e_j + x_k e_(j-1), in log space and relative to the
j-particle ground state E0_j (so the logs stay small at low T). Each step mixes two
disjoint sets of configurations (level k empty: weight p, occupied: q = 1 - p), so the
mean excitation energy, energy variance and Gibbs entropy of each j-particle ensemble
are carried along with formulas whose terms are all >= 0:
var = p var_a + q var_b + p q (mean_a - mean_b)^2, S = p S_a + q S_b - p ln p - q ln q.
Thus C_V = beta^2 var and S = beta (E - F) never come from differences of large
numbers, and S >= 0 exactly. <n_k> = x_k e_(N-1)(without k) / e_N combines a forward
and a backward pass. Cost O(m N) in time and memory.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.special
from jax.typing import ArrayLike

from fermiflow.hamiltonians.spectrum import check_enough_modes
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.validation import (
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)

__all__ = [
    "GrandCanonicalThermo",
    "IdealGasThermo",
    "canonical_ideal_gas",
    "canonical_ideal_gas_spinful",
    "chemical_potential",
    "electron_gas_ideal_thermo",
    "grand_canonical_ideal_gas",
    "pressure_ideal_electron_gas",
]


class IdealGasThermo(NamedTuple):
    """Canonical thermodynamics; scalars are NumPy scalars in the dtype of energies.

    Attributes:
      log_partition: () ln Z.
      free_energy: () F = -ln Z / beta.
      energy: () E = <H>.
      entropy: () S = beta (E - F), in k_B.
      heat_capacity: () C_V = beta^2 (<H^2> - <H>^2), in k_B.
      occupations: (m,) mean occupations <n_k>; (2, m) [up, down] for spinful gases.
    """

    log_partition: np.ndarray
    free_energy: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    heat_capacity: np.ndarray
    occupations: np.ndarray


class GrandCanonicalThermo(NamedTuple):
    """Grand-canonical thermodynamics at (mu, beta), in the dtype of energies.

    Fields as in :class:`IdealGasThermo`, plus chemical_potential () mu, mean_number
    () <N>, log_grand_partition () ln Xi; free_energy is Omega + mu <N> with
    Omega = -ln Xi / beta; heat_capacity is C_V at fixed <N> (mu follows T).
    """

    chemical_potential: np.ndarray
    mean_number: np.ndarray
    log_grand_partition: np.ndarray
    free_energy: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    heat_capacity: np.ndarray
    occupations: np.ndarray


class _Ensembles(NamedTuple):
    log_weight: np.ndarray  # (m + 1, n + 1) log e_j exp(beta E0_j) of levels < k, row k
    excitation: np.ndarray  # (n + 1,) mean energy above E0_j of the j-particle ensemble
    variance: np.ndarray  # (n + 1,) energy variance of the j-particle ensembles
    entropy: np.ndarray  # (n + 1,) Gibbs entropy of the j-particle ensembles


def _forward(levels: np.ndarray, beta: float, n: int) -> _Ensembles:
    """Add the ascending levels one at a time, relative to E0_j = sum_(i<j) levels_i."""
    m = levels.shape[0]
    log_r = np.full((m + 1, n + 1), -np.inf)
    log_r[0, 0] = 0.0
    mean, var, entropy = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1)
    for k in range(m):
        top = min(k + 1, n)
        gap = levels[k] - levels[:top]  # E0_(j-1) + eps_k - E0_j >= 0, j = 1..top
        log_a = log_r[k, 1 : top + 1]  # level k empty; -inf if no such set yet
        log_b = log_r[k, :top] - beta * gap  # level k occupied
        log_r[k + 1] = log_r[k]
        log_r[k + 1, 1 : top + 1] = np.logaddexp(log_a, log_b)
        # log p = -log(1 + exp(d)) stays accurate when p is close to 1.
        d = log_b - log_a
        log_p, log_q = -np.logaddexp(0.0, d), -np.logaddexp(0.0, -d)
        p, q = np.exp(log_p), np.exp(log_q)
        mean_a, mean_b = mean[1 : top + 1], mean[:top] + gap
        mixing = -p * np.where(p > 0, log_p, 0.0) - q * log_q
        entropy[1 : top + 1] = p * entropy[1 : top + 1] + q * entropy[:top] + mixing
        spread = p * q * (mean_a - mean_b) ** 2
        var[1 : top + 1] = p * var[1 : top + 1] + q * var[:top] + spread
        mean[1 : top + 1] = p * mean_a + q * mean_b
    return _Ensembles(log_r, mean, var, entropy)


def _backward(levels: np.ndarray, beta: float, n: int) -> np.ndarray:
    """Return (m + 1, n + 1) log e_j exp(beta E0_j) of the levels >= k, row k."""
    m = levels.shape[0]
    log_s = np.full((m + 1, n + 1), -np.inf)
    log_s[m, 0] = 0.0
    for k in range(m - 1, -1, -1):
        top = min(m - k, n)
        # Level k becomes the lowest: the j-particle ground state gains eps_k and
        # loses the old j-th lowest level k + j.
        gap = levels[np.minimum(k + np.arange(1, top + 1), m - 1)] - levels[k]
        log_s[k] = log_s[k + 1]
        log_s[k, 1 : top + 1] = np.logaddexp(
            log_s[k + 1, 1 : top + 1] - beta * gap, log_s[k + 1, :top]
        )
    return log_s


def _log_occupations(levels: np.ndarray, beta: float, n: int) -> tuple:
    """Return the forward ensembles and (m,) log <n_k> of the ascending levels."""
    m = levels.shape[0]
    forward, log_s = _forward(levels, beta, n), _backward(levels, beta, n)
    # x_k e_(N-1)(without k) sums over a = particles below k: the set
    # {0..a-1} + {k..k+N-a-1} has excitation D[k, a] = sum_(a<=i<min(k,N))
    # (eps_(k+N-1-i) - eps_i), a sum of terms >= 0 (no cancellation).
    rows, cols = np.arange(m)[:, None], np.arange(n)[None, :]
    upper = levels[np.clip(rows + n - 1 - cols, 0, m - 1)]
    terms = np.where(cols < np.minimum(rows, n), upper - levels[cols], 0.0)
    excitation = np.cumsum(terms[:, ::-1], axis=1)[:, ::-1]
    pairs = forward.log_weight[:m, :n] + log_s[1:, n - 1 :: -1] - beta * excitation
    log_occ = scipy.special.logsumexp(pairs, axis=1) - forward.log_weight[m, n]
    return forward, log_occ


def _as_energies(energies: ArrayLike) -> tuple[np.ndarray, np.dtype]:
    array = np.asarray(energies)
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.float64
    array = array.astype(np.float64)
    if array.ndim != 1 or array.shape[0] == 0 or not np.all(np.isfinite(array)):
        raise ValueError(
            f"energies must be a non-empty 1D array of finite numbers, got shape "
            f"{array.shape}. Pass the single-particle energies, e.g. Spectrum.energies."
        )
    return array, np.dtype(dtype)


def canonical_ideal_gas(
    energies: ArrayLike, n_particles: int, beta: float
) -> IdealGasThermo:
    """Return the exact canonical thermodynamics of N identical free fermions.

    Args:
      energies: (m,) single-particle energies in Hartree, one per mode, any order.
      n_particles: N, 1 <= N <= m.
      beta: inverse temperature in 1/Hartree, > 0.

    Returns:
      An :class:`IdealGasThermo` with occupations of shape (m,). Computed in float64
      and returned in the floating dtype of ``energies`` (float64 for integers).

    Raises:
      ValueError: for N < 1, more particles than modes, beta <= 0 or bad energies.

    Examples:
      >>> thermo = canonical_ideal_gas([0.0, 1.0], n_particles=1, beta=1.0)
      >>> bool(np.isclose(thermo.log_partition, np.log1p(np.exp(-1.0)), rtol=1e-14))
      True
    """
    eps, dtype = _as_energies(energies)
    n = check_positive_int("n_particles", n_particles, "Put at least one fermion in.")
    check_enough_modes(n, eps.shape[0], "the cutoff (emax, n_shells or len(energies))")
    beta = check_positive("beta", beta, "beta = 1 / T in 1/Hartree.")
    order = np.argsort(eps, kind="stable")
    forward, log_occ = _log_occupations(eps[order], beta, n)
    ground = float(np.sum(eps[order][:n]))
    log_r = forward.log_weight[-1, n]
    return IdealGasThermo(
        log_partition=dtype.type(log_r - beta * ground),
        free_energy=dtype.type(ground - log_r / beta),
        energy=dtype.type(ground + forward.excitation[n]),
        entropy=dtype.type(forward.entropy[n]),
        heat_capacity=dtype.type(beta**2 * forward.variance[n]),
        occupations=np.exp(log_occ)[np.argsort(order)].astype(dtype),
    )


def canonical_ideal_gas_spinful(
    energies: ArrayLike, n_up: int, n_down: int, beta: float
) -> IdealGasThermo:
    """Return the exact canonical thermodynamics of two independent spin species.

    Both species occupy the same spectrum; ln Z, F, E, S and C_V add.

    Args:
      energies: (m,) single-particle energies in Hartree (shared by both spins).
      n_up: spin-up fermions, 0 <= n_up <= m.
      n_down: spin-down fermions, 0 <= n_down <= m, n_up + n_down >= 1.
      beta: inverse temperature in 1/Hartree, > 0.

    Returns:
      An :class:`IdealGasThermo` with occupations of shape (2, m) ([up, down]).
    """
    eps, dtype = _as_energies(energies)
    counts = (
        check_nonnegative_int("n_up", n_up),
        check_nonnegative_int("n_down", n_down),
    )
    check_positive_int("n_up + n_down", sum(counts), "Put at least one fermion in.")
    zero = IdealGasThermo(*(dtype.type(0.0),) * 5, np.zeros(eps.shape, dtype))
    parts = [canonical_ideal_gas(energies, n, beta) if n else zero for n in counts]
    return IdealGasThermo(
        *(dtype.type(parts[0][i] + parts[1][i]) for i in range(5)),
        occupations=np.stack([parts[0].occupations, parts[1].occupations]),
    )


def grand_canonical_ideal_gas(
    energies: ArrayLike, mu: float, beta: float
) -> GrandCanonicalThermo:
    """Return the grand-canonical thermodynamics of free fermions at (mu, beta).

    Args:
      energies: (m,) single-particle energies in Hartree.
      mu: chemical potential in Hartree.
      beta: inverse temperature in 1/Hartree, > 0.

    Returns:
      A :class:`GrandCanonicalThermo`; occupations (m,). Computed in float64 and
      returned in the floating dtype of ``energies``.

    Examples:
      >>> float(grand_canonical_ideal_gas([0.0, 2.0], mu=1.0, beta=3.0).mean_number)
      1.0
    """
    eps, dtype = _as_energies(energies)
    beta = check_positive("beta", beta, "beta = 1 / T in 1/Hartree.")
    t = beta * (eps - float(mu))
    # ln f = -softplus(t), ln(1 - f) = -softplus(-t): accurate in both tails.
    log_f, log_hole = -np.logaddexp(0.0, t), -np.logaddexp(0.0, -t)
    f, hole = np.exp(log_f), np.exp(log_hole)
    log_xi, mean_number, weight = np.sum(-log_hole), np.sum(f), f * hole
    center = np.sum(weight * eps) / max(np.sum(weight), np.finfo(np.float64).tiny)
    free_energy = float(mu) * mean_number - log_xi / beta
    entropy = np.sum(-f * log_f - hole * log_hole)
    c_v = beta**2 * np.sum(weight * (eps - center) ** 2)
    values = [mu, mean_number, log_xi, free_energy, np.sum(eps * f), entropy, c_v]
    return GrandCanonicalThermo(*map(dtype.type, values), f.astype(dtype))


def chemical_potential(energies: ArrayLike, n_mean: float, beta: float) -> float:
    """Return the mu at which the grand-canonical <N> equals ``n_mean``.

    Args:
      energies: (m,) single-particle energies in Hartree.
      n_mean: target mean number, 0 < n_mean < m.
      beta: inverse temperature in 1/Hartree, > 0.

    Returns:
      mu in Hartree (bracketed root of a monotone function, to machine precision).
    """
    eps, _ = _as_energies(energies)
    beta = check_positive("beta", beta, "beta = 1 / T in 1/Hartree.")
    m = eps.shape[0]
    if not 0 < n_mean < m:
        raise ValueError(
            f"n_mean must lie in (0, {m}), got {n_mean}. Raise the cutoff."
        )

    def excess(mu: float) -> float:
        return float(np.sum(scipy.special.expit(beta * (mu - eps)))) - n_mean

    # Outside these brackets every level is filled (or empty) to within exp(-40).
    low = eps.min() - (40.0 + math.log(m / n_mean)) / beta
    high = eps.max() + (40.0 + math.log(m / (m - n_mean))) / beta
    scale = max(float(np.abs(eps).max()), 1.0 / beta)
    return scipy.optimize.brentq(excess, low, high, xtol=1e-15 * scale, maxiter=500)


def electron_gas_ideal_thermo(system: ElectronGas) -> IdealGasThermo:
    """Return the exact canonical thermodynamics of the non-interacting gas.

    Args:
      system: the :class:`ElectronGas` (its plane-wave cutoff, twist, N and beta).

    Returns:
      An :class:`IdealGasThermo`; occupations (2, m) over ``system.spectrum``.

    Examples:
      >>> gas = ElectronGas(n_up=1, n_down=1, dim=2, rs=1.0, theta=1.0, emax=1)
      >>> electron_gas_ideal_thermo(gas).occupations.shape
      (2, 5)
    """
    return canonical_ideal_gas_spinful(
        system.spectrum.energies, system.n_up, system.n_down, system.beta
    )


def pressure_ideal_electron_gas(system: ElectronGas) -> float:
    """Return P = -dF/dV of the non-interacting gas at fixed N, beta and mode set.

    Every plane-wave energy scales as L^-2 = V^(-2/dim) on a fixed set of integer
    vectors, so dF/dV = sum_k <n_k> d eps_k / dV = -2 E / (dim V) exactly.

    Args:
      system: the :class:`ElectronGas`.

    Returns:
      P in Hartree / Bohr^dim.
    """
    energy = float(electron_gas_ideal_thermo(system).energy)
    return 2.0 * energy / (system.dim * system.box_length**system.dim)

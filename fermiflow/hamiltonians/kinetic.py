"""Local kinetic and local energies from a log-amplitude.

For a wavefunction psi = exp(log_psi) the local kinetic energy is

    E_kin(x) = (-1/2 nabla^2 psi) / psi = -1/2 (lap log_psi + sum_i (d_i log_psi)^2),

where for a complex log_psi = log|psi| + i arg(psi) the square is the complex
square (d_i log_psi)^2, not |d_i log_psi|^2. E_kin is then complex; its real part
enters energies, and the imaginary part averages to zero for a normalizable psi.
The Laplacian comes from folx's forward Laplacian (one pass, Li et al.
arXiv:2307.08214), or from an exact loop over the n * dim coordinates of a
Hessian-vector product (the reference), or from a Hutchinson trace estimate.

Units: Hartree atomic units (hbar = m = 1); x in Bohr, energies in Hartree.
Every function acts on ONE configuration x: (n, dim); vmap over walkers at the
call site, or use :func:`chunked_vmap` to bound memory. Dtypes follow the inputs:
enable x64 in the caller for float64 energies.
"""

from __future__ import annotations

from collections.abc import Callable

import folx
import jax
import jax.numpy as jnp
from einops import rearrange

from fermiflow.hamiltonians.log_psi_derivatives import (
    DISTRIBUTIONS,
    check_configuration,
    flat_log_psi,
    gradient_fn,
    kinetic_from_derivatives,
    probe_vectors,
)
from fermiflow.types import Array, ArrayLike, EnergyFn, LogPsiFn, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = [
    "chunked_vmap",
    "make_hutchinson_kinetic_energy",
    "make_kinetic_energy",
    "make_local_energy",
]

KineticFn = Callable[[Params, ArrayLike], Array]
_METHODS = ("forward_laplacian", "jvp_loop")


def _forward_laplacian_kinetic(log_psi: LogPsiFn, sparsity_threshold: float):
    def kinetic(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        check_configuration(x)
        f = flat_log_psi(log_psi, params, x.shape[-1])
        # folx propagates complex values through real inputs (the Laplacian of a
        # complex output is Laplacian(Re) + i Laplacian(Im)); no jit here, the
        # caller owns the jit boundary.
        out = folx.forward_laplacian(f, sparsity_threshold, disable_jit=True)(
            rearrange(x, "n d -> (n d)")
        )
        return kinetic_from_derivatives(out.laplacian, out.jacobian.dense_array)

    return kinetic


def _jvp_loop_kinetic(params: Params, x: Array, log_psi: LogPsiFn) -> Array:
    x_flat = rearrange(x, "n d -> (n d)")
    f = flat_log_psi(log_psi, params, x.shape[-1])
    gradient, hessian_vector = jax.linearize(gradient_fn(f, x_flat), x_flat)

    def diagonal_entry(i: Array) -> Array:
        unit = jax.nn.one_hot(i, x_flat.shape[0], dtype=x_flat.dtype)
        return hessian_vector(unit)[i]

    # lax.map evaluates one coordinate at a time: memory O(n * dim), not O((n d)^2).
    laplacian = jnp.sum(jax.lax.map(diagonal_entry, jnp.arange(x_flat.shape[0])))
    return kinetic_from_derivatives(laplacian, gradient)


def make_kinetic_energy(
    log_psi: LogPsiFn,
    *,
    method: str = "forward_laplacian",
    sparsity_threshold: float = 0,
) -> KineticFn:
    """Build the local kinetic energy -1/2 (lap log_psi + (grad log_psi)^2).

    Args:
      log_psi: static, (params, x: (n, dim)) -> () real or complex log-amplitude.
        It may close over anything; params is passed through untouched.
      method: static, "forward_laplacian" (folx, default) or "jvp_loop" (exact
        loop over the n * dim diagonal Hessian entries; reference and fallback).
      sparsity_threshold: static, folx's sparsity threshold (0 = dense Jacobians,
        the default; a fraction in (0, 1) or a count otherwise). Only used by
        "forward_laplacian".

    Returns:
      (params, x: (n, dim)) -> () local kinetic energy, complex if log_psi is
      complex (take ``.real`` for energies), in the dtype of log_psi.

    Raises:
      ValueError: for an unknown method or a negative sparsity_threshold.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_psi = lambda omega, x: -0.5 * omega * jnp.sum(x**2)
      >>> kinetic = make_kinetic_energy(log_psi)
      >>> x = jnp.array([[0.3, -0.2], [1.0, 0.5]])
      >>> round(float(kinetic(2.0, x) + 0.5 * 2.0**2 * jnp.sum(x**2)), 10)
      4.0
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if not sparsity_threshold >= 0:
        raise ValueError(
            f"sparsity_threshold must be >= 0, got {sparsity_threshold}. "
            "Use 0 for dense Jacobians."
        )
    if method == "forward_laplacian":
        return _forward_laplacian_kinetic(log_psi, sparsity_threshold)

    def kinetic(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        check_configuration(x)
        return _jvp_loop_kinetic(params, x, log_psi)

    return kinetic


def make_hutchinson_kinetic_energy(
    log_psi: LogPsiFn, *, n_probes: int = 1, distribution: str = "rademacher"
) -> Callable[[PRNGKey, Params, ArrayLike], Array]:
    """Build an unbiased stochastic local kinetic energy (Hutchinson Laplacian).

    The gradient is exact; the Laplacian tr(H) is replaced by the mean of z^T H z
    over n_probes independent probes z with E[z z^T] = 1, so the estimate is
    unbiased. Rademacher probes (z_i = +-1) give the exact value when the Hessian
    is diagonal.

    Args:
      log_psi: static, (params, x: (n, dim)) -> () real or complex log-amplitude.
      n_probes: static, number of probe vectors per call (>= 1).
      distribution: static, "rademacher" (default, lowest variance) or "gaussian".

    Returns:
      (key, params, x: (n, dim)) -> () estimate of the local kinetic energy, in the
      dtype of log_psi.

    Raises:
      ValueError: for n_probes < 1 or an unknown distribution.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> log_psi = lambda omega, x: -0.5 * omega * jnp.sum(x**2)
      >>> kinetic = make_hutchinson_kinetic_energy(log_psi, n_probes=2)
      >>> float(kinetic(jax.random.key(0), 1.0, jnp.zeros((2, 2))))  # diagonal Hessian
      2.0
    """
    n_probes = check_positive_int("n_probes", n_probes, "Use at least one probe.")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}."
        )

    def kinetic(key: PRNGKey, params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        check_configuration(x)
        x_flat = rearrange(x, "n d -> (n d)")
        f = flat_log_psi(log_psi, params, x.shape[-1])
        gradient, hessian_vector = jax.linearize(gradient_fn(f, x_flat), x_flat)
        z = probe_vectors(key, (n_probes, x_flat.shape[0]), distribution, x_flat.dtype)
        quadratic = jax.vmap(lambda v: jnp.dot(v, hessian_vector(v)))(z)
        return kinetic_from_derivatives(jnp.mean(quadratic), gradient)

    return kinetic


def make_local_energy(
    log_psi: LogPsiFn, potential: EnergyFn, *, method: str = "forward_laplacian"
) -> KineticFn:
    """Build the local energy E_loc = E_kin + V(x).

    Args:
      log_psi: static, (params, x: (n, dim)) -> () real or complex log-amplitude.
      potential: static, x: (n, dim) -> () real potential energy.
      method: static, Laplacian method of :func:`make_kinetic_energy`.

    Returns:
      (params, x: (n, dim)) -> () local energy (complex if log_psi is complex).

    Examples:
      >>> import jax.numpy as jnp
      >>> log_psi = lambda params, x: -0.5 * jnp.sum(x**2)
      >>> potential = lambda x: 0.5 * jnp.sum(x**2)
      >>> local_energy = make_local_energy(log_psi, potential)
      >>> float(local_energy(None, jnp.array([[0.3, -0.2, 0.1]])))
      1.5
    """
    kinetic = make_kinetic_energy(log_psi, method=method)

    def local_energy(params: Params, x: ArrayLike) -> Array:
        return kinetic(params, x) + potential(x)

    return local_energy


def chunked_vmap(fn: KineticFn, *, chunk_size: int | None) -> KineticFn:
    """Batch a single-configuration fn(params, x) over walkers, chunk by chunk.

    Chunks of chunk_size walkers run under vmap, one after another (lax.map), so
    the peak memory is that of chunk_size walkers; a last partial chunk is handled
    by its own vmap, so batch need not be divisible by chunk_size.

    Args:
      fn: static, (params, x: (n, dim)) -> () (or any pytree of per-walker values).
      chunk_size: static, walkers per chunk (>= 1), or None for one plain vmap.

    Returns:
      (params, x: (batch, n, dim)) -> (batch,) values of fn for each walker.

    Raises:
      ValueError: if chunk_size is not None and not an integer >= 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> fn = lambda scale, x: scale * jnp.sum(x**2)
      >>> chunked_vmap(fn, chunk_size=2)(0.5, jnp.ones((5, 3, 2))).tolist()
      [3.0, 3.0, 3.0, 3.0, 3.0]
    """
    if chunk_size is None:
        return jax.vmap(fn, in_axes=(None, 0))
    chunk_size = check_positive_int(
        "chunk_size", chunk_size, "Pass None for a single vmap over all walkers."
    )

    def batched(params: Params, x: ArrayLike) -> Array:
        return jax.lax.map(lambda xi: fn(params, xi), x, batch_size=chunk_size)

    return batched

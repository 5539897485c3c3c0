"""Derivatives of a log-amplitude shared by the local kinetic energies.

The local kinetic energy of psi = exp(log_psi) is -1/2 (lap log_psi + sum_i (d_i
log_psi)^2) (the complex square for a complex log_psi). The estimators of
:mod:`fermiflow.hamiltonians.kinetic` and :mod:`fermiflow.hamiltonians.kinetic_split`
differ in how they get the Laplacian; they share the pieces here: the check of one
configuration x: (n, dim), log_psi of flat (n * dim,) coordinates, its gradient for
real or complex values, the final combination, and Hutchinson probe vectors.

Units: Hartree atomic units; x in Bohr, energies in Hartree.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from einops import rearrange

from fermiflow.types import Array, LogPsiFn, Params, PRNGKey

__all__ = [
    "DISTRIBUTIONS",
    "check_configuration",
    "flat_log_psi",
    "gradient_fn",
    "kinetic_from_derivatives",
    "probe_vectors",
]

DISTRIBUTIONS = ("rademacher", "gaussian")


def check_configuration(x: Array) -> None:
    """Raise ValueError unless x is ONE configuration of shape (n, dim)."""
    if x.ndim != 2:
        raise ValueError(
            f"x must be ONE configuration of shape (n, dim), got shape {x.shape}. "
            "Batch walkers with jax.vmap or chunked_vmap."
        )


def flat_log_psi(log_psi: LogPsiFn, params: Params, dim: int) -> Callable:
    """Return log_psi(params, .) as a function of the flat (n * dim,) coordinates."""
    return lambda x_flat: log_psi(params, rearrange(x_flat, "(n d) -> n d", d=dim))


def _real_imag(value: Array) -> Array:
    return jnp.stack([value.real, value.imag])


def gradient_fn(f: Callable[[Array], Array], x_flat: Array) -> Callable:
    """Return the gradient (n * dim,) of a real or complex scalar function f."""
    if not jnp.iscomplexobj(jax.eval_shape(f, x_flat)):
        return jax.grad(f)

    # jax.grad refuses complex outputs of real inputs: differentiate the real and
    # imaginary parts (one forward pass, two cotangents) and recombine.
    def grad_complex(y: Array) -> Array:
        parts = jax.jacrev(lambda z: _real_imag(f(z)))(y)
        return jax.lax.complex(parts[0], parts[1])

    return grad_complex


def kinetic_from_derivatives(laplacian: Array, gradient: Array) -> Array:
    """-1/2 (laplacian + sum_i gradient_i^2), the complex square for complex input."""
    half = jnp.asarray(0.5, laplacian.dtype)
    return -half * (laplacian + jnp.sum(gradient * gradient))


def probe_vectors(key: PRNGKey, shape: tuple[int, ...], distribution: str, dtype) -> Array:
    """Hutchinson probes of the given shape with E[v v^T] = 1 (one of DISTRIBUTIONS)."""
    if distribution == "rademacher":
        return jax.random.rademacher(key, shape).astype(dtype)
    return jax.random.normal(key, shape, dtype)

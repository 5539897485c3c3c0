"""Complex log-determinants of Slater matrices.

Acts on a single matrix; vmap over walkers at the call site.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fermiflow.types import Array, ArrayLike

__all__ = ["log_slater"]


def log_slater(matrix: ArrayLike) -> Array:
    """Return log det(matrix) = log|det| + i arg(det), via slogdet (never det).

    The phase is taken in (-pi, pi]; a real matrix gives phase 0 or pi, so the result
    is complex for real input too and two determinants can be added in log space.
    A singular matrix gives a real part of -inf.

    Args:
      matrix: (n, n) real or complex.

    Returns:
      () complex: complex64 for float32/complex64 input, complex128 for
      float64/complex128 input.

    Examples:
      >>> value = log_slater(jnp.array([[0.0, 2.0], [1.0, 0.0]]))
      >>> round(float(value.real), 6), round(float(value.imag), 6)
      (0.693147, 3.141593)
    """
    sign, log_abs = jnp.linalg.slogdet(jnp.asarray(matrix))
    return jax.lax.complex(log_abs, jnp.angle(sign).astype(log_abs.dtype))

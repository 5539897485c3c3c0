"""Certified Lipschitz bounds for the box backflow, so that it provably never folds.

A map T(x) = x + g(x) of R^(n dim) with Lip(g) <= c < 1 is a bijection (Banach fixed
point: x = zeta - g(x) is a contraction in x), every eigenvalue of dg/dx has modulus
<= c, so det dT/dx > 0 and ``n dim ln(1 - c) <= log_det <= n dim ln(1 + c)``. If g is
also periodic in every particle coordinate, T descends to a bijection of the torus.
The box backflow (:mod:`fermiflow.models.backflow`) has

  g_i(x) = s sum_{j != i} a_ij(x) u_ij(x),   |a_ij| <= 1,
  u_ij = (L / 2 pi) sin(2 pi r_ij / L),        |u_ij| <= U = sqrt(dim) L / (2 pi),

and, with ||.|| the l2 norm over all n dim coordinates (Frobenius for stream arrays),

  Lip(g) <= |s| (2 (n - 1) + U sqrt(n - 1) Lip(A)),                          (1)

where the first term bounds sum_j a_ij du_ij (|du_ij / dr_ij| <= 1 and
sum_ij ||dx_i - dx_j|| <= 2 (n - 1) ||dx||) and the second sum_j u_ij da_ij
(Cauchy-Schwarz over the n - 1 partners). Lip(A) of the amplitudes (n, n) follows the
streams layer by layer, tanh and the block means being 1-Lipschitz (Jensen):

  input:  Lip(H2) = c0 sqrt(2 n),  c0^2 = (2 pi / L)^2 sum_m m^2 + 1 / L^2,  Lip(H1) = 0
  layer:  Lip(H1') = r1 Lip(H1) + ||W1|| sqrt((1 + n / b) Lip(H1)^2 + Lip(H2)^2 / b)
          Lip(H2') = (r2 + ||W2||) Lip(H2)
  output: Lip(A) = ||w|| sqrt(Lip(H2)^2 + 2 n Lip(H1)^2)

with ||W|| the spectral norm of a dense kernel, r = 1 where the layer is residual
(else 0) and b the smallest nonempty spin block. The bound is loose (worst cases of
every factor at once, and U grows with the box), so this many-body term alone is
capped far below what an unconstrained one reaches.

A radial pair term with a tight bound sits beside it:

  g_i += sum_{j != i} f(r_ij),  f(r) = sum_k w_k phi_k(d) u(r),  phi_k = exp(-d^2 / 2 sigma_k^2),

with d the smooth periodic distance. Since ||u|| <= d and ||grad d|| <= 1,
||df/dr|| <= sum_k |w_k| sup_d (phi_k + d |phi_k'|) = 2 e^(-1/2) sum_k |w_k|,
independent of sigma_k and L. The Jacobian of this term is a weighted graph
Laplacian, (J v)_i = sum_j F_ij (v_i - v_j), with F_ij = df/dr(r_ij) symmetric and
F_ij = F_ji (f is odd and grad d = u / d), so J is symmetric and
|v^T J v| = 1/2 |sum_ij (v_i - v_j)^T F_ij (v_i - v_j)| <= n sup ||F|| ||v||^2:
its norm is <= n sup ||df/dr||. (Weights w_k may differ for same- and
opposite-spin pairs; the larger sum counts.)

The backflow multiplies both terms by ``1 / max(1, (|s| B + B_radial) / c)``, with
B the bracket of (1) and B_radial = n 2 e^(-1/2) sum_k |w_k|, which makes
Lip(g) <= c exactly.

Units: lengths in Bohr; every bound here is dimensionless (a Lipschitz constant).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from fermiflow.types import Array

__all__ = [
    "RADIAL_DERIVATIVE_BOUND",
    "amplitude_bound",
    "certified_factor",
    "network_bound",
    "radial_bound",
    "input_pair_bound",
    "spectral_norm",
    "stream_layer_bounds",
]


def spectral_norm(kernel: Array) -> Array:
    """Return the largest singular value of a dense kernel (in_features, out_features)."""
    return jnp.linalg.norm(kernel, ord=2)


def input_pair_bound(n: int, box_length: float, n_frequencies: int) -> float:
    """Lipschitz bound of the (n, n, features) periodic pair input features.

    Args:
      n: static, number of particles.
      box_length: static, side L of the box, Bohr.
      n_frequencies: static, number of harmonics m = 1..M per coordinate.

    Returns:
      c0 sqrt(2 n), a bound of ||d H2|| / ||dx|| for the harmonics and the scaled
      smooth distance of :func:`fermiflow.models.features.periodic_harmonics`.
    """
    sum_m2 = n_frequencies * (n_frequencies + 1) * (2 * n_frequencies + 1) / 6
    c0 = math.sqrt((2 * math.pi / box_length) ** 2 * sum_m2 + 1 / box_length**2)
    return c0 * math.sqrt(2 * n)


def stream_layer_bounds(
    lip_one: Array, lip_two: Array, *, norm_one: Array, norm_two: Array,
    residual_one: bool, residual_two: bool, n: int, smallest_block: int,
) -> tuple[Array, Array]:
    """Propagate the stream bounds through one FermiNet-style layer.

    Args:
      lip_one: () bound of the one-particle stream going in.
      lip_two: () bound of the two-particle stream going in.
      norm_one: () spectral norm of the one-particle stream's kernel.
      norm_two: () spectral norm of the two-particle stream's kernel.
      residual_one: static, whether the one-particle stream adds its input back.
      residual_two: static, whether the two-particle stream adds its input back.
      n: static, number of particles.
      smallest_block: static, size of the smallest nonempty spin block.

    Returns:
      ``(lip_one', lip_two')``, () each.
    """
    mixed = jnp.sqrt((1 + n / smallest_block) * lip_one**2 + lip_two**2 / smallest_block)
    new_one = float(residual_one) * lip_one + norm_one * mixed
    new_two = (float(residual_two) + norm_two) * lip_two
    return new_one, new_two


def amplitude_bound(lip_one: Array, lip_two: Array, norm_out: Array, n: int) -> Array:
    """Bound of ||dA|| / ||dx|| for the (n, n) amplitudes tanh(w . [h2_ij, h1_i, h1_j])."""
    return norm_out * jnp.sqrt(lip_two**2 + 2 * n * lip_one**2)


# sup_t e^(-t) (1 + 2 t), t = d^2 / 2 sigma^2: the bound of phi + d |phi'| for a Gaussian.
RADIAL_DERIVATIVE_BOUND = 2 * math.exp(-0.5)


def network_bound(lip_amplitude: Array, *, n: int, dim: int, box_length: float) -> Array:
    """Return B of eq. (1), the Lipschitz bound of the many-body term per unit scale.

    Args:
      lip_amplitude: () bound of Lip(A).
      n: static, number of particles.
      dim: static, dimension.
      box_length: static, side L of the box, Bohr.

    Returns:
      () 2 (n - 1) + sqrt(dim) L / (2 pi) sqrt(n - 1) Lip(A).
    """
    u_max = math.sqrt(dim) * box_length / (2 * math.pi)
    return 2 * (n - 1) + u_max * math.sqrt(n - 1) * lip_amplitude


def radial_bound(weight_sums: Array, n: int) -> Array:
    """Return B_radial = n 2 e^(-1/2) max(weight_sums).

    Args:
      weight_sums: (m,) sum_k |w_k| for each kind of pair present (same / opposite spin).
      n: static, particle number.
    """
    return n * RADIAL_DERIVATIVE_BOUND * jnp.max(weight_sums)


def certified_factor(bound: Array, max_lipschitz: float) -> Array:
    """Return 1 / max(1, bound / c): the factor that brings a Lipschitz bound to <= c."""
    return 1.0 / jnp.maximum(1.0, bound / max_lipschitz)

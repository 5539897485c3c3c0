"""Discrete residual backflow zeta = x + residual(x) with an exact log-Jacobian.

FermiNet-style one- and two-particle streams (arXiv:1909.02487) feed a residual that
moves each particle along equivariant vectors:

  zeta_i = x_i + sum_{j != i} [s_pair tanh(b_ij) + f(d_ij)] u_ij
           [+ s_one tanh(a_i) x_i  (trap)]  [+ s_free W^T h1_i  (box, optional)],

where u_ij is r_ij = x_i - x_j in free space and (L / 2 pi) sin(2 pi r_ij / L) in the
box, a_i and b_ij are read off the streams, h1_i is the one-particle stream, and
s_one, s_pair, s_free are learnable scales initialised to ``init_scale``. In the box
f(d) = sum_k w_k exp(-d^2 / 2 sigma_k^2) is a learnable radial function of the smooth
periodic distance (same- and opposite-spin weights w_k, sum initialised to
``init_scale``; absent in free space):
the classic two-body backflow, whose Lipschitz constant has a tight bound. Spin
enters as a +-1 feature of each particle and the streams average over each spin
block separately, so T is equivariant under permutations within a spin block but not
across blocks. ``radial_blocks`` further layers zeta -> zeta + sum_j f_b(d_ij) u_ij
may follow (box only), and a last Fourier vector pair layer (``pair_field`` = M, box
only)

  zeta_i -> zeta_i + sum_{j != i} sum_m theta_m sin(k_m . zeta_ij) / ||k_m||,
  k_m = 2 pi m / L,  |m|_inf <= M,

with learnable dimensionless vectors theta_m (same- and opposite-spin rows), started
at zero. Every
term above moves particle i along its pair vectors u_ij with scalar weights; this one
moves it in any direction: the odd periodic vector fields it spans are complete as
M grows. For two polarized electrons in the box (rs = 10, the lowest relative state
of its momentum class) the best map of the form s(r) u(r) stays 0.92 mHa above the
exact level whatever the order of s, while a general field of order M = 3 reaches it
to 5e-4 mHa (deterministic grid optimisation, benchmarks/results/
pair_map_family_box2d_pol_rs10.json).

Box: the streams start from periodic pair features only (cos / sin of 2 pi m r_ij / L
and the smooth periodic distance), never from absolute positions, hence
T(x + c) = T(x) + c and T(x + L e_i) = T(x) + L e_i. Free space: the streams start
from |x_i|^2 and |r_ij|, hence T commutes with rotations (and parity in 1D).

Invertibility. In the box it is certified by default: the residual (many-body and
radial terms together) is scaled so that a Lipschitz bound, computed from the kernels'
spectral norms and the radial weights (:mod:`fermiflow.models.lipschitz`), stays at or
below ``max_lipschitz`` < 1, which makes T a bijection of the torus with det > 0
everywhere, whatever the parameters.
(An uncapped box backflow trained on the 2D gas at rs = 10 folded space on 9.5% of
uniform configurations, invisible to the Metropolis walkers.) In free space the pair
vectors r_ij and the one-body term s_one x_i are unbounded, so no global bound exists
and invertibility is only checked: in free space, and in the box with
``certify=False``, the log-det (``slogdet`` of the dense ``(n dim, n dim)``
Jacobian) is NaN wherever det <= 0. A positive
determinant everywhere makes T a bijection (a proper local diffeomorphism of
R^(n dim) while |s_one| + 2 (n - 1) |s_pair| < 1 keeps T proper).

Cost. The pair stream never sees the one-particle stream, so h2_ij depends on r_ij
alone; the Jacobian (and the Laplacian of zeta, for the kinetic energy) are
propagated in that structure (:mod:`fermiflow.models.backflow_jet`), at
O(dim n^2 w^2 + (n dim) n^2 dim) per configuration instead of the
O((n dim) n^2 w^2) of ``jax.jacfwd`` through the network (w the pair width).

Units: Hartree atomic units, lengths in Bohr. Acts on a single configuration
``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from fermiflow.models.backflow_jet import (
    RADIAL_WIDTHS,
    BackflowParams,
    BackflowSpec,
    backflow_jet,
    certified_cap,
)
from fermiflow.models.flow import Flow, JetApply, check_flow_system, check_init_scale
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_nonnegative_int, check_positive_int

__all__ = ["make_backflow"]


def _check_certify(
    certify: bool | None, max_lipschitz: float, box_length: float | None
) -> float | None:
    """Return the certified bound, or None for a checked-only flow."""
    if certify is None:
        certify = box_length is not None
    if not isinstance(certify, bool):
        raise ValueError(f"certify must be True, False or None, got {certify!r}.")
    if certify and box_length is None:
        raise ValueError(
            "certify=True needs a periodic box: in free space the backflow has no "
            "global Lipschitz bound. Pass certify=None (or False) for a trap."
        )
    max_lipschitz = float(max_lipschitz)
    if not 0 < max_lipschitz < 1:
        raise ValueError(
            f"max_lipschitz must lie strictly between 0 and 1, got {max_lipschitz}. "
            "Use 0.9 (the default); 1 or more no longer certifies a bijection."
        )
    return max_lipschitz if certify else None


def _check_n_radial(n_radial: int | None, box_length: float | None) -> int:
    if n_radial is None:
        return 0 if box_length is None else len(RADIAL_WIDTHS)
    if isinstance(n_radial, bool) or not isinstance(n_radial, int) or not (
        0 <= n_radial <= len(RADIAL_WIDTHS)
    ):
        raise ValueError(
            f"n_radial must be an int from 0 to {len(RADIAL_WIDTHS)}, got {n_radial!r}."
        )
    if n_radial and box_length is None:
        raise ValueError(
            "n_radial > 0 needs a periodic box (the radial pair term is box-only). "
            "Pass n_radial=None or 0 for a trap."
        )
    return n_radial


def _check_radial_blocks(radial_blocks: int, n_radial: int) -> int:
    radial_blocks = check_nonnegative_int("radial_blocks", radial_blocks)
    if radial_blocks and not n_radial:
        raise ValueError(
            f"radial_blocks={radial_blocks} needs radial pair terms (n_radial > 0, a "
            "periodic box). Use radial_blocks=0 for a trap or with n_radial=0."
        )
    return radial_blocks


def make_backflow(
    *,
    n_up: int,
    n_down: int,
    dim: int,
    box_length: float | None,
    depth: int = 2,
    width_one: int = 16,
    width_two: int = 16,
    n_frequencies: int = 3,
    init_scale: float = 1e-2,
    certify: bool | None = None,
    max_lipschitz: float = 0.9,
    n_radial: int | None = None,
    radial_blocks: int = 0,
    spin_symmetric: bool = False,
    free_displacement: bool = False,
    pair_field: int = 0,
) -> Flow:
    """Build the residual backflow and its exact dense log-Jacobian.

    Args:
      n_up: static, number of spin-up particles (first in x).
      n_down: static, number of spin-down particles (last in x).
      dim: static, 2 or 3 in the box; 1, 2 or 3 in free space.
      box_length: static, side L of the periodic box in Bohr, or None for a trap.
      depth: static, number of stream layers, >= 1.
      width_one: static, width of the one-particle stream.
      width_two: static, width of the two-particle stream.
      n_frequencies: static, number of harmonics m of the periodic pair features
        (box only; free space uses |r_ij|).
      init_scale: static, initial value of the learnable residual scales; the flow
        starts within about ``init_scale (n - 1) L / (2 pi)`` of the identity.
        0 gives exactly the identity.
      certify: static, cap the pair scale so that Lip(zeta - x) <= max_lipschitz
        (module docstring). None means True in the box; False in free space, where
        it is not available (True raises).
      max_lipschitz: static, the certified bound c, 0 < c < 1; the log-det then
        lies in [n dim ln(1 - c), n dim ln(1 + c)].
      n_radial: static, number of radial pair Gaussians (widths L/16, L/8, L/4, L/2;
        separate weights for same- and opposite-spin pairs), 0 to 4. None means 4 in
        the box and 0 in free space, where they are not available.
      radial_blocks: static, number of further layers zeta -> zeta + sum_j f_b(d_ij) u_ij
        composed after the first (box only, needs n_radial > 0). Each is certified
        on its own (Lip <= max_lipschitz), so the composition is still a bijection
        with det > 0, and can deform more than one capped layer.
      spin_symmetric: static, treat all electrons alike (no spin feature, one block,
        one radial weight row): T is then equivariant under every permutation, as the
        spin-adapted Psi_K of :func:`~fermiflow.models.wavefunction.make_log_psi` need.
      free_displacement: static, box only: add s_free W^T h1_i, a free vector read
        linearly off each particle's one-particle stream (FermiNet-style), so that a
        particle may also move across its pair vectors. Periodic and translation
        equivariant like the rest; counted in the certified bound as
        |s_free| ||W|| Lip(H1).
      pair_field: static, box only: order M >= 0 of the last Fourier vector pair
        layer (module docstring; 0 = none). ((2M + 1)^dim - 1) / 2 modes with a dim-
        vector each, per pair kind. Certified on its own with
        Lip <= 2 (n - 1) sum_m ||theta_m||
        (:func:`~fermiflow.models.backflow_jet.field_modes`).

    Returns:
      A :class:`Flow`; ``apply(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``
      with ``log_det`` NaN where ``det d zeta / d x <= 0`` (see module docstring).
      ``apply`` is a :class:`~fermiflow.models.flow.JetApply`: ``apply.jacobian``
      and ``apply.forward_laplacian`` give the structured derivatives.

    Raises:
      ValueError: for bad particle numbers, dim, box_length, widths, depth, scale,
        certify or max_lipschitz.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> flow = make_backflow(n_up=2, n_down=1, dim=2, box_length=3.0)
      >>> x = jax.random.uniform(jax.random.key(0), (3, 2)) * 3.0
      >>> zeta, log_det = flow.apply(flow.init(jax.random.key(1), x), x)
      >>> zeta.shape, log_det.shape, bool(jnp.abs(zeta - x).max() < 0.1)
      ((3, 2), (), True)
    """
    n_up, n_down, dim, box_length = check_flow_system(n_up, n_down, dim, box_length)
    if free_displacement and box_length is None:
        raise ValueError("free_displacement: only in the box (a free vector breaks the "
                         "rotation symmetry of a trap); set free_displacement=False.")
    pair_field = check_nonnegative_int("pair_field", pair_field)
    if pair_field and box_length is None:
        raise ValueError("pair_field > 0 needs a periodic box (a Fourier series in the pair "
                         "vector); set pair_field=0 for a trap.")
    shape = (n_up + n_down, dim)
    if spin_symmetric:  # the network sees one species: fully permutation-equivariant
        n_up, n_down = n_up + n_down, 0
    spec = BackflowSpec(
        max_lipschitz=_check_certify(certify, max_lipschitz, box_length),
        n_radial=(n_radial := _check_n_radial(n_radial, box_length)),
        radial_blocks=_check_radial_blocks(radial_blocks, n_radial),
        n_up=n_up,
        n_down=n_down,
        box_length=box_length,
        depth=check_positive_int("depth", depth, "Use at least one stream layer."),
        width_one=check_positive_int("width_one", width_one),
        width_two=check_positive_int("width_two", width_two),
        n_frequencies=check_positive_int("n_frequencies", n_frequencies),
        init_scale=check_init_scale(init_scale),
        free_displacement=bool(free_displacement),
        pair_field=pair_field,
    )
    module = BackflowParams(spec)

    def init(key: PRNGKey, x: ArrayLike) -> Params:
        x = jnp.asarray(x)
        chex.assert_shape(x, shape)
        return module.init(key, x)

    def jet(params: Params, x: Array, order: int):
        chex.assert_shape(x, shape)
        return backflow_jet(spec, params, x, order)

    def prepare(params: Params) -> Params:
        return certified_cap(spec, params, dim)

    return Flow(init, JetApply(jet), prepare if spec.max_lipschitz is not None else None)

"""Joint sampling of (K, x) in the latent space of the flow: exact for any flow params.

With zeta = T(x) and D_K(zeta) = det[phi_k(zeta_j)] / sqrt(N!) the bare determinant,
|Psi_K(x)|^2 = |D_K(T(x))|^2 |det dT/dx|, so zeta ~ |D_K|^2 gives x = T^{-1}(zeta) ~
|Psi_K|^2 exactly (change of variables, T a bijection). The Metropolis chain runs on
zeta and evaluates only the bare determinant; its law does not depend on the flow
params, so it stays exact while they change every step, and each ``sample`` inverts
the flow once per walker at the current params. K is drawn exactly from p(K) at
every call, as in :mod:`fermiflow.sampling.joint`.

Inversion of T(x) = zeta per walker, from x0 = zeta (a warm start from the previous x
does not help: after a step of sweeps zeta has moved by about the spacing):
1. ``n_fixed_point`` iterations x <- zeta - residual(x), one forward pass each;
   they converge when the residual T(x) - x is a contraction;
2. ``n_newton`` Newton-chord steps x <- x - J^{-1} (T(x) - zeta), with the dense
   (n dim, n dim) Jacobian J computed and LU-factored ONCE, after step 1.
Box: zeta lives in [0, L)^dim and T(x + L e) = T(x) + L e, so x is wrapped into
[0, L) and T(x) - zeta is compared modulo L. ``LatentInfo.n_inversion_failed``
counts walkers whose max|T(x) - zeta| exceeds ``inversion_rtol * (1 + max|zeta|)``
or is not finite: their x are wrong; stop, or use more iterations.

State layout: ``state.occ`` and ``state.walkers.chain.position`` are K and the
PHYSICAL x, so ``fermiflow.training.loss`` and ``fermiflow.training.natural_gradient`` use the state
unchanged. ``state.walkers.chain.logdensity`` holds the LATENT log|D_K(zeta)|^2
(log|Psi_K(x)|^2 adds log|det dT/dx|, which is never computed here).

Acts on a batch of walkers; must not be vmapped. Units: Hartree atomic units, Bohr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from einops import rearrange

from fermiflow.models.autoregressive import ARModel
from fermiflow.models.density_matrix import JointParams
from fermiflow.sampling.joint import JointSampler
from fermiflow.sampling.metropolis import (
    MetropolisState,
    adapt_width,
    default_width,
    make_metropolis,
)
from fermiflow.types import Array, Params, PRNGKey
from fermiflow.validation import (
    check_dim,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)

__all__ = [
    "LatentInfo",
    "LatentState",
    "check_inversion",
    "make_flow_inverse",
    "make_latent_joint_sampler",
    "physical_state",
]

LogSlaterK = Callable[[Array, Array], Array]
FlowApply = Callable[[Params, Array], tuple[Array, Array]]


class LatentState(NamedTuple):
    """Walkers, their occupations and their latent chains.

    Attributes:
      occ: (batch, n) int32 occupation K of each walker.
      log_p_occ: (batch,) log p(K) under the params of the last step.
      walkers: :class:`MetropolisState` whose ``chain.position`` (batch, n, dim) is
        x = T^{-1}(zeta) at the flow params of the last ``sample`` (wrapped into the
        box), ``chain.logdensity`` (batch,) is log|D_K(zeta)|^2 (latent, see module
        docstring) and ``width`` () is the latent proposal width.
      latent: :class:`MetropolisState` of zeta (batch, n, dim), the chain itself.
    """

    occ: Array
    log_p_occ: Array
    walkers: MetropolisState
    latent: MetropolisState


class LatentInfo(NamedTuple):
    """Diagnostics of one ``sample`` call.

    Attributes:
      acceptance: (batch,) acceptance of each walker in the ``n_sweeps`` sweeps.
      width: () width used in this step (in zeta, Bohr).
      n_nonfinite: () int, proposals with a NaN/inf log density (rejected).
      n_new_occ: () int, walkers whose K changed in this step.
      n_inversion_failed: () int, walkers whose |T(x) - zeta| exceeds the tolerance.
      inversion_error: () max over walkers and coordinates of |T(x) - zeta| (Bohr).
    """

    acceptance: Array
    width: Array
    n_nonfinite: Array
    n_new_occ: Array
    n_inversion_failed: Array
    inversion_error: Array


def _initial_positions(key, batch, n, dim, box_length, dtype) -> Array:
    if box_length is None:  # the same start as fermiflow.sampling.joint
        return jax.random.normal(key, (batch, n, dim), dtype)
    return jax.random.uniform(key, (batch, n, dim), dtype) * box_length


def _wrap(x: Array, box_length: float | None) -> Array:
    return x if box_length is None else jnp.mod(x, jnp.asarray(box_length, x.dtype))


def make_flow_inverse(flow_apply: FlowApply, box_length, n_fixed_point: int, n_newton: int):
    """Build the inverse x = T^-1(zeta) of a flow: fixed-point iterations, then Newton.

    Args:
      flow_apply: static, ``(params, x: (n, dim)) -> (zeta, log_det)``.
      box_length: static, the box side (x is wrapped into [0, L)) or None.
      n_fixed_point: static, iterations x <- x - (T(x) - zeta) (converge for a residual
        flow with Lip(T - id) < 1).
      n_newton: static, chord-Newton steps with the Jacobian at the fixed-point result.

    Returns:
      ``(params, zeta: (batch, n, dim)) -> (x: (batch, n, dim), error: (batch,))`` with
      error = max |T(x) - zeta| (modulo L in the box).
    """

    def invert(params: Params, zeta: Array) -> tuple[Array, Array]:
        dim = zeta.shape[-1]

        # Only zeta is used: the log-det flow_apply also computes is dead code that
        # XLA removes, so a pass costs a forward pass, not a dense Jacobian.
        def transform(x: Array) -> Array:
            return flow_apply(params, x)[0]

        def fixed_point(_, x: Array) -> Array:
            return x - (transform(x) - zeta)

        x = jax.lax.fori_loop(0, n_fixed_point, fixed_point, zeta)
        if n_newton:
            jac = rearrange(jax.jacfwd(transform)(x), "i d j e -> (i d) (j e)")
            lu = jax.scipy.linalg.lu_factor(jac)

            def newton_chord(_, x: Array) -> Array:
                rhs = rearrange(transform(x) - zeta, "n d -> (n d)")
                step = jax.scipy.linalg.lu_solve(lu, rhs)
                return x - rearrange(step, "(n d) -> n d", d=dim)

            x = jax.lax.fori_loop(0, n_newton, newton_chord, x)
        x = _wrap(x, box_length)
        mismatch = transform(x) - zeta
        if box_length is not None:
            length = jnp.asarray(box_length, x.dtype)
            mismatch = mismatch - length * jnp.round(mismatch / length)
        return x, jnp.max(jnp.abs(mismatch))

    return jax.vmap(invert, in_axes=(None, 0))


def check_inversion(
    n_fixed_point: int, n_newton: int, inversion_rtol: float | None
) -> tuple[int, int]:
    """Return (n_fixed_point, n_newton), or raise ValueError for unusable settings."""
    n_fixed_point = check_nonnegative_int("n_fixed_point", n_fixed_point)
    n_newton = check_nonnegative_int("n_newton", n_newton)
    if n_fixed_point + n_newton == 0:
        raise ValueError(
            "n_fixed_point + n_newton must be >= 1 to invert the flow; use "
            "n_fixed_point=10, n_newton=3."
        )
    if inversion_rtol is not None:
        check_positive("inversion_rtol", inversion_rtol, "Use about 1e-10 in float64.")
    return n_fixed_point, n_newton


def physical_state(invert, rtol, occ, log_p, latent, flow_params):
    """Invert the flow for every walker; return (LatentState, n_failed, max error).

    Args:
      invert: from :func:`make_flow_inverse`.
      rtol: inversion tolerance relative to 1 + max|zeta| of the walker.
      occ: (batch, n) occupations.
      log_p: (batch,) ln p(K).
      latent: :class:`MetropolisState` of zeta (batch, n, dim).
      flow_params: flow parameters.

    Returns:
      (:class:`LatentState` with x in ``walkers``, () count of walkers whose inversion
      missed rtol or is NaN, () largest inversion error).
    """
    zeta = latent.chain.position
    x, error = invert(flow_params, zeta)
    scale = 1 + jnp.max(jnp.abs(zeta), axis=(1, 2))
    failed = ~(error <= jnp.asarray(rtol, error.dtype) * scale)  # NaN counts as failed
    walkers = MetropolisState(
        blackjax.mcmc.random_walk.RWState(x, latent.chain.logdensity), latent.width
    )
    return LatentState(occ, log_p, walkers, latent), jnp.sum(failed), jnp.max(error)


def _make_latent_move(occupation_model, metropolis, batch, n_extra_sweeps, adapt, target):
    """Return move(key, occ_old, latent, occupation_params) -> (occ, log_p, latent, info).

    Draws K exactly, runs the extra sweeps of the walkers whose K changed, then the
    sweeps of all walkers, then adapts the width; ``info`` is the first four fields of
    :class:`LatentInfo`.
    """

    def move(key, occ_old, latent, occupation_params):
        key_occ, key_extra, key_zeta = jax.random.split(key, 3)
        occ, log_p = occupation_model.sample(key_occ, occupation_params, batch)
        changed = jnp.any(occ != occ_old, axis=-1)
        n_bad = jnp.zeros((), jnp.int32)
        if n_extra_sweeps:
            latent, extra = metropolis.step(
                key_extra, latent, None, occ, n_sweeps=n_extra_sweeps, active=changed
            )
            n_bad = n_bad + extra.n_nonfinite
        latent, info = metropolis.step(key_zeta, latent, None, occ)
        if adapt:
            latent = latent._replace(
                width=adapt_width(latent.width, info.acceptance, target=target)
            )
        partial = (info.acceptance, info.width, n_bad + info.n_nonfinite, jnp.sum(changed))
        return occ, log_p, latent, partial

    return move


def make_latent_joint_sampler(
    occupation_model: ARModel,
    log_slater_k: LogSlaterK,
    flow_apply: FlowApply,
    *,
    batch: int,
    n: int,
    dim: int,
    box_length: float | None = None,
    kernel: str = "rwm",
    n_sweeps: int = 10,
    n_extra_sweeps: int = 0,
    width: float | None = None,
    target_acceptance: float = 0.5,
    adapt: bool = True,
    dtype=None,
    n_fixed_point: int = 10,
    n_newton: int = 3,
    inversion_rtol: float | None = None,
) -> JointSampler:
    """Build the joint sampler of K ~ p(K) and x | K ~ |Psi_K|^2 through zeta = T(x).

    Args:
      occupation_model: static, the set model; only its ``sample`` is used.
      log_slater_k: static, ``(occ: (n,) int, zeta: (n, dim)) -> ()`` complex log
        D_K(zeta), the log Psi_K of the IDENTITY flow (``make_log_psi`` with
        ``flow_apply`` the identity, params ignored).
      flow_apply: static, ``(wavefunction_params, x: (n, dim)) -> (zeta, log_det)``,
        the flow T of log Psi_K (only zeta is used).
      batch: static, number of walkers.
      n: static, number of electrons.
      dim: static, spatial dimension.
      box_length: static, side L of the periodic box, or None for free space.
      kernel: static, "rwm" or "mala" (on zeta).
      n_sweeps: static, all-electron moves of zeta per step for every walker.
      n_extra_sweeps: static, extra moves per step for walkers whose K changed.
      width: starting proposal width in Bohr; default from ``default_width``.
      target_acceptance: static, in (0, 1).
      adapt: static, adapt the width between steps toward target_acceptance.
      dtype: static, dtype of the positions; default float64 when x64 is on.
      n_fixed_point: static, fixed-point iterations of the inversion (>= 0).
      n_newton: static, Newton-chord steps after them (>= 0; one dense Jacobian).
      inversion_rtol: static, a walker fails when max|T(x) - zeta| > inversion_rtol
        * (1 + max|zeta|); default eps**0.75 of dtype (2e-12 in float64).

    Returns:
      A :class:`JointSampler` whose states are :class:`LatentState` and whose infos
      are :class:`LatentInfo`.

    Raises:
      ValueError: for a bad batch, n, dim, sweep or iteration count, width, target
        or tolerance.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.models.categorical import make_categorical_model
      >>> model = make_categorical_model([[0, 1], [0, 2]])
      >>> log_slater_k = lambda occ, z: -0.5 * jnp.sum(z**2) * (1 + occ[1]) + 0j
      >>> flow_apply = lambda p, x: (x + p * jnp.tanh(x), None)
      >>> sampler = make_latent_joint_sampler(
      ...     model, log_slater_k, flow_apply, batch=4, n=2, dim=2)
      >>> params = JointParams(model.init(jax.random.key(0)), 0.1)
      >>> state = sampler.init(jax.random.key(1), params)
      >>> state, info = sampler.sample(jax.random.key(2), state, params)
      >>> x = state.walkers.chain.position
      >>> x.shape, bool(jnp.allclose(x + 0.1 * jnp.tanh(x), state.latent.chain.position))
      ((4, 2, 2), True)
    """
    batch = check_positive_int("batch", batch, "Use at least one walker.")
    n, dim = check_positive_int("n", n), check_dim(dim, (1, 2, 3))
    n_extra_sweeps = check_nonnegative_int("n_extra_sweeps", n_extra_sweeps)
    n_fixed_point, n_newton = check_inversion(n_fixed_point, n_newton, inversion_rtol)
    if not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must lie in (0, 1), got {target_acceptance}. Use 0.5.")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    width = default_width(box_length, n, dim) if width is None else width
    width = check_positive("width", width, "Give the proposal width in Bohr.")
    rtol = jnp.finfo(dtype).eps ** 0.75 if inversion_rtol is None else inversion_rtol
    metropolis = make_metropolis(
        lambda _, occ, zeta: 2 * jnp.real(log_slater_k(occ, zeta)),
        box_length=box_length,
        kernel=kernel,
        n_sweeps=n_sweeps,
    )
    invert = make_flow_inverse(flow_apply, box_length, n_fixed_point, n_newton)

    def physical(occ, log_p, latent, flow_params):
        return physical_state(invert, rtol, occ, log_p, latent, flow_params)

    def init(key: PRNGKey, params: JointParams) -> LatentState:
        key_occ, key_zeta = jax.random.split(key)
        occ, log_p = occupation_model.sample(key_occ, params.occupation, batch)
        zeta = _initial_positions(key_zeta, batch, n, dim, box_length, dtype)
        latent = metropolis.init(zeta, None, occ, width)
        return physical(occ, log_p, latent, params.wavefunction)[0]

    move = _make_latent_move(
        occupation_model, metropolis, batch, n_extra_sweeps, adapt, target_acceptance
    )

    def sample(key, state, params):
        occ, log_p, latent, partial = move(key, state.occ, state.latent, params.occupation)
        state, n_failed, error = physical(occ, log_p, latent, params.wavefunction)
        return state, LatentInfo(*partial, n_failed, error)

    def thermalize(key, state, params, n_steps):
        check_positive_int("n_steps", n_steps)

        # The latent law does not depend on the flow: invert once, at the end.
        def body(carry, key):
            occ, latent = carry
            occ, log_p, latent, partial = move(key, occ, latent, params.occupation)
            return (occ, latent), (log_p, partial)

        keys = jax.random.split(key, n_steps)
        (occ, latent), (log_p, partial) = jax.lax.scan(body, (state.occ, state.latent), keys)
        last = jax.tree.map(lambda a: a[-1], (log_p, partial))
        state, n_failed, error = physical(occ, last[0], latent, params.wavefunction)
        return state, LatentInfo(*last[1], n_failed, error)

    return JointSampler(init, sample, thermalize)

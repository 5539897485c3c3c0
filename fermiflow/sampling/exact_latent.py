"""Exact i.i.d. joint samples of (K, x) through the latent space of a bijective flow.

With zeta = T(x), |Psi_K(x)|^2 = |D_K(T(x))|^2 |det dT/dx|, so zeta ~ |D_K|^2 gives
x = T^{-1}(zeta) ~ |Psi_K|^2 exactly. Every ``sample`` call draws a fresh K ~ p(K) by
exact ancestral sampling, a fresh zeta | K from the projection DPP |D_K|^2 by the exact
chain rule of :mod:`fermiflow.sampling.dpp` (no Markov chain: no burn-in, no
autocorrelation, acceptance 1, no width), and inverts the flow at the current params
with the fixed-point + Newton-chord inverse of :mod:`fermiflow.sampling.latent` (same
iterations, tolerance and failure count). The state does not carry information from
one call to the next except ``occ`` (to count the walkers whose K changed).

State layout: the :class:`~fermiflow.sampling.latent.LatentState` of the latent
Metropolis sampler, so ``fermiflow.loss``, ``fermiflow.optimizers`` and ``make_train_step``
use it unchanged: ``walkers.chain.position`` is the PHYSICAL x, ``latent.chain.position``
is zeta, both ``chain.logdensity`` are the LATENT log|D_K(zeta)|^2 and both widths are 0.

Acts on a batch of walkers; must not be vmapped. Each walker gets its own key from
``jax.random.split(key, batch)``, so samples do not depend on sharding. Units: Hartree
atomic units, Bohr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp

from fermiflow.models.autoregressive import ARModel
from fermiflow.models.density_matrix import JointParams
from fermiflow.sampling.dpp import DPPSample
from fermiflow.sampling.joint import JointSampler
from fermiflow.sampling.latent import (
    LatentState,
    check_inversion,
    make_flow_inverse,
    physical_state,
)
from fermiflow.sampling.metropolis import MetropolisState
from fermiflow.types import Array, Params, PRNGKey
from fermiflow.validation import check_dim, check_positive_int

__all__ = ["ExactLatentInfo", "make_exact_latent_joint_sampler"]

LatentSampler = Callable[[PRNGKey, Array], DPPSample]
FlowApply = Callable[[Params, Array], tuple[Array, Array]]


class ExactLatentInfo(NamedTuple):
    """Diagnostics of one ``sample`` call (the fields ``make_train_step`` reads first).

    Attributes:
      acceptance: (batch,) ones: every draw is exact and kept.
      width: () zero: there is no proposal width.
      n_nonfinite: () int, walkers whose latent sample is NaN (candidate cap hit, e.g.
        a K with a repeated mode): their x are NaN.
      n_new_occ: () int, walkers whose K differs from the previous call's.
      n_inversion_failed: () int, walkers whose |T(x) - zeta| exceeds the tolerance.
      inversion_error: () max over walkers and coordinates of |T(x) - zeta| (Bohr).
      n_proposals: () mean over walkers of the DPP candidates drawn (N H_N per block
        of N for plane waves).
    """

    acceptance: Array
    width: Array
    n_nonfinite: Array
    n_new_occ: Array
    n_inversion_failed: Array
    inversion_error: Array
    n_proposals: Array


def make_exact_latent_joint_sampler(
    occupation_model: ARModel,
    latent_sampler: LatentSampler,
    flow_apply: FlowApply,
    *,
    batch: int,
    n: int,
    dim: int,
    box_length: float | None = None,
    map_batch_size: int | None = None,
    n_fixed_point: int = 10,
    n_newton: int = 3,
    inversion_rtol: float | None = None,
) -> JointSampler:
    """Build the exact i.i.d. sampler of K ~ p(K) and x | K ~ |Psi_K|^2 via zeta = T(x).

    Args:
      occupation_model: static, the set model; only its ``sample`` is used.
      latent_sampler: static, ``(key, occ: (n,) int) -> DPPSample`` exact sampler of
        zeta ~ |D_K(zeta)|^2 for ONE walker, e.g. from
        :func:`~fermiflow.sampling.dpp.make_plane_wave_dpp_sampler` (same mode table and
        spins as the wavefunction); its position dtype is the dtype of the walkers.
      flow_apply: static, ``(wavefunction_params, x: (n, dim)) -> (zeta, log_det)``,
        the flow T of log Psi_K (only zeta is used).
      batch: static, number of walkers.
      n: static, number of electrons.
      dim: static, spatial dimension.
      box_length: static, side L of the periodic box, or None for free space.
      map_batch_size: static, None to vmap the latent sampler over the whole batch
        (for accelerators); k >= 1 to loop over chunks of k walkers with
        ``lax.map`` (k = 1, a plain loop, is fastest on CPU: a vmapped rejection loop
        runs every walker for as many rounds as the slowest one).
      n_fixed_point: static, fixed-point iterations of the inversion (>= 0).
      n_newton: static, Newton-chord steps after them (>= 0; one dense Jacobian).
      inversion_rtol: static, a walker fails when max|T(x) - zeta| > inversion_rtol
        * (1 + max|zeta|); default eps**0.75 of the dtype (2e-12 in float64).

    Returns:
      A :class:`JointSampler` whose states are
      :class:`~fermiflow.sampling.latent.LatentState` and whose infos are
      :class:`ExactLatentInfo`. ``thermalize`` draws ONE fresh sample (there is
      nothing to thermalize); its ``n_steps`` is checked and otherwise unused.

    Raises:
      ValueError: for a bad batch, n, dim, map_batch_size, iteration count or
        tolerance, or a latent sampler whose output is not (n, dim).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> from fermiflow.models.categorical import make_categorical_model
      >>> from fermiflow.sampling.dpp import make_plane_wave_dpp_sampler
      >>> spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=2.0)
      >>> dpp = make_plane_wave_dpp_sampler(
      ...     modes_wavevectors=spectrum.wavevectors, box_length=2.0, n_up=2, n_down=0)
      >>> model = make_categorical_model([[0, 1], [0, 2]])
      >>> flow_apply = lambda p, x: (x + p * jnp.sin(jnp.pi * x), None)  # periodic
      >>> sampler = make_exact_latent_joint_sampler(
      ...     model, dpp, flow_apply, batch=4, n=2, dim=2, box_length=2.0, map_batch_size=1)
      >>> params = JointParams(model.init(jax.random.key(0)), 0.05)
      >>> state = jax.jit(sampler.init)(jax.random.key(1), params)
      >>> x, zeta = state.walkers.chain.position, state.latent.chain.position
      >>> x.shape, bool(jnp.allclose(flow_apply(0.05, x)[0] % 2.0, zeta, atol=1e-9))
      ((4, 2, 2), True)
    """
    batch = check_positive_int("batch", batch, "Use at least one walker.")
    n, dim = check_positive_int("n", n), check_dim(dim, (1, 2, 3))
    if map_batch_size is not None:
        map_batch_size = check_positive_int(
            "map_batch_size", map_batch_size, "Use None (vmap, GPU) or 1 (a loop, CPU)."
        )
    n_fixed_point, n_newton = check_inversion(n_fixed_point, n_newton, inversion_rtol)
    shape = jax.eval_shape(latent_sampler, jax.random.key(0), jnp.zeros((n,), jnp.int32))
    if shape.position.shape != (n, dim):
        raise ValueError(
            f"latent_sampler returns positions of shape {shape.position.shape}, expected "
            f"(n, dim) = ({n}, {dim}): build it with the same spins and mode table."
        )
    dtype = shape.position.dtype
    rtol = jnp.finfo(dtype).eps ** 0.75 if inversion_rtol is None else inversion_rtol
    invert = make_flow_inverse(flow_apply, box_length, n_fixed_point, n_newton)

    def draw_latent(key: PRNGKey, occ: Array) -> DPPSample:
        keys = jax.random.split(key, batch)
        if map_batch_size is None:
            return jax.vmap(latent_sampler)(keys, occ)
        # batch_size=None is a plain loop: no vmap, so the rejection loop and the
        # Gram-Schmidt cond of each walker run only as long as that walker needs.
        chunk = None if map_batch_size == 1 else map_batch_size
        return jax.lax.map(lambda args: latent_sampler(*args), (keys, occ), batch_size=chunk)

    def draw(key: PRNGKey, params: JointParams, occ_old: Array | None):
        key_occ, key_zeta = jax.random.split(key)
        occ, log_p = occupation_model.sample(key_occ, params.occupation, batch)
        zeta = draw_latent(key_zeta, occ)
        width = jnp.zeros((), dtype)
        latent = MetropolisState(
            blackjax.mcmc.random_walk.RWState(zeta.position, zeta.log_density), width
        )
        state, n_failed, error = physical_state(
            invert, rtol, occ, log_p, latent, params.wavefunction
        )
        changed = batch if occ_old is None else jnp.sum(jnp.any(occ != occ_old, axis=-1))
        info = ExactLatentInfo(
            acceptance=jnp.ones((batch,), dtype),
            width=width,
            n_nonfinite=jnp.sum(~jnp.isfinite(zeta.log_density)),
            n_new_occ=jnp.asarray(changed, jnp.int32),
            n_inversion_failed=n_failed,
            inversion_error=error,
            n_proposals=jnp.mean(zeta.n_proposals.astype(dtype)),
        )
        return state, info

    def init(key: PRNGKey, params: JointParams) -> LatentState:
        return draw(key, params, None)[0]

    def sample(
        key: PRNGKey, state: LatentState, params: JointParams
    ) -> tuple[LatentState, ExactLatentInfo]:
        return draw(key, params, state.occ)

    def thermalize(
        key: PRNGKey, state: LatentState, params: JointParams, n_steps: int
    ) -> tuple[LatentState, ExactLatentInfo]:
        check_positive_int("n_steps", n_steps)
        return sample(key, state, params)  # i.i.d. draws: one is already stationary

    return JointSampler(init, sample, thermalize)

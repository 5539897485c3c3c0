"""Metropolis-Hastings chains over electron coordinates, one chain per walker.

Each walker b carries its own auxiliary data ``aux[b]`` (its occupation K) and targets
``log_prob_fn(params, aux[b], x)``, e.g. log|Psi_K(x)|^2. A sweep is one all-electron
move of every walker with a BlackJAX kernel: random-walk Metropolis with Gaussian
proposals of standard deviation ``width`` (``blackjax.mcmc.random_walk``), or MALA
(``blackjax.mcmc.mala``) with step size ``width**2 / 2``, so that its noise also has
standard deviation ``width``.

Box: positions are wrapped into [0, L)^dim after every sweep. The target must be
periodic in every coordinate (|Psi_K|^2 of a twisted box state is), so the chain on
R^(n dim) and its image on the torus have the same stationary density.

Parameters change between optimization steps, so ``step`` recomputes the cached log
densities first and never trusts the state's. Within a step the width is fixed, so
each step is a detailed-balance chain; ``adapt_width`` moves the width toward the
target acceptance between steps only.

The sampler acts on a BATCH of walkers and must not be vmapped. All random numbers
are drawn per walker from ``jax.random.split(key, batch)``, so the samples do not
depend on how the batch axis is sharded over devices.

Units: Hartree atomic units, lengths in Bohr.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp

from fermiflow.types import Array, ArrayLike, Params
from fermiflow.validation import check_nonnegative_int, check_positive

__all__ = [
    "MetropolisInfo",
    "MetropolisSampler",
    "MetropolisState",
    "adapt_width",
    "default_width",
    "make_metropolis",
]

LogProbFn = Callable[[Params, Any, Array], Array]
_KERNELS = ("rwm", "mala")


class MetropolisState(NamedTuple):
    """State of a batch of chains.

    Attributes:
      chain: the BlackJAX chain state (``RWState`` or ``MALAState``) with a leading
        batch axis: ``chain.position`` (batch, n, dim) and ``chain.logdensity``
        (batch,) under the params of the last step.
      width: () proposal width in Bohr, shared by all walkers.
    """

    chain: Any
    width: Array


class MetropolisInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
      acceptance: (batch,) fraction of the sweeps of this step that each walker
        accepted (over the sweeps it ran).
      width: () width used in this step.
      n_nonfinite: () int, number of proposals whose log density was NaN or inf.
        They are rejected; a non-zero count means the model broke somewhere.
    """

    acceptance: Array
    width: Array
    n_nonfinite: Array


class MetropolisSampler(NamedTuple):
    """Pure functions of a batch of chains.

    Attributes:
      init: ``(x: (batch, n, dim), params, aux, width) -> MetropolisState``.
      step: ``(key, state, params, aux, n_sweeps=None, active=None) ->
        (MetropolisState, MetropolisInfo)``; ``n_sweeps`` (static) overrides the
        default, ``active`` (batch,) bool freezes the walkers that are False.
    """

    init: Callable[..., MetropolisState]
    step: Callable[..., tuple[MetropolisState, MetropolisInfo]]


def adapt_width(
    width: ArrayLike,
    acceptance: ArrayLike,
    *,
    target: float = 0.5,
    min_width: float = 1e-4,
    max_width: float = 10.0,
) -> Array:
    """Move the width toward the target acceptance (call between steps only).

    ``width * exp(acceptance - target)``, clipped to [min_width, max_width]: a step
    at acceptance 1 widens by e^0.5, one at 0 narrows by e^-0.5, so the width
    reaches a fixed point where the mean acceptance equals the target.

    Args:
      width: () current width.
      acceptance: (batch,) or () acceptance of the last step.
      target: desired mean acceptance in (0, 1).
      min_width: lower clip, > 0.
      max_width: upper clip (e.g. the box side).

    Returns:
      () new width, in the dtype of width.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(adapt_width(jnp.asarray(1.0), jnp.asarray(0.5)))
      1.0
    """
    width = jnp.asarray(width)
    change = jnp.mean(jnp.asarray(acceptance, width.dtype)) - target
    return jnp.clip(width * jnp.exp(change), min_width, max_width)


def _wrap(x: Array, box_length: float | None) -> Array:
    if box_length is None:
        return x
    return jnp.mod(x, jnp.asarray(box_length, x.dtype))


def _mala_move(key, state, logdensity, width):
    """One MALA move from BlackJAX's Langevin integrator and MH pieces.

    The same algorithm as ``blackjax.mcmc.mala.build_kernel`` (step size
    ``width**2 / 2``), assembled here so that the proposal's log density is returned
    is checked too: BlackJAX turns a NaN proposal into a silent rejection, and we
    count them.
    """
    step_size = width**2 / 2
    integrator = blackjax.mcmc.diffusions.overdamped_langevin(jax.value_and_grad(logdensity))

    def transition_energy(state, new_state, step_size):
        theta = state.position - new_state.position - step_size * new_state.logdensity_grad
        return -new_state.logdensity + 0.25 / step_size * jnp.sum(theta**2)

    ratio = blackjax.mcmc.proposal.compute_asymmetric_acceptance_ratio(transition_energy)
    key_move, key_accept = jax.random.split(key)
    proposal = blackjax.mcmc.mala.MALAState(*integrator(key_move, state, step_size))
    log_p_accept = ratio(state, proposal, step_size=step_size)
    new, (accepted, _, _) = blackjax.mcmc.proposal.static_binomial_sampling(
        key_accept, log_p_accept, state, proposal
    )
    return new, accepted, jnp.isfinite(proposal.logdensity)


def _flag_nonfinite(key, log_p_accept, state, proposal):
    """BlackJAX's accept/reject, with p_accept NaN where the proposal's density is."""
    new, (accepted, p_accept, extra) = blackjax.mcmc.proposal.static_binomial_sampling(
        key, log_p_accept, state, proposal
    )
    p_accept = jnp.where(jnp.isfinite(proposal.logdensity), p_accept, jnp.nan)
    return new, (accepted, p_accept, extra)


def _rwm_move(key, state, logdensity, width):
    """One Gaussian random-walk Metropolis move (BlackJAX's RMH proposal generator)."""

    def transition(key, position):
        return position + blackjax.mcmc.random_walk.normal(width)(key, position)

    energy = blackjax.mcmc.random_walk.build_rmh_transition_energy(None)
    ratio = blackjax.mcmc.proposal.compute_asymmetric_acceptance_ratio(energy)
    generate = blackjax.mcmc.random_walk.rmh_proposal(
        logdensity, transition, ratio, _flag_nonfinite
    )
    new, accepted, p_accept = generate(key, state)
    return new, accepted, ~jnp.isnan(p_accept)


def _blackjax_kernel(kernel: str):
    """Return the BlackJAX init and our move for a kernel name.

    ``init(x, logdensity)``; ``move(key, state, logdensity, width) -> (state,
    accepted, proposal_was_finite)``.
    """
    if kernel == "rwm":
        return blackjax.mcmc.random_walk.init, _rwm_move
    return blackjax.mcmc.mala.init, _mala_move


def _check_args(kernel: str, box_length: float | None, n_sweeps: int):
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}, got {kernel!r}.")
    if box_length is not None:
        check_positive("box_length", box_length, "Pass None for free space (a trap).")
    return check_nonnegative_int("n_sweeps", n_sweeps)


def make_metropolis(
    log_prob_fn: LogProbFn,
    *,
    box_length: float | None = None,
    kernel: str = "rwm",
    n_sweeps: int = 10,
) -> MetropolisSampler:
    """Build a batch of Metropolis chains on per-walker targets.

    Args:
      log_prob_fn: static, ``(params, aux, x: (n, dim)) -> ()`` real log density of
        ONE walker, unnormalized (e.g. ``2 Re log Psi_K(x)`` with aux = K).
      box_length: static, side L of the periodic box (positions are wrapped into
        [0, L)), or None for free space.
      kernel: static, "rwm" (random-walk Metropolis, default) or "mala".
      n_sweeps: static, default number of all-electron moves per ``step``.

    Returns:
      A :class:`MetropolisSampler`. ``init(x, params, aux, width)`` takes positions
      (batch, n, dim), aux with a leading batch axis (any pytree, or None) and a
      width in Bohr.

    Raises:
      ValueError: for an unknown kernel, box_length <= 0 or n_sweeps < 0.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> log_prob = lambda params, aux, x: -0.5 * jnp.sum(x**2)
      >>> sampler = make_metropolis(log_prob, n_sweeps=5)
      >>> state = sampler.init(jnp.zeros((8, 2, 2)), None, None, 1.0)
      >>> state, info = sampler.step(jax.random.key(0), state, None, None)
      >>> state.chain.position.shape, info.acceptance.shape
      ((8, 2, 2), (8,))
    """
    n_sweeps = _check_args(kernel, box_length, n_sweeps)
    chain_init, move = _blackjax_kernel(kernel)

    def walker_init(params, aux, x):
        return chain_init(x, lambda y: log_prob_fn(params, aux, y))

    batch_init = jax.vmap(walker_init, in_axes=(None, 0, 0))

    def init(x: ArrayLike, params: Params, aux: Any, width: ArrayLike) -> MetropolisState:
        x = _wrap(jnp.asarray(x), box_length)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (batch, n, dim), got {x.shape}.")
        width = jnp.asarray(check_positive("width", float(width)), x.dtype)
        return MetropolisState(batch_init(params, aux, x), width)

    def walker_move(params, aux, chain, key, width, active):
        new, accepted, finite = move(
            key, chain, lambda y: log_prob_fn(params, aux, y), width
        )
        new = new._replace(position=_wrap(new.position, box_length))
        new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, chain)
        return new, accepted & active, ~finite & active

    batch_move = jax.vmap(walker_move, in_axes=(None, 0, 0, 0, None, 0))

    def step(key, state, params, aux, n_sweeps=n_sweeps, active=None):
        chain, width = state
        batch = chain.position.shape[0]
        active = jnp.ones(batch, bool) if active is None else jnp.asarray(active, bool)
        # The params changed since the last step: recompute the cached densities.
        chain = batch_init(params, aux, chain.position)

        def sweep(chain, key):
            keys = jax.random.split(key, batch)
            chain, accepted, bad = batch_move(params, aux, chain, keys, width, active)
            return chain, (accepted, bad)

        chain, (accepted, bad) = jax.lax.scan(sweep, chain, jax.random.split(key, n_sweeps))
        sweeps = max(n_sweeps, 1)
        acceptance = jnp.sum(accepted, 0).astype(width.dtype) / sweeps
        info = MetropolisInfo(acceptance, width, jnp.sum(bad))
        return MetropolisState(chain, width), info

    return MetropolisSampler(init, step)


def default_width(box_length: float | None, n: int, dim: int) -> float:
    """Return a starting width: a quarter of the mean spacing in a box, else 0.5 Bohr.

    Args:
      box_length: side L of the box, or None for free space.
      n: number of particles.
      dim: spatial dimension.

    Returns:
      ``L / (4 ceil(n^(1/dim)))`` in a box, 0.5 in free space; adapt_width tunes it.
    """
    if box_length is None:
        return 0.5
    return box_length / (4 * math.ceil(n ** (1 / dim)))

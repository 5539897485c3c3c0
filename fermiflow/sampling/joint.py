"""Joint sampling of (K, x): K ~ p(K) exactly, then x | K ~ |Psi_K(x)|^2 by Metropolis.

Every call of ``sample`` draws a fresh occupation K for every walker by exact
ancestral sampling from the current p(K) (so the K marginal is exact at every step),
then moves each walker's electrons under ITS K, warm-started from the positions of
the previous step:

1. walkers whose K changed first run ``n_extra_sweeps`` sweeps (the others are
   frozen), to re-equilibrate x under the new K;
2. all walkers run ``n_sweeps`` sweeps;
3. the width moves toward the target acceptance for the NEXT step
   (``adapt_width``), so each step is a fixed-width, detailed-balance chain.

x | K is exact only once the chain has forgotten the previous K; choose n_sweeps and
n_extra_sweeps above the integrated autocorrelation time of the local energy
(``fermiflow.observables.diagnostics`` measures it). Start with ``thermalize``.

Acts on a batch of walkers; must not be vmapped. Units: Hartree atomic units, Bohr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.mcmc.random_walk import RWState

from fermiflow.models.autoregressive import ARModel
from fermiflow.models.density_matrix import JointParams
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
    "JointInfo",
    "JointSampler",
    "JointState",
    "make_joint_sampler",
    "make_joint_state",
]

LogPsiK = Callable[[Params, Array, Array], Array]


class JointState(NamedTuple):
    """Walkers and their occupations.

    Attributes:
      occ: (batch, n) int32 occupation K of each walker.
      log_p_occ: (batch,) log p(K) under the params of the last step.
      walkers: :class:`MetropolisState` of the electron coordinates.
    """

    occ: Array
    log_p_occ: Array
    walkers: MetropolisState


class JointInfo(NamedTuple):
    """Diagnostics of one ``sample`` call.

    Attributes:
      acceptance: (batch,) acceptance of each walker in the ``n_sweeps`` sweeps.
      width: () width used in this step.
      n_nonfinite: () int, proposals with a NaN/inf log density (rejected).
      n_new_occ: () int, walkers whose K changed in this step.
    """

    acceptance: Array
    width: Array
    n_nonfinite: Array
    n_new_occ: Array


class JointSampler(NamedTuple):
    """Pure functions of the joint chain.

    Attributes:
      init: ``(key, params: JointParams) -> JointState`` (not thermalized).
      sample: ``(key, state, params) -> (JointState, JointInfo)``.
      thermalize: ``(key, state, params, n_steps: static int) ->
        (JointState, JointInfo)``: n_steps calls of ``sample``, returning the info
        of the last one.
    """

    init: Callable[[PRNGKey, JointParams], JointState]
    sample: Callable[[PRNGKey, JointState, JointParams], tuple[JointState, JointInfo]]
    thermalize: Callable[..., tuple[JointState, JointInfo]]


def make_joint_state(occ: Array, x: Array, width: float = 0.1) -> JointState:
    """Return a :class:`JointState` holding given walkers (e.g. to evaluate local values).

    The chain's log densities and log p(K) are zeros: every consumer that needs them
    (``sample``, the loss) recomputes them at its own params.

    Args:
      occ: (batch, n) occupations.
      x: (batch, n, dim) positions in Bohr.
      width: proposal width in Bohr.

    Returns:
      A random-walk :class:`JointState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> state = make_joint_state(jnp.zeros((4, 2), jnp.int32), jnp.zeros((4, 2, 3)))
      >>> state.walkers.chain.position.shape
      (4, 2, 3)
    """
    zeros = jnp.zeros(x.shape[0], x.dtype)
    walkers = MetropolisState(RWState(x, zeros), jnp.asarray(width, x.dtype))
    return JointState(jnp.asarray(occ), zeros, walkers)


def _initial_positions(key, batch, n, dim, box_length, dtype) -> Array:
    if box_length is None:
        return jax.random.normal(key, (batch, n, dim), dtype)
    return jax.random.uniform(key, (batch, n, dim), dtype) * box_length


def make_joint_sampler(
    occupation_model: ARModel,
    log_psi: LogPsiK,
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
) -> JointSampler:
    """Build the joint sampler of K ~ p(K) and x | K ~ |Psi_K(x)|^2.

    Args:
      occupation_model: static, the set model; only its ``sample`` is used.
      log_psi: static, ``(wavefunction_params, occ: (n,) int, x: (n, dim)) -> ()``
        complex log Psi_K(x), e.g. from ``fermiflow.models.wavefunction``.
      batch: static, number of walkers (a multiple of the device count if sharded).
      n: static, number of electrons.
      dim: static, spatial dimension.
      box_length: static, side L of the periodic box, or None for free space.
      kernel: static, "rwm" or "mala".
      n_sweeps: static, all-electron moves per step for every walker.
      n_extra_sweeps: static, extra moves per step for walkers whose K changed.
      width: starting proposal width in Bohr; default from ``default_width``.
      target_acceptance: static, in (0, 1).
      adapt: static, adapt the width between steps toward target_acceptance.
      dtype: static, dtype of the positions; default float64 when x64 is on,
        else float32.

    Returns:
      A :class:`JointSampler`.

    Raises:
      ValueError: for a bad batch, n, dim, sweep count, width or target.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.models.categorical import make_categorical_model
      >>> model = make_categorical_model([[0, 1], [0, 2]])
      >>> log_psi = lambda p, occ, x: -0.5 * jnp.sum(x**2) * (1 + occ[1])
      >>> sampler = make_joint_sampler(model, log_psi, batch=4, n=2, dim=2)
      >>> params = JointParams(model.init(jax.random.key(0)), None)
      >>> state = sampler.init(jax.random.key(1), params)
      >>> state, info = sampler.sample(jax.random.key(2), state, params)
      >>> state.occ.shape, state.walkers.chain.position.shape
      ((4, 2), (4, 2, 2))
    """
    batch = check_positive_int("batch", batch, "Use at least one walker.")
    n = check_positive_int("n", n)
    dim = check_dim(dim, (1, 2, 3))
    n_extra_sweeps = check_nonnegative_int("n_extra_sweeps", n_extra_sweeps)
    if not 0 < target_acceptance < 1:
        raise ValueError(
            f"target_acceptance must lie in (0, 1), got {target_acceptance}. Use 0.5."
        )
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    width = default_width(box_length, n, dim) if width is None else width
    width = check_positive("width", width, "Give the proposal width in Bohr.")
    metropolis = make_metropolis(
        lambda p, occ, x: 2 * jnp.real(log_psi(p, occ, x)),
        box_length=box_length,
        kernel=kernel,
        n_sweeps=n_sweeps,
    )

    def init(key: PRNGKey, params: JointParams) -> JointState:
        key_occ, key_x = jax.random.split(key)
        occ, log_p = occupation_model.sample(key_occ, params.occupation, batch)
        x = _initial_positions(key_x, batch, n, dim, box_length, dtype)
        walkers = metropolis.init(x, params.wavefunction, occ, width)
        return JointState(occ, log_p, walkers)

    def sample(key, state, params):
        key_occ, key_extra, key_x = jax.random.split(key, 3)
        occ, log_p = occupation_model.sample(key_occ, params.occupation, batch)
        changed = jnp.any(occ != state.occ, axis=-1)
        walkers = state.walkers
        n_bad = jnp.zeros((), jnp.int32)
        if n_extra_sweeps:
            walkers, extra = metropolis.step(
                key_extra, walkers, params.wavefunction, occ,
                n_sweeps=n_extra_sweeps, active=changed,
            )
            n_bad = n_bad + extra.n_nonfinite
        walkers, info = metropolis.step(key_x, walkers, params.wavefunction, occ)
        if adapt:
            new_width = adapt_width(walkers.width, info.acceptance, target=target_acceptance)
            walkers = walkers._replace(width=new_width)
        info = JointInfo(
            info.acceptance, info.width, n_bad + info.n_nonfinite, jnp.sum(changed)
        )
        return JointState(occ, log_p, walkers), info

    def thermalize(key, state, params, n_steps):
        check_positive_int("n_steps", n_steps)

        def body(state, key):
            return sample(key, state, params)

        state, infos = jax.lax.scan(body, state, jax.random.split(key, n_steps))
        return state, jax.tree.map(lambda a: a[-1], infos)

    return JointSampler(init, sample, thermalize)

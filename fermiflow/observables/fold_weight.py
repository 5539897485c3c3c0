"""The |Psi_K|^2 weight of the region where a flow folds, from tempered walkers.

An uncertified flow T may fold: det dT/dx <= 0 on a region R. Psi_K(x) =
D_K(T(x)) |det J(x)|^(1/2) is then defined everywhere (with |det J|), but T is not
one-to-one and the Psi_K need not be orthonormal, so the bound F >= -T ln Z is only
as good as R is empty *where Psi_K lives*. What matters is the weight

  eps_K = int_R |Psi_K|^2 dx / int |Psi_K|^2 dx,

not the volume of R (a trained flow may fold on a fifth of all uniform
configurations where |Psi_K|^2 is 1e-12 of its typical value, harmlessly). Walkers on
|Psi_K|^2 almost never reach R (clustered, low-weight configurations), so eps_K is
estimated by importance sampling from tempered chains on pi_gamma ~ |Psi_K|^(2 gamma),
gamma < 1, which spread into the tails:

  eps_K = E_gamma[w 1_R] / E_gamma[w],   w = |Psi_K|^(2 (1 - gamma)),

self-normalized per chain (one K per chain, K ~ p(K)); eps = E_K eps_K is the mean
over chains and its error the standard error over chains. R is widened to
``margin(x) = sign(det J) |det J|^(1 / (n dim)) < delta`` (delta = 0: the fold itself;
a small delta > 0 also counts near-folds, where the map is about to fold).

With no tempered sample in R, eps = 0 with error 0 says only that the chains found
no fold: ``tempered_fraction`` (the unweighted fraction of tempered samples in R,
whose 95% bound is 3 / n_samples when none is found) states how hard they looked.

Units: lengths in Bohr; eps and the fractions are dimensionless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.sampling.metropolis import adapt_width, make_metropolis
from fermiflow.types import Array, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = ["FoldWeight", "fold_weight", "make_flow_log_weight"]

# (params, aux, x: (n, dim)) -> (log |Psi_K(x)|^2 with |det J|: (), margin: ())
LogWeightFn = Callable[[Params, Any, Array], tuple[Array, Array]]


class FoldWeight(NamedTuple):
    """The fold weight and how it was found (all () arrays).

    Attributes:
      value: eps, the mean over chains of the per-chain weight of R.
      error: its standard error over chains.
      tempered_fraction: unweighted fraction of tempered samples in R.
      n_samples: number of tempered samples after burn-in (chains x steps).
      acceptance: mean Metropolis acceptance after burn-in.
      effective_fraction: mean over chains of the importance weights' ESS / steps.
    """

    value: Array
    error: Array
    tempered_fraction: Array
    n_samples: Array
    acceptance: Array
    effective_fraction: Array


def make_flow_log_weight(flow_apply, log_slater: Callable,
                         flow_of: Callable | None = None) -> LogWeightFn:
    """Return the log weight and fold margin of Psi_K = D_K(T(x)) |det J|^(1/2).

    Args:
      flow_apply: a :class:`~fermiflow.models.flow.JetApply` (``.jacobian(params, x)
        -> (zeta: (n, dim), jac: (n dim, n dim))``), e.g. the box backflow's.
      log_slater: ``(occ: (n,), zeta: (n, dim)) -> ()`` complex log D_K(zeta) (the
        bare determinant, or the spin-adapted combination of two, as
        :func:`fermiflow.run.build.log_slater_k`).
      flow_of: None, or ``(params, occ: (n,)) -> params`` of the flow that Psi_K uses
        (several flows: :attr:`~fermiflow.models.density_matrix.QuantumProblem.flow_of`).

    Returns:
      ``(params, occ: (n,), x: (n, dim)) -> (log |Psi_K|^2: (), margin: ())``, finite
      at a fold (margin <= 0 there).
    """

    def log_weight(params, occ, x):
        if flow_of is not None:
            params = flow_of(params, occ)
        zeta, jac = flow_apply.jacobian(params, x)
        sign, log_abs = jnp.linalg.slogdet(jac)
        margin = sign * jnp.exp(log_abs / jac.shape[0])
        return 2 * jnp.real(log_slater(occ, zeta)) + log_abs, margin

    return log_weight


def fold_weight(
    key: PRNGKey,
    log_weight: LogWeightFn,
    params: Params,
    aux: Any,
    x0: Array,
    *,
    box_length: float | None,
    gamma: float = 0.3,
    delta: float = 0.0,
    n_steps: int = 200,
    n_burn: int = 50,
    n_sweeps: int = 5,
    width: float = 0.1,
) -> FoldWeight:
    """Estimate the |Psi_K|^2 weight of the fold region (module docstring).

    Args:
      key: PRNG key.
      log_weight: static, ``(params, aux, x: (n, dim)) -> (log |Psi|^2, margin)``
        of ONE chain (:func:`make_flow_log_weight`).
      params: the model parameters.
      aux: per-chain data with a leading (chains,) axis (e.g. K: (chains, n)), or None.
      x0: (chains, n, dim) starting positions (e.g. walkers of |Psi_K|^2).
      box_length: static, side L of the periodic box, or None.
      gamma: static, tempering exponent in (0, 1].
      delta: static, the margin below which a configuration counts as folded.
      n_steps: static, recorded steps per chain after burn-in, >= 2.
      n_burn: static, burn-in steps (the width adapts there to acceptance 0.5).
      n_sweeps: static, Metropolis sweeps per step.
      width: starting proposal width in Bohr.

    Returns:
      A :class:`FoldWeight`.

    Raises:
      ValueError: for gamma outside (0, 1] or bad step counts.
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma}; 0.3 reaches the clustered "
                         "configurations where folds live.")
    n_steps = check_positive_int("n_steps", n_steps)
    n_sweeps = check_positive_int("n_sweeps", n_sweeps)
    if n_steps < 2 or n_burn < 0:
        raise ValueError(f"n_steps must be >= 2 and n_burn >= 0, got {n_steps}, {n_burn}.")
    sampler = make_metropolis(lambda p, a, x: gamma * log_weight(p, a, x)[0],
                              box_length=box_length, n_sweeps=n_sweeps)
    record = jax.vmap(log_weight, in_axes=(None, 0, 0))
    state = sampler.init(x0, params, aux, width)
    max_width = 10.0 if box_length is None else float(box_length)

    def burn(state, key):
        state, info = sampler.step(key, state, params, aux)
        width = adapt_width(state.width, info.acceptance, max_width=max_width)
        return state._replace(width=width), None

    key_burn, key_run = jax.random.split(key)
    state, _ = jax.lax.scan(burn, state, jax.random.split(key_burn, n_burn))

    def run(state, key):
        state, info = sampler.step(key, state, params, aux)
        log_p, margin = record(params, aux, state.chain.position)
        return state, (log_p, margin, info.acceptance)

    _, (log_p, margin, acceptance) = jax.lax.scan(run, state, jax.random.split(key_run, n_steps))
    folded = (margin < delta).astype(log_p.dtype)  # (steps, chains)
    log_w = (1 - gamma) * log_p
    w = jnp.exp(log_w - jnp.max(log_w, 0))
    per_chain = jnp.sum(w * folded, 0) / jnp.sum(w, 0)
    chains = per_chain.shape[0]
    ess = jnp.sum(w, 0) ** 2 / jnp.sum(w**2, 0)
    return FoldWeight(
        value=jnp.mean(per_chain),
        error=jnp.std(per_chain, ddof=1) / jnp.sqrt(chains),
        tempered_fraction=jnp.mean(folded),
        n_samples=jnp.asarray(folded.size),
        acceptance=jnp.mean(acceptance),
        effective_fraction=jnp.mean(ess) / n_steps,
    )

"""Pretraining of p(K) against the non-interacting Boltzmann distribution.

With the flow fixed to the identity, E_{x~|Psi_K|^2} E_loc = E0(K) = sum_{k in K} eps_k,
so the free energy is a functional of p alone (arXiv:2201.03156, Sec. III A):

  F0[p] = E_{K~p}[T ln p(K) + E0(K)] = F_exact + T KL(p || p*),

p*(K) = exp(-E0(K) / T) / Z, F_exact = -T ln Z (the canonical ideal gas of
:mod:`fermiflow.hamiltonians.free_fermions`). The estimate is variational and has zero
variance at the optimum, where F_loc = T ln p + E0 is constant. The gradient is the
score-function estimator with the batch mean as baseline, as in :mod:`fermiflow.training.loss`,
d F0 / d theta = E[(F_loc - <F_loc>) d ln p(K)]. With ``sr=True`` the optimizer also
gets J_b = (d ln p(K_b) - mean) / sqrt(B) and r_b = (F_loc,b - <F_loc>) / sqrt(B) (the
conventions of :func:`fermiflow.training.natural_gradient.make_sr_inputs`) as ``update(grads, state,
params, jacobian=J, residual=r)``, for :func:`fermiflow.training.natural_gradient.natural_gradient`;
then grads = J^T r.

Clipping is off by default here (unlike :mod:`fermiflow.training.loss`): there are no nodes,
and near the optimum the mean absolute deviation of F_loc is tiny, so a clip window
would cut exactly the rare walkers with large F_loc - <F_loc> that carry what is left
of the KL divergence (on the N = 13 gas clip_width=5 left 3x the final error).

Spin: E0 = energies[occ].sum(-1) holds for spinful models too (one shared mode table).
Units: Hartree atomic units; T, energies in Hartree, S in k_B, whole system. Acts on a
batch of exact samples from p; nothing here is vmapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fermiflow.estimate import Thermodynamics, batch_estimate
from fermiflow.models.autoregressive import ARModel
from fermiflow.training.loss import clip_around_mean
from fermiflow.types import Algorithm, Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_positive, check_positive_int

__all__ = [
    "PretrainMetrics",
    "PretrainState",
    "make_pretrain_evaluate",
    "make_pretrain_step",
    "pretrain",
]


class PretrainState(NamedTuple):
    """State of the pretraining loop."""

    step: Array  # () int32, steps taken
    params: Params  # parameters of p(K)
    opt_state: optax.OptState  # optimizer state
    key: PRNGKey  # () key for the next step; split, never reused


class PretrainMetrics(NamedTuple):
    """Estimates of one step, from the samples the gradient used, and |grad|."""

    estimates: Thermodynamics  # F = <T ln p + E0>, E = <E0>, S = -<ln p>; K, V None
    grad_norm: Array  # () Euclidean norm of the gradient of F over all params


def _check_energies(model: ARModel, energies: ArrayLike) -> np.ndarray:
    """Validate the (m,) energies against the model; return them as float64 NumPy."""
    array = np.asarray(energies, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] == 0 or not np.all(np.isfinite(array)):
        raise ValueError(
            f"energies must be a non-empty 1D array of finite numbers (Hartree), got "
            f"shape {array.shape}. Pass the mode energies, e.g. Spectrum.energies."
        )
    params = jax.eval_shape(model.init, jax.random.key(0))
    n = jax.eval_shape(lambda p: model.sample(jax.random.key(0), p, 1), params)[0].shape[1]
    m = array.shape[0]
    if m >= n:
        # Support does not depend on the params: probe it with zeros. A strictly
        # ascending row is a valid set in every species block; if a set holding mode m
        # has p > 0, the model has more modes than energies (a silent gather clamp).
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
        probe = jnp.arange(m - n + 1, m + 1)[None]
        if bool(jnp.isfinite(jax.jit(model.log_prob)(zeros, probe))[0]):
            raise ValueError(
                f"energies has {m} modes but the model occupies mode {m} too; pass one "
                "energy per mode of the model (n_modes = len(energies))."
            )
    return array


def _estimates(log_p: Array, energy: Array, temperature: float) -> Thermodynamics:
    free, energy, entropy = (batch_estimate(v, method="independent")
                             for v in (temperature * log_p + energy, energy, -log_p))
    return Thermodynamics(free, energy, None, None, entropy)


def _mode_energies(energies: np.ndarray, occ: Array, dtype) -> Array:
    """(batch, n) modes -> (batch,) E0; NaN for a mode outside the table."""
    table = jnp.asarray(energies, dtype)
    return table.at[occ].get(mode="fill", fill_value=jnp.nan).sum(-1)


def make_pretrain_step(
    model: ARModel,
    energies: ArrayLike,
    *,
    temperature: float,
    batch: int,
    optimizer: optax.GradientTransformation,
    sr: bool = False,
    clip_width: float | None = None,
) -> Algorithm:
    """Build init/step of the minimization of F0[p] = E_p[T ln p + E0] over p(K).

    Args:
      model: static, the set model p(K), e.g. ``make_set_transformer``.
      energies: static, (m,) single-particle energies in Hartree, one per mode of
        the model (both species index the same table).
      temperature: static, T > 0 in Hartree.
      batch: static, exact samples K ~ p per step, >= 2.
      optimizer: static, an optax transformation (e.g. ``optax.adam``, or
        ``fermiflow.training.natural_gradient.natural_gradient`` with ``sr=True``).
      sr: static, pass ``jacobian`` and ``residual`` to ``optimizer.update``.
      clip_width: static, clip window of F_loc for the gradient (mean absolute
        deviations), or None; the reported estimates are never clipped.

    Returns:
      An :class:`~fermiflow.types.Algorithm`: ``init(key, params) -> PretrainState``,
      ``step(state) -> (PretrainState, PretrainMetrics)``.

    Raises:
      ValueError: for T <= 0, batch < 2, clip_width <= 0, or energies that are not
        finite, 1D, or cover fewer modes than the model.

    Examples:
      >>> from fermiflow.models.categorical import enumerate_sets, make_categorical_model
      >>> model = make_categorical_model(enumerate_sets(4, 2))
      >>> pre = make_pretrain_step(model, jnp.arange(4.0), temperature=1.0, batch=64,
      ...                          optimizer=optax.adam(0.1))
      >>> state = pre.init(jax.random.key(0), model.init(jax.random.key(1)))
      >>> state, metrics = jax.jit(pre.step)(state)
      >>> int(state.step), metrics.estimates.free_energy.value.shape
      (1, ())
    """
    temperature = check_positive("temperature", temperature, "T is in Hartree.")
    if (batch := check_positive_int("batch", batch)) < 2:
        raise ValueError(f"batch must be >= 2 for a baseline and errors, got {batch}.")
    if clip_width is not None and not clip_width > 0:
        raise ValueError(f"clip_width must be > 0 or None, got {clip_width}.")
    table = _check_energies(model, energies)

    def init(key: PRNGKey, params: Params) -> PretrainState:
        return PretrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), key)

    def gradients(params, occ, free):
        clipped = clip_around_mean(free, clip_width)
        centered = jax.lax.stop_gradient(clipped - jnp.mean(clipped))
        if not sr:
            surrogate = lambda p: jnp.mean(centered * model.log_prob(p, occ))  # noqa: E731
            return jax.grad(surrogate)(params), {}
        one = lambda p, o: model.log_prob(p, o[None])[0]  # noqa: E731
        per_sample = jax.vmap(jax.grad(one), in_axes=(None, 0))(params, occ)
        scale = 1 / jnp.sqrt(jnp.asarray(batch, free.dtype))
        jacobian = jax.tree.map(lambda a: (a - a.mean(0)) * scale, per_sample)
        residual = centered * scale
        grads = jax.tree.map(lambda a: jnp.tensordot(residual, a, 1), jacobian)
        return grads, dict(jacobian=jacobian, residual=residual)

    def step(state: PretrainState) -> tuple[PretrainState, PretrainMetrics]:
        key, key_sample = jax.random.split(state.key)
        occ, log_p = model.sample(key_sample, state.params, batch)
        energy = _mode_energies(table, occ, log_p.dtype)
        free = temperature * log_p + energy
        grads, extra = gradients(state.params, occ, free)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params, **extra)
        params = optax.apply_updates(state.params, updates)
        metrics = PretrainMetrics(_estimates(log_p, energy, temperature), optax.tree.norm(grads))
        return PretrainState(state.step + 1, params, opt_state, key), metrics

    return Algorithm(init, step)


def make_pretrain_evaluate(
    model: ARModel,
    energies: ArrayLike,
    *,
    temperature: float,
    batch: int,
    n_chunks: int = 1,
) -> Callable[[PRNGKey, Params], Thermodynamics]:
    """Build an estimator of F0, E0 and S from a fresh batch of exact samples.

    Args:
      model: static, the set model p(K).
      energies: static, (m,) single-particle energies in Hartree.
      temperature: static, T > 0 in Hartree.
      batch: static, total samples, >= 2 and divisible by n_chunks.
      n_chunks: static, sample in this many sequential chunks (bounds the memory).

    Returns:
      ``(key, params) -> Thermodynamics`` of () estimates (K and V None).

    Raises:
      ValueError: as :func:`make_pretrain_step`, or batch % n_chunks != 0.

    Examples:
      >>> from fermiflow.models.categorical import enumerate_sets, make_categorical_model
      >>> model = make_categorical_model(enumerate_sets(3, 1))  # uniform p
      >>> evaluate = make_pretrain_evaluate(model, [0.0, 1.0, 2.0], temperature=1.0,
      ...                                   batch=8, n_chunks=2)
      >>> estimates = evaluate(jax.random.key(0), model.init(jax.random.key(1)))
      >>> bool(jnp.isclose(estimates.entropy.value, jnp.log(3.0)))
      True
    """
    temperature = check_positive("temperature", temperature, "T is in Hartree.")
    batch = check_positive_int("batch", batch)
    n_chunks = check_positive_int("n_chunks", n_chunks)
    if batch < 2 or batch % n_chunks:
        raise ValueError(f"batch must be >= 2 and divisible by n_chunks={n_chunks}, got {batch}.")
    table = _check_energies(model, energies)

    def evaluate(key: PRNGKey, params: Params) -> Thermodynamics:
        def chunk(key_chunk):
            occ, log_p = model.sample(key_chunk, params, batch // n_chunks)
            return log_p, _mode_energies(table, occ, log_p.dtype)

        log_p, energy = jax.lax.map(chunk, jax.random.split(key, n_chunks))
        return _estimates(log_p.reshape(-1), energy.reshape(-1), temperature)

    return evaluate


def pretrain(
    key: PRNGKey,
    model: ARModel,
    energies: ArrayLike,
    *,
    temperature: float,
    n_steps: int,
    batch: int,
    optimizer: optax.GradientTransformation,
    sr: bool = False,
    params: Params | None = None,
    clip_width: float | None = None,
) -> tuple[Params, PretrainMetrics]:
    """Run ``n_steps`` of pretraining in one jitted scan; return params and history.

    Args:
      key: PRNG key; split into the init key (used if params is None) and the run.
      model: the set model p(K).
      energies: (m,) single-particle energies in Hartree.
      temperature: T > 0 in Hartree.
      n_steps: number of steps, >= 1.
      batch: samples per step, as in :func:`make_pretrain_step`.
      optimizer: as in :func:`make_pretrain_step`.
      sr: as in :func:`make_pretrain_step`.
      clip_width: as in :func:`make_pretrain_step`.
      params: initial params, or None for ``model.init``.

    Returns:
      (params, history): the final params and a :class:`PretrainMetrics` of (n_steps,)
      NumPy arrays, one entry per step (before its update).
    """
    n_steps = check_positive_int("n_steps", n_steps)
    options = dict(temperature=temperature, batch=batch, optimizer=optimizer)
    pre = make_pretrain_step(model, energies, sr=sr, clip_width=clip_width, **options)
    key_init, key_run = jax.random.split(key)
    params = jax.jit(model.init)(key_init) if params is None else params
    # One compiled scan over all steps: no per-step dispatch, history stays on device.
    run = jax.jit(lambda s: jax.lax.scan(lambda c, _: pre.step(c), s, length=n_steps))
    state, history = run(pre.init(key_run, params))
    return state.params, jax.tree.map(np.asarray, jax.device_get(history))

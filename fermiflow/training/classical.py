"""Classical Coulomb gas: minimize F[p] = E_{x~p}[T ln p(x) + H(x)] over a flow density.

p is a normalizing flow x = T(z), z ~ N(0, s^2 I), with the exact ``sample(key, params,
batch) -> (x, log_prob)`` of :mod:`fermiflow.models.classical_flow`. F[p] - F_exact =
T KL(p || exp(-H / T) / Z) >= 0 with F_exact = -T ln int dx exp(-H / T) (labelled
particles, no 1/N!).

Gradient: reparameterization. x = T_theta(z) and ln p = ln N(z) - ln|det dT/dz| are
differentiable in theta at fixed noise z (forward flow only), so grad F =
E_z[grad_theta(T ln p + H)]. The score-function estimator E[(F_loc - <F_loc>)
grad_theta ln p_theta(x)] would need ln p_theta at fixed x, i.e. the Newton inverse of
the flow in every step, and has a larger variance; the reparameterized one needs no
baseline, and its variance vanishes at the optimum (F_loc is constant there).

Non-finite samples: the free-space backflow is checked for invertibility, not
guaranteed; its log-det is NaN where det dT/dz <= 0 (T folds space). Such samples are
counted (``n_nonfinite``) and left out of every average and of the gradient; a step
with a non-finite gradient is skipped (``skipped``). Where T folds, ln p is wrong
anyway, so an evaluation with n_nonfinite > 0 is not a variational bound.
Optionally (``scale_bound``) the
residual scales are projected onto |s_one| + 2 (n - 1) |s_pair| <= scale_bound < 1
after each update, which keeps T proper but limits the flow (see ``scale_bound``).

Heavy tail: T maps r_12 = 0 to itself with a finite Jacobian, so p stays finite at
contact where H ~ 1 / r: F_loc has a tail P(F_loc > y) ~ y^-2 (a log-divergent
variance); trust the standard errors of large batches only.

Units: Hartree atomic units. ``energy_fn`` acts on ONE configuration (n, dim); the step
and the evaluator act on a batch (do not vmap them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fermiflow.estimate import Thermodynamics, batch_estimate
from fermiflow.types import Algorithm, Array, Params, PRNGKey
from fermiflow.validation import check_positive, check_positive_int

__all__ = [
    "ClassicalMetrics",
    "ClassicalState",
    "classical_adam",
    "make_classical_evaluator",
    "make_classical_step",
    "train_classical",
]

_SCALE_NAMES = ("scale_one", "scale_pair")


class ClassicalState(NamedTuple):
    """Training state (a pytree)."""

    step: Array  # () int32, completed optimizer steps
    params: Params  # flow parameters
    opt_state: optax.OptState  # optimizer state
    key: PRNGKey  # () key of the next step


class ClassicalMetrics(NamedTuple):
    """Estimates over the finite samples of a batch (whole system; F = E - T S).

    In a training step they refer to the params BEFORE the update.
    """

    estimates: Thermodynamics  # F = <T ln p + H>, E = <H>, S = -<ln p>; K, V None
    n_nonfinite: Array  # () int32, samples with a non-finite F_loc (left out)
    skipped: Array  # () int32, 1 if the update was dropped (non-finite gradient)


def _metrics(f_loc: Array, energy: Array, log_prob: Array) -> tuple[Thermodynamics, Array]:
    """Estimates of F_loc, H and -ln p over the finite F_loc, and the count left out."""
    finite = jnp.isfinite(f_loc)
    free, energy, entropy = (batch_estimate(v, method="independent", where=finite)
                             for v in (f_loc, energy, -log_prob))
    n_bad = (f_loc.shape[0] - jnp.sum(finite)).astype(jnp.int32)
    return Thermodynamics(free, energy, None, None, entropy), n_bad


def _local_values(sample, energy_fn, temperature, key, params, batch):
    x, log_prob = sample(key, params, batch)
    energy = jax.vmap(energy_fn)(x)
    return temperature * log_prob + energy, energy, log_prob, x.shape[1]


def _leaf_name(path) -> str:
    return str(getattr(path[-1], "key", path[-1]))


def _bound_scales(params: Params, n: int, bound: float) -> Params:
    """Shrink (s_one, s_pair) radially onto |s_one| + 2 (n - 1) |s_pair| <= bound."""
    leaves = {_leaf_name(p): x for p, x in jax.tree_util.tree_leaves_with_path(params)}
    total = jnp.abs(leaves["scale_one"]) + 2 * (n - 1) * jnp.abs(leaves["scale_pair"])
    factor = jnp.minimum(1, bound / jnp.maximum(total, jnp.finfo(total.dtype).tiny))
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x * factor.astype(x.dtype) if _leaf_name(p) in _SCALE_NAMES else x, params
    )


def _check_common(flow: Any, energy_fn, temperature: float, batch: int):
    sample = getattr(flow, "sample", None)
    if not callable(sample):
        raise ValueError("flow must have sample(key, params, batch); pass a ClassicalFlow.")
    if not callable(energy_fn):
        raise ValueError(
            "energy_fn must be a function x: (n, dim) -> (); "
            "pass make_classical_coulomb_gas_energy(...)."
        )
    temperature = check_positive("temperature", temperature, "T is in Hartree.")
    return sample, temperature, check_positive_int("batch", batch, "Use about 1024.")


def make_classical_step(
    flow: Any,
    energy_fn: Callable[[Array], Array],
    *,
    temperature: float,
    batch: int,
    optimizer: optax.GradientTransformation,
    scale_bound: float | None = None,
) -> Algorithm:
    """Build init/step of the reparameterized minimization of F = E_p[T ln p + H].

    Args:
      flow: static, a ClassicalFlow; only ``flow.sample(key, params, batch) ->
        (x: (batch, n, dim), log_prob: (batch,))`` is used (differentiable in params).
      energy_fn: static, ``x: (n, dim) -> ()`` energy H of one configuration.
      temperature: static, T > 0 in Hartree.
      batch: static, samples per step.
      optimizer: static, an optax transformation (e.g. :func:`classical_adam`).
      scale_bound: static, None (no bound, the default) or a number in (0, 1): after
        each update, shrink the backflow scales onto |s_one| + 2 (n - 1) |s_pair| <=
        scale_bound. It keeps T proper, but for N = 2 it also caps the expansion of
        r_12 near contact at 1 + scale_bound, far from the Coulomb hole.

    Returns:
      An :class:`~fermiflow.types.Algorithm`: ``init(key, params) -> ClassicalState``
      (validates params; eager, not jitted) and ``step(state) -> (ClassicalState,
      ClassicalMetrics)``; jit the step once.

    Raises:
      ValueError: eagerly, for a bad flow, energy_fn, temperature, batch, optimizer or
        scale_bound; from ``init``, if scale_bound is set and params lack the leaves
        ``scale_one`` and ``scale_pair``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.models.classical_flow import make_classical_flow
      >>> from fermiflow.hamiltonians.harmonic import make_classical_coulomb_gas_energy
      >>> flow = make_classical_flow(n=2, dim=2, depth=1, width_one=4, width_two=4)
      >>> energy = make_classical_coulomb_gas_energy(dim=2)
      >>> trainer = make_classical_step(flow, energy, temperature=0.5, batch=64,
      ...                               optimizer=classical_adam(1e-3))
      >>> params = jax.jit(flow.init)(jax.random.key(0), jnp.zeros((2, 2)))
      >>> state = trainer.init(jax.random.key(1), params)
      >>> step = jax.jit(trainer.step)  # then: state, metrics = step(state)
      >>> int(state.step), sorted(state.params["params"])[-2:]
      (0, ['scale_one', 'scale_pair'])
    """
    sample, temperature, batch = _check_common(flow, energy_fn, temperature, batch)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            "optimizer must be an optax.GradientTransformation; "
            "pass classical_adam(learning_rate) or optax.adam(...)."
        )
    if scale_bound is not None and not 0 < float(scale_bound) < 1:
        raise ValueError(f"scale_bound must be None or in (0, 1), got {scale_bound}. Try 0.9.")

    def init(key: PRNGKey, params: Params) -> ClassicalState:
        names = {_leaf_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)}
        if scale_bound is not None and not set(_SCALE_NAMES) <= names:
            raise ValueError(
                "scale_bound needs params with scale_one and scale_pair leaves "
                "(a classical backflow); pass scale_bound=None for this flow."
            )
        return ClassicalState(jnp.zeros((), jnp.int32), params, optimizer.init(params), key)

    def loss(params, key):
        f_loc, energy, log_prob, n = _local_values(
            sample, energy_fn, temperature, key, params, batch
        )
        # Leave out the non-finite samples (the gradient of where() there is 0).
        finite = jnp.isfinite(f_loc)
        mean = jnp.sum(jnp.where(finite, f_loc, 0)) / jnp.maximum(jnp.sum(finite), 1)
        return mean, (f_loc, energy, log_prob, n)

    def step(state: ClassicalState) -> tuple[ClassicalState, ClassicalMetrics]:
        key, key_next = jax.random.split(state.key)
        grads, (f_loc, energy, log_prob, n) = jax.grad(loss, has_aux=True)(state.params, key)
        stats, n_bad = _metrics(f_loc, energy, log_prob)
        finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if scale_bound is not None:
            params = _bound_scales(params, n, float(scale_bound))
        params, opt_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old),
            (params, opt_state),
            (state.params, state.opt_state),
        )
        metrics = ClassicalMetrics(stats, n_bad, (~finite).astype(jnp.int32))
        return ClassicalState(state.step + 1, params, opt_state, key_next), metrics

    return Algorithm(init, step)


def classical_adam(
    learning_rate: float,
    *,
    n_steps: int | None = None,
    warmup_steps: int = 0,
    final_fraction: float = 0.01,
) -> optax.GradientTransformation:
    """Return Adam with a constant or a warmup-cosine learning rate.

    Args:
      learning_rate: static, peak learning rate (> 0).
      n_steps: static, None for a constant rate; else the schedule rises linearly from
        0 over ``warmup_steps``, then decays (cosine) to ``final_fraction *
        learning_rate`` at ``n_steps``.
      warmup_steps: static, integer in [0, n_steps).
      final_fraction: static, in (0, 1].

    Returns:
      An optax transformation.

    Raises:
      ValueError: for a bad learning_rate, n_steps, warmup_steps or final_fraction.

    Examples:
      >>> optimizer = classical_adam(1e-2, n_steps=1000, warmup_steps=50)
    """
    learning_rate = check_positive("learning_rate", learning_rate, "Try 1e-2.")
    if n_steps is None:
        return optax.adam(learning_rate)
    n_steps = check_positive_int("n_steps", n_steps, "Or None for a constant rate.")
    if isinstance(warmup_steps, bool) or warmup_steps not in range(n_steps):
        raise ValueError(
            f"warmup_steps must be an integer in [0, {n_steps}), got {warmup_steps!r}."
        )
    if not 0 < float(final_fraction) <= 1:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction}.")
    final = learning_rate * float(final_fraction)
    return optax.adam(
        optax.warmup_cosine_decay_schedule(0.0, learning_rate, int(warmup_steps), n_steps, final)
    )


def make_classical_evaluator(
    flow: Any,
    energy_fn: Callable[[Array], Array],
    *,
    temperature: float,
    batch: int,
    n_chunks: int = 1,
) -> Callable[[PRNGKey, Params], ClassicalMetrics]:
    """Build ``(key, params) -> ClassicalMetrics`` over n_chunks * batch fresh samples.

    The chunks run one after the other (``lax.map``, bounded memory); the estimates
    pool all samples (exact and independent, so the naive standard error applies).

    Args:
      flow: static, a ClassicalFlow (its ``sample`` is used).
      energy_fn: static, ``x: (n, dim) -> ()`` energy.
      temperature: static, T > 0 in Hartree.
      batch: static, samples per chunk.
      n_chunks: static, number of chunks.

    Returns:
      ``(key, params) -> ClassicalMetrics`` of () arrays (``skipped`` is 0).

    Raises:
      ValueError: for a bad flow, energy_fn, temperature, batch or n_chunks.
    """
    sample, temperature, batch = _check_common(flow, energy_fn, temperature, batch)
    n_chunks = check_positive_int("n_chunks", n_chunks)

    def evaluate(key: PRNGKey, params: Params) -> ClassicalMetrics:
        def chunk(k):
            return _local_values(sample, energy_fn, temperature, k, params, batch)[:3]

        values = jax.lax.map(chunk, jax.random.split(key, n_chunks))
        stats, n_bad = _metrics(*(v.reshape(-1) for v in values))
        return ClassicalMetrics(stats, n_bad, jnp.zeros((), jnp.int32))

    return evaluate


def train_classical(
    step: Callable[[ClassicalState], tuple[ClassicalState, ClassicalMetrics]],
    state: ClassicalState,
    *,
    n_steps: int,
    log_every: int = 100,
    callback: Callable[[ClassicalState, ClassicalMetrics], None] | None = None,
) -> tuple[ClassicalState, ClassicalMetrics]:
    """Run ``n_steps`` steps on the host in jitted blocks of ``log_every`` steps.

    Each block is one ``lax.scan`` (compiled once, plus once for a shorter last
    block); the host syncs once per block.

    Args:
      step: static, the ``step`` of :func:`make_classical_step` (not jitted; it is
        jitted here).
      state: initial :class:`ClassicalState`.
      n_steps: static, number of steps (>= 1).
      log_every: static, steps per block (>= 1).
      callback: called after each block with the state and that block's metrics
        (leaves (block,) numpy arrays).

    Returns:
      The final state and the metrics of every step, leaves (n_steps,) numpy arrays.

    Raises:
      ValueError: for a bad n_steps or log_every.
    """
    n_steps = check_positive_int("n_steps", n_steps)
    log_every = check_positive_int("log_every", log_every)
    run = jax.jit(
        lambda s, length: jax.lax.scan(lambda c, _: step(c), s, None, length=length),
        static_argnums=1,
    )
    history = []
    while (done := sum(len(m.skipped) for m in history)) < n_steps:
        state, metrics = run(state, min(log_every, n_steps - done))
        history.append(jax.device_get(metrics))
        if callback is not None:
            callback(state, history[-1])
    return state, jax.tree.map(lambda *a: np.concatenate(a), *history)

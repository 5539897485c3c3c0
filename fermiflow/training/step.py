"""One optimization step of rho = sum_K p(K)|Psi_K><Psi_K|: sample, estimate, update.

``make_train_step`` composes the joint sampler (K ~ p(K) exactly, x | K by Metropolis),
the free-energy loss (local values, score-function gradients) and one optax
optimizer per network. With ``*_sr=True`` the optimizer of that network is a
natural gradient (:func:`fermiflow.training.natural_gradient.natural_gradient`) and receives the
per-sample Jacobians and residuals of :func:`fermiflow.training.natural_gradient.make_sr_inputs`;
plain optax optimizers (Adam) receive only the gradients.

Modes (arXiv:2201.03156):
- finite T: both networks trained, ``temperature > 0``;
- T = 0: ground-state VMC, ``temperature = 0`` with a one-state occupation model
  (e.g. ``make_categorical_model([closed_shell])``) and ``occupation_optimizer=None``;
- a frozen flow: ``wavefunction_optimizer=None``.
Pretraining of p(K) alone is :mod:`fermiflow.training.pretrain`; the classical gas is
:mod:`fermiflow.training.classical`.

Guard: a step whose local energies or gradients hold a NaN or inf applies no update
(params and optimizer states are kept) and says so in ``Metrics.update_applied`` and
``Metrics.n_nonfinite_local``; its estimates are reported as computed (NaN), never
averaged over the finite walkers only. The run shell decides to roll back or stop.

The step acts on a batch of walkers and is jitted once by the caller:
``step = jax.jit(make_train_step(...).step)``. Units: Hartree atomic units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fermiflow.estimate import Thermodynamics
from fermiflow.models.density_matrix import JointParams
from fermiflow.sampling.joint import JointSampler, JointState
from fermiflow.training.loss import FreeEnergyLoss, estimates_from_local_values
from fermiflow.training.natural_gradient import jacobian_transpose_residual
from fermiflow.types import Algorithm, Array, PRNGKey

__all__ = ["Metrics", "TrainState", "make_evaluate", "make_train_step"]


class TrainState(NamedTuple):
    """Everything a run needs to continue bit for bit.

    Attributes:
      step: () int32, optimization steps done.
      params: :class:`JointParams` of p(K) and the flow.
      opt_state: (occupation, wavefunction) optax states (None for a frozen network).
      sampler_state: :class:`JointState`, walkers (batch, n, dim), their K, the width.
      key: the PRNG key of the next step.
    """

    step: Array
    params: JointParams
    opt_state: tuple[Any, Any]
    sampler_state: JointState
    key: PRNGKey


class Metrics(NamedTuple):
    """Diagnostics of one step (scalars).

    Attributes:
      estimates: :class:`~fermiflow.estimate.Thermodynamics` of F, E, K, V, S (whole
        system, Hartree; S in k_B) with per-step batch errors, at the params before
        the update.
      acceptance: () mean Metropolis acceptance of the step.
      width: () proposal width used, in Bohr.
      n_nonfinite_proposals: () int, proposals with a NaN/inf log density.
      n_nonfinite_local: () int, walkers with a NaN/inf local energy or ln p.
      n_new_occ: () int, walkers whose K changed.
      grad_norm_occupation: () Euclidean norm of dF/d(params of p).
      grad_norm_wavefunction: () Euclidean norm of dF/d(params of the flow).
      update_applied: () bool, False when the guard skipped the update.
    """

    estimates: Thermodynamics
    acceptance: Array
    width: Array
    n_nonfinite_proposals: Array
    n_nonfinite_local: Array
    n_new_occ: Array
    grad_norm_occupation: Array
    grad_norm_wavefunction: Array
    update_applied: Array


def _norm(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros(())
    return jnp.sqrt(sum(jnp.sum(jnp.abs(a) ** 2) for a in leaves))


def _all_finite(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves])) if leaves else True


def _update(optimizer, grads, opt_state, params, extra: dict):
    if optimizer is None:
        return params, opt_state
    updates, new_state = optimizer.update(grads, opt_state, params, **extra)
    return optax.apply_updates(params, updates), new_state


def _select(flag: Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def make_train_step(
    *,
    sampler: JointSampler,
    loss: FreeEnergyLoss,
    occupation_optimizer: optax.GradientTransformation | None,
    wavefunction_optimizer: optax.GradientTransformation | None,
    sr_inputs: Callable | None = None,
    occupation_sr: bool = False,
    wavefunction_sr: bool = False,
) -> Algorithm:
    """Build the training step of the variational free energy.

    Args:
      sampler: static, from :func:`fermiflow.sampling.make_joint_sampler`.
      loss: static, from :func:`fermiflow.training.loss.make_free_energy_loss`.
      occupation_optimizer: static, optax transformation for p(K), or None to keep
        p(K) fixed (T = 0, or a frozen model).
      wavefunction_optimizer: static, optax transformation for the flow, or None.
      sr_inputs: static, from :func:`fermiflow.training.natural_gradient.make_sr_inputs`, needed
        when a network uses the natural gradient.
      occupation_sr: static, pass ``jacobian``/``residual`` to the p(K) optimizer.
      wavefunction_sr: static, pass them to the flow optimizer.

    Returns:
      An :class:`~fermiflow.types.Algorithm`: ``init(key, params, n_thermalize: static
      int = 0) -> TrainState`` (optimizer states, walkers drawn and thermalized for
      ``n_thermalize`` sampler steps) and ``step(state) -> (TrainState, Metrics)``.

    Raises:
      ValueError: if a natural gradient is requested without ``sr_inputs`` or for a
        network without an optimizer.
    """
    for name, flag, opt in (
        ("occupation_sr", occupation_sr, occupation_optimizer),
        ("wavefunction_sr", wavefunction_sr, wavefunction_optimizer),
    ):
        if flag and opt is None:
            raise ValueError(f"{name}=True needs an optimizer for that network.")
        if flag and sr_inputs is None:
            raise ValueError(
                f"{name}=True needs sr_inputs=make_sr_inputs(...) for the Jacobians."
            )
    optimizers = (occupation_optimizer, wavefunction_optimizer)

    def init(key: PRNGKey, params: JointParams, n_thermalize: int = 0) -> TrainState:
        key_init, key_therm, key_next = jax.random.split(key, 3)
        sampler_state = sampler.init(key_init, params)
        if n_thermalize:
            sampler_state, _ = sampler.thermalize(key_therm, sampler_state, params, n_thermalize)
        opt_state = tuple(
            None if opt is None else opt.init(p) for opt, p in zip(optimizers, params, strict=True)
        )
        return TrainState(jnp.zeros((), jnp.int32), params, opt_state, sampler_state, key_next)

    def step(state: TrainState) -> tuple[TrainState, Metrics]:
        key_sample, key_loss, key_next = jax.random.split(state.key, 3)
        params = state.params
        sampler_state, info = sampler.sample(key_sample, state.sampler_state, params)
        # The loss key (probes of a stochastic kinetic energy) is derived from the step
        # key, so a resumed run draws the same probes.
        if occupation_sr and wavefunction_sr:
            # Both gradients are J^T r of the SR inputs: no separate backward pass.
            values = loss.local_values(params, sampler_state, key_loss)
            estimates = estimates_from_local_values(values, loss.temperature)
            jacobians, residuals = sr_inputs(params, sampler_state, values)
            grads = JointParams(*map(jacobian_transpose_residual, jacobians, residuals))
        else:
            (estimates, values), grads = loss.value_and_grad(params, sampler_state, key_loss)
        extras = ({}, {})
        if occupation_sr or wavefunction_sr:
            if not (occupation_sr and wavefunction_sr):
                jacobians, residuals = sr_inputs(params, sampler_state, values)
            extras = tuple(
                {"jacobian": j, "residual": r} if flag else {}
                for flag, j, r in zip(
                    (occupation_sr, wavefunction_sr), jacobians, residuals, strict=True
                )
            )
        new = [
            _update(opt, g, s, p, extra)
            for opt, g, s, p, extra in zip(
                optimizers, grads, state.opt_state, params, extras, strict=True
            )
        ]
        new_params = JointParams(new[0][0], new[1][0])
        new_opt_state = (new[0][1], new[1][1])
        local_ok = jnp.isfinite(jnp.real(values.kinetic + values.potential)) & jnp.isfinite(
            values.log_p
        )
        ok = jnp.all(local_ok) & _all_finite(grads) & _all_finite(new_params)
        metrics = Metrics(
            estimates=estimates,
            acceptance=jnp.mean(info.acceptance),
            width=info.width,
            n_nonfinite_proposals=info.n_nonfinite,
            n_nonfinite_local=jnp.sum(~local_ok),
            n_new_occ=info.n_new_occ,
            grad_norm_occupation=_norm(grads.occupation),
            grad_norm_wavefunction=_norm(grads.wavefunction),
            update_applied=ok,
        )
        new_state = TrainState(
            step=state.step + 1,
            params=_select(ok, new_params, params),
            opt_state=_select(ok, new_opt_state, state.opt_state),
            sampler_state=sampler_state,
            key=key_next,
        )
        return new_state, metrics

    return Algorithm(init, step)


def make_evaluate(sampler: JointSampler, loss: FreeEnergyLoss) -> Callable:
    """Build fresh-sample evaluation at fixed params (no update).

    Args:
      sampler: static, the joint sampler of the run.
      loss: static, the loss of the run (its ``local_values``).

    Returns:
      ``evaluate(key, sampler_state, params, n_steps: static int) ->
      (sampler_state, LocalValues with (n_steps, batch) leaves, acceptance:
      (n_steps,))``: n_steps sampler calls, the local values after each.
    """

    def evaluate(key, sampler_state, params, n_steps):
        def body(carry, key_step):
            carry, info = sampler.sample(key_step, carry, params)
            values = loss.local_values(params, carry, jax.random.fold_in(key_step, 1))
            return carry, (values, jnp.mean(info.acceptance))

        sampler_state, (values, acceptance) = jax.lax.scan(
            body, sampler_state, jax.random.split(key, n_steps)
        )
        return sampler_state, values, acceptance

    return evaluate

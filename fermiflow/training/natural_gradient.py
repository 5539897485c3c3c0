"""Optimizers: stochastic reconfiguration (natural gradient) as optax transformations.

Both networks use the same preconditioner, fed with per-sample data. Let J be the
(M, P) matrix of centered per-sample log-derivatives scaled by 1/sqrt(batch), so that
S = J^T J, and r the (M,) residual with gradient g = J^T r:

* p(K), classical Fisher matrix: J_b = (d ln p(K_b) - mean) / sqrt(B),
  r_b = (F_loc,b - <F_loc>) / sqrt(B);
* flow, real part of the quantum geometric tensor: the rows are the real and the
  imaginary parts of O_b = d ln Psi_K(x_b) - mean (M = 2B), and r = 2 (Re e, Im e) /
  sqrt(B), e_b = E_loc,b - <E_loc>, so J^T r = 2 Re <e^* O>.

The update is delta = (S + lambda I)^-1 g. With P > M it is computed in sample space,
delta = J^T (J J^T + lambda I)^-1 r (the Woodbury identity, "minSR"), which never
forms a P x P matrix. A trust region caps the step: with learning rate eta, the
update -eta c delta uses c = min(1, max_norm / (eta |J delta|)), i.e. the
Fisher/QGT norm of the step is at most max_norm.

Units: none (parameters). Acts on per-sample Jacobians of a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from fermiflow.models.density_matrix import JointParams
from fermiflow.sampling.joint import JointState
from fermiflow.training.loss import clip_around_mean, flow_energy_weights
from fermiflow.types import Array, Params
from fermiflow.validation import check_positive_int

__all__ = ["SRState", "jacobian_transpose_residual", "make_sr_inputs", "natural_gradient"]

_SOLVERS = ("auto", "parameter", "sample")


class SRState(NamedTuple):
    """State of :func:`natural_gradient`: the step count, for schedules."""

    count: Array


def _flatten_rows(jacobian: Params) -> Array:
    return jax.vmap(lambda row: ravel_pytree(row)[0])(jacobian)


def _solve(matrix: Array, rhs: Array) -> Array:
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(matrix), rhs)


def natural_gradient(
    learning_rate: float | optax.Schedule,
    *,
    damping: float = 1e-3,
    max_norm: float | None = None,
    solver: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    """Stochastic reconfiguration with damping, trust region and a sample-space solve.

    Args:
      learning_rate: eta, a float or an optax schedule of the step count.
      damping: lambda > 0 added to the diagonal of S (or of J J^T).
      max_norm: cap on eta |J delta|, or None for no trust region.
      solver: "parameter" (P x P), "sample" (M x M, needs ``residual``) or "auto"
        (the smaller one when ``residual`` is given).

    Returns:
      An optax transformation whose ``update(grads, state, params=None, *,
      jacobian, residual=None)`` takes ``jacobian`` with the structure of params
      and a leading sample axis M, and ``residual`` (M,).

    Raises:
      ValueError: for damping <= 0, max_norm <= 0 or an unknown solver.

    Examples:
      >>> import jax.numpy as jnp
      >>> opt = natural_gradient(0.1, damping=1e-8, solver="parameter")
      >>> jac = {"w": jnp.array([[1.0, 0.0], [0.0, 2.0]])}
      >>> grads = {"w": jnp.array([1.0, 4.0])}
      >>> updates, _ = opt.update(grads, opt.init(grads), jacobian=jac)
      >>> [round(float(u), 6) for u in updates["w"]]
      [-0.1, -0.1]
    """
    if not damping > 0:
        raise ValueError(f"damping must be > 0, got {damping}. Use about 1e-3.")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be > 0 or None, got {max_norm}.")
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}.")

    def init(params: Params) -> SRState:
        del params
        return SRState(jnp.zeros((), jnp.int32))

    def update(grads, state, params=None, *, jacobian, residual=None, **extra):
        del params, extra
        flat_grad, unravel = ravel_pytree(grads)
        rows = _flatten_rows(jacobian).astype(flat_grad.dtype)
        n_rows, n_params = rows.shape
        use_sample = solver == "sample" or (
            solver == "auto" and residual is not None and n_params > n_rows
        )
        if use_sample:
            if residual is None:
                raise ValueError("solver='sample' needs the residual (M,) argument.")
            gram = rows @ rows.T + damping * jnp.eye(n_rows, dtype=rows.dtype)
            delta = rows.T @ _solve(gram, jnp.asarray(residual, rows.dtype))
        else:
            fisher = rows.T @ rows + damping * jnp.eye(n_params, dtype=rows.dtype)
            delta = _solve(fisher, flat_grad)
        eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
        eta = jnp.asarray(eta, delta.dtype)
        if max_norm is not None:
            norm = eta * jnp.sqrt(jnp.sum((rows @ delta) ** 2))
            eta = eta * jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-300))
        return unravel(-eta * delta), SRState(state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def _centered_scaled(tree: Params, batch: int) -> Params:
    return jax.tree.map(lambda a: (a - a.mean(0)) / jnp.sqrt(batch), tree)


def jacobian_transpose_residual(jacobian: Params, residual: Array) -> Params:
    """Return J^T r, the gradient of the SR inputs, for one network.

    Args:
      jacobian: a tree of per-sample Jacobian rows, each leaf (M, ...).
      residual: (M,) residuals.

    Returns:
      A tree like one row of ``jacobian``: sum_b residual_b jacobian_b.
    """
    return jax.tree.map(lambda j: jnp.tensordot(residual.astype(j.dtype), j, axes=1), jacobian)


def _per_sample(fn: Callable, args: tuple, n_micro: int):
    """Map fn over the leading axis of args: vmap within n_micro slices, run one by one."""
    if n_micro == 1:
        return jax.vmap(fn)(*args)
    chunks = jax.tree.map(lambda a: a.reshape((n_micro, -1) + a.shape[1:]), args)
    out = jax.lax.map(lambda chunk: jax.vmap(fn)(*chunk), chunks)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)


def make_sr_inputs(
    log_prob: Callable[[Params, Array], Array],
    log_psi: Callable[[Params, Array, Array], Array],
    *,
    temperature: float,
    clip_width: float | None = 5.0,
    occupation: bool = True,
    wavefunction: bool = True,
    reference_energy: Callable[[Array], Array] | None = None,
    n_micro_batches: int = 1,
) -> Callable:
    """Build the per-sample Jacobians and residuals of both networks.

    Args:
      log_prob: static, ``(occupation_params, occ: (batch, n)) -> (batch,)``.
      log_psi: static, ``(wavefunction_params, occ: (n,), x: (n, dim)) -> ()`` complex.
      temperature: static, T in Hartree.
      clip_width: static, the clip window of the loss (the same value).
      occupation: static, compute the p(K) part (else it is None).
      wavefunction: static, compute the flow part (else it is None).
      reference_energy: static, the flow-gradient control variate of the loss (the
        same function, :func:`fermiflow.training.loss.flow_energy_weights`), or None.
      n_micro_batches: static, slices of the batch whose per-sample Jacobians are
        computed one after another (peak memory of batch / n_micro_batches walkers);
        the batch must be divisible by it. The result does not depend on it.

    Returns:
      ``(params: JointParams, state: JointState, values: LocalValues) ->
      (jacobians: JointParams, residuals: JointParams)``; the occupation Jacobian has
      B rows, the wavefunction one 2B rows (real, then imaginary parts).
    """
    n_micro = check_positive_int("n_micro_batches", n_micro_batches)

    def sr_inputs(params: JointParams, state: JointState, values):
        occ, x = state.occ, state.walkers.chain.position
        batch = occ.shape[0]
        if batch % n_micro:
            raise ValueError(f"batch={batch} is not divisible by n_micro_batches={n_micro}.")
        energy = values.kinetic + values.potential
        free = clip_around_mean(temperature * values.log_p + jnp.real(energy), clip_width)
        real = clip_around_mean(jnp.real(energy), clip_width)
        imag = clip_around_mean(jnp.imag(energy), clip_width)
        scale = 1 / jnp.sqrt(batch)
        r_occ = (free - free.mean()) * scale
        reference = None if reference_energy is None else reference_energy(occ)
        r_psi = (
            2
            * jnp.concatenate([flow_energy_weights(real, reference), imag - imag.mean()])
            * scale
        )

        jac_occ = jac_psi = None
        if occupation:

            def one_log_p(p, o):
                return log_prob(p, o[None])[0]

            jac_occ = _per_sample(
                lambda o: jax.grad(one_log_p)(params.occupation, o), (occ,), n_micro
            )
            jac_occ = _centered_scaled(jac_occ, batch)
        if wavefunction:

            def parts(p, o, y):
                value = log_psi(p, o, y)
                return jnp.real(value), jnp.imag(value)

            jac_re, jac_im = _per_sample(
                lambda o, y: jax.jacrev(parts)(params.wavefunction, o, y), (occ, x), n_micro
            )
            jac_psi = jax.tree.map(
                lambda a, b: jnp.concatenate([a, b]),
                _centered_scaled(jac_re, batch),
                _centered_scaled(jac_im, batch),
            )
        return JointParams(jac_occ, jac_psi), JointParams(r_occ, r_psi)

    return sr_inputs

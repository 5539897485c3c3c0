"""Variational free energy F = E_{K~p}[T ln p(K) + E_{x~|Psi_K|^2} Re E_loc(x)] and its gradients.

Per walker (K, x): S_loc = -ln p(K), F_loc = T ln p(K) + Re E_loc(x; K), with
E_loc = E_kin + V and E_kin from the forward Laplacian. The gradients are the
score-function estimators with the batch mean as baseline (arXiv:2201.03156, eq. 8-9):

  d F / d theta_p   = E[(F_loc - <F_loc>) d ln p(K)]                (set model p)
  d F / d theta_psi = 2 Re E[(E_loc - <E_loc>)^* d ln Psi_K(x)]     (flow)

both computed as gradients of surrogates with the local values held fixed.

Clipping (on by default, ``clip_width=5``): for the gradients only, F_loc and the real
and imaginary parts of E_loc are clipped to mean +- clip_width * (mean absolute
deviation from the mean) of the batch. It bounds the variance from rare walkers
near nodes (where E_loc diverges) at the price of a small bias; ``clip_width=None``
turns it off. The reported estimates are never clipped.

Control variate for the flow gradient (``reference_energy=``, off by default): each
Psi_K is normalized, so E_x[Re d ln Psi_K | K] = 0 and ANY baseline b(K) that depends
on the walker only through K leaves the flow gradient unbiased. With a reference
energy E0(K) (e.g. the sum of the occupied single-particle energies,
:func:`fermiflow.models.density_matrix.occupation_energies`) the weight of Re d ln Psi_K becomes

  (E_loc - <E_loc>) - c (E0(K) - <E0>),   c = Cov(E_loc, E0) / Var(E0) of the batch,

the least-squares slope (0 when E0 is constant, e.g. T = 0). It removes the part of
the noise that comes from the spread of E_K between sets. At the identity flow of an
ideal gas E_loc = E0(K) exactly, so the flow gradient vanishes sample by sample
instead of only on average. Like the batch mean, c is taken from the same batch: a
relative bias of O(1/batch).

Micro-batches: with ``n_micro_batches > 1`` the local values, then the gradient
sums, are accumulated over that many slices of the walker batch, with the baselines
and clip windows taken from the whole batch, so the result equals the unsplit one up
to floating-point summation order.

Stochastic kinetic energy (``kinetic_energy=``, e.g. the split estimator of
:func:`fermiflow.hamiltonians.kinetic_split.make_flow_kinetic_energy`): each walker
gets its own key, so E_loc is replaced by an unbiased but noisy estimate. The
reported means stay unbiased (their errors include the probe noise). The gradient
weights E_loc - <E_loc> use the same noisy values; since the probe noise is drawn
independently of the score d ln Psi at the given x and has zero mean, the flow
gradient stays unbiased but its variance grows (the p(K) gradient likewise through
F_loc). Clipping acts on the noisy values, so its small bias depends on the probes.
Pass ``key`` to ``local_values``/``value_and_grad``; ``key=None`` is allowed only
for the deterministic (default) kinetic energy.

Units: Hartree atomic units; T in Hartree. Acts on a batch of walkers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.estimate import Thermodynamics, batch_estimate
from fermiflow.hamiltonians.kinetic import make_kinetic_energy
from fermiflow.models.density_matrix import JointParams
from fermiflow.sampling.joint import JointState
from fermiflow.types import Array, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = [
    "FreeEnergyLoss",
    "LocalValues",
    "clip_around_mean",
    "estimates_from_local_values",
    "flow_energy_weights",
    "make_free_energy_loss",
]


class LocalValues(NamedTuple):
    """Per-walker local quantities.

    Attributes:
      kinetic: (batch,) complex local kinetic energy.
      potential: (batch,) potential energy.
      log_p: (batch,) ln p(K).
    """

    kinetic: Array
    potential: Array
    log_p: Array


class FreeEnergyLoss(NamedTuple):
    """Pure functions of the loss.

    Attributes:
      local_values: ``(params: JointParams, state: JointState, key=None) ->
        LocalValues``; ``key`` (a PRNG key) is required for a stochastic kinetic energy.
      value_and_grad: ``(params, state, key=None) -> ((Thermodynamics, LocalValues),
        grads)`` with grads a :class:`JointParams` of gradients of F.
      temperature: static T in Hartree, for :func:`estimates_from_local_values`.
    """

    local_values: Callable[..., LocalValues]
    value_and_grad: Callable[..., tuple]
    temperature: float = 0.0


def estimates_from_local_values(values: LocalValues, temperature: float) -> Thermodynamics:
    """Return batch estimates of F, E, K, V, S from per-walker values (jittable).

    The walkers are treated as independent (they are separate chains); the errors
    are standard errors of the batch mean (``method="batch"``).

    Args:
      values: :class:`LocalValues` with (batch,) leaves.
      temperature: T in Hartree (0 for ground-state VMC).

    Returns:
      :class:`~fermiflow.estimate.Thermodynamics` of () estimates (whole system).
    """
    kinetic = jnp.real(values.kinetic)
    energy = kinetic + values.potential
    free = temperature * values.log_p + energy
    return Thermodynamics(*map(batch_estimate, (free, energy, kinetic, values.potential,
                                                -values.log_p)))


def clip_around_mean(values: Array, width: float | None) -> Array:
    """Clip to mean +- width * mean|values - mean| (real arrays; None: no clipping).

    Args:
      values: (batch,) real values.
      width: number of mean absolute deviations, or None.

    Returns:
      (batch,) clipped values.

    Examples:
      >>> import jax.numpy as jnp
      >>> clip_around_mean(jnp.array([0.0, 0.0, 0.0, 4.0]), 1.0).tolist()
      [0.0, 0.0, 0.0, 2.5]
    """
    if width is None:
        return values
    mean = jnp.mean(values)
    deviation = jnp.mean(jnp.abs(values - mean))
    return jnp.clip(values, mean - width * deviation, mean + width * deviation)


def flow_energy_weights(real: Array, reference: Array | None = None) -> Array:
    """Return the weights of Re d ln Psi in the flow gradient (the baseline subtracted).

    Args:
      real: (batch,) Re E_loc (already clipped for the gradient).
      reference: (batch,) E0(K) of each walker's set, or None (batch mean only).

    Returns:
      (batch,) real - mean(real) - c (reference - mean(reference)), c the batch
      least-squares slope of real on reference (0 for a constant reference); they
      sum to zero.

    Examples:
      >>> import jax.numpy as jnp
      >>> flow_energy_weights(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])).tolist()
      [0.0, 0.0]
    """
    centred = real - jnp.mean(real)
    if reference is None:
        return centred
    ref = jnp.asarray(reference, centred.dtype)
    ref = ref - jnp.mean(ref)
    var = jnp.mean(ref**2)
    slope = jnp.where(var > 0, jnp.mean(centred * ref) / jnp.where(var > 0, var, 1.0), 0.0)
    return centred - slope * ref


def _split(tree, n_micro: int):
    return jax.tree.map(lambda a: a.reshape((n_micro, -1) + a.shape[1:]), tree)


def make_free_energy_loss(
    log_prob: Callable[[Params, Array], Array],
    log_psi: Callable[[Params, Array, Array], Array],
    potential: Callable[[Array], Array],
    *,
    temperature: float,
    clip_width: float | None = 5.0,
    n_micro_batches: int = 1,
    laplacian: str = "forward_laplacian",
    kinetic_energy: Callable[[PRNGKey, Params, Array, Array], Array] | None = None,
    reference_energy: Callable[[Array], Array] | None = None,
) -> FreeEnergyLoss:
    """Build the free-energy estimates and gradients of a batch of walkers.

    Args:
      log_prob: static, ``(occupation_params, occ: (batch, n)) -> (batch,)`` ln p(K).
      log_psi: static, ``(wavefunction_params, occ: (n,), x: (n, dim)) -> ()``
        complex ln Psi_K(x).
      potential: static, ``x: (n, dim) -> ()`` potential energy.
      temperature: static, T >= 0 in Hartree (0: ground-state VMC, p(K) untouched).
      clip_width: static, clip window in mean absolute deviations, or None.
      n_micro_batches: static, slices of the batch to accumulate over (the batch
        must be divisible by it).
      laplacian: static, "forward_laplacian" or "jvp_loop" (exact kinetic energy).
      kinetic_energy: static, ``(key, wavefunction_params, occ: (n,), x: (n, dim))
        -> ()`` complex unbiased estimate of the local kinetic energy of log_psi
        (one walker, its own key), replacing the exact forward Laplacian; None: exact.
      reference_energy: static, ``occ: (batch, n) -> (batch,)`` E0(K), the control
        variate of the flow gradient (module docstring), or None.

    Returns:
      A :class:`FreeEnergyLoss`.

    Raises:
      ValueError: for a negative temperature, clip_width <= 0 or bad micro-batches.
    """
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (Hartree), got {temperature}.")
    if clip_width is not None and not clip_width > 0:
        raise ValueError(f"clip_width must be > 0 or None, got {clip_width}.")
    n_micro = check_positive_int("n_micro_batches", n_micro_batches)
    if kinetic_energy is None:
        exact_kinetic = make_kinetic_energy(
            lambda p_occ, x: log_psi(p_occ[0], p_occ[1], x), method=laplacian
        )

        def walker_values(psi_params, occ, x, key):
            del key
            return exact_kinetic((psi_params, occ), x), potential(x)

    else:

        def walker_values(psi_params, occ, x, key):
            return kinetic_energy(key, psi_params, occ, x), potential(x)

    def local_values(params: JointParams, state: JointState, key=None) -> LocalValues:
        x, occ = state.walkers.chain.position, state.occ
        if x.shape[0] % n_micro:
            raise ValueError(
                f"batch={x.shape[0]} is not divisible by n_micro_batches={n_micro}."
            )
        if key is None:
            if kinetic_energy is not None:
                raise ValueError("key must be a PRNG key for a stochastic kinetic_energy.")
            keys = jnp.zeros((x.shape[0],), jnp.uint32)  # placeholder, never read
        else:
            keys = jax.random.split(key, x.shape[0])
        batched = jax.vmap(walker_values, in_axes=(None, 0, 0, 0))
        chunks = jax.lax.map(
            lambda c: batched(params.wavefunction, *c), _split((occ, x, keys), n_micro)
        )
        kinetic, pot = jax.tree.map(lambda a: a.reshape(-1), chunks)
        return LocalValues(kinetic, pot, log_prob(params.occupation, occ))

    def value_and_grad(params: JointParams, state: JointState, key=None):
        values = local_values(params, state, key)
        energy = values.kinetic + values.potential
        free = clip_around_mean(temperature * values.log_p + jnp.real(energy), clip_width)
        real = clip_around_mean(jnp.real(energy), clip_width)
        imag = clip_around_mean(jnp.imag(energy), clip_width)
        weight_p = jax.lax.stop_gradient(free - jnp.mean(free))
        reference = None if reference_energy is None else reference_energy(state.occ)
        weight_psi = jax.lax.stop_gradient(
            flow_energy_weights(real, reference) - 1j * (imag - jnp.mean(imag))
        )
        batch = weight_p.shape[0]

        def surrogate(p, occ, x, w_p, w_psi):
            log_psi_b = jax.vmap(log_psi, in_axes=(None, 0, 0))(p.wavefunction, occ, x)
            flow_part = 2 * jnp.sum(jnp.real(w_psi * log_psi_b))
            if temperature == 0:
                return flow_part / batch
            return (jnp.sum(w_p * log_prob(p.occupation, occ)) + flow_part) / batch

        def accumulate(total, chunk):
            return jax.tree.map(jnp.add, total, jax.grad(surrogate)(params, *chunk)), None

        chunks = _split(
            (state.occ, state.walkers.chain.position, weight_p, weight_psi), n_micro
        )
        zeros = jax.tree.map(jnp.zeros_like, params)
        grads, _ = jax.lax.scan(accumulate, zeros, chunks)
        return (estimates_from_local_values(values, temperature), values), grads

    return FreeEnergyLoss(local_values, value_and_grad, float(temperature))

"""Local kinetic energy of a flow wavefunction, with only the Jacobian term estimated.

For a flow state log psi = f1 + f2 with f1(x) = log D_K(T(x)) (the determinant of the
orbitals at zeta = T(x)) and f2(x) = 1/2 log|det dT/dx|,

    E_kin = -1/2 (lap f1 + lap f2 + sum_i (d_i f1 + d_i f2)^2),

with the complex square for a complex f1 (see :mod:`fermiflow.hamiltonians.kinetic`).
The exact forward Laplacian of f1 is cheap (folx through the flow once, then the
determinant); the expensive part of the full forward Laplacian is lap f2, which
needs third derivatives of T. Here grad f1, lap f1 (folx) and grad f2 are exact and
lap f2 = tr(H) is replaced by the Hutchinson mean of v^T H v over ``n_probes``
probes v with E[v v^T] = 1; ``jax.linearize(jax.grad(f2))`` gives grad f2 and the
map v -> H v from one linearization. The estimate is unbiased, and exact (zero
variance) wherever f2 is linear or constant, e.g. for the identity flow or any
linear flow.

A flow whose ``apply`` has a ``forward_laplacian(params, x) -> (zeta, J, lap zeta)``
method (:class:`fermiflow.models.flow.JetApply`, e.g. the backflow) supplies zeta, the
Jacobian J = d zeta / d x and the Laplacian of zeta in one structured pass; folx then
starts from them at zeta (the chain rule: lap f1 = tr(H_zeta J J^T) + grad_zeta f1 .
lap zeta), so no tangent goes through the network. Other flows run folx through
``flow_apply`` itself.

Units: Hartree atomic units (hbar = m = 1); x in Bohr, energies in Hartree. Every
function acts on ONE configuration x: (n, dim); vmap over walkers (and split the
key over them) at the call site. Dtypes follow the inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import folx
import jax
import jax.numpy as jnp
from einops import rearrange
from folx.api import FwdJacobian, FwdLaplArray

from fermiflow.hamiltonians.log_psi_derivatives import (
    DISTRIBUTIONS,
    check_configuration,
    flat_log_psi,
    gradient_fn,
    kinetic_from_derivatives,
    probe_vectors,
)
from fermiflow.types import Array, ArrayLike, LogPsiFn, Params, PRNGKey
from fermiflow.validation import check_positive_int

__all__ = ["make_flow_kinetic_energy", "make_split_kinetic_energy"]

SplitKineticFn = Callable[[PRNGKey, Params, ArrayLike], Array]


def _check_options(n_probes: int, distribution: str, sparsity_threshold: float) -> int:
    n_probes = check_positive_int("n_probes", n_probes, "Use at least one probe.")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}.")
    if not sparsity_threshold >= 0:
        raise ValueError(
            f"sparsity_threshold must be >= 0, got {sparsity_threshold}. Use 0 for dense Jacobians."
        )
    return n_probes


def make_split_kinetic_energy(
    log_psi_exact: LogPsiFn,
    log_psi_probed: LogPsiFn,
    *,
    n_probes: int = 1,
    distribution: str = "rademacher",
    sparsity_threshold: float = 0,
) -> SplitKineticFn:
    """Build E_kin of log psi = f1 + f2: lap f1 exact, lap f2 by Hutchinson probes.

    Args:
      log_psi_exact: static, f1 = (params, x: (n, dim)) -> () real or complex; its
        Laplacian and gradient come from folx's forward Laplacian.
      log_psi_probed: static, f2 = (params, x: (n, dim)) -> () real or complex; its
        gradient is exact, its Laplacian the mean of v^T H v over the probes.
      n_probes: static, probe vectors per call (>= 1).
      distribution: static, "rademacher" (default, lowest variance) or "gaussian".
      sparsity_threshold: static, folx's sparsity threshold for f1 (0: dense).

    Returns:
      ``(key, params, x: (n, dim)) -> ()`` unbiased estimate of the local kinetic
      energy (complex if either part is complex), in the dtype of the parts. The
      key draws the (n_probes, n * dim) probes; give each walker its own key.

    Raises:
      ValueError: for n_probes < 1, an unknown distribution or a negative
        sparsity_threshold.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> f1 = lambda omega, x: -0.5 * omega * jnp.sum(x**2)
      >>> f2 = lambda omega, x: 0.1 * jnp.sum(x)  # linear: its Hessian is zero
      >>> kinetic = make_split_kinetic_energy(f1, f2, n_probes=1)
      >>> x = jnp.array([[0.3, -0.2], [1.0, 0.5]])
      >>> exact = 0.5 * 2 * 2 - 0.5 * jnp.sum((-x + 0.1) ** 2)
      >>> bool(jnp.isclose(kinetic(jax.random.key(0), 1.0, x), exact))
      True
    """
    n_probes = _check_options(n_probes, distribution, sparsity_threshold)

    def kinetic(key: PRNGKey, params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        check_configuration(x)
        dim = x.shape[-1]
        x_flat = rearrange(x, "n d -> (n d)")
        f1 = flat_log_psi(log_psi_exact, params, dim)
        # No jit here: the caller owns the jit boundary.
        exact = folx.forward_laplacian(f1, sparsity_threshold, disable_jit=True)(x_flat)
        f2 = flat_log_psi(log_psi_probed, params, dim)
        return _with_probed(key, exact.jacobian.dense_array, exact.laplacian, f2, x_flat,
                            n_probes, distribution)

    return kinetic


def _with_probed(key: PRNGKey, gradient: Array, laplacian: Array, f2: Callable,
                 x_flat: Array, n_probes: int, distribution: str) -> Array:
    """E_kin from exact derivatives of f1 and f2 with lap f2 by Hutchinson probes."""
    gradient_2, hessian_vector = jax.linearize(gradient_fn(f2, x_flat), x_flat)
    probes = probe_vectors(key, (n_probes, x_flat.shape[0]), distribution, x_flat.dtype)
    quadratic = jax.vmap(lambda v: jnp.dot(v, hessian_vector(v)))(probes)
    return kinetic_from_derivatives(laplacian + jnp.mean(quadratic), gradient + gradient_2)


def _jet_flow_kinetic_energy(log_slater_k: Callable, flow_apply: Callable, n_probes: int,
                             distribution: str) -> Callable:
    """The split E_kin with zeta, J and lap zeta from the flow's structured pass."""

    def flow_kinetic(key: PRNGKey, params: Params, occ: ArrayLike, x: ArrayLike) -> Array:
        x, occ = jnp.asarray(x), jnp.asarray(occ)
        check_configuration(x)
        zeta, jac, lap_zeta = flow_apply.forward_laplacian(params, x)
        # folx's dense Jacobian layout is (inputs, *value shape): jac[t, m] = d zeta_m / d x_t.
        start = FwdLaplArray(rearrange(zeta, "n d -> (n d)"), FwdJacobian.from_dense(jac.T),
                             rearrange(lap_zeta, "n d -> (n d)"))
        shape = x.shape
        exact = folx.forward_laplacian(
            lambda z: log_slater_k(occ, z.reshape(shape)), disable_jit=True)(start)
        f2 = lambda y: 0.5 * flow_apply(params, y.reshape(shape))[1]  # noqa: E731
        return _with_probed(key, exact.jacobian.dense_array, exact.laplacian, f2,
                            rearrange(x, "n d -> (n d)"), n_probes, distribution)

    return flow_kinetic


def make_flow_kinetic_energy(
    log_slater_k: Callable[[ArrayLike, ArrayLike], Array],
    flow_apply: Callable[[Params, ArrayLike], tuple[Array, Array]],
    *,
    n_probes: int = 1,
    distribution: str = "rademacher",
) -> Callable[[PRNGKey, Params, ArrayLike, ArrayLike], Array]:
    """Build the split E_kin of log Psi_K(x) = log D_K(T(x)) + 1/2 log|det dT/dx|.

    The same state as ``make_log_psi(orbitals=..., flow_apply=flow_apply, ...)``,
    with f1 = log_slater_k(occ, T(x)) and f2 = log_det / 2 (see
    :func:`make_split_kinetic_energy`).

    Args:
      log_slater_k: static, ``(occ: (n,) int, zeta: (n, dim)) -> ()`` complex log
        D_K(zeta): the log Psi_K of the identity flow (``make_log_psi`` with an
        identity ``flow_apply``, params ignored), normalization included.
      flow_apply: static, ``(params, x: (n, dim)) -> (zeta: (n, dim), log_det: ())``;
        one with a ``forward_laplacian`` method (a
        :class:`~fermiflow.models.flow.JetApply`) gives zeta, J and lap zeta from
        one structured pass (module docstring).
      n_probes: static, Hutchinson probes of lap f2 per call (>= 1).
      distribution: static, "rademacher" or "gaussian".

    Returns:
      ``(key, params, occ: (n,) int, x: (n, dim)) -> ()`` complex estimate of the
      local kinetic energy of Psi_K at x.

    Raises:
      ValueError: for n_probes < 1 or an unknown distribution.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> log_slater_k = lambda occ, z: -0.5 * jnp.sum(z**2) + 0j
      >>> flow_apply = lambda scale, x: (scale * x, x.size * jnp.log(scale))
      >>> kinetic = make_flow_kinetic_energy(log_slater_k, flow_apply)
      >>> value = kinetic(jax.random.key(0), 2.0, jnp.arange(2), jnp.zeros((2, 2)))
      >>> float(value.real)  # -1/2 lap of -2 |x|^2: 0.5 * 4 * 4
      8.0
    """
    # Duck-typed: hamiltonians do not import models (dependency order of the package).
    if callable(getattr(flow_apply, "forward_laplacian", None)):
        n_probes = _check_options(n_probes, distribution, 0)
        return _jet_flow_kinetic_energy(log_slater_k, flow_apply, n_probes, distribution)
    kinetic = make_split_kinetic_energy(
        lambda p_occ, x: log_slater_k(p_occ[1], flow_apply(p_occ[0], x)[0]),
        lambda p_occ, x: 0.5 * flow_apply(p_occ[0], x)[1],
        n_probes=n_probes,
        distribution=distribution,
    )

    def flow_kinetic(key: PRNGKey, params: Params, occ: ArrayLike, x: ArrayLike) -> Array:
        return kinetic(key, (params, jnp.asarray(occ)), x)

    return flow_kinetic

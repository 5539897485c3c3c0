"""Structured forward derivatives (Jacobian and Laplacian) of pair-based flows.

A flow of n particles in dim dimensions has t = n * dim input coordinates. Running
``jax.jacfwd`` (or folx) through it pushes t tangents through every layer, each
carrying the full (n, n, features) pair stream: O(t n^2 w^2) work and memory for a
pair stream of width w. But a quantity P_ij = p(r_ij) of one pair displacement
r_ij = x_i - x_j has only ``dim`` independent derivatives, dP_ij / dx_kc =
dp / dr_c (delta_ik - delta_jk), and its x-Laplacian is 2 Lap_r p (zero on the
diagonal, where r_ii = 0 identically). This module keeps such quantities in that
compact form (:class:`PairJet`: value, ``dim`` derivatives, Laplacian), computed by
``dim`` forward-mode passes over all pairs at once, and expands them only where the
architecture mixes pairs with dense quantities: block means over partners (cheap,
O(t n w)), the pair amplitudes a_ij (O(t n^2), one scalar per pair) and the sums
sum_j a_ij u_ij. Dense quantities are :class:`Jet` objects: the value, its
derivatives along the t input coordinates and its Laplacian, propagated through
linear maps and tanh with the forward-Laplacian rules of Li et al.
(arXiv:2307.08214). The backflow's Jacobian then costs O(dim n^2 w^2 + t n^2 dim)
instead of O(t n^2 w^2).

Tangent order: t = (k, c) particle-major, as ``rearrange(x, "n d -> (n d)")``.
``jac`` and ``lap`` are None where not requested (order 0 or 1) or where the
quantity does not depend on x.

Units: whatever the inputs carry (lengths in Bohr for flows). Every function acts on
ONE configuration; vmap over walkers at the call site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fermiflow.types import Array

__all__ = [
    "Jet",
    "PairJet",
    "block_mean",
    "identity_jet",
    "jet_add",
    "jet_concat",
    "jet_linear",
    "jet_tanh",
    "pair_block",
    "pair_combine",
    "pair_jets",
    "pair_sum",
]


class Jet(NamedTuple):
    """A dense quantity and its derivatives with respect to the t = n * dim inputs.

    Attributes:
      value: (n, ...) value.
      jac: (t, n, ...) derivatives d value / d x_t, or None (not requested or zero).
      lap: (n, ...) sum_t d^2 value / d x_t^2, or None.
    """

    value: Array
    jac: Array | None
    lap: Array | None


class PairJet(NamedTuple):
    """A function of the pair displacement alone, P_ij = p(r_ij), and its derivatives.

    Attributes:
      value: (n, n, ...) p(r_ij).
      grad: (dim, n, n, ...) d p / d r_c at r_ij, or None.
      lap: (n, n, ...) the x-Laplacian 2 Lap_r p(r_ij), zero on the diagonal, or None.
    """

    value: Array
    grad: Array | None
    lap: Array | None


def _unit_tangents(r: Array) -> Array:
    """(dim, n, n, dim): the tangent that moves every r_ij along e_c, for each c."""
    eye = jnp.eye(r.shape[-1], dtype=r.dtype)
    return jnp.broadcast_to(eye[:, None, None, :], (r.shape[-1], *r.shape))


def pair_jets(fn: Callable, r: Array, order: int):
    """Evaluate a pairwise function and its derivatives in r with ``dim`` jvps.

    Args:
      fn: static, ``(n, n, dim) -> pytree of (n, n, ...) arrays`` acting on each pair
        separately (entry (i, j) of every output depends on r_ij only).
      r: (n, n, dim) displacements.
      order: static, 0 (values), 1 (+ first derivatives) or 2 (+ Laplacian).

    Returns:
      The pytree of ``fn(r)`` with every leaf a :class:`PairJet`.
    """
    value = fn(r)
    if order == 0:
        return jax.tree.map(lambda v: PairJet(v, None, None), value)
    units = _unit_tangents(r)
    if order == 1:
        grad = jax.vmap(lambda e: jax.jvp(fn, (r,), (e,))[1])(units)
        return jax.tree.map(lambda v, g: PairJet(v, g, None), value, grad)

    def along(e):
        (_, first), (_, second) = jax.jvp(lambda s: jax.jvp(fn, (s,), (e,)), (r,), (e,))
        return first, second

    grad, second = jax.vmap(along)(units)
    off = 1 - jnp.eye(r.shape[0], dtype=r.dtype)

    def x_laplacian(s):  # sum over x_i and x_j: twice the r-Laplacian, off the diagonal
        mask = off.reshape(off.shape + (1,) * (s.ndim - 3))
        return 2 * jnp.sum(s, 0) * mask

    return jax.tree.map(lambda v, g, s: PairJet(v, g, x_laplacian(s)), value, grad, second)


def identity_jet(x: Array, order: int) -> Jet:
    """Return x itself as a :class:`Jet`: Jacobian the identity, Laplacian zero."""
    if order == 0:
        return Jet(x, None, None)
    jac = jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)
    return Jet(x, jac, jnp.zeros_like(x) if order == 2 else None)


def jet_linear(jet: Jet, fn: Callable[[Array], Array], bias: Array | None = None) -> Jet:
    """Apply a linear map of the (n, ...) value (e.g. ``a @ W``) plus an optional bias."""
    value = fn(jet.value) if bias is None else fn(jet.value) + bias
    jac = None if jet.jac is None else jax.vmap(fn)(jet.jac)
    return Jet(value, jac, None if jet.lap is None else fn(jet.lap))


def jet_tanh(jet: Jet) -> Jet:
    """Elementwise tanh: jac' = f' jac, lap' = f' lap + f'' sum_t jac_t^2."""
    y = jnp.tanh(jet.value)
    slope = 1 - y**2
    if jet.jac is None:
        return Jet(y, None, None)
    lap = None
    if jet.lap is not None:
        lap = slope * jet.lap - 2 * y * slope * jnp.sum(jet.jac**2, 0)
    return Jet(y, slope * jet.jac, lap)


def _or_zeros(part: Array | None, shape: tuple, dtype) -> Array:
    return jnp.zeros(shape, dtype) if part is None else part


def jet_add(a: Jet, b: Jet) -> Jet:
    """Return the jet of a + b (a missing part counts as zero)."""

    def add(u, v):
        return u if v is None else (v if u is None else u + v)

    return Jet(a.value + b.value, add(a.jac, b.jac), add(a.lap, b.lap))


def jet_concat(jets: list[Jet], t: int, order: int) -> Jet:
    """Concatenate jets along the last axis; t is the number of input coordinates."""
    value = jnp.concatenate([j.value for j in jets], -1)
    if order == 0 or all(j.jac is None for j in jets):
        return Jet(value, None, None)
    jac = jnp.concatenate(
        [_or_zeros(j.jac, (t, *j.value.shape), value.dtype) for j in jets], -1
    )
    lap = None
    if order == 2:
        lap = jnp.concatenate([_or_zeros(j.lap, j.value.shape, value.dtype) for j in jets], -1)
    return Jet(value, jac, lap)


def block_mean(pair: PairJet, start: int, stop: int) -> Jet:
    """Return M_i = mean over j in [start, stop) of P_ij as a dense :class:`Jet` (n, f).

    dM_i / dx_kc = (delta_ik sum_j dP_ij/dr_c - [k in block] dP_ik/dr_c) / |block|;
    the diagonal j = i cancels, as it must (r_ii = 0).
    """
    size = stop - start
    value = jnp.mean(pair.value[:, start:stop], 1)
    if pair.grad is None:
        return Jet(value, None, None)
    grad = pair.grad[:, :, start:stop]  # (dim, n, size, f)
    n, dim = value.shape[0], grad.shape[0]
    own = jnp.einsum("ki,ci...->kci...", jnp.eye(n, dtype=value.dtype), grad.sum(2))
    partner = jnp.moveaxis(grad, 2, 0)  # (size, dim, n, f): k = start + s
    partner = jnp.pad(partner, [(start, n - stop)] + [(0, 0)] * (partner.ndim - 1))
    jac = ((own - partner) / size).reshape(n * dim, *value.shape)
    lap = None if pair.lap is None else jnp.sum(pair.lap[:, start:stop], 1) / size
    return Jet(value, jac, lap)


def pair_combine(pair: PairJet, row: Jet | None, column: Jet | None) -> Jet:
    """Return z_ij = P_ij + row_i + column_j (scalars per pair) as a (n, n) :class:`Jet`.

    Args:
      pair: (n, n) pairwise scalar.
      row: (n,) dense scalar added along rows, or None.
      column: (n,) dense scalar added along columns, or None.
    """
    value = pair.value
    for part, axis in ((row, 1), (column, 0)):
        if part is not None:
            value = value + jnp.expand_dims(part.value, axis)
    if pair.grad is None:
        return Jet(value, None, None)
    n, dim = value.shape[0], pair.grad.shape[0]
    eye = jnp.eye(n, dtype=value.dtype)
    jac = jnp.einsum("ki,cij->kcij", eye, pair.grad) - jnp.einsum("kj,cij->kcij", eye, pair.grad)
    jac = jac.reshape(n * dim, n, n)
    lap = pair.lap
    for part, axis in ((row, 1), (column, 0)):
        if part is not None and part.jac is not None:
            jac = jac + jnp.expand_dims(part.jac, axis + 1)
            if lap is not None:
                lap = lap + jnp.expand_dims(part.lap, axis)
    return Jet(value, jac, lap)


def pair_sum(amplitude: Jet, vector: PairJet) -> Jet:
    """Return s_i = sum_j a_ij u_ij for (n, n) amplitudes and pairwise vectors (n, n, dim).

    Args:
      amplitude: (n, n) dense jet a_ij (depends on all of x).
      vector: (n, n, dim) pair jet u_ij = u(r_ij).

    Returns:
      (n, dim) jet of s.
    """
    a, u = amplitude, vector
    value = jnp.einsum("ij,ijd->id", a.value, u.value)
    if a.jac is None or u.grad is None:
        return Jet(value, None, None)
    n, dim = value.shape
    eye = jnp.eye(n, dtype=value.dtype)
    own = jnp.einsum("ki,cid->kcid", eye, jnp.einsum("ij,cijd->cid", a.value, u.grad))
    partner = jnp.einsum("ik,cikd->kcid", a.value, u.grad)
    jac = jnp.einsum("tij,ijd->tid", a.jac, u.value) + (own - partner).reshape(n * dim, n, dim)
    if a.lap is None:
        return Jet(value, jac, None)
    by_particle = a.jac.reshape(n, dim, n, n)  # (k, c, i, j)
    moving_i = jnp.einsum("kcij,ki->cij", by_particle, eye)
    moving_j = jnp.einsum("kcij,kj->cij", by_particle, eye)
    cross = jnp.einsum("cijd,cij->id", u.grad, moving_i - moving_j)
    lap = (
        jnp.einsum("ij,ijd->id", a.lap, u.value)
        + jnp.einsum("ij,ijd->id", a.value, u.lap)
        + 2 * cross
    )
    return Jet(value, jac, lap)


def pair_block(z: Jet, fn: Callable[[Array], Array], order: int) -> Jet:
    """Return z_i + sum_j f(z_i - z_j) for a pairwise vector field f and a dense (n, dim) z.

    Args:
      z: (n, dim) jet (e.g. the output of an earlier layer).
      fn: static, ``(n, n, dim) -> (n, n, dim)`` acting on each pair separately.
      order: static, 0, 1 or 2 (what z carries).

    Returns:
      (n, dim) jet of the output.
    """
    r = z.value[:, None, :] - z.value[None, :, :]
    value = z.value + jnp.sum(fn(r), 1)
    if order == 0:
        return Jet(value, None, None)
    units = _unit_tangents(r)
    grad = jax.vmap(lambda e: jax.jvp(fn, (r,), (e,))[1])(units)  # (b, n, n, a)
    total = jnp.sum(grad, 2)  # (b, n, a)
    jac = (
        z.jac
        + jnp.einsum("bia,tib->tia", total, z.jac)
        - jnp.einsum("bija,tjb->tia", grad, z.jac)
    )
    if order == 1:
        return Jet(value, jac, None)

    def second(e1, e2):
        return jax.jvp(lambda s: jax.jvp(fn, (s,), (e1,))[1], (r,), (e2,))[1]

    hessian = jax.vmap(lambda e1: jax.vmap(lambda e2: second(e1, e2))(units))(units)
    gram = jnp.einsum("tib,tjc->ijbc", z.jac, z.jac)  # (i, j, b, c)
    own = jnp.einsum("iibc->ibc", gram)
    spread = own[:, None] + own[None, :] - gram - jnp.swapaxes(gram, 0, 1)
    lap = (
        z.lap
        + jnp.einsum("bia,ib->ia", total, z.lap)
        - jnp.einsum("bija,jb->ia", grad, z.lap)
        + jnp.einsum("bcija,ijbc->ia", hessian, spread)
    )
    return Jet(value, jac, lap)

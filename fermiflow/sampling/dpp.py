"""Exact i.i.d. samples of |D_K(zeta)|^2 / N!: projection determinantal point processes.

For orthonormal orbitals phi_1..phi_N, the density |det[phi_a(x_j)]|^2 / N! of N points
is a projection DPP with kernel K(x, y) = sum_a phi_a(x) phi_a(y)^*. It is sampled
exactly by the chain rule (Hough, Krishnapur, Peres, Virag, Probab. Surveys 3, 206
(2006), arXiv:math/0503110, Alg. 18): with v(x) = (phi_a(x))_a in C^N and E an
orthonormal basis of span{v(x_1), ..., v(x_{i-1})}, point i has the density

    p_i(x) = (|v(x)|^2 - |E v(x)|^2) / (N - i + 1).

It is drawn by rejection from q(x) = |v(x)|^2 / N (uniform in a box, where |v|^2 = N / V;
the mixture (1/N) sum_a |phi_a|^2 in a trap): a candidate from q is accepted with
probability (|v|^2 - |E v|^2) / |v|^2 <= 1, and the accepted v is Gram-Schmidt'ed into
E. Candidates from q are accepted with probability (N - i + 1) / N on average (the
projection of an orthonormal system integrates to i - 1), so a block of N points costs
N H_N candidates on average (H_N the harmonic number), O(N^2) each: O(N^3 log N) per
sample, with no burn-in and no autocorrelation.

Candidates come in rounds of ``n_candidates`` and the first accepted one is taken:
that is the sequential algorithm's choice, since candidates are i.i.d.
``DPPSample.n_proposals`` counts the candidates up to and including each accepted one,
i.e. the sequential count. All points share ONE ``lax.while_loop`` over rounds, so a
vmapped batch runs for the largest TOTAL round count of its walkers (a sum of N
geometric counts, which concentrates). A point not accepted after
``_MAX_CANDIDATES_PER_POINT * N`` candidates (probability < exp(-50) for distinct,
orthonormal orbitals; it happens when K repeats a mode) makes the sample NaN.

The log density is free: |det[phi_a(x_j)]|^2 is the product of the squared residual
norms of Gram-Schmidt, so ``log_density`` = log(|det|^2 / N!), the latent
2 Re log Psi_K of the identity flow.

Spinful: D_K = D_up D_down, so the two blocks are independent DPPs, up first.

Acts on ONE configuration; vmap over walkers at the call site. Units: Hartree atomic
units, Bohr. No jit inside; dtypes follow the inputs (complex64 work for float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.types import Array, ArrayLike, PRNGKey
from fermiflow.validation import check_nonnegative_int, check_positive, check_positive_int

__all__ = [
    "DPPSample",
    "chain_rule_sample",
    "check_candidates",
    "check_spins",
    "make_plane_wave_dpp_sampler",
    "sample_plane_wave_dpp",
    "spinful_sampler",
]

# Cap on the candidates of one point, in units of N: a point with N - i + 1 open
# directions is missed with probability (1 - (N - i + 1) / N)^(50 N) < exp(-50).
_MAX_CANDIDATES_PER_POINT = 50

Features = Callable[[Array], Array]  # r: (c, dim) -> (N, c) v(r) for c candidates
Propose = Callable[[PRNGKey, int], Array]  # (key, c: static) -> (c, dim) from q


class DPPSample(NamedTuple):
    """One exact sample of a (product of) projection DPP(s).

    Attributes:
      position: (n, dim) points, in a uniformly random order within each spin block
        (up block first); NaN if the candidate cap was hit.
      log_density: () log(|det phi_up|^2 / n_up! * |det phi_down|^2 / n_down!) at
        ``position`` (real, the dtype of the positions); NaN if the cap was hit.
      n_proposals: () int32, candidates the sequential algorithm drew (mean N H_N per
        block of N).
    """

    position: Array
    log_density: Array
    n_proposals: Array


def _orthogonalize(basis: Array, v: Array) -> Array:
    """Return v minus its projection on the rows of ``basis`` (zero rows are unused)."""
    # Two passes of classical Gram-Schmidt ("twice is enough"): one pass loses
    # orthogonality like eps * cond, and late points are nearly in the span.
    for _ in range(2):
        v = v - basis.T @ (jnp.conj(basis) @ v)
    return v


def chain_rule_sample(
    key: PRNGKey, features: Features, propose: Propose, n: int, dim: int, dtype, n_candidates: int
) -> DPPSample:
    """Sample one block of n points by the chain rule (module docstring).

    Args:
      key: PRNG key.
      features: static, ``r: (c, dim) -> (N, c)`` feature vectors v(r) of c candidates.
      propose: static, ``(key, c) -> (c, dim)`` candidates from the proposal q, whose
        density bounds |v(r)|^2 / N up to a constant (the acceptance ratio).
      n: static, number of points.
      dim: static, spatial dimension.
      dtype: static, real dtype of the positions.
      n_candidates: static, candidates drawn per round.

    Returns:
      A :class:`DPPSample` (NaN positions if a point found no accepted candidate).
    """
    key_points, key_order = jax.random.split(key)
    v_dtype = jax.eval_shape(features, jax.ShapeDtypeStruct((1, dim), dtype)).dtype
    real = jnp.zeros((), v_dtype).real.dtype
    max_rounds = -(-_MAX_CANDIDATES_PER_POINT * n // n_candidates)

    # ONE loop over rounds of candidates for all points (not a loop over points with an
    # inner rejection loop): vmapped, it runs for the max over walkers of their TOTAL
    # round count, which concentrates, not for the sum over points of per-point maxima.
    def cond(carry):
        i, rounds = carry[1], carry[2]
        return (i < n) & (rounds < max_rounds)

    def body(carry):
        key_round, i, rounds, basis, x, log_det2, used = carry
        # The key is carried and split (fold_in of a traced counter mixes meshes when
        # the sampler runs inside a sharded, then re-jitted, step).
        key_round, key_propose, key_accept = jax.random.split(key_round, 3)
        candidates = propose(key_propose, n_candidates)  # (c, dim)
        values = features(candidates)  # (n, c)
        norm2 = jnp.sum(jnp.abs(values) ** 2, axis=0)
        projected2 = jnp.sum(jnp.abs(jnp.conj(basis) @ values) ** 2, axis=0)
        # |v|^2 = 0 only where q(x) = 0 (or underflows): such a candidate is rejected.
        accept = jnp.where(norm2 > 0, (norm2 - projected2) / jnp.where(norm2 > 0, norm2, 1), 0)
        hit = jax.random.uniform(key_accept, (n_candidates,), dtype) < accept
        first, found = jnp.argmax(hit), jnp.any(hit)

        def orthonormalize(v):  # Gram-Schmidt only when a point was accepted (unbatched)
            residual = _orthogonalize(basis, v)
            residual2 = jnp.sum(jnp.abs(residual) ** 2)
            return residual / jnp.sqrt(residual2), jnp.log(residual2)

        row, log_residual2 = jax.lax.cond(
            found, orthonormalize, lambda v: (basis[i], jnp.zeros((), real)), values[:, first]
        )
        # Row updates, not selects of whole arrays: a vmapped cond selects its outputs.
        basis = basis.at[i].set(row)
        x = x.at[i].set(jnp.where(found, candidates[first], x[i]))
        log_det2 = log_det2 + log_residual2
        used = used + jnp.where(found, first + 1, n_candidates).astype(jnp.int32)
        rounds = jnp.where(found, 0, rounds + 1)
        return key_round, i + found, rounds, basis, x, log_det2, used

    zero = jnp.zeros((), jnp.int32)
    start = (
        key_points,  # the key of the next round
        zero,  # points accepted so far
        zero,  # rounds spent on the current point
        jnp.zeros((n, n), v_dtype),  # rows: orthonormal basis of the accepted v
        jnp.zeros((n, dim), dtype),
        jnp.zeros((), real),  # log |det|^2 of the accepted points
        zero,  # candidates the sequential algorithm drew
    )
    _, i, _, _, x, log_det2, used = jax.lax.while_loop(cond, body, start)
    # The ordered output already has the symmetric density |det|^2 / N! (the chain rule
    # factorizes exactly that density), so this permutation does not change the law. It
    # is cheap insurance: exchangeability then holds by construction, not only through
    # that identity (e.g. if a truncated proposal ever replaced the exact one).
    x = jax.random.permutation(key_order, x, axis=0)
    log_density = log_det2.astype(dtype) - jnp.asarray(math.lgamma(n + 1), dtype)
    ok, nan = i == n, jnp.asarray(jnp.nan, dtype)
    return DPPSample(jnp.where(ok, x, nan), jnp.where(ok, log_density, nan), used)


def check_candidates(n_candidates: int) -> int:
    """Return n_candidates, or raise ValueError unless it is an integer >= 1."""
    return check_positive_int("n_candidates", n_candidates, "Use 4 (candidates drawn per round).")


def sample_plane_wave_dpp(
    key: PRNGKey, wavevectors: ArrayLike, box_length: float, *, n_candidates: int = 4
) -> DPPSample:
    """Draw one exact sample of |det[e^{i k_a . x_j} / sqrt(V)]|^2 / N! in a periodic box.

    Args:
      key: PRNG key.
      wavevectors: (N, dim) distinct wavevectors k of the block (twist included),
        real; their dtype sets the dtype of the sample. Traced.
      box_length: static, side L of the periodic box (the k are 2 pi (n + twist) / L).
      n_candidates: static, candidates drawn per round (module docstring).

    Returns:
      A :class:`DPPSample` with ``position`` (N, dim) in [0, L)^dim, in the dtype of
      ``wavevectors``.

    Raises:
      ValueError: for a bad box_length, n_candidates or wavevector shape.

    Examples:
      >>> k = 2 * jnp.pi * jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> sample = jax.jit(sample_plane_wave_dpp, static_argnums=2)(jax.random.key(0), k, 1.0)
      >>> sample.position.shape, bool(jnp.all((sample.position >= 0) & (sample.position < 1)))
      ((3, 2), True)
    """
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    n_candidates = check_candidates(n_candidates)
    wavevectors = jnp.asarray(wavevectors)
    if wavevectors.ndim != 2 or wavevectors.shape[0] < 1:
        raise ValueError(f"wavevectors must have shape (N >= 1, dim), got {wavevectors.shape}.")
    if not jnp.issubdtype(wavevectors.dtype, jnp.floating):
        wavevectors = wavevectors.astype(jnp.result_type(float))
    n, dim = wavevectors.shape
    dtype = wavevectors.dtype
    length = jnp.asarray(box_length, dtype)
    norm = jnp.asarray(box_length ** (-dim / 2), dtype)

    def features(r: Array) -> Array:
        phase = wavevectors @ r.T
        return jax.lax.complex(norm * jnp.cos(phase), norm * jnp.sin(phase))

    def propose(key: PRNGKey, count: int) -> Array:
        # uniform * L can round up to L in low precision: fold it back into [0, L).
        return jnp.mod(jax.random.uniform(key, (count, dim), dtype) * length, length)

    return chain_rule_sample(key, features, propose, n, dim, dtype, n_candidates)


def spinful_sampler(
    sample_block: Callable[[PRNGKey, Array], DPPSample], n_up: int, n_down: int
) -> Callable[[PRNGKey, Array], DPPSample]:
    """Combine independent up and down blocks: ``(key, occ: (n,)) -> DPPSample``.

    Args:
      sample_block: static, ``(key, modes: (N_block,)) -> DPPSample`` of one block.
      n_up: static, up particles (first in occ and in the positions).
      n_down: static, down particles.

    Returns:
      ``(key, occ: (n,)) -> DPPSample`` with the blocks concatenated.
    """
    n = n_up + n_down

    def sample(key: PRNGKey, occ: ArrayLike) -> DPPSample:
        occ = jnp.asarray(occ)
        if occ.shape != (n,):
            raise ValueError(f"occ must have shape ({n},) (up modes first), got {occ.shape}.")
        blocks = [(lo, hi) for lo, hi in ((0, n_up), (n_up, n)) if hi > lo]
        keys = jax.random.split(key, 2)
        parts = [sample_block(keys[b], occ[lo:hi]) for b, (lo, hi) in enumerate(blocks)]
        if len(parts) == 1:
            return parts[0]
        up, down = parts
        return DPPSample(
            jnp.concatenate([up.position, down.position], axis=0),
            up.log_density + down.log_density,
            up.n_proposals + down.n_proposals,
        )

    return sample


def check_spins(n_up: int, n_down: int) -> tuple[int, int]:
    """Return (n_up, n_down) or raise unless both are >= 0 and n_up + n_down >= 1."""
    n_up, n_down = check_nonnegative_int("n_up", n_up), check_nonnegative_int("n_down", n_down)
    if n_up + n_down == 0:
        raise ValueError("n_up + n_down must be >= 1, got n_up=0 and n_down=0.")
    return n_up, n_down


def make_plane_wave_dpp_sampler(
    *,
    modes_wavevectors: ArrayLike,
    box_length: float,
    n_up: int,
    n_down: int,
    dtype=None,
    n_candidates: int = 4,
) -> Callable[[PRNGKey, Array], DPPSample]:
    """Build an exact sampler of |D_K(zeta)|^2 for plane-wave determinants, both spins.

    Args:
      modes_wavevectors: static, (m, dim) wavevectors of the mode table
        (``Spectrum.wavevectors``: k = 2 pi (n + twist) / L, distinct).
      box_length: static, side L of the periodic box in Bohr.
      n_up: static, up electrons (first in occ and in the positions).
      n_down: static, down electrons.
      dtype: static, float dtype of the positions; default float64 when x64 is on.
      n_candidates: static, candidates drawn per round.

    Returns:
      ``sample(key, occ: (n,) int mode indices, up block first) -> DPPSample`` with
      ``position`` (n, dim) in [0, L)^dim. Acts on one configuration: vmap over
      ``(keys, occ)`` for a batch.

    Raises:
      ValueError: for bad spins, box_length, n_candidates, or repeated wavevectors.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
      >>> spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=3.0)
      >>> sample = make_plane_wave_dpp_sampler(
      ...     modes_wavevectors=spectrum.wavevectors, box_length=3.0, n_up=3, n_down=2)
      >>> x = jax.jit(sample)(jax.random.key(0), jnp.array([0, 1, 2, 0, 1])).position
      >>> x.shape  # for a batch: jax.vmap(sample)(keys, occ)
      (5, 2)
    """
    n_up, n_down = check_spins(n_up, n_down)
    box_length = check_positive("box_length", box_length, "Pass the box side in Bohr.")
    n_candidates = check_candidates(n_candidates)
    table = np.asarray(modes_wavevectors, np.float64)
    if table.ndim != 2 or len(np.unique(np.round(table * box_length, 9), axis=0)) != len(table):
        raise ValueError(
            "modes_wavevectors must be an (m, dim) table of distinct wavevectors, got shape "
            f"{table.shape}; pass Spectrum.wavevectors."
        )
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)

    def sample_block(key: PRNGKey, modes: Array) -> DPPSample:
        k = jnp.asarray(table, dtype)[modes]
        return sample_plane_wave_dpp(key, k, box_length, n_candidates=n_candidates)

    return spinful_sampler(sample_block, n_up, n_down)

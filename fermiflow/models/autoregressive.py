"""Normalized autoregressive models p(K) over sets K of occupied single-particle modes.

The density matrix is rho = sum_K p(K) |Psi_K><Psi_K|, where K is a set of N modes
out of M (indices into the energy-sorted table of
:mod:`fermiflow.hamiltonians.spectrum`; mode 0 has the lowest energy). The entropy
S = -E_K ln p(K) must be exact, so p must be normalized over *sets* and sampled
exactly (arXiv:2201.03156, Sec. II B).

Construction: write K in ascending order k_0 < k_1 < ... < k_{N-1} and factor
p(K) = prod_i p(k_i | k_0..k_{i-1}) with a causal transformer. The logits at position
i are masked to k_{i-1} < k_i <= M - N + i (0-based), so that the remaining
N - 1 - i particles still fit above k_i. Every set then has exactly one allowed
ordering, every allowed prefix has at least one allowed continuation, and p sums to
one over the C(M, N) sets. ``log_prob`` sorts its input, so it is invariant under
permutations of the N indices, and it is -inf outside the support (a repeated mode or
a mode outside [0, M)).

Spin: :func:`make_spinful_set_transformer` is ONE chain over the up set followed by the
down set, p(K_up, K_down) = p(K_up) p(K_down | K_up), where the down positions attend
to every up mode. We chose this over a product p(K_up) p(K_down) of two independent
models because the product cannot represent correlations between up and down
occupations, which the interaction induces (e.g. in the Hubbard-like competition of
quantum dots, or when the flow makes the energy of K depend on both spins). The joint
chain keeps the two properties we need: each species is still a set model (ascending
within species, same masks), so normalization and exact ancestral sampling hold;
and a product is a special case of it (the network may ignore the up prefix).
Layout of a spinful occupation: (batch, n_up + n_down), the up modes ascending, then
the down modes ascending, both indexing the same mode table.

``log_prob`` evaluates all N positions in one forward pass; ``sample`` is exact
ancestral sampling, a ``lax.scan`` over positions with a KV cache. Both act on a
batch and must not be vmapped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.models.transformer import (
    CausalTransformer,
    KVCache,
    make_causal_transformer,
)
from fermiflow.types import Array, ArrayLike, Params, PRNGKey
from fermiflow.validation import check_nonnegative_int, check_positive_int

__all__ = ["ARModel", "make_set_transformer", "make_spinful_set_transformer"]


class ARModel(NamedTuple):
    """A normalized distribution over sets of occupied modes.

    Attributes:
      init: key -> params.
      log_prob: (params, occ: (batch, n) int, any order within a species) ->
        (batch,) log p, in the dtype of the params.
      sample: (key, params, batch: static int) -> (occ: (batch, n) int32 ascending
        within each species, log_prob: (batch,)), exact draws and their log p.
    """

    init: Callable[[PRNGKey], Params]
    log_prob: Callable[[Params, ArrayLike], Array]
    sample: Callable[[PRNGKey, Params, int], tuple[Array, Array]]


class _Layout(NamedTuple):
    """Static per-position structure of the chain (NumPy, length n)."""

    sizes: tuple[int, ...]  # particles of each species, in chain order
    offset: np.ndarray  # (n,) int, token offset of the species at each position
    upper: np.ndarray  # (n,) int, largest mode allowed at each position
    start: np.ndarray  # (n,) bool, True at the first position of a species


def _layout(n_modes: int, sizes: Sequence[int]) -> _Layout:
    offset, upper, start = [], [], []
    for species, size in enumerate(sizes):
        offset += [species * n_modes] * size
        upper += [n_modes - size + j for j in range(size)]
        start += [j == 0 for j in range(size)]
    return _Layout(
        tuple(sizes), np.array(offset), np.array(upper), np.array(start, dtype=bool)
    )


def _sort_species(occ: Array, sizes: Sequence[int]) -> Array:
    """Sort (batch, n) modes ascending within each species block."""
    bounds = np.cumsum(sizes)[:-1]
    return jnp.concatenate(
        [jnp.sort(b, axis=-1) for b in jnp.split(occ, bounds, -1)], -1
    )


def _masked_log_softmax(logits: Array, previous: Array, upper: Array) -> Array:
    """Return log p(k_i = k | prefix) over k, -inf where k <= previous or k > upper.

    Args:
      logits: (..., m) unnormalized logits.
      previous: (...) int, the previous mode of the same species (-1 at its start).
      upper: (...) int, the largest mode that leaves room for the rest of the species.

    Returns:
      (..., m) normalized log-probabilities. At least one mode is always allowed, so
      the maximum is finite and log_softmax has neither NaN values nor NaN gradients.
    """
    modes = jnp.arange(logits.shape[-1])
    allowed = (modes > previous[..., None]) & (modes <= upper[..., None])
    return jax.nn.log_softmax(jnp.where(allowed, logits, -jnp.inf), axis=-1)


def _param_dtype(params: Params) -> jnp.dtype:
    return jnp.result_type(*jax.tree.leaves(params))


def _make_chain(n_modes: int, sizes: Sequence[int], **network) -> ARModel:
    """Build init / log_prob / sample for a chain of species with the given sizes."""
    layout = _layout(n_modes, sizes)
    n = len(layout.offset)
    module = make_causal_transformer(
        n_tokens=1 + n_modes * len(sizes), n_positions=n, n_modes=n_modes, **network
    )

    def init(key: PRNGKey) -> Params:
        return module.init(key, jnp.zeros((1, n), jnp.int32))

    def log_prob(params: Params, occ: ArrayLike) -> Array:
        occ = jnp.asarray(occ)
        if occ.ndim != 2 or occ.shape[1] != n:
            raise ValueError(f"occ must have shape (batch, {n}), got {occ.shape}.")
        occ = _sort_species(occ, layout.sizes)
        first = jnp.zeros_like(occ[:, :1])
        tokens = jnp.concatenate([first, occ[:, :-1] + layout.offset[:-1] + 1], -1)
        previous = jnp.concatenate([first - 1, occ[:, :-1]], -1)
        previous = jnp.where(layout.start, -1, previous)
        logits = module.apply(params, tokens)
        logp = _masked_log_softmax(logits, previous, jnp.asarray(layout.upper))
        in_range = jnp.all((occ >= 0) & (occ < n_modes), axis=-1)
        picked = jnp.take_along_axis(logp, jnp.clip(occ, 0, n_modes - 1)[..., None], -1)
        return jnp.where(in_range, picked[..., 0].sum(-1), -jnp.inf)

    def sample(key: PRNGKey, params: Params, batch: int) -> tuple[Array, Array]:
        dtype = _param_dtype(params)
        head_size = module.model_size // module.n_heads
        zeros = jnp.zeros((module.n_layers, batch, n, module.n_heads, head_size), dtype)

        def step(carry, inputs):
            token, previous, cache, total = carry
            position, key_i, offset, upper, start = inputs
            logits, cache = module.apply(
                params, token, position, cache, method=CausalTransformer.step
            )
            previous = jnp.where(start, -1, previous)
            logp = _masked_log_softmax(logits, previous, upper)
            mode = jax.random.categorical(key_i, logp).astype(jnp.int32)
            total = total + jnp.take_along_axis(logp, mode[:, None], -1)[:, 0]
            return (mode + offset + 1, mode, cache, total), mode

        carry = (
            jnp.zeros((batch,), jnp.int32),
            jnp.full((batch,), -1, jnp.int32),
            KVCache(zeros, zeros),
            jnp.zeros((batch,), dtype),
        )
        inputs = (
            jnp.arange(n),
            jax.random.split(key, n),
            jnp.asarray(layout.offset, jnp.int32),
            jnp.asarray(layout.upper),
            jnp.asarray(layout.start),
        )
        (_, _, _, total), modes = jax.lax.scan(step, carry, inputs)
        return modes.T, total

    return ARModel(init, log_prob, sample)


def _check_fits(name: str, n_particles: int, n_modes: int) -> None:
    if n_particles > n_modes:
        raise ValueError(
            f"{name}={n_particles} exceeds n_modes={n_modes}: the cutoff keeps fewer "
            "orbitals than particles. Raise the cutoff (emax) or lower the particles."
        )


def make_set_transformer(
    *,
    n_modes: int,
    n_particles: int,
    n_layers: int = 2,
    model_size: int = 16,
    n_heads: int = 4,
    hidden: int = 32,
    param_dtype: jnp.dtype = jnp.float32,
    mode_bias=None,
) -> ARModel:
    """Make a causal-transformer model of sets of ``n_particles`` out of ``n_modes``.

    Args:
      n_modes: static, number M of single-particle modes (energy-sorted indices).
      n_particles: static, set size N, 1 <= N <= M.
      n_layers: static, transformer blocks.
      model_size: static, width of the residual stream; a multiple of n_heads.
      n_heads: static, attention heads.
      hidden: static, MLP hidden width.
      param_dtype: static, dtype of the initial params; log_prob and sample follow
        the dtype of the params they are given.
      mode_bias: static, None or (n_modes,) initial logit bias of every conditional,
        e.g. -(e_k - e_0) / T: p(K) then starts near the Boltzmann-weighted low modes
        instead of uniform over all C(M, N) sets (which at N = 33 of M = 515 puts
        the first samples tens of Hartree per particle above the ideal F).

    Returns:
      An :class:`ARModel` with occ of shape (batch, N).

    Raises:
      ValueError: for non-positive sizes, N > M, or model_size % n_heads != 0.

    Examples:
      >>> model = make_set_transformer(n_modes=6, n_particles=2)
      >>> params = jax.jit(model.init)(jax.random.key(0))
      >>> sample = jax.jit(model.sample, static_argnums=2)
      >>> occ, log_p = sample(jax.random.key(1), params, 4)
      >>> occ.shape, log_p.shape
      ((4, 2), (4,))
      >>> log_p_again = jax.jit(model.log_prob)(params, occ[:, ::-1])
      >>> bool(jnp.allclose(log_p_again, log_p, atol=1e-5))
      True
    """
    n_modes = check_positive_int("n_modes", n_modes)
    n_particles = check_positive_int("n_particles", n_particles)
    _check_fits("n_particles", n_particles, n_modes)
    network = dict(n_layers=n_layers, model_size=model_size, n_heads=n_heads)
    return _make_chain(
        n_modes, (n_particles,), **network, hidden=hidden, param_dtype=param_dtype,
        mode_bias=mode_bias,
    )


def make_spinful_set_transformer(
    *,
    n_modes: int,
    n_up: int,
    n_down: int,
    n_layers: int = 2,
    model_size: int = 16,
    n_heads: int = 4,
    hidden: int = 32,
    param_dtype: jnp.dtype = jnp.float32,
    mode_bias=None,
) -> ARModel:
    """Make a joint model p(K_up) p(K_down | K_up) over two sets of the same modes.

    Args:
      n_modes: static, number M of single-particle modes per spin.
      n_up: static, up particles, 0 <= n_up <= M.
      n_down: static, down particles, 0 <= n_down <= M; n_up + n_down >= 1.
      n_layers: static, as in :func:`make_set_transformer`.
      model_size: static, as in :func:`make_set_transformer`.
      n_heads: static, as in :func:`make_set_transformer`.
      hidden: static, as in :func:`make_set_transformer`.
      param_dtype: static, as in :func:`make_set_transformer`.
      mode_bias: static, as in :func:`make_set_transformer` (both spins).

    Returns:
      An :class:`ARModel` with occ of shape (batch, n_up + n_down): up modes
      ascending, then down modes ascending.

    Raises:
      ValueError: for bad sizes, as in :func:`make_set_transformer`.

    Examples:
      >>> model = make_spinful_set_transformer(n_modes=5, n_up=2, n_down=1)
      >>> params = jax.eval_shape(model.init, jax.random.key(0))  # shapes only
      >>> occ, log_p = jax.eval_shape(
      ...     lambda p: model.sample(jax.random.key(1), p, 3), params)
      >>> occ.shape, occ.dtype
      ((3, 3), dtype('int32'))
    """
    n_modes = check_positive_int("n_modes", n_modes)
    n_up = check_nonnegative_int("n_up", n_up)
    n_down = check_nonnegative_int("n_down", n_down)
    if n_up + n_down == 0:
        raise ValueError("n_up + n_down must be >= 1; there are no particles.")
    _check_fits("n_up", n_up, n_modes)
    _check_fits("n_down", n_down, n_modes)
    network = dict(n_layers=n_layers, model_size=model_size, n_heads=n_heads)
    return _make_chain(
        n_modes, (n_up, n_down), **network, hidden=hidden, param_dtype=param_dtype,
        mode_bias=mode_bias,
    )

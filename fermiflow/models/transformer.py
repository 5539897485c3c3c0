"""Causal transformer over a sequence of occupied modes, with an explicit KV cache.

The network behind the autoregressive set models of
:mod:`fermiflow.models.autoregressive`. Position ``i`` of a sequence of length ``n``
sees the tokens of positions ``0..i`` (the token at position ``i`` encodes the mode
chosen at position ``i - 1``, or BOS at ``i = 0``) and returns unnormalized logits over
the ``m`` modes; the set models mask and normalize them.

Two entry points share one set of parameters: ``__call__`` evaluates all positions
at once (used by ``log_prob``), and ``step`` evaluates one position given a cache of
the keys and values of the earlier positions (used by ``sample``). Both act on a
batch.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.types import Array
from fermiflow.validation import check_positive_int

__all__ = ["CausalTransformer", "KVCache", "make_causal_transformer"]


class KVCache(NamedTuple):
    """Keys and values of the positions seen so far, one pair per layer.

    Attributes:
      keys: (n_layers, batch, n, n_heads, head_size) attention keys.
      values: (n_layers, batch, n, n_heads, head_size) attention values.
    """

    keys: Array
    values: Array


def _attend(q: Array, k: Array, v: Array, mask: Array) -> Array:
    """Scaled dot-product attention with a boolean mask.

    Args:
      q: (batch, n_q, heads, head_size) queries.
      k: (batch, n_k, heads, head_size) keys.
      v: (batch, n_k, heads, head_size) values.
      mask: (n_q, n_k) bool, True where a query may look at a key. Every row must have
        at least one True entry (the diagonal), so no softmax row is empty.

    Returns:
      (batch, n_q, heads, head_size) attended values.
    """
    scale = jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale
    # A finite floor rather than -inf: exp underflows to exactly 0 and gradients stay
    # finite.
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, v)


class _Block(nn.Module):
    """Pre-LayerNorm transformer block: causal self-attention, then an MLP."""

    model_size: int
    n_heads: int
    hidden: int
    param_dtype: jnp.dtype

    def setup(self):
        head_size = self.model_size // self.n_heads
        dense = dict(param_dtype=self.param_dtype)
        self.norm_attention = nn.LayerNorm(param_dtype=self.param_dtype)
        self.qkv = nn.DenseGeneral((3, self.n_heads, head_size), **dense)
        self.out = nn.DenseGeneral(self.model_size, axis=(-2, -1), **dense)
        self.norm_mlp = nn.LayerNorm(param_dtype=self.param_dtype)
        self.mlp_in = nn.Dense(self.hidden, **dense)
        self.mlp_out = nn.Dense(self.model_size, **dense)

    def _mlp(self, x: Array) -> Array:
        return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm_mlp(x))))

    def __call__(self, x: Array) -> Array:
        """(batch, n, model_size) -> same shape, attending to earlier positions."""
        q, k, v = jnp.moveaxis(self.qkv(self.norm_attention(x)), -3, 0)
        n = x.shape[-2]
        causal = jnp.tril(jnp.ones((n, n), dtype=bool))
        return self._mlp(x + self.out(_attend(q, k, v, causal)))

    def step(
        self, x: Array, position: Array, keys: Array, values: Array
    ) -> tuple[Array, Array, Array]:
        """(batch, model_size) at ``position`` -> same shape, and the updated cache."""
        q, k, v = jnp.moveaxis(self.qkv(self.norm_attention(x)), -3, 0)
        keys = jax.lax.dynamic_update_index_in_dim(keys, k, position, axis=1)
        values = jax.lax.dynamic_update_index_in_dim(values, v, position, axis=1)
        seen = (jnp.arange(keys.shape[1]) <= position)[None, :]
        attended = _attend(q[:, None], keys, values, seen)[:, 0]
        return self._mlp(x + self.out(attended)), keys, values


class CausalTransformer(nn.Module):
    """Decoder-only transformer: tokens (batch, n) -> logits (batch, n, n_modes).

    Attributes:
      n_tokens: vocabulary size; token 0 is BOS.
      n_positions: sequence length n (learned positional embedding).
      n_modes: number of output logits per position.
      n_layers: number of transformer blocks.
      model_size: width of the residual stream; divisible by n_heads.
      n_heads: attention heads.
      hidden: width of the MLP hidden layer.
      param_dtype: dtype of the parameters (the computation follows it).
      mode_bias: initial bias of the output logits (n_modes floats), or None for 0.
    """

    n_tokens: int
    n_positions: int
    n_modes: int
    n_layers: int
    model_size: int
    n_heads: int
    hidden: int
    param_dtype: jnp.dtype = jnp.float32
    mode_bias: tuple[float, ...] | None = None

    def setup(self):
        """Declare the submodules (shared by __call__ and step)."""
        dtype = self.param_dtype
        self.token_embed = nn.Embed(self.n_tokens, self.model_size, param_dtype=dtype)
        self.position_embed = nn.Embed(
            self.n_positions, self.model_size, param_dtype=dtype
        )
        self.blocks = [
            _Block(self.model_size, self.n_heads, self.hidden, dtype)
            for _ in range(self.n_layers)
        ]
        self.norm_out = nn.LayerNorm(param_dtype=dtype)
        # Small output weights: the conditionals start close to softmax(mode_bias)
        # (uniform without one).
        bias = nn.initializers.zeros
        if self.mode_bias is not None:
            values = self.mode_bias
            bias = lambda key, shape, dtype: jnp.asarray(values, dtype)  # noqa: E731
        self.head = nn.Dense(
            self.n_modes,
            param_dtype=dtype,
            kernel_init=nn.initializers.normal(0.01),
            bias_init=bias,
        )

    def __call__(self, tokens: Array) -> Array:
        """Return logits (batch, n, n_modes) for tokens (batch, n) int."""
        positions = jnp.arange(tokens.shape[-1])
        x = self.token_embed(tokens) + self.position_embed(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm_out(x))

    def step(
        self, token: Array, position: Array, cache: KVCache
    ) -> tuple[Array, KVCache]:
        """Return logits (batch, n_modes) at ``position`` () and the updated cache.

        Args:
          token: (batch,) int token at ``position``.
          position: () int, traced.
          cache: keys and values of positions < ``position`` (later entries are
            ignored); start from zeros of shape
            (n_layers, batch, n_positions, n_heads, model_size // n_heads).
        """
        x = self.token_embed(token) + self.position_embed(position)
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            x, k, v = block.step(x, position, cache.keys[layer], cache.values[layer])
            keys.append(k)
            values.append(v)
        logits = self.head(self.norm_out(x))
        return logits, KVCache(jnp.stack(keys), jnp.stack(values))


def make_causal_transformer(
    *,
    n_tokens: int,
    n_positions: int,
    n_modes: int,
    n_layers: int,
    model_size: int,
    n_heads: int,
    hidden: int,
    param_dtype: jnp.dtype = jnp.float32,
    mode_bias=None,
) -> CausalTransformer:
    """Validate the sizes and build a :class:`CausalTransformer`.

    Args:
      n_tokens: static, vocabulary size including BOS (token 0).
      n_positions: static, sequence length n.
      n_modes: static, logits per position.
      n_layers: static, transformer blocks, >= 1.
      model_size: static, residual width, a multiple of n_heads.
      n_heads: static, attention heads, >= 1.
      hidden: static, MLP hidden width, >= 1.
      param_dtype: static, dtype of the parameters.
      mode_bias: static, None or (n_modes,) initial logit bias (e.g. -(e_k - e_0) / T,
        so that the conditionals start near Boltzmann weights of the modes).

    Returns:
      The flax module; tokens (batch, n) int -> logits (batch, n, n_modes).

    Raises:
      ValueError: for a size < 1 or model_size not divisible by n_heads.

    Examples:
      >>> net = make_causal_transformer(
      ...     n_tokens=5, n_positions=3, n_modes=4, n_layers=1, model_size=8,
      ...     n_heads=2, hidden=8)
      >>> tokens = jnp.zeros((2, 3), jnp.int32)
      >>> params = jax.eval_shape(net.init, jax.random.key(0), tokens)
      >>> jax.eval_shape(net.apply, params, tokens).shape
      (2, 3, 4)
    """
    sizes = dict(n_tokens=n_tokens, n_positions=n_positions, n_modes=n_modes)
    sizes |= dict(n_layers=n_layers, model_size=model_size, n_heads=n_heads)
    sizes = {name: check_positive_int(name, value) for name, value in sizes.items()}
    hidden = check_positive_int("hidden", hidden)
    if model_size % n_heads:
        raise ValueError(
            f"model_size={model_size} is not divisible by n_heads={n_heads}; "
            "choose model_size as a multiple of n_heads."
        )
    if mode_bias is not None:
        mode_bias = tuple(float(b) for b in np.asarray(mode_bias, np.float64).reshape(-1))
        if len(mode_bias) != n_modes or not np.all(np.isfinite(mode_bias)):
            raise ValueError(f"mode_bias must hold {n_modes} finite values, got "
                             f"{len(mode_bias)}.")
    return CausalTransformer(**sizes, hidden=hidden, param_dtype=param_dtype,
                             mode_bias=mode_bias)

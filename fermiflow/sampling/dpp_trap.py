"""Exact samples of |D_K(zeta)|^2 for oscillator orbitals in a harmonic trap.

The chain rule of :mod:`fermiflow.sampling.dpp` with the proposal
q(x) = (1/N) sum_a phi_a(x)^2 = K(x, x) / N: pick a mode a of the block uniformly, then
x from phi_a^2 = prod_d sqrt(omega) h_{n_d}(sqrt(omega) x_d)^2, one coordinate at a time.
q bounds every conditional of the chain rule: p_i(x) <= K(x, x) / (N - i + 1).

A coordinate y ~ h_n(y)^2 (h_n the normalized Hermite function) is drawn by rejection
from a Gaussian, with the envelope given by Mehler's formula at x = y: for 0 <= t < 1,

    sum_m t^m h_m(y)^2 = exp(-y^2 (1 - t) / (1 + t)) / sqrt(pi (1 - t^2)),

and every term is >= 0, so h_n(y)^2 <= t^(-n) exp(-y^2 (1 - t) / (1 + t)) / sqrt(pi (1 - t^2)).
With t = n / (n + 1) the Gaussian has variance n + 1/2 and the envelope has mass
M_n = (1 + 1/n)^n (n + 1) <= e (n + 1) (M_0 = 1: h_0^2 is that Gaussian): a proposal is
accepted with probability h_n(y)^2 / envelope <= 1, M_n trials per coordinate on average.
Where h_n^2 underflows (|y| > 37 in float64, > 13 in float32) a proposal is rejected,
which removes a tail of mass below the underflow threshold. After
``_MAX_TRIALS_PER_UNIT_MASS * M`` trials without acceptance (probability < exp(-40)) the
candidate is NaN and the chain rule rejects it.

Acts on ONE configuration; vmap over walkers at the call site. Units: Hartree atomic
units; omega in Hartree, positions in Bohr.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.spectrum import Spectrum
from fermiflow.models.orbitals import hermite_functions, make_oscillator_orbitals
from fermiflow.sampling.dpp import (
    DPPSample,
    chain_rule_sample,
    check_candidates,
    check_spins,
    spinful_sampler,
)
from fermiflow.types import Array, ArrayLike, PRNGKey
from fermiflow.validation import check_positive

__all__ = [
    "envelope_mass",
    "hermite_rejection",
    "make_oscillator_dpp_sampler",
    "sample_hermite_squared",
]

_MAX_TRIALS_PER_UNIT_MASS = 40


def envelope_mass(order: int) -> float:
    """M_n = (1 + 1/n)^n (n + 1), the mean number of trials for h_n^2."""
    return 1.0 if order == 0 else (1 + 1 / order) ** order * (order + 1)


def hermite_rejection(key: PRNGKey, orders: Array, max_order: int, dtype) -> tuple[Array, Array]:
    """Return (y, trials): y ~ h_{orders}^2 elementwise (shape of orders), and trial counts.

    orders: any shape s, traced integers 0..max_order (static); y: s in dtype, NaN where
    no proposal was accepted within the trial cap; trials: s int32, about
    :func:`envelope_mass` on average. :func:`sample_hermite_squared` checks its inputs.
    """
    n = orders.astype(dtype)
    t = n / (n + 1)
    sigma = jnp.sqrt(n + 0.5)
    # log of t^n sqrt(pi (1 - t^2)); t^0 = 1 at n = 0 (where log t = -inf).
    log_t = jnp.log(jnp.where(orders > 0, t, 1))
    log_scale = n * log_t + 0.5 * jnp.log(jnp.asarray(math.pi, dtype) * (1 - t * t))
    max_trials = math.ceil(_MAX_TRIALS_PER_UNIT_MASS * envelope_mass(max_order))

    def cond(carry):
        trial, done = carry[0], carry[1]
        return ~jnp.all(done) & (trial < max_trials)

    def body(carry):
        # The key is carried and split: fold_in of the traced trial counter mixes
        # meshes when this runs under a sharded outer jit.
        trial, done, y, trials, key_loop = carry
        key_loop, key_y, key_u = jax.random.split(key_loop, 3)
        proposal = sigma * jax.random.normal(key_y, orders.shape, dtype)
        table = hermite_functions(proposal, max_order)  # (max_order + 1, *shape)
        h = jnp.take_along_axis(table, orders[None], axis=0)[0]
        # h^2 / envelope, <= 1 by Mehler's formula (module docstring).
        ratio = h * h * jnp.exp(log_scale + 0.5 * (proposal / sigma) ** 2)
        accept = ~done & (jax.random.uniform(key_u, orders.shape, dtype) < ratio)
        y = jnp.where(accept, proposal, y)
        trials = trials + (~done).astype(jnp.int32)
        return trial + 1, done | accept, y, trials, key_loop

    start = (
        jnp.zeros((), jnp.int32),
        jnp.zeros(orders.shape, bool),
        jnp.full(orders.shape, jnp.nan, dtype),
        jnp.zeros(orders.shape, jnp.int32),
        key,
    )
    _, _, y, trials, _ = jax.lax.while_loop(cond, body, start)
    return y, trials


def sample_hermite_squared(key: PRNGKey, orders: ArrayLike, *, max_order: int, dtype=None) -> Array:
    """Draw y ~ h_n(y)^2 for each order n, by exact rejection from a Gaussian.

    Args:
      key: PRNG key.
      orders: any shape ``s``, integer orders 0 <= n <= max_order (traced).
      max_order: static, the largest order that can occur.
      dtype: static, float dtype of y; default float64 when x64 is on.

    Returns:
      ``s`` array of independent draws (dimensionless; x = y / sqrt(omega) is drawn
      from the oscillator density psi_n(x)^2).

    Raises:
      ValueError: if max_order is negative.

    Examples:
      >>> y = sample_hermite_squared(jax.random.key(0), jnp.array([0, 3]), max_order=3)
      >>> y.shape, bool(jnp.all(jnp.isfinite(y)))
      ((2,), True)
    """
    if int(max_order) != max_order or max_order < 0:
        raise ValueError(f"max_order must be an integer >= 0, got {max_order!r}.")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    return hermite_rejection(key, jnp.asarray(orders), int(max_order), dtype)[0]


def make_oscillator_dpp_sampler(
    *,
    quantum_numbers: ArrayLike,
    omega: float,
    n_up: int,
    n_down: int,
    dtype=None,
    n_candidates: int = 4,
) -> Callable[[PRNGKey, Array], DPPSample]:
    """Build an exact sampler of |D_K(zeta)|^2 for oscillator determinants, both spins.

    The orbitals are those of :func:`fermiflow.models.orbitals.make_oscillator_orbitals`
    (same normalization and mode order), so ``log_density`` is 2 Re log Psi_K of the
    identity flow.

    Args:
      quantum_numbers: static, (m, dim) Cartesian quantum numbers of the mode table
        (``Spectrum.quantum_numbers`` of ``oscillator_spectrum``).
      omega: static, trap frequency in Hartree.
      n_up: static, up electrons (first in occ and in the positions).
      n_down: static, down electrons.
      dtype: static, float dtype of the positions; default float64 when x64 is on.
      n_candidates: static, candidates drawn per round of the chain rule.

    Returns:
      ``sample(key, occ: (n,) int mode indices, up block first) -> DPPSample`` with
      ``position`` (n, dim). Acts on one configuration: vmap (or ``lax.map``) over
      ``(keys, occ)`` for a batch.

    Raises:
      ValueError: for bad spins, omega, n_candidates or quantum numbers.

    Examples:
      >>> from fermiflow.hamiltonians.spectrum import oscillator_spectrum
      >>> spectrum = oscillator_spectrum(dim=2, n_shells=2, omega=1.0)
      >>> sample = make_oscillator_dpp_sampler(
      ...     quantum_numbers=spectrum.quantum_numbers, omega=1.0, n_up=3, n_down=0)
      >>> x = jax.jit(sample)(jax.random.key(0), jnp.array([0, 1, 2])).position
      >>> x.shape  # for a batch: jax.vmap(sample)(keys, occ)
      (3, 2)
    """
    n_up, n_down = check_spins(n_up, n_down)
    omega = check_positive("omega", omega, "The trap frequency must be positive.")
    n_candidates = check_candidates(n_candidates)
    numbers = np.asarray(quantum_numbers)
    if numbers.ndim != 2 or not np.issubdtype(numbers.dtype, np.integer) or numbers.min() < 0:
        raise ValueError(
            "quantum_numbers must be an (m, dim) table of integers >= 0, got shape "
            f"{numbers.shape} and dtype {numbers.dtype}; pass Spectrum.quantum_numbers."
        )
    dim, max_order = numbers.shape[1], int(numbers.max())
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    energies = omega * (numbers.sum(1) + dim / 2)
    orbitals = make_oscillator_orbitals(Spectrum(numbers, energies, numbers * 1.0), omega)
    length = 1 / math.sqrt(omega)  # the oscillator length: x = y / sqrt(omega)

    def sample_block(key: PRNGKey, modes: Array) -> DPPSample:
        orders = jnp.asarray(numbers)[modes]  # (N, dim)

        def features(r: Array) -> Array:
            return orbitals(modes, r)  # (N, c) real

        def propose(key: PRNGKey, count: int) -> Array:
            key_mode, key_y = jax.random.split(key)
            picked = jax.random.randint(key_mode, (count,), 0, modes.shape[0])
            y, _ = hermite_rejection(key_y, orders[picked], max_order, dtype)
            return y * jnp.asarray(length, dtype)

        return chain_rule_sample(key, features, propose, modes.shape[0], dim, dtype, n_candidates)

    return spinful_sampler(sample_block, n_up, n_down)

"""fermiflow's coordinate Metropolis moves as NetKet transition rules.

NetKet users can drive a fermiflow model (e.g. :class:`fermiflow.interop.model.
SlaterFlowModel`) with NetKet's ``MCState`` on the ``Particle`` Hilbert space of
:func:`fermiflow.interop.operators.particle_hilbert`, with the same proposal
as :func:`fermiflow.sampling.metropolis.make_metropolis`:

- ``kernel="rwm"``: :class:`FermiflowGaussianRule`, an all-electron Gaussian move with
  standard deviation ``width`` per coordinate, drawn by BlackJAX's
  ``random_walk.normal`` (the generator of fermiflow's rwm kernel) from one key per
  chain, then wrapped into the cell along its periodic axes, as fermiflow wraps into
  [0, L)^dim. The move is symmetric, so the rule returns no log correction.
- ``kernel="mala"``: NetKet's own ``LangevinRule`` with ``dt = width**2 / 2``. Its
  proposal x + dt grad log|psi|^2 + sqrt(2 dt) eta is fermiflow's MALA proposal
  (step size width**2 / 2, noise of standard deviation width), and it wraps the same
  way after computing its Hastings correction on the unwrapped move.

NetKet's ``MetropolisSampler`` accepts or rejects with |psi|^2 (machine_pow=2); a
NetKet sweep is ``sweep_size`` such moves of every chain. Samples are NetKet's
flattened configurations, (n_chains, n * dim) in particle-major order.

Importing this module imports NetKet, which turns on float64 in JAX; it is therefore
not re-exported from :mod:`fermiflow.sampling`.

Units: Hartree atomic units, lengths in Bohr.
"""

from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from einops import repeat
from netket.experimental.hilbert import Particle
from netket.utils.types import DType

from fermiflow.types import Array, PRNGKey
from fermiflow.validation import check_positive, check_positive_int

__all__ = ["FermiflowGaussianRule", "make_netket_sampler"]

_KERNELS = ("rwm", "mala")


def _check_particle(hilbert) -> Particle:
    if not isinstance(hilbert, Particle):
        raise ValueError(
            "hilbert must be a netket.experimental.hilbert.Particle space, got "
            f"{type(hilbert).__name__}. Build one with "
            "fermiflow.interop.operators.particle_hilbert(system)."
        )
    return hilbert


def _wrap_flat(hilbert: Particle, x: Array) -> Array:
    """Wrap x: (..., n * dim) into [0, L_d) along the periodic axes of the cell."""
    pbc = np.asarray(hilbert.geometry.pbc, bool)
    if not pbc.any():
        return x
    # The open axes get a dummy modulus of 1; jnp.where keeps them unwrapped.
    extent = np.where(pbc, np.asarray(hilbert.domain, float), 1.0)
    periodic = repeat(pbc, "d -> (n d)", n=hilbert.n_particles)
    modulus = repeat(extent, "d -> (n d)", n=hilbert.n_particles)
    return jnp.where(periodic, jnp.mod(x, jnp.asarray(modulus, x.dtype)), x)


class FermiflowGaussianRule(nk.sampler.rules.MetropolisRule):
    """NetKet rule with fermiflow's rwm proposal: all-electron Gaussian, then wrap.

    Each chain b moves every coordinate by ``width * eta``, eta ~ N(0, 1) drawn by
    ``blackjax.mcmc.random_walk.normal(width)`` from ``jax.random.split(key,
    n_chains)[b]``, and the result is wrapped into the cell along its periodic axes.
    The same distribution as one proposal of
    :func:`fermiflow.sampling.metropolis.make_metropolis` (kernel "rwm").

    Attributes:
      width: () standard deviation of the move of each coordinate, in Bohr; a pytree
        leaf, so changing it does not recompile NetKet's sampling loop.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from netket.experimental.geometry import Cell
      >>> from netket.experimental.hilbert import Particle
      >>> hilbert = Particle(N=2, geometry=Cell(d=2, L=1.0, pbc=True))
      >>> sampler = make_netket_sampler(hilbert, width=0.3, n_chains=4)
      >>> x = jnp.full((4, 4), 0.5)
      >>> proposal, correction = sampler.rule.transition(
      ...     sampler, None, None, None, jax.random.key(0), x)
      >>> proposal.shape, correction, bool(((proposal >= 0) & (proposal < 1)).all())
      ((4, 4), None, True)
    """

    width: float

    def __init__(self, width: float = 0.5):
        """Build the rule.

        Args:
          width: proposal standard deviation in Bohr, > 0.

        Raises:
          ValueError: if width is not a finite number > 0.
        """
        self.width = check_positive(
            "width", width, "It is the proposal standard deviation in Bohr."
        )

    def transition(rule, sampler, machine, parameters, state, key: PRNGKey, x: Array):
        """Propose moves of all chains.

        Args:
          sampler: the NetKet ``MetropolisSampler``; its hilbert gives the cell.
          machine: unused (the proposal does not look at the model).
          parameters: unused.
          state: unused.
          key: PRNG key of this move.
          x: (n_chains, n * dim) real current configurations.

        Returns:
          (n_chains, n * dim) proposals in the dtype of x, and None (symmetric move).
        """
        del machine, parameters, state
        hilbert = _check_particle(sampler.hilbert)
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise TypeError("FermiflowGaussianRule needs real configurations.")
        move = blackjax.mcmc.random_walk.normal(jnp.asarray(rule.width, x.dtype))
        keys = jax.random.split(key, x.shape[0])
        proposal = x + jax.vmap(move)(keys, x)
        return _wrap_flat(hilbert, proposal), None

    def __repr__(self) -> str:
        return f"FermiflowGaussianRule(width={self.width})"


def make_netket_sampler(
    hilbert: Particle,
    *,
    width: float,
    n_chains: int,
    sweep_size: int | None = None,
    kernel: str = "rwm",
    dtype: DType = jnp.float64,
) -> nk.sampler.MetropolisSampler:
    """Build a NetKet Metropolis sampler with fermiflow's coordinate proposal.

    Args:
      hilbert: static, a NetKet ``Particle`` space (e.g. from
        :func:`fermiflow.interop.operators.particle_hilbert`).
      width: proposal standard deviation per coordinate in Bohr, > 0 (for "mala" the
        Langevin step is dt = width**2 / 2).
      n_chains: static, number of chains, >= 1.
      sweep_size: static, moves per returned sample; None means NetKet's default,
        ``hilbert.size``.
      kernel: static, "rwm" (:class:`FermiflowGaussianRule`) or "mala" (NetKet's
        ``LangevinRule``).
      dtype: static, dtype of the samples (float32 or float64).

    Returns:
      ``netket.sampler.MetropolisSampler`` with machine_pow=2 (samples |psi|^2).

    Raises:
      ValueError: for a non-Particle hilbert, width <= 0, n_chains < 1,
        sweep_size < 1 or an unknown kernel.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.interop.operators import particle_hilbert
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=1, n_down=0, dim=2, omega=1.0, coupling=0.0,
      ...                  beta=1.0, n_shells=1)
      >>> sampler = make_netket_sampler(particle_hilbert(dot), width=0.5, n_chains=8)
      >>> log_psi = lambda params, x: -0.5 * jnp.sum(x**2, axis=-1)
      >>> samples, _ = sampler.sample(log_psi, None, chain_length=3)
      >>> samples.shape
      (8, 3, 2)
    """
    hilbert = _check_particle(hilbert)
    width = check_positive("width", width, "It is the proposal standard deviation.")
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}, got {kernel!r}.")
    n_chains = check_positive_int("n_chains", n_chains)
    if sweep_size is not None:
        sweep_size = check_positive_int(
            "sweep_size", sweep_size, "Pass None for NetKet's default, hilbert.size."
        )
    if kernel == "rwm":
        rule = FermiflowGaussianRule(width)
    else:
        rule = nk.sampler.rules.LangevinRule(dt=width**2 / 2)
    return nk.sampler.MetropolisSampler(
        hilbert, rule, n_chains=n_chains, sweep_size=sweep_size, dtype=dtype
    )

"""A fermiflow wavefunction as a NetKet model: the T = 0 path.

:class:`SlaterFlowModel` is a flax.linen Module computing log Psi_K(x) of one fixed
occupation K (a flow-transformed Slater determinant, arXiv:2201.03156 eq. 5) in
NetKet's calling convention, so ``netket.vqs.MCState`` can sample it on the
``Particle`` Hilbert space of :func:`fermiflow.interop.operators.
particle_hilbert` with NetKet's continuous samplers (``MetropolisGaussian``,
``MetropolisAdjustedLangevin``) and estimate energies with the operators of that
module. :func:`make_ground_state_model` builds the closed-shell ground state (lowest
n_up and n_down modes) of an electron gas or a quantum dot.

Parameters. The flow parameters are created inside the module with
``self.param("flow", flow.init, x)`` from the fermiflow flow's own ``init``, so a
NetKet state holds ``variables = {"params": {"flow": flow_params}}`` and
``model.log_psi(variables["params"]["flow"], x)`` evaluates the same function in
fermiflow's convention. No flax submodule is needed and any ``Flow(init, apply)``
works, whatever its internal parameter tree.

Shapes. NetKet passes flattened configurations, ``(batch, n * dim)`` in particle-major
order (x_1, y_1, x_2, ...), with the n_up up electrons first, and its Langevin rule and
``KineticEnergy`` call the model on ONE unbatched configuration ``(n * dim,)``. The
module accepts any leading batch shape, including none, and returns complex log psi
of that shape.

Units: Hartree atomic units; x in Bohr.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp
from einops import rearrange

from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.models.backflow import make_backflow
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.wavefunction import (
    closed_shell_occupation,
    make_log_psi,
    make_log_psi_fixed,
)
from fermiflow.types import Array, ArrayLike, Flow, Params, PRNGKey

__all__ = ["SlaterFlowModel", "make_ground_state_model"]


class SlaterFlowModel(nn.Module):
    """NetKet-compatible log Psi_K(x) of a fermiflow wavefunction with fixed K.

    Attributes:
      log_psi: static, ``(flow_params, x: (n, dim)) -> ()`` complex log Psi_K, e.g.
        from :func:`fermiflow.models.wavefunction.make_log_psi_fixed`.
      flow_init: static, ``(key, x: (n, dim)) -> flow_params``, the flow's init.
      dim: static, spatial dimension.

    Calling the module on x: (..., n * dim) returns (...,) complex log psi; the
    parameters are ``{"flow": flow_params}``.
    """

    log_psi: Callable[[Params, ArrayLike], Array]
    flow_init: Callable[[PRNGKey, ArrayLike], Params]
    dim: int

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        """Return log psi, shape (...,), of configurations x: (..., n * dim)."""
        x = jnp.asarray(x)
        if x.ndim == 0 or x.shape[-1] % self.dim:
            raise ValueError(
                f"x must have shape (..., n * {self.dim}) with flattened particle "
                f"coordinates, got {x.shape}."
            )
        configurations = rearrange(x, "... (n d) -> ... n d", d=self.dim)
        example = rearrange(x, "... (n d) -> (...) n d", d=self.dim)[0]
        flow_params = self.param("flow", self.flow_init, example)
        # vectorize handles the unbatched (n, dim) call and any batch shape alike.
        value = jnp.vectorize(
            lambda one: self.log_psi(flow_params, one), signature="(n,d)->()"
        )
        return value(configurations)


def _orbitals_and_box(system: ElectronGas | QuantumDot):
    """Return (orbitals, box_length or None) of a system."""
    if isinstance(system, ElectronGas):
        box_length = float(system.box_length)
        return make_plane_wave_orbitals(system.spectrum, box_length), box_length
    if isinstance(system, QuantumDot):
        return make_oscillator_orbitals(system.spectrum, system.omega), None
    raise ValueError(
        f"system must be an ElectronGas or a QuantumDot, got {type(system)}."
    )


def make_ground_state_model(
    system: ElectronGas | QuantumDot, *, flow: Flow | None = None
) -> SlaterFlowModel:
    """Build the closed-shell ground-state wavefunction of a system as a NetKet model.

    K occupies the lowest n_up up modes and lowest n_down down modes (plane waves
    with the system's twist in a periodic box, or oscillator levels in a dot).

    Args:
      system: static, an :class:`ElectronGas` or a :class:`QuantumDot`.
      flow: static, ``Flow(init, apply)`` on (n, dim) configurations; default the
        backflow ``make_backflow(n_up, n_down, dim, box_length)`` with its default
        depth and widths (box_length None for a dot).

    Returns:
      A :class:`SlaterFlowModel`; ``model.log_psi(flow_params, x: (n, dim))`` is the
      same function in fermiflow's convention.

    Raises:
      ValueError: if the particle numbers fill a degenerate shell only partly (the
        ground state is then not unique: pick a closed-shell n_up, n_down or twist),
        or for an unknown system.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from fermiflow.hamiltonians.systems import QuantumDot
      >>> dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0,
      ...                  beta=1.0, n_shells=2)
      >>> model = make_ground_state_model(dot)
      >>> x = jax.random.normal(jax.random.key(0), (3, 4))
      >>> variables = model.init(jax.random.key(1), x)
      >>> model.apply(variables, x).shape, model.apply(variables, x[0]).shape
      ((3,), ())
    """
    orbitals, box_length = _orbitals_and_box(system)
    occ = closed_shell_occupation(system.spectrum, system.n_up, system.n_down)
    if flow is None:
        flow = make_backflow(
            n_up=system.n_up,
            n_down=system.n_down,
            dim=system.dim,
            box_length=box_length,
        )
    log_psi = make_log_psi(
        orbitals=orbitals, flow_apply=flow.apply, n_up=system.n_up, n_down=system.n_down
    )
    return SlaterFlowModel(
        log_psi=make_log_psi_fixed(log_psi, occ), flow_init=flow.init, dim=system.dim
    )

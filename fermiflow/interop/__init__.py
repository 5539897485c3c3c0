"""fermiflow.interop: NetKet interoperability (requires the ``netket`` extra).

- :mod:`~fermiflow.interop.operators`: NetKet Hilbert spaces of fermiflow's systems
  and their Hamiltonians as NetKet continuous operators;
- :mod:`~fermiflow.interop.model`: a T = 0 flax model (Slater determinant of a flow)
  for ``netket.vqs.MCState``;
- :mod:`~fermiflow.interop.rule`: a Gaussian Metropolis rule that wraps positions into
  the periodic cell.

Importing this package imports NetKet, which switches JAX to float64 globally; that is
why ``import fermiflow`` never imports it. Install with ``pip install fermiflow[netket]``.
"""

from fermiflow.interop.model import SlaterFlowModel, make_ground_state_model
from fermiflow.interop.operators import (
    ForwardLaplacianKineticEnergy,
    electron_gas_hamiltonian,
    ewald_operator,
    particle_hilbert,
    quantum_dot_hamiltonian,
    quantum_dot_operator,
)
from fermiflow.interop.rule import FermiflowGaussianRule, make_netket_sampler

__all__ = [
    "FermiflowGaussianRule",
    "ForwardLaplacianKineticEnergy",
    "SlaterFlowModel",
    "electron_gas_hamiltonian",
    "ewald_operator",
    "make_ground_state_model",
    "make_netket_sampler",
    "particle_hilbert",
    "quantum_dot_hamiltonian",
    "quantum_dot_operator",
]

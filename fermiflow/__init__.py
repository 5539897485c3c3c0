"""fermiflow: variational free energy of interacting fermions at finite temperature.

The density matrix is rho = sum_K p(K) |Psi_K><Psi_K| with an autoregressive p(K) over
sets of occupied orbitals and flow-transformed Slater determinants Psi_K
(Xie, Zhang & Wang, arXiv:2201.03156).

Units: Hartree atomic units everywhere inside the package. Conversions from
(rs, Theta, Rydberg) happen once, in :mod:`fermiflow.hamiltonians.units`.

The package never calls ``jax.config.update`` at import time; callers who want
float64 (recommended, and required for the exact tests) enable it themselves.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

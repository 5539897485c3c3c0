"""fermiflow.exact: exact canonical thermodynamics of two electrons (reference benchmarks).

Units: Hartree atomic units; F, E, S (k_B) and E0 of the whole system, never per
particle (conversions live in :mod:`fermiflow.hamiltonians.units`). Host-side float64
NumPy/SciPy; nothing here is traced.

Map of the subpackage:

* :mod:`~fermiflow.exact.published`: published reference data (the m* paper's 2D runs,
  Brown et al. 2013 RPIMC for the 3D gas) shipped in ``fermiflow/exact/data`` with
  their provenance, for ``fermiflow bench``.
* :mod:`~fermiflow.exact.thermo`: :class:`ExactThermo` and the log-space thermodynamics
  of a list of levels, of independent subsystems (product) and of disjoint sectors
  (mixture).
* :mod:`~fermiflow.exact.two_electron_dot`: :func:`two_electron_dot`, two electrons in
  a 2D or 3D harmonic dot (:class:`~fermiflow.hamiltonians.systems.QuantumDot`), any
  coupling, both spin sectors: centre of mass in closed form, relative motion per
  partial wave by :mod:`~fermiflow.exact.laguerre_radial` (exponential-Laguerre
  Rayleigh-Ritz with exact matrix elements).
* :mod:`~fermiflow.exact.two_electron_box`: :func:`two_electron_box` and
  :func:`two_electron_box_converged`, two electrons in the periodic 2D or 3D box with
  the Ewald interaction and a twist
  (:class:`~fermiflow.hamiltonians.systems.ElectronGas`), by total-momentum blocks
  (:mod:`~fermiflow.exact.box_relative`) in plane waves augmented by cusp functions
  (:mod:`~fermiflow.exact.augmented_basis`), with the pair potential of
  :mod:`~fermiflow.exact.ewald_pair`.
"""

from fermiflow.exact.augmented_basis import (
    AugmentedTables,
    augmented_tables,
    cusp_function,
    radial_fourier,
)
from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import (
    EwaldPairSplit,
    ewald_pair_constant,
    ewald_pair_fourier,
    ewald_pair_potential,
    ewald_pair_split,
)
from fermiflow.exact.laguerre_radial import default_radial_scale, radial_levels
from fermiflow.exact.thermo import (
    ExactThermo,
    thermo_from_levels,
    thermo_mixture,
    thermo_product,
)
from fermiflow.exact.two_electron_box import (
    BoxConvergence,
    two_electron_box,
    two_electron_box_converged,
)
from fermiflow.exact.two_electron_dot import oscillator_thermo, two_electron_dot

__all__ = [
    "AugmentedTables",
    "BoxConvergence",
    "EwaldPairSplit",
    "ExactThermo",
    "augmented_tables",
    "box_relative_levels",
    "cusp_function",
    "default_radial_scale",
    "ewald_pair_constant",
    "ewald_pair_fourier",
    "ewald_pair_potential",
    "ewald_pair_split",
    "oscillator_thermo",
    "radial_fourier",
    "radial_levels",
    "thermo_from_levels",
    "thermo_mixture",
    "thermo_product",
    "two_electron_box",
    "two_electron_box_converged",
    "two_electron_dot",
]

"""fermiflow.hamiltonians: local energies of one configuration and exact references.

Units: Hartree atomic units. The NetKet operators live in
``fermiflow.interop.operators`` and are not re-exported here, because
importing netket switches JAX to float64 globally; import that module explicitly.
"""

from fermiflow.hamiltonians.coulomb import make_coulomb_pair_energy
from fermiflow.hamiltonians.ewald import make_ewald_potential
from fermiflow.hamiltonians.ewald_lattice import (
    EwaldTables,
    ewald_tables,
    madelung_constant,
)
from fermiflow.hamiltonians.free_fermions import (
    GrandCanonicalThermo,
    IdealGasThermo,
    canonical_ideal_gas,
    canonical_ideal_gas_spinful,
    chemical_potential,
    electron_gas_ideal_thermo,
    grand_canonical_ideal_gas,
    pressure_ideal_electron_gas,
)
from fermiflow.hamiltonians.harmonic import (
    make_classical_coulomb_gas_energy,
    make_quantum_dot_potential,
)
from fermiflow.hamiltonians.kinetic import (
    chunked_vmap,
    make_hutchinson_kinetic_energy,
    make_kinetic_energy,
    make_local_energy,
)
from fermiflow.hamiltonians.kinetic_split import (
    make_flow_kinetic_energy,
    make_split_kinetic_energy,
)
from fermiflow.hamiltonians.references import classical_reference, ideal_reference
from fermiflow.hamiltonians.spectrum import (
    Spectrum,
    check_enough_modes,
    oscillator_spectrum,
    plane_wave_spectrum,
)
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot
from fermiflow.hamiltonians.units import (
    ElectronGasScales,
    electron_gas_scales,
    from_rydberg_per_rs2,
    hartree_to_rydberg,
    rydberg_to_hartree,
    to_rydberg_per_rs2,
)

__all__ = [
    "classical_reference",
    "ideal_reference",
    "ClassicalCoulombGas",
    "ElectronGas",
    "ElectronGasScales",
    "EwaldTables",
    "GrandCanonicalThermo",
    "IdealGasThermo",
    "QuantumDot",
    "Spectrum",
    "canonical_ideal_gas",
    "canonical_ideal_gas_spinful",
    "check_enough_modes",
    "chemical_potential",
    "chunked_vmap",
    "electron_gas_ideal_thermo",
    "electron_gas_scales",
    "ewald_tables",
    "from_rydberg_per_rs2",
    "grand_canonical_ideal_gas",
    "hartree_to_rydberg",
    "madelung_constant",
    "make_classical_coulomb_gas_energy",
    "make_coulomb_pair_energy",
    "make_ewald_potential",
    "make_flow_kinetic_energy",
    "make_hutchinson_kinetic_energy",
    "make_kinetic_energy",
    "make_local_energy",
    "make_quantum_dot_potential",
    "make_split_kinetic_energy",
    "oscillator_spectrum",
    "plane_wave_spectrum",
    "pressure_ideal_electron_gas",
    "rydberg_to_hartree",
    "to_rydberg_per_rs2",
]

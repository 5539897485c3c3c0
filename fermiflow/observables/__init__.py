"""fermiflow.observables: error bars, thermodynamics, g(r), S(k), densities, n(k), m*/m."""

from fermiflow.estimate import Estimate, Thermodynamics, batch_estimate
from fermiflow.observables.blocking import BlockingResult, blocking_analysis, blocking_error
from fermiflow.observables.density import box_density, density_image, radial_density
from fermiflow.observables.diagnostics import (
    AcceptanceSummary,
    Diagnostics,
    acceptance_summary,
    diagnose,
    estimate,
    integrated_autocorrelation_time,
    to_inference_data,
)
from fermiflow.observables.effective_mass import (
    effective_mass_ratio,
    effective_mass_ratio_pretrained,
    ideal_entropy,
)
from fermiflow.observables.momentum import (
    displacement_grid,
    make_one_body_ratios,
    momentum_distribution,
    occupation_indicator,
    random_displacements,
    spin_species,
)
from fermiflow.observables.pair import (
    minimum_image,
    pair_channels,
    pair_correlation,
    pair_correlation_image,
    plane_wave_pair_correlation,
    plane_wave_structure_factor,
    reciprocal_lattice,
    shell_volumes,
    structure_factor,
    structure_factor_from_image,
)
from fermiflow.observables.thermodynamics import (
    blocked_thermodynamics,
    observables_to_json,
    thermodynamic_estimates,
    thermodynamic_traces,
    thermodynamic_units,
    virial_pressure,
)

__all__ = [
    "AcceptanceSummary",
    "BlockingResult",
    "Diagnostics",
    "Estimate",
    "Thermodynamics",
    "acceptance_summary",
    "batch_estimate",
    "blocked_thermodynamics",
    "blocking_analysis",
    "blocking_error",
    "box_density",
    "density_image",
    "diagnose",
    "displacement_grid",
    "effective_mass_ratio",
    "effective_mass_ratio_pretrained",
    "estimate",
    "ideal_entropy",
    "integrated_autocorrelation_time",
    "make_one_body_ratios",
    "minimum_image",
    "momentum_distribution",
    "observables_to_json",
    "occupation_indicator",
    "pair_channels",
    "pair_correlation",
    "pair_correlation_image",
    "plane_wave_pair_correlation",
    "plane_wave_structure_factor",
    "radial_density",
    "random_displacements",
    "reciprocal_lattice",
    "shell_volumes",
    "spin_species",
    "structure_factor",
    "structure_factor_from_image",
    "thermodynamic_estimates",
    "thermodynamic_traces",
    "thermodynamic_units",
    "to_inference_data",
    "virial_pressure",
]

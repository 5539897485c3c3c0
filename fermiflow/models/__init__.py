"""fermiflow.models: flows, orbitals, many-body states Psi_K and the set models p(K).

The NetKet T=0 model lives in ``fermiflow.interop.model`` and is not re-exported
here, because importing netket switches JAX to float64 globally; import that module
explicitly.
"""

from fermiflow.models.autoregressive import (
    ARModel,
    make_set_transformer,
    make_spinful_set_transformer,
)
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import (
    enumerate_sets,
    enumerate_spinful_sets,
    make_categorical_model,
)
from fermiflow.models.classical_flow import ClassicalFlow, make_classical_flow
from fermiflow.models.flow import (
    Flow,
    dense_slogdet,
    invert_flow,
    make_identity_flow,
)
from fermiflow.models.ode_flow import (
    StochasticFlow,
    make_hutchinson_ode_flow,
    make_ode_flow,
)
from fermiflow.models.orbitals import (
    hermite_functions,
    make_oscillator_orbitals,
    make_plane_wave_orbitals,
)
from fermiflow.models.slater import log_slater
from fermiflow.models.wavefunction import (
    closed_shell_occupation,
    make_log_psi,
    make_log_psi_fixed,
)

__all__ = [
    "ARModel",
    "ClassicalFlow",
    "Flow",
    "StochasticFlow",
    "closed_shell_occupation",
    "dense_slogdet",
    "enumerate_sets",
    "enumerate_spinful_sets",
    "hermite_functions",
    "invert_flow",
    "log_slater",
    "make_backflow",
    "make_categorical_model",
    "make_classical_flow",
    "make_hutchinson_ode_flow",
    "make_identity_flow",
    "make_log_psi",
    "make_log_psi_fixed",
    "make_ode_flow",
    "make_oscillator_orbitals",
    "make_plane_wave_orbitals",
    "make_set_transformer",
    "make_spinful_set_transformer",
]

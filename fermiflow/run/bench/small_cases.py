"""Small systems with exact answers: the classical pair, the T = 0 dot, the ideal N = 6 dot."""

from __future__ import annotations

from fermiflow.hamiltonians.references import classical_reference, ideal_reference
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, QuantumDot
from fermiflow.run.bench.case import Case, Reference, Rule

__all__ = ["small_cases"]


CLASSICAL = """
[system]
kind = "classical"
dim = 2
n = 2
temperature = 0.5
[model]
depth = 2
width_one = 16
width_two = 16
base_scale = 0.7
[sampler]
batch = 1024
[optimizer]
wavefunction = "adam"
wavefunction_learning_rate = 3e-3
schedule = "cosine"
final_fraction = 0.01
[run]
n_steps = 4000
checkpoint_every = 500
log_every = 50
n_eval_steps = 128
"""

GROUND_STATE = """
[system]
kind = "quantum_dot"
dim = 2
n_up = 1
n_down = 1
omega = 1.0
coupling = 1.0
temperature = 0.0
n_shells = 1
[model]
occupation = "ground_state"
flow = "backflow"
init_scale = 0.05
[sampler]
batch = 512
n_sweeps = 10
n_thermalize = 20
[optimizer]
wavefunction = "sr"
wavefunction_learning_rate = 0.05
max_norm = 0.05
schedule = "cosine"
final_fraction = 0.05
[run]
n_steps = 300
checkpoint_every = 100
log_every = 10
n_eval_steps = 1100
"""

IDEAL_DOT6 = """
[system]
kind = "quantum_dot"
dim = 2
n_up = 6
n_down = 0
omega = 1.0
coupling = 0.0
beta = 2.0
n_shells = 4
[model]
occupation = "categorical"
max_excitation = 9.0
flow = "backflow"
init_scale = 0.05
[sampler]
batch = 256
n_sweeps = 10
n_extra_sweeps = 10
n_thermalize = 20
[optimizer]
occupation = "sr"
occupation_learning_rate = 1.0
max_norm = 1.0
wavefunction = "sgd"
wavefunction_learning_rate = 4e-3
control_variate = true
[run]
n_steps = 80
pretrain_steps = 300
pretrain_learning_rate = 0.05
checkpoint_every = 40
log_every = 10
n_eval_steps = 100
"""


def _classical_reference() -> Reference:
    gas = ClassicalCoulombGas(n=2, dim=2, temperature=0.5)
    _, exact = classical_reference(gas)
    return Reference({"F": (exact["F"] / 2, 0.0)},
                     "exact pair free energy (quadrature, fermiflow.hamiltonians.classical_exact)")


def _ground_state_reference() -> Reference:
    return Reference({"E": (1.5, 0.0), "F": (1.5, 0.0)},
                     "Taut's closed form: E0 = 3 Ha for 1u1d in the 2D dot, omega = 1 "
                     "(J. Phys. A 27, 1045 (1994); fermiflow.exact reproduces it)")


def _ideal_dot6_reference() -> Reference:
    dot = QuantumDot(n_up=6, n_down=0, dim=2, omega=1.0, coupling=0.0, beta=2.0, n_shells=4)
    ref = ideal_reference(dot, 0.5)
    return Reference({q: (ref[q] / 6, 0.0) for q in ("F", "E", "S")},
                     "exact canonical ideal Fermi gas of the same 20 oscillator modes")


def small_cases() -> list[Case]:
    """Return the classical pair, the T = 0 dot and the ideal N = 6 dot."""
    return [Case("classical_pair", "cpu", "classical Coulomb pair in a 2D trap, T=0.5",
                 CLASSICAL, (), _classical_reference,
                 Rule("accuracy", ("F",), max_sigma_rel=2e-3, rel=2e-3)),
            Case("dot2d_1u1d_ground_state", "cpu", "T=0: 1u1d in the 2D dot, omega=1, "
                 "coupling 1 (VMC with the backflow)", GROUND_STATE, (),
                 _ground_state_reference, Rule("accuracy", ("E",), rel=3e-4 / 1.5,
                                               max_sigma_rel=1e-4)),
            Case("dot2d_n6_ideal", "cpu", "ideal 2D dot, N=6 polarized, beta=2, full method "
                 "(p(K) and backflow must find the ideal optimum)", IDEAL_DOT6, (),
                 _ideal_dot6_reference, Rule("accuracy", ("F",), max_sigma_rel=1e-4))]

"""Two electrons in a 2D dot and a 2D box against the exact solvers (quick and cpu tiers)."""

from __future__ import annotations

import functools
import math

from fermiflow.exact import two_electron_box_converged, two_electron_dot
from fermiflow.hamiltonians.references import ideal_reference
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.run.bench.case import Case, Reference, Rule

__all__ = ["two_electron_cases"]


TWO_ELECTRON_TRAINING = """
[model]
flow = "backflow"
depth = 2
width_one = 16
width_two = 16
init_scale = 0.05
[sampler]
batch = 256
n_sweeps = 10
n_extra_sweeps = 10
n_thermalize = 20
[optimizer]
occupation = "sr"
occupation_learning_rate = 1.0
max_norm = 0.1
wavefunction = "adam"
wavefunction_learning_rate = 1e-3
[run]
n_steps = 500
pretrain_steps = 150
pretrain_optimizer = "sr"
pretrain_learning_rate = 1.0
pretrain_batch = 1024
checkpoint_every = 100
log_every = 10
n_eval_steps = 200
"""


def _sector(n_up: int, n_down: int) -> str:
    return "pol" if n_down == 0 else "1u1d"


def _dot_toml(n_up: int, n_down: int, coupling: float, beta: float) -> str:
    # Modes up to about 15 T above the ground shell: the ideal p(K) is complete there.
    shells = max(4, int(math.ceil(1 + 15.0 / beta)))
    spin = "spin_adapted = true\nparity_flows = true\n" if n_down else ""
    return (f"[system]\nkind = \"quantum_dot\"\ndim = 2\nn_up = {n_up}\nn_down = {n_down}\n"
            f"omega = 1.0\ncoupling = {coupling}\nbeta = {beta}\nn_shells = {shells}\n"
            + TWO_ELECTRON_TRAINING.replace("[model]\n", "[model]\n" + spin))


# The box flow (benchmarks/README.md, "the form of the pair map"): the Fourier pair
# field moves particles in any direction, one flow per total-momentum class lets the
# degenerate lowest states of different classes each get their own map, and the
# flow is uncertified (every final estimate carries its measured fold weight).
BOX_FLOW = ("certify = false\npair_field = 3\nmomentum_flows = true\n", (
    ("init_scale = 0.05", "init_scale = 0.0"),
    ("wavefunction_learning_rate = 1e-3", "wavefunction_learning_rate = 3e-3")))


def _box_toml(n_up: int, n_down: int, rs: float, theta: float) -> str:
    spin = "spin_adapted = true\nparity_flows = true\n" if n_down else ""
    training = TWO_ELECTRON_TRAINING.replace("[model]\n", "[model]\n" + spin + BOX_FLOW[0])
    for old, new in BOX_FLOW[1]:
        training = training.replace(old, new)
    return (f"[system]\nkind = \"electron_gas\"\ndim = 2\nn_up = {n_up}\nn_down = {n_down}\n"
            f"rs = {rs}\ntheta = {theta}\nemax = 12\ntwist = [0.25, 0.25]\n" + training)


def _exact_reference(thermo, error, source: str) -> Reference:
    return Reference({"F": (thermo.free_energy / 2, error.free_energy / 2),
                      "E": (thermo.energy / 2, error.energy / 2),
                      "S": (thermo.entropy / 2, error.entropy / 2)}, source)


def _dot_reference(n_up: int, n_down: int, coupling: float, beta: float) -> Reference:

    dot = QuantumDot(n_up=n_up, n_down=n_down, dim=2, omega=1.0, coupling=coupling,
                     beta=beta, n_shells=2)  # the exact solver ignores the mode cutoff
    thermo = two_electron_dot(dot)
    zero = type(thermo)(*(0.0,) * len(thermo))
    return _exact_reference(thermo, zero, "exact two-electron dot (fermiflow.exact, "
                                          "centre of mass x radial solver, 1e-14 weights)")


def _box_reference(n_up: int, n_down: int, rs: float, theta: float) -> Reference:

    gas = ElectronGas(n_up=n_up, n_down=n_down, dim=2, rs=rs, theta=theta, emax=12,
                      twist=(0.25, 0.25))
    result = two_electron_box_converged(gas)
    return _exact_reference(result.thermo, result.error,
                            "exact two-electron box (fermiflow.exact, momentum blocks, "
                            "cusp-augmented plane waves, error from two cutoffs)")


ACCURACY = Rule("accuracy", ("F", "S"))


def two_electron_cases() -> list[Case]:
    """Return the two-electron grid (cpu) and its short quick-tier case."""
    cases = []
    for n_up, n_down in ((2, 0), (1, 1)):
        sector = _sector(n_up, n_down)
        for coupling in (1.0, 2.0, 4.0, 8.0):
            for beta in (2.0, 5.0):
                cases.append(Case(
                    f"dot2d_{sector}_c{coupling:g}_b{beta:g}", "cpu",
                    f"two electrons ({sector}) in a 2D dot, omega=1, coupling={coupling:g}, "
                    f"beta={beta:g}", _dot_toml(n_up, n_down, coupling, beta), (),
                    functools.partial(_dot_reference, n_up, n_down, coupling, beta), ACCURACY))
        for rs in (1.0, 2.0, 5.0, 10.0):
            for theta in (0.5, 1.0):
                cases.append(Case(
                    f"box2d_{sector}_rs{rs:g}_t{theta:g}", "cpu",
                    f"two electrons ({sector}) in the 2D box, rs={rs:g}, Theta={theta:g}, "
                    "twist (1/4, 1/4)", _box_toml(n_up, n_down, rs, theta), (),
                    functools.partial(_box_reference, n_up, n_down, rs, theta), ACCURACY))
    cases.append(Case("dot2d_1u1d_c0_b2_quick", "quick",
                      "ideal 1u1d dot (10 modes), spin-adapted, identity flow, short training",
                      QUICK_DOT, (), _quick_dot_reference,
                      Rule("accuracy", ("F", "S"), max_sigma_rel=1e-3)))
    return cases


# Short training for the default suite: the ideal 1u1d dot (coupling 0) with the
# identity flow, whose optimum is exact (F_loc is constant there): the full pipeline
# (pretraining, SR for p(K), spin-adapted Psi_K, sampler, evaluation) must find it.
QUICK_DOT = """
[system]
kind = "quantum_dot"
dim = 2
n_up = 1
n_down = 1
omega = 1.0
coupling = 0.0
beta = 2.0
n_shells = 4
[model]
spin_adapted = true
flow = "identity"
[sampler]
batch = 256
n_sweeps = 5
n_extra_sweeps = 20
n_thermalize = 10
[optimizer]
occupation = "sr"
max_norm = 1.0
[run]
n_steps = 40
pretrain_steps = 100
pretrain_optimizer = "sr"
pretrain_learning_rate = 1.0
pretrain_batch = 1024
checkpoint_every = 40
log_every = 10
n_eval_steps = 16
"""


def _quick_dot_reference() -> Reference:
    dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=0.0, beta=2.0, n_shells=4)
    ref = ideal_reference(dot, 0.5)
    return Reference({q: (ref[q] / 2, 0.0) for q in ("F", "E", "S")},
                     "exact canonical ideal gas of the same 10 oscillator modes")

"""The registry of ``fermiflow bench`` cases: config, reference and tolerance rule.

Tiers (a tier includes the ones before it):

- ``quick`` (minutes on a 2-core CPU; in the default test suite): exact ideal-gas values
  against the published tables (S0 of the m* paper's runs, the N = 13 and 3D N = 33
  ideal references) and two-electron cases with short training;
- ``cpu``: the full two-electron grid (2D dot at coupling 1, 2, 4, 8 and beta 2, 5; 2D
  box at rs 1, 2, 5, 10 and Theta 0.5, 1; twist (1/4, 1/4); both spin sectors) against
  the exact solvers of :mod:`fermiflow.exact`, the 2D gas N = 13 at rs 1, 5, 10
  (reported beside the published N = 29 runs: another N, orientation only), the
  classical pair and the T = 0 dot;
- ``gpu``: the m* paper's N = 29, 49, 57 at rs 1, 5, 10, Theta = 0.15, and the 3D
  polarized gas N = 33 at rs = 1, Theta = 0.5 against RPIMC.

Rules: ``accuracy`` (|F - F_ref| <= max(k sigma, rel |F_ref|) with sigma <= max_sigma_rel
|F_ref|, and |S - S_ref| <= entropy_abs per particle), ``zscore`` (|z| <= k),
``identity`` (relative difference <= rtol, for exact values) and ``report`` (z shown,
not judged).

Units: references per particle, Hartree; S in k_B per particle.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

from fermiflow.exact.published import N13_IDEAL_REFERENCE, mstar_runs_2d, rpimc_3d
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.references import classical_reference, ideal_reference
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot

__all__ = ["CASES", "TIERS", "Case", "Reference", "Rule"]

TIERS = ("quick", "cpu", "gpu")


class Reference(NamedTuple):
    """Reference values per particle: quantity -> (value, error), and their source."""

    values: dict[str, tuple[float, float]]
    source: str


class Rule(NamedTuple):
    """How a case is judged (module docstring); ``judged`` names the quantities."""

    kind: str
    judged: tuple[str, ...] = ("F",)
    k: float = 3.0
    rel: float = 1e-3
    max_sigma_rel: float = 5e-4
    entropy_abs: float = 0.03
    rtol: float = 1e-9

    def describe(self) -> str:
        """Return the rule as a short text for tables."""
        quantities = ",".join(self.judged)
        if self.kind == "accuracy":
            text = (f"{quantities}: |dev| <= max({self.k:g} sigma, {self.rel:g}|ref|), "
                    f"sigma <= {self.max_sigma_rel:g}|ref|")
            return text + (f"; S: |dev| <= {self.entropy_abs:g}" if "S" in self.judged else "")
        if self.kind == "zscore":
            return f"{quantities}: |z| <= {self.k:g}"
        if self.kind == "identity":
            return f"{quantities}: rel. dev. <= {self.rtol:g}"
        return "reported, not judged"


class Case(NamedTuple):
    """One benchmark case.

    Attributes:
      name: unique name.
      tier: "quick", "cpu" or "gpu".
      description: one line for tables.
      config: TOML text of the run, a preset path under ``configs/``, or None for a
        check that needs no training.
      overrides: ``--set`` overrides applied to ``config``.
      reference: ``() -> Reference`` (computed when the case runs).
      rule: the :class:`Rule`.
      check: for ``config=None``: ``() -> {quantity: (value, error)}`` per particle.
    """

    name: str
    tier: str
    description: str
    config: str | None
    overrides: tuple[str, ...]
    reference: Callable[[], Reference]
    rule: Rule
    check: Callable[[], dict] | None = None


# ---------------------------------------------------------------- exact ideal checks


def _per_particle_ideal(gas: ElectronGas) -> dict[str, tuple[float, float]]:
    thermo, n = electron_gas_ideal_thermo(gas), gas.n_particles
    return {"F": (float(thermo.free_energy) / n, 0.0), "E": (float(thermo.energy) / n, 0.0),
            "S": (float(thermo.entropy) / n, 0.0)}


def _n13_gas(rs: float = 1.0, theta: float = 0.15) -> ElectronGas:
    return ElectronGas(n_up=13, n_down=0, dim=2, rs=rs, theta=theta, emax=25,
                       twist=(0.25, 0.25))


def _n13_reference() -> Reference:
    ref = N13_IDEAL_REFERENCE  # whole system, Ry / rs^2 at rs = 1 -> Hartree per particle
    return Reference({"F": (0.5 * ref["F_ry_rs2"] / 13, 0.0),
                      "E": (0.5 * ref["E_ry_rs2"] / 13, 0.0), "S": (ref["S"] / 13, 0.0)},
                     "shared reference set: exact canonical ideal gas, N=13 2D, Theta=0.15")


def _s0_case(n: int, emax: int) -> Case:
    def check():
        gas = ElectronGas(n_up=n, n_down=0, dim=2, rs=1.0, theta=0.15, emax=emax,
                          twist=(0.25, 0.25))
        return {"S": _per_particle_ideal(gas)["S"]}

    def reference():
        s0 = mstar_runs_2d(n, 1.0)["S0"]
        return Reference({"S": (s0.value, 0.0)}, s0.source + ", column S0_exact_freefermion")

    return Case(f"ideal2d_n{n}_s0", "quick",
                f"exact S0 of the 2D polarized ideal gas, N={n}, emax={emax}, Theta=0.15",
                None, (), reference, Rule("identity", ("S",), rtol=1e-8), check)


def _ideal3d_n33_check() -> dict:
    # Gamma point, a cutoff far in the Boltzmann tail: (2 pi / L)^2 / 2 * 120 ~ 30 T.
    gas = ElectronGas(n_up=33, n_down=0, dim=3, rs=1.0, theta=0.5, emax=120)
    return _per_particle_ideal(gas)


@functools.cache
def _n33_ideal_rows() -> dict[str, float]:
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "exact" / "data" / "ueg3d_n33_polarized.csv"
    out = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if float(row["rs"]) == 1.0 and float(row["theta"]) == 0.5 and "ideal" in row[
                    "quantity"]:
                scale = 0.5 if row["unit"].startswith("Ry") else 1.0
                out[row["quantity"].split("_")[0]] = float(row["value"]) * scale
    return out


def _ideal3d_n33_reference() -> Reference:
    rows = _n33_ideal_rows()
    return Reference({q: (rows[q], 0.0) for q in ("F", "E", "S")},
                     "shared reference set ueg3d_n33_polarized.csv: exact canonical ideal "
                     "gas, N=33, Gamma point, no cutoff")


def _ideal_cases() -> list[Case]:
    cases = [Case("ideal2d_n13", "quick", "exact ideal 2D gas, N=13, emax=25, Theta=0.15",
                  None, (), _n13_reference, Rule("identity", ("F", "E", "S"), rtol=1e-9),
                  lambda: _per_particle_ideal(_n13_gas()))]
    cases += [_s0_case(n, emax) for n, emax in ((29, 25), (49, 36), (57, 49))]
    cases.append(Case("ideal3d_n33", "quick", "exact ideal 3D gas, N=33, Gamma, rs=1, "
                      "Theta=0.5", None, (), _ideal3d_n33_reference,
                      Rule("identity", ("F", "E", "S"), rtol=1e-8), _ideal3d_n33_check))
    return cases


# ---------------------------------------------------------------- trained cases


def _gas_reference_29(rs: float) -> Reference:
    run = mstar_runs_2d(29, rs)
    return Reference({q: (run[q].value, run[q].error) for q in ("F", "E", "S")},
                     run["F"].source + " (N=29: another N, orientation only)")


def _gas_cases() -> list[Case]:
    cases = []
    for rs in (1.0, 5.0, 10.0):
        cases.append(Case(
            f"heg2d_n13_rs{rs:g}", "cpu",
            f"2D polarized gas N=13, rs={rs:g}, Theta=0.15 (headline config)",
            "configs/heg2d_n13_rs10_fast.toml", (f"system.rs={rs}",),
            functools.partial(_gas_reference_29, rs), Rule("report", ())))
    for n, emax in ((29, 25), (49, 36), (57, 49)):
        for rs in (1.0, 5.0, 10.0):
            cases.append(Case(
                f"heg2d_n{n}_rs{rs:g}", "gpu",
                f"2D polarized gas N={n}, rs={rs:g}, Theta=0.15 vs the m* paper",
                "configs/heg2d_n13_rs10_fast.toml",
                (f"system.n_up={n}", f"system.rs={rs}", f"system.emax={emax}"),
                functools.partial(_published_2d, n, rs), Rule("zscore", ("F",))))
    cases.append(Case(
        "heg3d_n33_rs1", "gpu", "3D polarized gas N=33, rs=1, Theta=0.5 vs RPIMC",
        "configs/heg3d_n33.toml", (), _rpimc_reference, Rule("report", ())))
    return cases


def _published_2d(n: int, rs: float) -> Reference:
    run = mstar_runs_2d(n, rs)
    return Reference({q: (run[q].value, run[q].error) for q in ("F", "E", "K", "V", "S")},
                     run["F"].source)


def _rpimc_reference() -> Reference:
    values = rpimc_3d("pol", 1.0, 0.5)
    return Reference({q: (values[q].value, values[q].error) for q in ("E", "K", "V")},
                     values["E"].source)


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


# ---------------------------------------------------------------- two electrons

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
    spin = "spin_adapted = true\n" if n_down else ""
    return (f"[system]\nkind = \"quantum_dot\"\ndim = 2\nn_up = {n_up}\nn_down = {n_down}\n"
            f"omega = 1.0\ncoupling = {coupling}\nbeta = {beta}\nn_shells = {shells}\n"
            + TWO_ELECTRON_TRAINING.replace("[model]\n", "[model]\n" + spin))


def _box_toml(n_up: int, n_down: int, rs: float, theta: float) -> str:
    spin = "spin_adapted = true\n" if n_down else ""
    return (f"[system]\nkind = \"electron_gas\"\ndim = 2\nn_up = {n_up}\nn_down = {n_down}\n"
            f"rs = {rs}\ntheta = {theta}\nemax = 12\ntwist = [0.25, 0.25]\n"
            + TWO_ELECTRON_TRAINING.replace("[model]\n", "[model]\n" + spin))


def _exact_reference(thermo, error, source: str) -> Reference:
    return Reference({"F": (thermo.free_energy / 2, error.free_energy / 2),
                      "E": (thermo.energy / 2, error.energy / 2),
                      "S": (thermo.entropy / 2, error.entropy / 2)}, source)


def _dot_reference(n_up: int, n_down: int, coupling: float, beta: float) -> Reference:
    from fermiflow.exact import two_electron_dot

    dot = QuantumDot(n_up=n_up, n_down=n_down, dim=2, omega=1.0, coupling=coupling,
                     beta=beta, n_shells=1)
    thermo = two_electron_dot(dot)
    zero = type(thermo)(*(0.0,) * len(thermo))
    return _exact_reference(thermo, zero, "exact two-electron dot (fermiflow.exact, "
                                          "centre of mass x radial solver, 1e-14 weights)")


def _box_reference(n_up: int, n_down: int, rs: float, theta: float) -> Reference:
    from fermiflow.exact import two_electron_box_converged

    gas = ElectronGas(n_up=n_up, n_down=n_down, dim=2, rs=rs, theta=theta, emax=12,
                      twist=(0.25, 0.25))
    result = two_electron_box_converged(gas)
    return _exact_reference(result.thermo, result.error,
                            "exact two-electron box (fermiflow.exact, momentum blocks, "
                            "cusp-augmented plane waves, error from two cutoffs)")


ACCURACY = Rule("accuracy", ("F", "S"))


def _two_electron_cases() -> list[Case]:
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


def _ground_state_reference() -> Reference:
    return Reference({"E": (1.5, 0.0), "F": (1.5, 0.0)},
                     "Taut's closed form: E0 = 3 Ha for 1u1d in the 2D dot, omega = 1 "
                     "(J. Phys. A 27, 1045 (1994); fermiflow.exact reproduces it)")


def _ideal_dot6_reference() -> Reference:
    dot = QuantumDot(n_up=6, n_down=0, dim=2, omega=1.0, coupling=0.0, beta=2.0, n_shells=4)
    ref = ideal_reference(dot, 0.5)
    return Reference({q: (ref[q] / 6, 0.0) for q in ("F", "E", "S")},
                     "exact canonical ideal Fermi gas of the same 20 oscillator modes")


def _other_cases() -> list[Case]:
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


def _registry() -> dict[str, Case]:
    cases = _ideal_cases() + _two_electron_cases() + _gas_cases() + _other_cases()
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate bench case names"
    return {c.name: c for c in sorted(cases, key=lambda c: (TIERS.index(c.tier), c.name))}


CASES = _registry()

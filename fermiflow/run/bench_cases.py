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
from collections.abc import Callable
from typing import NamedTuple

from fermiflow.exact.published import N13_IDEAL_REFERENCE, mstar_runs_2d, rpimc_3d
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.references import classical_reference
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas

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
[run]
n_steps = 2000
checkpoint_every = 500
log_every = 50
n_eval_steps = 64
"""


def _classical_reference() -> Reference:
    gas = ClassicalCoulombGas(n=2, dim=2, temperature=0.5)
    _, exact = classical_reference(gas)
    return Reference({"F": (exact["F"] / 2, 0.0)},
                     "exact pair free energy (quadrature, fermiflow.hamiltonians.classical_exact)")


def _other_cases() -> list[Case]:
    return [Case("classical_pair", "cpu", "classical Coulomb pair in a 2D trap, T=0.5",
                 CLASSICAL, (), _classical_reference,
                 Rule("accuracy", ("F",), max_sigma_rel=2e-3, rel=2e-3))]


def _registry() -> dict[str, Case]:
    cases = _ideal_cases() + _gas_cases() + _other_cases()
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate bench case names"
    return {c.name: c for c in sorted(cases, key=lambda c: (TIERS.index(c.tier), c.name))}


CASES = _registry()

"""Quick-tier checks of the exact ideal Fermi gas against the published tables."""

from __future__ import annotations

import csv
import functools

from fermiflow.exact.published import DATA, N13_IDEAL_REFERENCE, mstar_runs_2d
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.run.bench.case import Case, Reference, Rule

__all__ = ["ideal_cases"]


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

    path = DATA / "ueg3d_n33_polarized.csv"
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


def ideal_cases() -> list[Case]:
    """Return the exact ideal-gas checks of the quick tier."""
    cases = [Case("ideal2d_n13", "quick", "exact ideal 2D gas, N=13, emax=25, Theta=0.15",
                  None, (), _n13_reference, Rule("identity", ("F", "E", "S"), rtol=1e-9),
                  lambda: _per_particle_ideal(_n13_gas()))]
    cases += [_s0_case(n, emax) for n, emax in ((29, 25), (49, 36), (57, 49))]
    cases.append(Case("ideal3d_n33", "quick", "exact ideal 3D gas, N=33, Gamma, rs=1, "
                      "Theta=0.5", None, (), _ideal3d_n33_reference,
                      Rule("identity", ("F", "E", "S"), rtol=1e-8), _ideal3d_n33_check))
    return cases

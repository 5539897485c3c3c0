"""Published reference data for the uniform electron gas, with provenance.

The CSV files in ``fermiflow/exact/data/`` (see its README for sources and caveats):

- ``ueg2d_polarized_theta0.15_ncft.csv``: the runs behind Xie, Zhang & Wang, SciPost
  Phys. 14, 154 (2023), arXiv:2201.03156 (spin-polarized 2D gas, N = 29, 49, 57,
  Theta = 0.15, twist (1/4, 1/4)): F, E, K, V (Rydberg, whole system) and S (k_B) of
  the last 500 epochs, m*/m, and the exact free-fermion S0 of the same N and cutoff;
- ``ueg3d_brown2013_rpimc.csv``: restricted PIMC of Brown, Clark, DuBois & Ceperley,
  PRL 110, 146405 (2013) (Rydberg per electron);
- ``ueg3d_n33_polarized.csv``: the polarized rows of the above beside exact ideal-gas
  values for N = 33 at the Gamma point.

Every loader returns Hartree atomic units (per electron where stated) and the source
string of the row. Host-side, NumPy/stdlib only.

Units: Hartree; S in k_B.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "DATA",
    "PublishedValue",
    "N13_IDEAL_REFERENCE",
    "mstar_runs_2d",
    "rpimc_3d",
]

DATA = Path(__file__).parent / "data"
_RYDBERG = 0.5  # Hartree

# Exact canonical ideal gas, N = 13, 2D polarized, Theta = 0.15, twist (1/4, 1/4),
# emax = 25 (81 modes), from the reference set's README: whole system, F and E in
# Rydberg * rs^-2 (multiply by 1/rs^2 for Rydberg), S in k_B.
N13_IDEAL_REFERENCE = {"F_ry_rs2": 24.8110517643, "E_ry_rs2": 27.5242582385,
                       "S": 4.52201079026}


class PublishedValue(NamedTuple):
    """One published number: value and error in Hartree (or k_B), and its source."""

    value: float
    error: float
    source: str


@functools.cache
def _rows(name: str) -> tuple[dict, ...]:
    with (DATA / name).open(newline="") as handle:
        return tuple(csv.DictReader(handle))


def mstar_runs_2d(n: int, rs: float) -> dict[str, PublishedValue]:
    """Return the m* paper's run of the polarized 2D gas at (n, rs), Theta = 0.15.

    Args:
      n: 29, 49 or 57.
      rs: 0.25, 0.5, 1, 3, 5 or 10.

    Returns:
      ``{"F", "E", "K", "V"}`` per electron in Hartree (mean of the last 500 epochs,
      naive standard error), ``"S"`` per electron in k_B, ``"S0"`` (exact free-fermion
      entropy per electron of the same N, cutoff and twist, error 0) and ``"mstar"``
      (the paper's m*/m); each a :class:`PublishedValue`.

    Raises:
      ValueError: if the table has no such run.

    Examples:
      >>> run = mstar_runs_2d(29, 10.0)
      >>> round(run["F"].value / 0.5, 4)  # Rydberg per electron
      -0.1691
    """
    for row in _rows("ueg2d_polarized_theta0.15_ncft.csv"):
        if int(row["n"]) == n and float(row["rs"]) == float(rs):
            source = (f"Xie, Zhang & Wang, arXiv:2201.03156, run N={n} rs={rs} "
                      f"(CoulombGas@{row['commit'][:12]}, last 500 epochs)")
            out = {q: PublishedValue(float(row[f"{q}_last500_mean"]) * _RYDBERG / n,
                                     float(row[f"{q}_last500_sem_naive"]) * _RYDBERG / n,
                                     source)
                   for q in ("F", "E", "K", "V")}
            out["S"] = PublishedValue(float(row["S_last500_mean"]) / n,
                                      float(row["S_last500_sem_naive"]) / n, source)
            out["S0"] = PublishedValue(float(row["S0_exact_freefermion"]) / n, 0.0, source)
            out["mstar"] = PublishedValue(float(row["mstar_over_m"]),
                                          float(row["mstar_over_m_err"]), source)
            return out
    raise ValueError(f"no published 2D run at n={n}, rs={rs}; see {DATA}/README.md.")


def rpimc_3d(polarization: str, rs: float, theta: float) -> dict[str, PublishedValue]:
    """Return Brown et al. 2013 RPIMC values per electron of the 3D gas.

    Args:
      polarization: "pol" or "unpol".
      rs: Wigner-Seitz radius in Bohr.
      theta: T / T_F.

    Returns:
      quantity -> :class:`PublishedValue` in Hartree per electron: "E", "K", "V",
      "Ec", "dU" (the rows of the non-"exact" data set).

    Raises:
      ValueError: if the table has no such state point.

    Examples:
      >>> e = rpimc_3d("pol", 1.0, 0.5)["E"]
      >>> round(e.value, 4), round(e.error, 4)
      (2.3165, 0.0153)
    """
    out = {}
    for row in _rows("ueg3d_brown2013_rpimc.csv"):
        if (row["polarization"] == polarization and float(row["rs"]) == float(rs)
                and float(row["theta"]) == float(theta) and "/exact/" not in row["source"]):
            out[row["quantity"]] = PublishedValue(float(row["value"]) * _RYDBERG,
                                                  float(row["error"]) * _RYDBERG,
                                                  f"Brown et al. PRL 110, 146405 (2013), "
                                                  f"{row['method']}, {row['source']}")
    if not out:
        raise ValueError(f"no RPIMC row for {polarization} rs={rs} theta={theta}.")
    return out

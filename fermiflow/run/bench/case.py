"""The parts of a ``fermiflow bench`` case: config, reference, tolerance rule, tier.

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

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["TIERS", "Case", "Reference", "Rule"]

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

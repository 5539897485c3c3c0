"""The registry of ``fermiflow bench`` cases, ordered by tier and name."""

from __future__ import annotations

from fermiflow.run.bench.case import TIERS, Case
from fermiflow.run.bench.gas_cases import gas_cases
from fermiflow.run.bench.ideal_cases import ideal_cases
from fermiflow.run.bench.small_cases import small_cases
from fermiflow.run.bench.two_electron_cases import two_electron_cases

__all__ = ["CASES"]


def _registry() -> dict[str, Case]:
    cases = ideal_cases() + two_electron_cases() + gas_cases() + small_cases()
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError("duplicate bench case names")
    return {c.name: c for c in sorted(cases, key=lambda c: (TIERS.index(c.tier), c.name))}


CASES = _registry()

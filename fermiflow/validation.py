"""Eager input checks that raise ``ValueError`` naming the parameter and the fix.

They run on Python scalars in factories and configs, before anything is traced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "check_dim",
    "check_nonnegative_int",
    "check_positive",
    "check_positive_int",
    "check_twist",
]


def check_positive(name: str, value: float, fix: str = "") -> float:
    """Return ``float(value)`` or raise if it is not a finite number > 0."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        hint = f" {fix}" if fix else ""
        raise ValueError(f"{name} must be a finite number > 0, got {value}.{hint}")
    return value


def check_positive_int(name: str, value: int, fix: str = "") -> int:
    """Return ``int(value)`` or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        hint = f" {fix}" if fix else ""
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.{hint}")
    return int(value)


def check_nonnegative_int(name: str, value: int, fix: str = "") -> int:
    """Return ``int(value)`` or raise if it is not an integer >= 0."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        hint = f" {fix}" if fix else ""
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}.{hint}")
    return int(value)


def check_dim(value: int, allowed: Sequence[int] = (2, 3)) -> int:
    """Return ``dim`` or raise if it is not one of ``allowed``."""
    if isinstance(value, bool) or value not in tuple(allowed):
        raise ValueError(
            f"dim must be one of {tuple(allowed)}, got {value!r}. "
            "Pass dim=2 for a square box or dim=3 for a cubic box."
        )
    return int(value)


def check_twist(twist: Sequence[float], dim: int) -> tuple[float, ...]:
    """Return the twist as a tuple of floats, or raise if outside [-1/2, 1/2]^dim."""
    twist = tuple(float(t) for t in twist)
    if len(twist) != dim:
        raise ValueError(
            f"twist must have dim={dim} components, got {len(twist)}: {twist}."
        )
    if any(not (-0.5 <= t <= 0.5) for t in twist):
        raise ValueError(
            f"twist must lie in [-1/2, 1/2]^dim, got {twist}. "
            "Shift each component by an integer into that range (it is the same "
            "boundary condition)."
        )
    return twist

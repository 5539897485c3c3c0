"""Thermodynamic observables of rho = sum_K p(K)|Psi_K><Psi_K| with honest error bars.

From the per-walker local values of :func:`fermiflow.training.step.make_evaluate` (leaves of
shape (steps, batch)) this module forms the traces of F, E, K, V and S, whole system
and per particle, and the virial pressure, then estimates each mean with
:func:`fermiflow.observables.estimate`: ESS and blocking standard errors, and R-hat
across chains, where a chain is one walker and a draw one sampler step.

Per sample (K, x): S_loc = -ln p(K) (exact, so the error of S is purely statistical),
F_loc = T ln p(K) + Re E_loc(x; K), E_loc = K_loc + V_loc.

Virial pressure. For Coulomb systems in a periodic box (the potential, Ewald sum and
Madelung term included, is homogeneous of degree -1 in (x, L)) and kinetic energies
homogeneous of degree -2, the exact thermal state obeys dim P Vol = 2 K + V:
2D P A = K + V/2, 3D 3 P Vol = 2 K + V. Per sample P_loc = (2 K_loc + V_loc) /
(dim Vol). For the ideal gas this is P = 2 E / (dim Vol) = -dF/dV exactly
(:func:`fermiflow.hamiltonians.free_fermions.pressure_ideal_electron_gas`); for a
variational state it holds to the extent the state is exact. It does not apply to a
harmonic trap (pass ``volume=None``).

Units: Hartree atomic units; energies in Hartree, S in k_B, P in Hartree / Bohr^dim.
Host-side NumPy on finished traces (outside jit).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from fermiflow.estimate import Estimate, Thermodynamics
from fermiflow.observables.diagnostics import estimate
from fermiflow.training.loss import LocalValues
from fermiflow.validation import check_dim, check_positive, check_positive_int

__all__ = [
    "observables_to_json",
    "thermodynamic_estimates",
    "thermodynamic_traces",
    "thermodynamic_units",
    "virial_pressure",
]

_UNITS = {
    "free_energy": "Hartree",
    "energy": "Hartree",
    "kinetic": "Hartree",
    "potential": "Hartree",
    "entropy": "k_B",
}


def virial_pressure(kinetic, potential, *, dim: int, volume: float) -> np.ndarray:
    """Return the local virial pressure (2 K + V) / (dim Vol) of Coulomb systems.

    Args:
      kinetic: (...) real local kinetic energies in Hartree.
      potential: (...) local Coulomb potential energies in Hartree (same shape).
      dim: 2 or 3.
      volume: box volume L^dim in Bohr^dim.

    Returns:
      (...) local pressures in Hartree / Bohr^dim.

    Raises:
      ValueError: for a bad dim or volume.

    Examples:
      >>> float(virial_pressure(1.0, -1.0, dim=2, volume=2.0))  # (K + V/2) / A
      0.25
    """
    dim = check_dim(dim)
    volume = check_positive("volume", volume, "Pass L**dim of the box in Bohr^dim.")
    kinetic, potential = np.asarray(kinetic, np.float64), np.asarray(potential, np.float64)
    return (2.0 * kinetic + potential) / (dim * volume)


def thermodynamic_traces(
    values: LocalValues,
    *,
    temperature: float,
    dim: int | None = None,
    volume: float | None = None,
) -> dict[str, np.ndarray]:
    """Return the (chains, draws) traces of F, E, K, V, S (and P) of the whole system.

    Args:
      values: :class:`~fermiflow.training.loss.LocalValues` with (steps, batch) leaves, as
        returned by ``make_evaluate``; kinetic may be complex (its real part is used).
      temperature: T in Hartree (0 for ground-state VMC).
      dim: 2 or 3; needed with ``volume``.
      volume: box volume in Bohr^dim for the virial pressure; None for no pressure
        (traps, or non-Coulomb potentials).

    Returns:
      name -> (batch, steps) float64 trace, i.e. (chains, draws): "free_energy",
      "energy", "kinetic", "potential", "entropy", and "pressure" with a volume.

    Raises:
      ValueError: for a negative temperature, leaves that are not (steps, batch),
        or a volume without dim.
    """
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (Hartree), got {temperature}.")
    kinetic = np.real(np.asarray(values.kinetic)).astype(np.float64)
    potential = np.asarray(values.potential, np.float64)
    log_p = np.asarray(values.log_p, np.float64)
    if kinetic.ndim != 2 or potential.shape != kinetic.shape or log_p.shape != kinetic.shape:
        raise ValueError(
            "values must have (steps, batch) leaves of one shape, got kinetic "
            f"{kinetic.shape}, potential {potential.shape}, log_p {log_p.shape}. Pass "
            "the LocalValues of make_evaluate (values[None] for a single step)."
        )
    energy = kinetic + potential
    traces = {
        "free_energy": temperature * log_p + energy,
        "energy": energy,
        "kinetic": kinetic,
        "potential": potential,
        "entropy": -log_p,
    }
    if volume is not None:
        if dim is None:
            raise ValueError("volume needs dim (2 or 3) for the virial pressure.")
        traces["pressure"] = virial_pressure(kinetic, potential, dim=dim, volume=volume)
    return {name: trace.T for name, trace in traces.items()}


def _estimate(trace: np.ndarray, name: str) -> Estimate:
    """Return ``estimate(trace)``, with a finite error for a trace constant up to rounding.

    ArviZ's mcse is NaN for a trace constant up to rounding (F_loc of an exact p(K)
    for an ideal gas); the blocking error (about 1e-17 there) replaces it.
    """
    tiny = 64 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(trace))))
    if np.std(trace) > tiny:
        return estimate(trace, name=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return estimate(trace, name=name, method="blocking")


def thermodynamic_units(dim: int | None = None) -> dict[str, str]:
    """Return the units of each name of :func:`thermodynamic_estimates`.

    Examples:
      >>> thermodynamic_units(3)["pressure"], thermodynamic_units()["entropy_per_particle"]
      ('Hartree/Bohr^3', 'k_B')
    """
    units = dict(_UNITS) | {f"{k}_per_particle": v for k, v in _UNITS.items()}
    return units | ({"pressure": f"Hartree/Bohr^{dim}"} if dim is not None else {})


def thermodynamic_estimates(
    values: LocalValues,
    *,
    temperature: float,
    n_particles: int,
    dim: int | None = None,
    volume: float | None = None,
) -> dict[str, Estimate]:
    """Estimate F, E, K, V, S total and per particle, and the virial pressure.

    Args:
      values: :class:`~fermiflow.training.loss.LocalValues` with (steps, batch) leaves.
      temperature: T in Hartree.
      n_particles: N, for the per-particle values.
      dim: 2 or 3, with ``volume``.
      volume: box volume in Bohr^dim, or None (no pressure).

    Returns:
      name -> :class:`~fermiflow.estimate.Estimate`: "free_energy", "energy",
      "kinetic", "potential", "entropy", each also as "<name>_per_particle", and
      "pressure" with a volume (units: :func:`thermodynamic_units`).

    Raises:
      ValueError: as :func:`thermodynamic_traces`, for n_particles < 1, or for
        traces too short or non-finite (:func:`~fermiflow.observables.estimate`).

    Examples:
      >>> import jax
      >>> from fermiflow.training.loss import LocalValues
      >>> k, v, log_p = jax.random.normal(jax.random.key(0), (3, 256, 4))  # (steps, batch)
      >>> out = thermodynamic_estimates(LocalValues(k, v, log_p - 3.0), temperature=0.1,
      ...                               n_particles=2, dim=2, volume=10.0)
      >>> out["energy"].n_samples, thermodynamic_units(2)["pressure"]
      (1024, 'Hartree/Bohr^2')
      >>> abs(out["entropy_per_particle"].value - 1.5) < 5 * out["entropy_per_particle"].error
      True
    """
    n_particles = check_positive_int("n_particles", n_particles)
    traces = thermodynamic_traces(values, temperature=temperature, dim=dim, volume=volume)
    out = {}
    for name, trace in traces.items():
        out[name] = _estimate(trace, name)
        if name != "pressure":
            out[f"{name}_per_particle"] = out[name].scaled(1.0 / n_particles)
    return out


def blocked_thermodynamics(
    values: LocalValues, temperature: float
) -> tuple[Thermodynamics, dict]:
    """Blocked estimates of F, E, K, V, S from fresh samples, non-finite walkers out.

    The run's final evaluation: few draws per walker, so the error is the blocking
    error along the steps with walkers as chains (``method="blocking"``; a missing
    plateau is expected and not warned about). A walker with any NaN/inf value is
    left out, and ``info`` says how many were, so nothing non-finite is averaged
    silently.

    Args:
      values: :class:`~fermiflow.training.loss.LocalValues` with (steps, batch) leaves.
      temperature: T in Hartree.

    Returns:
      (estimates, info): a :class:`~fermiflow.estimate.Thermodynamics` of whole-system
      estimates (host floats) and a dict with ``n_samples``,
      ``n_excluded_walkers`` and ``errors`` (how the errors were obtained).

    Raises:
      ValueError: if every walker has a non-finite value.
    """
    traces = thermodynamic_traces(values, temperature=temperature)  # (walkers, steps)
    finite = np.all([np.isfinite(t).all(axis=1) for t in traces.values()], axis=0)
    if not finite.any():
        raise ValueError("every walker has a NaN/inf local value; nothing to estimate.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # few draws: no plateau test
        est = {k: estimate(t[finite], name=k, method="blocking") for k, t in traces.items()}
    info = {"n_samples": int(finite.sum()) * next(iter(traces.values())).shape[1],
            "n_excluded_walkers": int((~finite).sum()),
            "errors": "blocking errors over steps, walkers as chains"}
    return Thermodynamics(*(est[k] for k in Thermodynamics._fields)), info


def observables_to_json(
    estimates: Mapping[str, Estimate], units: Mapping[str, str]
) -> dict[str, dict]:
    """Return a JSON-ready dict name -> {value, error, method, ..., units}."""
    return {name: est.to_dict() | {"units": units[name]} for name, est in estimates.items()}

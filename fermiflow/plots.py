"""Reports of a run: exact references, final estimates, training curves, summary table.

Inputs are host-side: metric rows as written to ``metrics.jsonl`` (whole-system
values in Hartree, entropy in k_B; a failed step holds ``None``) and estimate dicts
``{"F": (mean, err), ...}``. Curves and tables are per particle. Matplotlib is used
through its object API with the Agg canvas, so no global backend is touched.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fermiflow.hamiltonians.units import hartree_to_rydberg

__all__ = [
    "QUANTITIES",
    "blocked_estimates",
    "classical_reference",
    "plot_observables",
    "plot_training",
    "quantum_reference",
    "summary_table",
]

QUANTITIES = ("F", "E", "K", "V", "S")
_LABELS = {"F": "free energy F/N [Ha]", "E": "energy E/N [Ha]", "K": "kinetic K/N [Ha]",
           "V": "potential V/N [Ha]", "S": "entropy S/N [k_B]"}


def blocked_estimates(values: Any, temperature: float) -> tuple[dict, dict]:
    """Return whole-system (mean, blocking stderr) of F, E, K, V, S from local values.

    Args:
      values: :class:`fermiflow.loss.LocalValues` with (steps, batch) NumPy leaves
        (fresh samples at fixed params, e.g. from ``make_evaluate``).
      temperature: T in Hartree.

    Returns:
      (estimates, info): ``{quantity: (mean, stderr)}``, the walkers treated as
      independent chains and blocked along the steps; info counts the samples used
      and the walkers left out because a value was not finite.
    """
    from fermiflow.observables import blocking_error

    kinetic = np.real(np.asarray(values.kinetic))
    local = {"K": kinetic, "V": np.asarray(values.potential), "S": -np.asarray(values.log_p)}
    local["E"] = local["K"] + local["V"]
    local["F"] = local["E"] - temperature * local["S"]
    finite = np.all([np.isfinite(v).all(axis=0) for v in local.values()], axis=0)
    estimates = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws per chain: no plateau test possible
        for q in QUANTITIES:
            trace = local[q][:, finite].T  # (walkers, steps)
            estimates[q] = (float(trace.mean()), float(blocking_error(trace)))
    info = {"n_samples": int(finite.sum() * kinetic.shape[0]),
            "n_excluded_walkers": int((~finite).sum()),
            "errors": "blocking errors over steps, walkers as chains"}
    return estimates, info


def quantum_reference(problem: Any) -> dict:
    """Return the exact non-interacting F, E, K, V, S (whole system) of a problem.

    The same modes, N and T (the canonical ideal gas, or the closed shell at T = 0).
    In the box all of E is kinetic and V (Coulomb) is None; in the trap the virial
    theorem of each oscillator level gives K = V = E / 2.
    """
    from fermiflow.hamiltonians.free_fermions import canonical_ideal_gas_spinful
    from fermiflow.models.wavefunction import closed_shell_occupation

    if problem.temperature == 0:
        occ = closed_shell_occupation(problem.system.spectrum, problem.n_up, problem.n_down)
        free = energy = float(np.sum(problem.mode_energies[occ]))
        entropy = 0.0
    else:
        thermo = canonical_ideal_gas_spinful(problem.mode_energies, problem.n_up,
                                             problem.n_down, 1.0 / problem.temperature)
        free, energy, entropy = map(float, (thermo.free_energy, thermo.energy, thermo.entropy))
    if problem.box_length is not None:
        return {"F": free, "E": energy, "K": energy, "V": None, "S": entropy}
    return {"F": free, "E": energy, "K": energy / 2, "V": energy / 2, "S": entropy}


def classical_reference(system: Any) -> tuple[dict, dict]:
    """Return (ideal, exact) whole-system references of a ClassicalCoulombGas.

    Labelled charges, configurational part only (as :mod:`fermiflow.classical`):
    without repulsion Z0 = (2 pi T / omega^2)^(n dim / 2), F0 = -T ln Z0,
    E0 = n dim T / 2. The exact F of the interacting gas is known for n = 2.
    """
    from fermiflow.classical import classical_pair_free_energy

    n, dim, temperature, omega = system.n, system.dim, system.temperature, system.omega
    free = -temperature * n * dim / 2 * math.log(2 * math.pi * temperature / omega**2)
    energy = n * dim * temperature / 2
    ideal = {"F": free, "E": energy, "K": None, "V": None, "S": (energy - free) / temperature}
    exact = {}
    if n == 2:
        exact = {"F": classical_pair_free_energy(temperature=temperature, omega=omega,
                                                 coupling=system.coupling, dim=dim)}
    return ideal, exact


def _column(rows: Sequence[Mapping], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])


def plot_training(
    rows: Sequence[Mapping],
    path: str | Path,
    *,
    n_particles: int,
    reference: Mapping[str, float | None] | None = None,
    title: str = "",
) -> Path | None:
    """Draw F, E, K, V, S per particle and the sampler/gradient diagnostics against step.

    Args:
      rows: metric rows with a ``step`` and the keys of :data:`QUANTITIES` (and
        ``<q>_err``), whole system; None marks a failed step (left out, not drawn).
      path: the PNG to write.
      n_particles: N, to divide by.
      reference: whole-system exact non-interacting values by quantity (None: none),
        drawn as dashed lines.
      title: figure title.

    Returns:
      The path written, or None when there are no rows.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        return None
    reference = reference or {}
    step = _column(rows, "step")
    present = [q for q in QUANTITIES if np.isfinite(_column(rows, q)).any()]
    figure = Figure(figsize=(4.2 * (len(present) + 1) / 2 + 2, 7.0), layout="constrained")
    FigureCanvasAgg(figure)
    n_columns = math.ceil((len(present) + 1) / 2)
    axes = figure.subplots(2, n_columns, squeeze=False).ravel()
    for axis, quantity in zip(axes, present, strict=False):
        mean = _column(rows, quantity) / n_particles
        err = _column(rows, f"{quantity}_err") / n_particles
        axis.plot(step, mean, lw=0.8, color="C0", label="variational")
        axis.fill_between(step, mean - err, mean + err, color="C0", alpha=0.25, lw=0)
        if reference.get(quantity) is not None:
            axis.axhline(reference[quantity] / n_particles, ls="--", color="k", lw=1,
                         label="exact ideal (non-interacting)")
        axis.set_xlabel("step")
        axis.set_ylabel(_LABELS[quantity])
        axis.legend(fontsize=7)
    diagnostics = axes[len(present)]
    for key, color in (("acceptance", "C1"), ("width", "C2")):
        diagnostics.plot(step, _column(rows, key), color=color, lw=0.8, label=key)
    diagnostics.set_xlabel("step")
    diagnostics.set_ylabel("acceptance, width [Bohr]")
    grads = diagnostics.twinx()
    for key, color in (("grad_norm_occupation", "C3"), ("grad_norm_wavefunction", "C4")):
        values = _column(rows, key)
        if np.isfinite(values).any() and np.nanmax(values) > 0:
            grads.semilogy(step, values, color=color, lw=0.6, label=key)
    grads.set_ylabel("gradient norm")
    for axis, where in ((diagnostics, "upper left"), (grads, "upper right")):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc=where)
    for axis in axes[len(present) + 1:]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=9)
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path


def _pair(mean: float, err: float, scale: float) -> str:
    return f"{mean * scale:.6f} ± {err * scale:.6f}"


def summary_table(
    estimates: Mapping[str, tuple[float, float] | None],
    *,
    n_particles: int,
    reference: Mapping[str, float | None] | None = None,
    exact: Mapping[str, float | None] | None = None,
    title: str = "",
) -> str:
    """Format F, E, K, V, S per particle, Hartree and Rydberg, beside the references.

    Args:
      estimates: whole-system ``(mean, stderr)`` by quantity (Hartree; S in k_B), or
        None where the run does not estimate it.
      n_particles: N.
      reference: whole-system exact non-interacting values (None where undefined).
      exact: optional whole-system exact values of the interacting system.
      title: a first line.

    Returns:
      The table as text (S in k_B per particle, not converted).

    Examples:
      >>> table = summary_table({"F": (2.0, 0.02), "S": (1.0, 0.1)}, n_particles=2,
      ...                       reference={"F": 1.5, "S": 1.2})
      >>> table.splitlines()[2].split()
      ['F/N', '1.000000', '±', '0.010000', '2.000000', '±', '0.020000', '0.750000', '1.500000']
    """
    reference, exact = reference or {}, exact or {}
    lines = [title] if title else []
    header = (f"{'quantity':<16}{'per particle [Ha]':>28}{'per particle [Ry]':>28}"
              f"{'ideal [Ha]':>15}{'ideal [Ry]':>15}")
    header += f"{'exact [Ha]':>15}" if exact else ""
    lines += [header, "-" * len(header)]
    for quantity in QUANTITIES:
        entropy = quantity == "S"
        ry = 1.0 if entropy else float(hartree_to_rydberg(1.0))
        label = "S/N [k_B]" if entropy else f"{quantity}/N"
        value = estimates.get(quantity)
        if value is None:
            cells = f"{'—':>28}{'—':>28}"
        else:
            mean, err = value[0] / n_particles, value[1] / n_particles
            cells = f"{_pair(mean, err, 1.0):>28}{_pair(mean, err, ry):>28}"
            if entropy:
                cells = f"{_pair(mean, err, 1.0):>28}{'':>28}"
        ref = reference.get(quantity)
        if ref is None:
            refs = f"{'—':>15}{'—':>15}"
        elif entropy:
            refs = f"{ref / n_particles:15.6f}{'':>15}"
        else:
            refs = f"{ref / n_particles:15.6f}{ref * ry / n_particles:15.6f}"
        if exact:
            ex = exact.get(quantity)
            refs += f"{'—':>15}" if ex is None else f"{ex / n_particles:15.6f}"
        lines.append(f"{label:<16}{cells}{refs}".rstrip())
    return "\n".join(lines)


def plot_observables(result: dict, path: Path, title: str) -> Path | None:
    """Plot the curves of a ``fermiflow observe`` result (g(r), S(k), n(k), densities).

    Returns the path written, or None when the result has no curve to plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [key for key in ("pair_correlation", "structure_factor", "momentum") if key in result]
    density = result.get("density", {})
    panels += [f"density_{key}" for key in ("radial", "image") if key in density]
    if not panels:
        return None
    figure = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for axis, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels,
                           strict=True):
        if panel == "density_image":
            image, edges = np.array(density["image"]["value"]), density["image"]["edges"]
            mesh = axis.pcolormesh(edges, edges, image.T, cmap="viridis")
            figure.colorbar(mesh, ax=axis, label="density [Bohr^-2]")
            axis.set_aspect("equal")
            axis.set_xlabel("x [Bohr]")
            axis.set_ylabel("y [Bohr]")
            continue
        if panel == "momentum":
            data = result["momentum"]
            k = np.array(data["k"])
            for s, name in enumerate(data["species"]):
                for label, key, marker in (("off-diagonal", "off_diagonal", "o"),
                                           ("p(K)", "quasi_particle", "x")):
                    axis.errorbar(k, np.array(data[key]["value"])[s], np.array(
                        data[key]["error"])[s], fmt=marker, ms=3, label=f"{name} {label}")
                axis.plot(k, data["ideal_exact"][s], "k.", ms=2, label=f"{name} ideal")
            axis.set_xlabel("|k| [1/Bohr]")
            axis.set_ylabel("n(k)")
        else:
            data = result[panel] if panel in result else density[panel.split("_")[1]]
            xs = np.array(data.get("r", data.get("k")))
            value, error = np.array(data["value"]), np.array(data["error"])
            value, error = (value, error) if value.ndim > 1 else (value[None], error[None])
            for c, name in enumerate(data.get("channels", ("all",))):
                axis.errorbar(xs, value[c], error[c], ms=3, fmt="o-", lw=0.8, label=name)
            axis.set_xlabel("r [Bohr]" if "r" in data else "k [1/Bohr]")
            axis.set_ylabel({"pair_correlation": "g(r)", "structure_factor": "S(k)"}.get(
                panel, "density [Bohr^-dim]"))
        axis.legend(fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=110)
    return path

"""Reports of a run: exact references, final estimates, training curves, summary table.

Inputs are host-side: metric rows as written to ``metrics.jsonl`` (whole-system
values in Hartree, entropy in k_B; a failed step holds ``None``) and
:class:`~fermiflow.estimate.Thermodynamics` estimates. Curves and tables are per
particle. Matplotlib is used through its object API with the Agg canvas, so no
global backend is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fermiflow.estimate import Thermodynamics
from fermiflow.hamiltonians.units import hartree_to_rydberg

__all__ = [
    "QUANTITIES",
    "plot_observables",
    "plot_training",
    "summary_table",
    "thermo_columns",
]

QUANTITIES = ("F", "E", "K", "V", "S")

_LABELS = {"F": "free energy F/N [Ha]", "E": "energy E/N [Ha]", "K": "kinetic K/N [Ha]",
           "V": "potential V/N [Ha]", "S": "entropy S/N [k_B]"}


def thermo_columns(estimates: Thermodynamics) -> dict:
    """Return ``{"F": value, "F_err": error, ...}`` of the defined quantities.

    Args:
      estimates: a :class:`~fermiflow.estimate.Thermodynamics` (any leaf shape).

    Returns:
      Columns named by :data:`QUANTITIES` and ``<q>_err``; undefined ones omitted.
    """
    columns = {}
    for q, e in zip(QUANTITIES, estimates, strict=True):
        if e is not None:
            columns[q], columns[f"{q}_err"] = e.value, e.error
    return columns


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
    estimates: Thermodynamics | None,
    *,
    n_particles: int,
    reference: Mapping[str, float | None] | None = None,
    exact: Mapping[str, float | None] | None = None,
    title: str = "",
) -> str:
    """Format F, E, K, V, S per particle, Hartree and Rydberg, beside the references.

    Args:
      estimates: whole-system estimates (Hartree; S in k_B; a field None where the
        run does not estimate it), or None for a table of the references only.
      n_particles: N.
      reference: whole-system exact non-interacting values (None where undefined).
      exact: optional whole-system exact values of the interacting system.
      title: a first line.

    Returns:
      The table as text (S in k_B per particle, not converted).

    Examples:
      >>> from fermiflow.estimate import Estimate
      >>> e = Thermodynamics(Estimate(2.0, 0.02), Estimate(3.0, 0.03), None, None,
      ...                    Estimate(1.0, 0.1))
      >>> table = summary_table(e, n_particles=2, reference={"F": 1.5, "S": 1.2})
      >>> table.splitlines()[2].split()
      ['F/N', '1.000000', '±', '0.010000', '2.000000', '±', '0.020000', '0.750000', '1.500000']
    """
    reference, exact = reference or {}, exact or {}
    lines = [title] if title else []
    header = (f"{'quantity':<16}{'per particle [Ha]':>28}{'per particle [Ry]':>28}"
              f"{'ideal [Ha]':>15}{'ideal [Ry]':>15}")
    header += f"{'exact [Ha]':>15}" if exact else ""
    lines += [header, "-" * len(header)]
    fields = estimates if estimates is not None else (None,) * len(QUANTITIES)
    for quantity, value in zip(QUANTITIES, fields, strict=True):
        entropy = quantity == "S"
        ry = 1.0 if entropy else float(hartree_to_rydberg(1.0))
        label = "S/N [k_B]" if entropy else f"{quantity}/N"
        if value is None:
            cells = f"{'—':>28}{'—':>28}"
        else:
            mean, err = value.value / n_particles, value.error / n_particles
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

"""``fermiflow observe RUN_DIR``: observables of a saved run, with honest error bars.

Loads the run's ``config.json`` and its newest readable checkpoint (or a chosen one),
draws fresh samples from the SAVED sampler state (walkers, K, width) at the saved
params with the key ``fold_in(checkpoint key, 2)`` (the run's own final evaluation
uses ``fold_in(key, 1)``), and writes into ``RUN_DIR/observe`` (or ``--out``):

- ``observables.json``: each observable with value, error (ESS), error_blocking,
  R-hat, ESS, sample count and units; curves as lists;
- ``observables.png``: g(r), S(k), n(k) (electron gas) or the radial density and the
  density image (quantum dot);
- ``local_values.nc``: ArviZ ``InferenceData`` (netcdf, h5netcdf) of the per-sample
  local values, dims (chain = walker, draw = step).

Observables (``--observables``): "thermodynamics" (F, E, K, V, S, total and per
particle; for the electron gas the virial pressure and m*/m three ways: S / S_0, the
inversion S = S_0(T m*/m) and the fit of -ln p(K) against E_0(K), plus S relative to
the pretrained model when ``pretrain.jsonl`` exists), "pair" (spin-resolved g(r)),
"structure_factor" (S(k) averaged over each lattice shell |n|^2), "momentum" (n(k)
from displaced-electron ratios on a subset of walkers, and <n_k> from p(K)),
"density" (box grid for the gas; radial profile and image for dots). Pair, structure
factor and momentum need the periodic box. Curves are estimated bin by bin with
``fermiflow.observables.estimate``; the density image is a plain mean (no error).

Host shell: I/O and plotting here, physics in :mod:`fermiflow.observables`.
Units: Hartree atomic units (lengths Bohr, energies Hartree, S in k_B).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow import observables as obs
from fermiflow.estimate import Estimate
from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.flow import fold_fraction
from fermiflow.run.checkpoint import load_checkpoint, restore_latest
from fermiflow.run.config import Config
from fermiflow.run.engine import build_engine
from fermiflow.run.loop import load_run_config, read_rows
from fermiflow.run.reports import plot_observables
from fermiflow.run.schema import OBSERVABLES

__all__ = [
    "OBSERVABLES",
    "LoadedRun",
    "format_summary",
    "json_ready",
    "load_run",
    "observe_run",
    "sample_run",
]

_BOX_ONLY = ("pair", "structure_factor", "momentum")


class LoadedRun(NamedTuple):
    """A run restored for observation: config, system, pieces and the saved state."""

    config: Config
    system: Any
    problem: Any
    sampler: Any
    loss: Any
    state: Any  # TrainState with host leaves
    checkpoint: Path


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> LoadedRun:
    """Restore a quantum run: the newest readable checkpoint, or ``checkpoint``.

    Raises:
      ValueError: for a missing or broken run directory, a classical run, or a
        checkpoint that cannot be read.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.system.kind == "classical":
        raise ValueError("fermiflow observe needs a quantum run (electron_gas or "
                         "quantum_dot); the classical gas has no K, Psi_K or n(k).")
    engine = build_engine(config)
    try:
        if checkpoint is None:
            restored = restore_latest(run_dir / "checkpoints", engine.template)
        else:
            restored = load_checkpoint(checkpoint, engine.template)
    except (FileNotFoundError, OSError) as error:
        raise ValueError(f"{run_dir}: {error}") from None
    return LoadedRun(config, *engine.pieces, restored.state, restored.path)


def sample_run(run: LoadedRun, n_steps: int) -> tuple[Any, Any, Any]:
    """Return (occ (steps, batch, n), x (steps, batch, n, dim), LocalValues) on the host.

    The local values come from the run's own loss (its kinetic estimator: exact, or the
    unbiased split/Hutchinson one of ``optimizer.kinetic = "split"``).
    """
    params, sampler, loss = run.state.params, run.sampler, run.loss

    @jax.jit
    def chunk(key, state):
        def body(state, key_step):
            key_sample, key_local = jax.random.split(key_step)
            state, _ = sampler.sample(key_sample, state, params)
            return state, (state.occ, state.walkers.chain.position,
                           loss.local_values(params, state, key_local))

        return jax.lax.scan(body, state, jax.random.split(key, n_steps))

    _, out = chunk(jax.random.fold_in(run.state.key, 2), run.state.sampler_state)
    return jax.tree.map(np.asarray, out)


def _curve(per_sample: np.ndarray, name: str) -> dict:
    """Estimate every component of (steps, batch, ...) samples: value/error lists."""
    data = np.swapaxes(np.asarray(per_sample, np.float64), 0, 1)  # (chains, draws, ...)
    flat = data.reshape(data.shape[:2] + (-1,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # short traces: noted in errors
        ests = [obs.estimate(flat[:, :, i], name=f"{name}[{i}]") for i in range(flat.shape[2])]
    shape = data.shape[2:]
    pick = lambda f: np.array([f(e) for e in ests]).reshape(shape).tolist()  # noqa: E731
    return {"value": pick(lambda e: e.value), "error": pick(lambda e: e.error),
            "method": ests[0].method, "r_hat_max": max(e.r_hat for e in ests)}


def _mapped(fn, *arrays, batch_size=256):
    """Apply a per-sample fn over (steps, batch, ...) arrays, chunked."""
    lead = arrays[0].shape[:2]
    flat = [jnp.asarray(a.reshape((-1,) + a.shape[2:])) for a in arrays]
    out = jax.jit(lambda *f: jax.lax.map(lambda c: fn(*c), f, batch_size=batch_size))(*flat)
    return np.asarray(out).reshape(lead + out.shape[1:])


def _thermodynamics(run: LoadedRun, values: Any, occ: np.ndarray, run_dir: Path) -> dict:
    gas, problem = isinstance(run.system, ElectronGas), run.problem
    volume = problem.box_length**problem.dim if gas else None
    result = obs.thermodynamic_estimates(values, temperature=problem.temperature,
                                         n_particles=problem.n, dim=problem.dim, volume=volume)
    units = obs.thermodynamic_units(problem.dim if gas else None)
    out = {"estimates": obs.observables_to_json(result, units)}
    if gas and problem.temperature > 0:
        # Three estimators of m*/m (fermiflow.observables.effective_mass): S / S0, the
        # inversion S = S0(T m*/m), and the fit of -ln p(K) against E0(K).
        out["effective_mass"] = obs.effective_mass_ratio(
            result["entropy"], obs.ideal_entropy(run.system)).to_dict()
        out["effective_mass_entropy_inversion"] = obs.effective_mass_from_entropy(
            result["entropy"], run.system).to_dict()
        fit = obs.effective_mass_from_occupations(
            np.asarray(values.log_p), problem.mode_energies[occ].sum(-1), 1 / problem.temperature)
        out["effective_mass_occupation_fit"] = {
            **fit.mass_ratio.to_dict(), "slope": fit.slope, "intercept": fit.intercept,
            "residual_rms": fit.residual_rms, "r_squared": fit.r_squared}
        rows = read_rows(run_dir / "pretrain.jsonl")
        if rows and rows[-1].get("S"):
            last = rows[-1]
            pre = Estimate(last["S"], last["S_err"], "independent",
                           n_samples=run.config.sampler.batch)
            out["effective_mass_pretrained"] = obs.effective_mass_ratio_pretrained(
                result["entropy"], pre).to_dict()
    return out


def _box_observables(run: LoadedRun, names, occ, x, n_bins, n_displacements, key) -> dict:
    problem, out = run.problem, {}
    box, n_up, n_down = problem.box_length, problem.n_up, problem.n_down
    if "pair" in names and problem.n >= 2:
        edges = np.linspace(0.0, box / 2, n_bins + 1)
        g = _mapped(lambda c: obs.pair_correlation(c, edges, box_length=box, n_up=n_up), x)
        out["pair_correlation"] = {"r": (0.5 * (edges[1:] + edges[:-1])).tolist(),
                                   "units": "r in Bohr; g dimensionless",
                                   "channels": obs.pair_channels(n_up, n_down), **_curve(g, "g")}
    if "structure_factor" in names and problem.n >= 2:
        k = obs.reciprocal_lattice(box_length=box, dim=problem.dim, max_norm2=4 * run.system.emax)
        norm2 = np.rint((k * box / (2 * math.pi)) ** 2).sum(1).astype(int)
        shells = np.unique(norm2)
        onehot = (norm2[:, None] == shells[None, :]) / np.bincount(norm2)[shells]
        s = _mapped(lambda c: obs.structure_factor(c, k, n_up=n_up) @ onehot, x)
        out["structure_factor"] = {"k": (2 * math.pi / box * np.sqrt(shells)).tolist(),
                                   "units": "k in 1/Bohr", "channels":
                                   obs.pair_channels(n_up, n_down), **_curve(s, "S")}
    if "momentum" in names:
        wavevectors, counts = run.system.spectrum.wavevectors, (n_up, n_down)
        counts = tuple(c for c in counts if c)
        ratios = obs.make_one_body_ratios(problem.log_psi, n_up=n_up, n_down=n_down)
        walkers = max(1, min(x.shape[1], 4096 // x.shape[0]))  # n * nd log Psi per sample
        keys = jax.random.split(key, x.shape[0] * walkers).reshape(x.shape[0], walkers)

        def one(key_data, o, c):
            d = obs.random_displacements(jax.random.wrap_key_data(key_data), box_length=box,
                                         dim=problem.dim, n_displacements=n_displacements,
                                         dtype=c.dtype)
            r = ratios(run.state.params.wavefunction, o, c, d)
            return obs.momentum_distribution(r, d, wavevectors, n_per_species=counts)

        n_k = _mapped(one, jax.random.key_data(keys), occ[:, :walkers], x[:, :walkers])
        indicator = _mapped(lambda o: obs.occupation_indicator(
            o, n_modes=len(wavevectors), n_up=n_up), occ)
        ideal = electron_gas_ideal_thermo(run.system).occupations
        out["momentum"] = {"k": np.linalg.norm(wavevectors, axis=1).tolist(),
                           "units": "|k| in 1/Bohr", "species": obs.spin_species(n_up, n_down),
                           "n_walkers": walkers, "n_displacements": n_displacements,
                           "off_diagonal": _curve(n_k, "n_k"),
                           "quasi_particle": _curve(indicator, "<n_k>"),
                           "ideal_exact": ideal[[i for i, c in enumerate((n_up, n_down))
                                                 if c]].tolist()}
    return out


def _density(run: LoadedRun, x: np.ndarray, n_bins: int) -> dict:
    problem = run.problem
    if problem.box_length is not None:
        grid = max(2, min(8, n_bins // 4))
        rho = _mapped(lambda c: obs.box_density(c, box_length=problem.box_length,
                                                n_grid=grid), x)
        return {"box": {"n_grid": grid, "uniform": problem.n / problem.box_length**problem.dim,
                        "units": "Bohr^-dim", **_curve(rho, "rho")}}
    r_max = float(np.quantile(np.linalg.norm(x, axis=-1), 0.999))
    edges = np.linspace(0.0, r_max, n_bins + 1)
    radial = _mapped(lambda c: obs.radial_density(c, edges), x)
    out = {"radial": {"r": (0.5 * (edges[1:] + edges[:-1])).tolist(),
                      "units": "r in Bohr; density in Bohr^-dim", **_curve(radial, "rho(r)")}}
    if problem.dim >= 2:
        square = np.linspace(-r_max, r_max, 2 * n_bins + 1)
        image = _mapped(lambda c: obs.density_image(c, square), x).mean((0, 1))
        out["image"] = {"edges": square.tolist(), "value": image.tolist(),
                        "units": "Bohr^-2 (mean only)"}
    return out


def json_ready(value: Any) -> Any:
    """Return a JSON-ready copy: NaN/inf -> None, NumPy -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.generic, float)):
        value = value.item() if isinstance(value, np.generic) else value
        return value if not isinstance(value, float) or math.isfinite(value) else None
    return value


def observe_run(run_dir: str | Path, *, n_samples: int | None = None,
                observables: Sequence[str] | None = None, checkpoint: str | Path | None = None,
                out_dir: str | Path | None = None, n_bins: int = 32,
                n_displacements: int = 2) -> dict:
    """Compute the observables of a saved run and write them (module docstring).

    Args:
      run_dir: a run directory of ``fermiflow run``.
      n_samples: fresh samples in all (rounded up to whole sampler steps of the
        run's batch, at least 8 steps); default batch * max(run.n_eval_steps, 8).
      observables: names from :data:`OBSERVABLES`; default all that apply.
      checkpoint: a checkpoint file; default the newest readable one.
      out_dir: default ``run_dir / "observe"``.
      n_bins: radial bins of g(r) and of the densities.
      n_displacements: displacements per sample of the n(k) estimator.

    Returns:
      The dict written to ``observables.json``.

    Raises:
      ValueError: for an unknown observable, a box-only observable of a dot, a
        classical run or a bad sample count.
    """
    run_dir = Path(run_dir)
    names = tuple(observables or OBSERVABLES)
    unknown = sorted(set(names) - set(OBSERVABLES))
    if unknown:
        raise ValueError(f"unknown observables {unknown}; choose from {OBSERVABLES}.")
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"--samples must be >= 1, got {n_samples}.")
    run = load_run(run_dir, checkpoint)
    box = run.problem.box_length is not None
    if observables and not box and set(names) & set(_BOX_ONLY):
        raise ValueError(f"{sorted(set(names) & set(_BOX_ONLY))} need the periodic box of an "
                         "electron gas; this run is a quantum dot.")
    names = tuple(n for n in names if box or n not in _BOX_ONLY)
    batch = run.config.sampler.batch
    default = batch * max(run.config.run.n_eval_steps, 8)
    n_steps = max(8, math.ceil((n_samples or default) / batch))
    occ, x, values = sample_run(run, n_steps)
    result = {"run_dir": str(run_dir), "checkpoint": run.checkpoint.name,
              "step": int(run.state.step), "n_samples": n_steps * batch, "batch": batch,
              "n_steps": n_steps, "key": "fold_in(checkpoint key, 2)",
              "units": "Hartree atomic units; whole system unless *_per_particle"}
    if "thermodynamics" in names:
        result["thermodynamics"] = _thermodynamics(run, values, occ, run_dir)
    if box:
        result.update(_box_observables(run, names, occ, x, n_bins, n_displacements,
                                       jax.random.fold_in(run.state.key, 3)))
    if "density" in names:
        result["density"] = _density(run, x, n_bins)
    if box:  # walkers never see a fold: test on uniform configurations (flow.fold_fraction)
        uniform = jax.random.uniform(jax.random.fold_in(run.state.key, 5),
                                     (4096, run.problem.n, run.problem.dim), x.dtype)
        fraction, err = fold_fraction(run.problem.flow.apply, run.state.params.wavefunction,
                                      uniform * run.problem.box_length)
        result["flow_fold_fraction"] = {"value": float(fraction), "error": float(err),
                                        "n_configurations": 4096,
                                        "configurations": "uniform in the box"}
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "observe"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = json_ready(result)
    (out_dir / "observables.json").write_text(json.dumps(result, indent=1, allow_nan=False))
    title = f"{run_dir.name}: {run.config.system.kind}, N={run.problem.n}, step {result['step']}"
    plot_observables(result, out_dir / "observables.png", title)
    traces = obs.thermodynamic_traces(values, temperature=run.problem.temperature)
    traces["log_p"] = np.asarray(values.log_p, np.float64).T
    with warnings.catch_warnings():  # ArviZ warns when walkers outnumber steps
        warnings.simplefilter("ignore", UserWarning)
        obs.to_inference_data(traces).to_netcdf(str(out_dir / "local_values.nc"))
    return result


def format_summary(result: dict) -> str:
    """Return the text report of an :func:`observe_run` result (per-particle values)."""
    lines = []
    fold = result.get("flow_fold_fraction")
    if fold is not None and fold["value"] > 0:
        lines.append(f"  WARNING: the flow folds space (det dzeta/dx <= 0) on {fold['value']:.4f}"
                     f" +- {fold['error']:.4f} of uniform configurations: Psi_K is not "
                     "normalized there and F is not a guaranteed upper bound.")
    lines.append(f"fermiflow observe: {result['run_dir']} {result['checkpoint']}, "
                 f"{result['n_samples']} fresh samples")
    thermo = result.get("thermodynamics", {})
    for name, o in thermo.get("estimates", {}).items():
        if name.endswith("_per_particle") or name == "pressure":
            error = "nan" if o["error"] is None else f"{o['error']:.3g}"
            lines.append(f"  {name:28s} {o['value']:.8g} +- {error} {o['units']}")
    for key in ("effective_mass", "effective_mass_entropy_inversion",
                "effective_mass_occupation_fit", "effective_mass_pretrained"):
        if key in thermo:
            m = thermo[key]
            lines.append(f"  m*/m ({key.replace('_', ' ')}): {m['value']:.5f} +- "
                         f"{m['error']:.5f}")
    return "\n".join(lines)

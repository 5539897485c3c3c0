"""Scaling of the production path with N: log Psi, kinetic energy, sampler, full step.

Systems: the spin-polarized electron gas with the production model of the headline
preset (``configs/heg2d_n13_rs10_fast.toml``: set-transformer p(K), certified
backflow depth 2 / width 16 with 3 radial blocks, split kinetic energy with one
Hutchinson probe, the exact i.i.d. latent sampler, SR for both networks) at
N = 13, 29, 57 in 2D (rs = 10, theta = 0.15, twist (1/4, 1/4), the smallest Emax
with M >= 2.5 N modes) and N = 33 in 3D (rs = 1, theta = 0.5, Emax = 25 as in
``configs/heg3d_n33.toml``; M = 515 modes).

Measured per case, every function built by :func:`fermiflow.run.build.build_pieces` /
:func:`fermiflow.run.engine.build_engine` (the objects a run uses):

* ``log_psi``: jit(vmap(log Psi_K)) per sample;
* ``kinetic``: the split local kinetic energy (structured backflow Jacobian and
  Laplacian, folx through the determinant, one Hutchinson probe of the log-det term);
* ``sampler``: one call of the joint sampler (an exact i.i.d. (K, x) draw: p(K)
  sample, DPP in the latent space, Newton inversion of the flow) per walker;
* ``step``: the jitted ``Engine.step`` (sample, local energies, SR inputs of both
  networks, both natural-gradient solves, the update) per step at ``--step-batch``
  walkers (default 256); XLA's temp-memory estimate is reported for every call and a
  call above ``--max-memory-gb`` is compiled only.

Timing as in ``_common``: compile separate, one warm-up, then the median of
``--repeats`` calls (a warm-up above ``--max-call-s`` is the only timed call). Exponents
are least-squares fits of log(per-sample time) against log N over the 2D sizes. The
JSON goes to ``benchmarks/results/scaling_<platform>.json`` and the plot next to it.

Run: ``python benchmarks/bench_scaling.py [--cases 2d_n13 2d_n29 ...] [--step-batch 256]``
Units: times in seconds (``_s``) or milliseconds (``_ms``), memory in bytes.
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

import argparse
import json
import os
from typing import Any

import numpy as np
from _common import (
    REPO_ROOT,
    RESULTS_DIR,
    describe,
    environment,
    log,
    measure,
    param_count,
    smallest_emax,
    write_results,
)

from fermiflow.hamiltonians.kinetic_split import make_flow_kinetic_energy
from fermiflow.hamiltonians.units import electron_gas_scales
from fermiflow.run.build import build_pieces, log_slater_k
from fermiflow.run.config import load_config
from fermiflow.run.engine import build_engine

HEADLINE = REPO_ROOT / "configs" / "heg2d_n13_rs10_fast.toml"
# case -> (dim, N, rs, theta, emax or None for the smallest with M >= 2.5 N, twist)
CASES: dict[str, tuple[int, int, float, float, int | None, str]] = {
    "2d_n13": (2, 13, 10.0, 0.15, None, "[0.25, 0.25]"),
    "2d_n29": (2, 29, 10.0, 0.15, None, "[0.25, 0.25]"),
    "2d_n57": (2, 57, 10.0, 0.15, None, "[0.25, 0.25]"),
    "3d_n33": (3, 33, 1.0, 0.5, 25, "[0.0, 0.0, 0.0]"),
}
# walkers per timed call of the per-sample parts (the per-sample cost is compared)
PART_BATCH = {"log_psi": 64, "kinetic": 8, "sampler": 8}


def _overrides(name: str, batch: int) -> list[str]:
    dim, n, rs, theta, emax, twist = CASES[name]
    if emax is None:
        box = electron_gas_scales(n_up=n, n_down=0, dim=dim, rs=rs, theta=theta).box_length
        emax = smallest_emax(n, box)
    return [f"system.dim={dim}", f"system.n_up={n}", f"system.rs={rs}",
            f"system.theta={theta}", f"system.emax={emax}", f"system.twist={twist}",
            f"sampler.batch={batch}", "sampler.n_thermalize=0", "run.pretrain_steps=0"]


def _parts(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Per-sample log Psi, kinetic energy and sampler draw of one case."""
    batch = max(PART_BATCH.values())
    config = load_config(HEADLINE, _overrides(name, batch))
    pieces = build_pieces(config)
    problem = pieces.problem
    params = jax.jit(problem.init_params)(jax.random.key(0))
    state = jax.jit(pieces.sampler.init)(jax.random.key(1), params)
    state, _ = jax.jit(pieces.sampler.sample)(jax.random.key(2), state, params)
    occ, x = state.occ, state.walkers.chain.position
    kinetic = make_flow_kinetic_energy(log_slater_k(problem), problem.flow.apply,
                                       n_probes=config.optimizer.n_probes)
    common = dict(repeats=args.repeats, max_memory_gb=args.max_memory_gb,
                  max_call_s=args.max_call_s)
    row: dict[str, Any] = {
        "n": problem.n, "dim": problem.dim, "n_modes": int(problem.mode_energies.shape[0]),
        "emax": config.system.emax, "params_occupation": param_count(params.occupation),
        "params_wavefunction": param_count(params.wavefunction),
        "overrides": _overrides(name, batch),
    }
    b = PART_BATCH["log_psi"]
    row["log_psi"] = measure(jax.vmap(problem.log_psi, (None, 0, 0)),
                             (params.wavefunction, occ[:b], x[:b]), batch=b, **common)
    b = PART_BATCH["kinetic"]
    keys = jax.random.split(jax.random.key(3), b)
    row["kinetic"] = measure(jax.vmap(kinetic, (0, None, 0, 0)),
                             (keys, params.wavefunction, occ[:b], x[:b]), batch=b, **common)
    # The whole new state is returned: an unused output would let XLA drop its work.
    row["sampler"] = measure(lambda k, s, p: pieces.sampler.sample(k, s, p)[0],
                             (jax.random.key(4), state, params), batch=batch, **common)
    for part in ("log_psi", "kinetic", "sampler"):
        describe(f"{name} {part}", row[part])
    return row


def _step(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time of one jitted Engine.step at --step-batch walkers (or its memory only)."""
    config = load_config(HEADLINE, _overrides(name, args.step_batch))
    engine = build_engine(config)
    state = engine.place(engine.init()[0])
    record = measure(lambda s: engine.step(s)[1].estimates.free_energy, (state,),
                     batch=args.step_batch, repeats=args.step_repeats,
                     max_memory_gb=args.max_memory_gb, max_call_s=args.max_call_s)
    describe(f"{name} step", record)
    return record


def _fit(rows: dict[str, Any], part: str) -> dict[str, Any] | None:
    """Least-squares exponent of per-sample time against N over the 2D cases."""
    points = [(r["n"], r[part]["per_sample_median_ms"]) for name, r in rows.items()
              if name.startswith("2d") and "per_sample_median_ms" in r.get(part, {})]
    if len(points) < 2:
        return None
    n, t = np.log(np.array(points)).T
    slope, intercept = np.polyfit(n, t, 1)
    ratio = {f"n{int(a)}": b for a, b in points}
    return {"exponent": float(slope), "per_sample_ms": ratio,
            "ratio_last_to_first": points[-1][1] / points[0][1]}


def _plot(rows: dict[str, Any], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for part, marker in (("log_psi", "o"), ("kinetic", "s"), ("sampler", "^"), ("step", "D")):
        pts = [(r["n"], r[part]["per_sample_median_ms"]) for name, r in rows.items()
               if name.startswith("2d") and "per_sample_median_ms" in r.get(part, {})]
        if pts:
            n, t = np.array(pts).T
            ax.loglog(n, t, marker=marker, label=part)
        three = rows.get("3d_n33", {}).get(part, {})
        if "per_sample_median_ms" in three:
            ax.loglog([33], [three["per_sample_median_ms"]], marker=marker, color="k",
                      linestyle="none", fillstyle="none")
    for exponent in (3,):
        n = np.array([13, 57])
        ax.loglog(n, 1e-1 * (n / 13) ** exponent, "k:", lw=0.8, label=f"N^{exponent}")
    ax.set_xlabel("N (2D; open black: 3D N = 33)")
    ax.set_ylabel("time per sample [ms]")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--step-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-repeats", type=int, default=2)
    parser.add_argument("--no-step", action="store_true", help="per-sample parts only")
    parser.add_argument("--max-memory-gb", type=float, default=24.0)
    parser.add_argument("--max-call-s", type=float, default=120.0)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args()
    args.quick = False
    platform_name = jax.devices()[0].platform
    path = args.out or RESULTS_DIR / f"scaling_{platform_name}.json"
    results: dict[str, Any] = {"benchmark": "bench_scaling", "environment": environment(),
                               "settings": {k: str(v) for k, v in vars(args).items()},
                               "cases": {}}
    for name in args.cases:
        row = _parts(name, args)
        if not args.no_step:
            row["step"] = _step(name, args)
        results["cases"][name] = row
        results["fits_2d"] = {part: _fit(results["cases"], part)
                              for part in ("log_psi", "kinetic", "sampler", "step")}
        results["environment"]["load_average_at_end"] = list(os.getloadavg())
        args.out = path
        write_results("scaling", results, args)
    _plot(results["cases"], path.with_suffix(".png"))
    log(f"wrote {path} and {path.with_suffix('.png')}")
    print(json.dumps(results["fits_2d"]))


if __name__ == "__main__":
    main()

"""The exact i.i.d. sampler against the latent Metropolis fallback on the N = 13 gas.

Same config (configs/heg2d_n13_rs10_fast.toml), same params (p(K) pretrained on the
ideal weights, then a non-trivial certified backflow: init_scale 0.05), same loss: the
free energy F and its parts are estimated once with ``sampler.kind = "exact"`` (K ~ p(K)
exactly, zeta from the DPP of D_K, x = T^-1(zeta): independent samples) and once with
``sampler.kind = "latent"`` (latent-space Metropolis, ``--sweeps`` sweeps per step,
``--extra-sweeps`` more after K changes, thermalized first). Both must agree within
errors: the exact one has plain standard errors, the Metropolis one blocking errors
over steps with walkers as chains.

Usage: ``python benchmarks/compare_samplers.py [--steps 24] [--batch 128]``; writes
``benchmarks/results/compare_samplers_heg2d_n13_<platform>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
# Benchmark the fermiflow of this checkout, wherever the editable install points.
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

from _common import REPO_ROOT, RESULTS_DIR, environment  # noqa: E402

from fermiflow.observables.thermodynamics import blocked_thermodynamics  # noqa: E402
from fermiflow.run.config import load_config  # noqa: E402
from fermiflow.run.engine import build_engine  # noqa: E402
from fermiflow.training.step import make_evaluate  # noqa: E402

CONFIG = REPO_ROOT / "configs" / "heg2d_n13_rs10_fast.toml"


def _estimate(kind: str, args, params, stream: int) -> dict:
    overrides = [f"sampler.kind={kind}", f"sampler.batch={args.batch}",
                 f"sampler.n_sweeps={args.sweeps}",
                 f"sampler.n_extra_sweeps={args.extra_sweeps}",
                 f"run.pretrain_steps={args.pretrain}", "model.init_scale=0.05"]
    engine = build_engine(load_config(CONFIG, overrides))
    problem, sampler, loss = engine.pieces.problem, engine.pieces.sampler, engine.pieces.loss
    # Independent keys per sampler: with a shared key both would draw the same K and
    # the combined error below would overstate the error of the difference.
    key = jax.random.fold_in(jax.random.key(args.seed + 1), stream)
    key_init, key_therm, key_eval = jax.random.split(key, 3)
    state = sampler.init(key_init, params)
    start = time.perf_counter()
    state, _ = jax.jit(sampler.thermalize, static_argnums=3)(key_therm, state, params,
                                                             args.thermalize)
    evaluate = jax.jit(make_evaluate(sampler, loss), static_argnums=3)
    _, values, acceptance = evaluate(key_eval, state, params, args.steps)
    estimates, info = blocked_thermodynamics(jax.device_get(values), problem.temperature)
    n = problem.n
    return {"sampler": kind, "wall_s": time.perf_counter() - start,
            "acceptance": float(acceptance.mean()), **info,
            **{q: {"value": e.value / n, "error": e.error / n} for q, e in
               zip("FEKVS", estimates, strict=True)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sweeps", type=int, default=50)
    parser.add_argument("--extra-sweeps", type=int, default=30)
    parser.add_argument("--thermalize", type=int, default=20)
    parser.add_argument("--pretrain", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = build_engine(load_config(CONFIG, [f"sampler.batch={args.batch}",
                                               f"run.pretrain_steps={args.pretrain}",
                                               "model.init_scale=0.05", "sampler.n_thermalize=1"]))
    state, _ = engine.init()  # pretrained p(K), flow at init_scale 0.05
    params = state.params
    results = [_estimate(kind, args, params, i) for i, kind in enumerate(("exact", "latent"))]
    comparison = {}
    for q in "FEKVS":
        a, b = results[0][q], results[1][q]
        sigma = math.hypot(a["error"], b["error"])
        comparison[q] = {"difference": a["value"] - b["value"], "sigma": sigma,
                         "z": (a["value"] - b["value"]) / sigma}
    out = {"benchmark": "compare_samplers_heg2d_n13", "config": str(CONFIG.name),
           "units": "per particle, Hartree; S in k_B", "settings": vars(args),
           "results": results, "comparison": comparison, "environment": environment()}
    path = RESULTS_DIR / f"compare_samplers_heg2d_n13_{jax.devices()[0].platform}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({q: round(c["z"], 2) for q, c in comparison.items()}), path)


if __name__ == "__main__":
    main()

"""Time one full optimization step of the N = 13, rs = 10, theta = 0.15 2D gas.

One step = 50 Metropolis sweeps of all walkers + local energies + SR inputs and the
sample-space natural-gradient solve for both networks + the update, i.e. the jitted
``Engine.step`` of ``configs/heg2d_n13_rs10_fast.toml`` (batch 256, 2-layer/16-wide set
transformer, depth-2/16-feature backflow, Emax = 25, twist (1/4, 1/4)). Two paths:

* ``fast``: latent-space sampler (``sampler.kind = "latent"``) + split kinetic energy
  (``optimizer.kinetic = "split"``, one Hutchinson probe per walker);
* ``exact``: x-space Metropolis (``sampler.kind = "metropolis"``) + the forward
  Laplacian of the full log Psi (``optimizer.kinetic = "exact"``).

Compile time = ``lower(state).compile()``; then one untimed warm-up step and
``repeats`` timed steps (each ended by ``block_until_ready``); the median and the
process CPU time per step are reported with the load average before and after. The
reference is the m* paper's published code, about 21 s per step on these 2-core
machines (issue 5). Usage: ``python benchmarks/bench_step.py [--paths fast exact]
[--set model.radial_blocks=0 --label no_radial_blocks]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
# Benchmark the fermiflow of this checkout, wherever the editable install points.
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

from _common import REPO_ROOT, RESULTS_DIR, environment  # noqa: E402

from fermiflow.run.config import load_config  # noqa: E402
from fermiflow.run.engine import build_engine  # noqa: E402

CONFIG = REPO_ROOT / "configs" / "heg2d_n13_rs10_fast.toml"
REFERENCE_S = 21.0
PATHS = {
    "fast": ["sampler.kind='latent'", "optimizer.kinetic='split'"],
    "exact": ["sampler.kind='metropolis'", "optimizer.kinetic='exact'"],
}
COMMON = ["run.pretrain_steps=0", "sampler.n_thermalize=0", "sampler.batch=256",
          "sampler.n_sweeps=50", "sampler.n_extra_sweeps=0"]


def _time_path(name: str, repeats: int, extra: list[str]) -> dict:
    config = load_config(CONFIG, COMMON + PATHS[name] + extra)
    engine = build_engine(config)
    state = engine.place(engine.init()[0])
    load_before = list(os.getloadavg())
    start, cpu_start = time.perf_counter(), time.process_time()
    compiled = engine.step.lower(state).compile()
    compile_s, compile_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    state, metrics = jax.block_until_ready(compiled(state))  # warm-up
    times, cpu_times, free = [], [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        state, metrics = jax.block_until_ready(compiled(state))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        free.append(float(metrics.estimates.free_energy.value))
    median = statistics.median(times)
    row = {"settings": {"overrides": COMMON + PATHS[name] + extra, "config": str(CONFIG.name)},
           "compile_s": compile_s, "compile_cpu_s": compile_cpu_s, "repeats": repeats,
           "times_s": times, "cpu_times_s": cpu_times, "median_s": median,
           "median_cpu_s": statistics.median(cpu_times),
           "speedup_vs_reference_21s": REFERENCE_S / median,
           "free_energy_hartree_per_step": free,
           "load_average_before": load_before, "load_average_after": list(os.getloadavg())}
    print(json.dumps({"path": name, "median_s": median, "compile_s": compile_s}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", default=["fast", "exact"], choices=list(PATHS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS_DIR / "step_heg2d_n13_cpu.json"))
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra config override (e.g. model.radial_blocks=0)")
    parser.add_argument("--label", default=None, help="record name (default: the path)")
    args = parser.parse_args()
    result = {"benchmark": "bench_step", "environment": environment(),
              "reference_s_per_step": REFERENCE_S,
              "reference": "m* paper's published code on these 2-core machines",
              "timing": "wall (perf_counter) and process CPU (process_time); shared CPU",
              "paths": {}}
    if os.path.exists(args.out):  # keep paths timed by an earlier call
        with open(args.out) as f:
            result["paths"] = json.load(f).get("paths", {})
    for name in args.paths:
        label = f"{name}_{args.label}" if args.label else name
        result["paths"][label] = _time_path(name, args.repeats, args.set)
        result["environment"]["load_average_at_end"] = list(os.getloadavg())
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

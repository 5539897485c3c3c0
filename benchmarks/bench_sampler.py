"""Throughput of the samplers: walker-sweeps per second on the 2D polarized gas.

System and models as in bench_models.py: spin-polarized 2D electron gas at rs = 1,
twist (1/4, 1/4), N = 13 (emax 25, M = 81) and N = 57 (smallest emax with
M >= 2.5 N); log Psi_K with the residual backflow (depth 2, widths 16) and p(K) the
set transformer (2 layers, model size 16, 4 heads, hidden 32), all float64.

Measured, per N:
  joint: one jitted ``make_joint_sampler(...).sample`` call (K ~ p(K) exactly for every
    walker, then n_sweeps = 10 random-walk Metropolis all-electron sweeps under each
    walker's K, plus the recomputation of the cached log densities);
  metropolis: one jitted ``make_metropolis(...).step`` at a fixed K (the lowest N modes),
    no p(K) sampling.
Walker-sweeps per second = batch * n_sweeps / (time of one call). A batch whose XLA
temp memory exceeds --max-memory-gb is compiled only (its memory is reported) and the
next, smaller batch of PLAN is timed.

Run: python benchmarks/bench_sampler.py [--quick] [--out PATH]
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
# Benchmark the fermiflow of this checkout, wherever the editable install points.
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

import json
import os
from typing import Any

import jax.numpy as jnp
from _common import (
    BACKFLOW,
    RS,
    SET_TRANSFORMER,
    TWIST,
    describe,
    electron_gas,
    environment,
    log,
    measure,
    param_count,
    parse_args,
    write_results,
)

from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.autoregressive import make_set_transformer
from fermiflow.models.backflow import make_backflow
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import make_joint_sampler
from fermiflow.sampling.metropolis import default_width, make_metropolis

N_SWEEPS = 10
KERNEL = "rwm"
# N -> batches to try in order; the first that fits in memory and every later one is
# timed. 256 walkers at N = 57 need far more memory than a laptop has (reported).
PLAN = {13: (256,), 57: (256, 4)}
QUICK_PLAN = {13: (32,), 57: (256, 1)}


def _models(gas: ElectronGas):
    n, box_length = gas.n_particles, gas.box_length
    flow = make_backflow(n_up=n, n_down=0, dim=2, box_length=box_length, **BACKFLOW)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(gas.spectrum, box_length),
        flow_apply=flow.apply,
        n_up=n,
        n_down=0,
    )
    occupation = make_set_transformer(
        n_modes=gas.spectrum.energies.shape[0],
        n_particles=n,
        param_dtype=jnp.float64,
        **SET_TRANSFORMER,
    )
    key_flow, key_occ = jax.random.split(jax.random.key(0))
    x0 = jnp.full((n, 2), 0.5 * box_length, jnp.float64)
    params = JointParams(jax.jit(occupation.init)(key_occ), flow.init(key_flow, x0))
    return occupation, log_psi, params


def _throughput(record: dict[str, Any], batch: int) -> dict[str, Any]:
    if "median_s" in record:
        record["walker_sweeps_per_s_median"] = batch * N_SWEEPS / record["median_s"]
        record["walker_sweeps_per_s_best"] = batch * N_SWEEPS / record["min_s"]
    return record


def joint_benchmark(gas: ElectronGas, models, batch: int, args) -> dict[str, Any]:
    """Time one jitted joint ``sample`` call on a batch of walkers."""
    occupation, log_psi, params = models
    sampler = make_joint_sampler(
        occupation,
        log_psi,
        batch=batch,
        n=gas.n_particles,
        dim=2,
        box_length=gas.box_length,
        kernel=KERNEL,
        n_sweeps=N_SWEEPS,
    )
    state = jax.jit(sampler.init)(jax.random.key(1), params)
    record = measure(
        sampler.sample,
        (jax.random.key(2), state, params),
        batch=batch,
        repeats=args.repeats,
        max_memory_gb=args.max_memory_gb,
        max_call_s=args.max_call_s,
    )
    if "output" in record:
        info = record["output"][1]
        record["mean_acceptance"] = float(jnp.mean(info.acceptance))
        record["n_nonfinite"] = int(info.n_nonfinite)
        record["width_bohr"] = float(info.width)
    return _throughput(record, batch)


def metropolis_benchmark(gas: ElectronGas, models, batch: int, args) -> dict[str, Any]:
    """Time one jitted Metropolis ``step`` at a fixed occupation K."""
    _, log_psi, params = models
    n, box_length = gas.n_particles, gas.box_length
    metropolis = make_metropolis(
        lambda p, occ, x: 2 * jnp.real(log_psi(p, occ, x)),
        box_length=box_length,
        kernel=KERNEL,
        n_sweeps=N_SWEEPS,
    )
    occ = jnp.tile(jnp.arange(n), (batch, 1))
    x = jax.random.uniform(jax.random.key(1), (batch, n, 2), jnp.float64) * box_length
    width = default_width(box_length, n, 2)
    state = jax.jit(metropolis.init, static_argnums=3)(x, params.wavefunction, occ, width)
    record = measure(
        lambda key, state, wavefunction: metropolis.step(key, state, wavefunction, occ),
        (jax.random.key(2), state, params.wavefunction),
        batch=batch,
        repeats=args.repeats,
        max_memory_gb=args.max_memory_gb,
        max_call_s=args.max_call_s,
    )
    if "output" in record:
        info = record["output"][1]
        record["mean_acceptance"] = float(jnp.mean(info.acceptance))
        record["n_nonfinite"] = int(info.n_nonfinite)
        record["width_bohr"] = float(info.width)
    return _throughput(record, batch)


def system_benchmarks(n: int, emax: int | None, args) -> dict[str, Any]:
    """Time the joint sampler and the fixed-K Metropolis step for one N."""
    gas = electron_gas(n, emax)
    m = gas.spectrum.energies.shape[0]
    log(f"N={n}: emax={gas.emax}, M={m}, L={gas.box_length:.4f} Bohr")
    models = _models(gas)
    params = models[2]
    out: dict[str, Any] = {
        "n_particles": n,
        "emax": gas.emax,
        "n_modes": m,
        "box_length_bohr": gas.box_length,
        "param_count_flow": param_count(params.wavefunction),
        "param_count_set_transformer": param_count(params.occupation),
        "joint": [],
        "metropolis": [],
    }
    for name, bench in (("joint", joint_benchmark), ("metropolis", metropolis_benchmark)):
        for batch in (QUICK_PLAN if args.quick else PLAN)[n]:
            record = bench(gas, models, batch, args)
            describe(f"N={n} {name}", record)
            if "walker_sweeps_per_s_median" in record:
                log(f"  {record['walker_sweeps_per_s_median']:.4g} walker-sweeps/s")
            out[name].append(record)
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], max_call_s=30.0)
    results: dict[str, Any] = {
        "benchmark": "bench_sampler",
        "quick": args.quick,
        "environment": environment(),
        "settings": {
            "system": "spin-polarized 2D electron gas",
            "rs": RS,
            "twist": TWIST,
            "dtype": "float64",
            "kernel": KERNEL,
            "n_sweeps": N_SWEEPS,
            "joint_sampler": "make_joint_sampler defaults (n_extra_sweeps=0, adapt=True)",
            "backflow": BACKFLOW,
            "set_transformer": SET_TRANSFORMER,
            "repeats": args.repeats,
            "max_memory_gb": args.max_memory_gb,
            "max_call_s": args.max_call_s,
            "fixed_occupation_for_metropolis": "lowest N modes",
        },
        "systems": [system_benchmarks(n, emax, args) for n, emax in ((13, 25), (57, None))],
    }
    results["environment"]["load_average_at_end"] = list(os.getloadavg())
    path = write_results("bench_sampler", results, args)
    log(f"wrote {path}")
    print(json.dumps({"benchmark": "bench_sampler", "results": str(path)}))


if __name__ == "__main__":
    main()

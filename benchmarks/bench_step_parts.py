"""Cost of the parts of a finite-T training step: latent vs x-space sampling, split vs folx E_kin.

System: spin-polarized 2D electron gas N = 13, rs = 10, theta = 0.15, emax = 25
(M = 81 modes), twist (1/4, 1/4); residual backflow depth 2, 16/16 features, at its
default init_scale (1e-2); set transformer p(K) of the models issue; float64.

Measured, per sample (the batch of each row is in the JSON; the rows at batch < 256
are scaled per sample, which holds because walkers are independent under vmap):
- one ``sample`` call of the latent sampler (``make_latent_joint_sampler``), n_sweeps =
  50, n_extra_sweeps = 0: K draw + 50 sweeps of the bare determinant + one flow
  inversion per walker; and the same call with n_sweeps = 0 (K draw + inversion only);
- one ``sample`` call of the x-space sampler (``make_joint_sampler``), n_sweeps = 50;
- the local kinetic energy: the split estimate (``make_flow_kinetic_energy``, one
  Rademacher probe) vs the exact folx forward Laplacian (``make_kinetic_energy``).

Each call is timed by wall clock (``time.perf_counter``) AND by this process's CPU
time (``time.process_time``): the CPU is shared with other jobs, so the wall times
include waiting; the CPU time counts all threads of this process.

Run: python benchmarks/bench_step_parts.py [--quick] [--out PATH]
Units: Hartree atomic units; times in the key names (_s, _ms).
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

import json
import os
import statistics
import time
from typing import Any

import jax.numpy as jnp
from _common import SET_TRANSFORMER, describe, environment, log, parse_args, write_results

from fermiflow.hamiltonians.kinetic import make_kinetic_energy
from fermiflow.hamiltonians.kinetic_split import make_flow_kinetic_energy
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.autoregressive import make_set_transformer
from fermiflow.models.backflow import make_backflow
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import make_joint_sampler
from fermiflow.sampling.latent import make_latent_joint_sampler

GAS = dict(n_up=13, n_down=0, dim=2, rs=10.0, theta=0.15, emax=25, twist=(0.25, 0.25))
BACKFLOW = dict(depth=2, width_one=16, width_two=16)
N_SWEEPS = 50
# name -> walkers per call (full run, --quick); the slow rows use fewer walkers.
PLAN = {
    "latent_sample": (256, 32),
    "latent_inversion_only": (256, 32),
    "x_space_sample": (16, 2),
    "kinetic_split": (64, 8),
    "kinetic_forward_laplacian": (8, 2),
}


def _time(fn, args: tuple, *, batch: int, repeats: int, max_call_s: float) -> dict[str, Any]:
    """Compile jit(fn), run once untimed, then time repeats calls (wall and CPU)."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    compiled = jax.jit(fn).lower(*args).compile()
    record: dict[str, Any] = {
        "batch": batch,
        "compile_s": time.perf_counter() - start_wall,
        "compile_cpu_s": time.process_time() - start_cpu,
    }
    walls, cpus = [], []
    for i in range(repeats + 1):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        output = jax.block_until_ready(compiled(*args))
        walls.append(time.perf_counter() - start_wall)
        cpus.append(time.process_time() - start_cpu)
        if i == 0 and walls[0] > max_call_s:
            record["note"] = f"warm-up call {walls[0]:.1f} s > --max-call-s: timed once"
            break
    if len(walls) > 1:
        walls, cpus = walls[1:], cpus[1:]  # drop the warm-up call
    median, median_cpu = statistics.median(walls), statistics.median(cpus)
    record.update(
        repeats=len(walls),
        times_s=walls,
        cpu_times_s=cpus,
        median_s=median,
        per_sample_median_ms=1e3 * median / batch,
        per_sample_min_ms=1e3 * min(walls) / batch,
        per_sample_median_cpu_ms=1e3 * median_cpu / batch,
        output=output,
    )
    return record


def _setup():
    gas = ElectronGas(**GAS)
    n, box_length = gas.n_particles, gas.scales.box_length
    orbitals = make_plane_wave_orbitals(gas.spectrum, box_length)
    flow = make_backflow(n_up=n, n_down=0, dim=2, box_length=box_length, **BACKFLOW)
    log_psi = make_log_psi(orbitals=orbitals, flow_apply=flow.apply, n_up=n, n_down=0)
    bare = make_log_psi(orbitals=orbitals, flow_apply=make_identity_flow().apply, n_up=n, n_down=0)
    model = make_set_transformer(
        n_modes=gas.spectrum.energies.shape[0],
        n_particles=n,
        param_dtype=jnp.float64,
        **SET_TRANSFORMER,
    )
    params = JointParams(
        jax.jit(model.init)(jax.random.key(0)),
        flow.init(jax.random.key(1), jnp.zeros((n, 2))),
    )
    return gas, flow, log_psi, lambda occ, zeta: bare(None, occ, zeta), model, params


def _sampler_rows(setup, args, sizes) -> dict[str, Any]:
    gas, flow, log_psi, log_slater_k, model, params = setup
    common = dict(n=gas.n_particles, dim=2, box_length=gas.scales.box_length)
    builders = {
        "latent_sample": lambda b: make_latent_joint_sampler(
            model, log_slater_k, flow.apply, batch=b, n_sweeps=N_SWEEPS, **common
        ),
        "latent_inversion_only": lambda b: make_latent_joint_sampler(
            model, log_slater_k, flow.apply, batch=b, n_sweeps=0, **common
        ),
        "x_space_sample": lambda b: make_joint_sampler(
            model, log_psi, batch=b, n_sweeps=N_SWEEPS, **common
        ),
    }
    out = {}
    for name, build in builders.items():
        batch = sizes[name]
        sampler = build(batch)
        state = jax.jit(sampler.init)(jax.random.key(2), params)
        record = _time(
            sampler.sample,
            (jax.random.key(3), state, params),
            batch=batch,
            repeats=args.repeats,
            max_call_s=args.max_call_s,
        )
        info = record.pop("output")[1]
        record["mean_acceptance"] = float(jnp.mean(info.acceptance))
        if hasattr(info, "n_inversion_failed"):
            record["n_inversion_failed"] = int(info.n_inversion_failed)
            record["inversion_error_bohr"] = float(info.inversion_error)
        describe(name, record)
        out[name] = record
    return out


def _kinetic_rows(setup, args, sizes) -> dict[str, Any]:
    gas, flow, log_psi, log_slater_k, _, params = setup
    n, box_length = gas.n_particles, gas.scales.box_length
    occ = jnp.arange(n)
    x = jax.random.uniform(jax.random.key(4), (256, n, 2), jnp.float64) * box_length
    split = make_flow_kinetic_energy(log_slater_k, flow.apply, n_probes=1)
    exact = make_kinetic_energy(lambda p, y: log_psi(p, occ, y))
    out = {}
    batch = sizes["kinetic_split"]
    keys = jax.random.split(jax.random.key(5), batch)
    out["kinetic_split"] = _time(
        jax.vmap(split, (0, None, None, 0)),
        (keys, params.wavefunction, occ, x[:batch]),
        batch=batch,
        repeats=args.repeats,
        max_call_s=args.max_call_s,
    )
    batch = sizes["kinetic_forward_laplacian"]
    out["kinetic_forward_laplacian"] = _time(
        jax.vmap(exact, (None, 0)),
        (params.wavefunction, x[:batch]),
        batch=batch,
        repeats=args.repeats,
        max_call_s=args.max_call_s,
    )
    # The split estimate is unbiased: on the common walkers its error is the probe noise.
    common = min(sizes["kinetic_split"], batch)
    split_values = out["kinetic_split"].pop("output")[:common]
    exact_values = out["kinetic_forward_laplacian"].pop("output")[:common]
    out["split_minus_exact_real_hartree"] = jnp.real(split_values - exact_values).tolist()
    out["exact_real_hartree"] = jnp.real(exact_values).tolist()
    for name in ("kinetic_split", "kinetic_forward_laplacian"):
        describe(name, out[name])
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], max_call_s=60.0)
    sizes = {name: full_quick[1 if args.quick else 0] for name, full_quick in PLAN.items()}
    setup = _setup()
    gas = setup[0]
    log(f"N=13 gas: L={gas.scales.box_length:.4f} Bohr, M={gas.spectrum.energies.shape[0]}")
    results: dict[str, Any] = {
        "benchmark": "bench_step_parts",
        "quick": args.quick,
        "environment": environment(),
        "settings": {
            "system": GAS,
            "backflow": {**BACKFLOW, "init_scale": 1e-2},
            "set_transformer": SET_TRANSFORMER,
            "n_sweeps": N_SWEEPS,
            "n_extra_sweeps": 0,
            "latent_inversion": {"n_fixed_point": 10, "n_newton": 3},
            "kinetic_split_n_probes": 1,
            "dtype": "float64",
            "repeats": args.repeats,
            "timing": "wall (perf_counter) and process CPU (process_time); shared CPU",
        },
    }
    results["sampling"] = _sampler_rows(setup, args, sizes)
    results["kinetic"] = _kinetic_rows(setup, args, sizes)
    ratios = {
        "x_space_over_latent_sample": ("sampling", "x_space_sample", "latent_sample"),
        "forward_laplacian_over_split": ("kinetic", "kinetic_forward_laplacian", "kinetic_split"),
    }
    results["ratios"] = {}
    for name, (group, slow, fast) in ratios.items():
        for key in ("per_sample_median_ms", "per_sample_median_cpu_ms"):
            value = results[group][slow][key] / results[group][fast][key]
            results["ratios"][f"{name}_{key.removeprefix('per_sample_median_')}"] = value
    results["environment"]["load_average_at_end"] = list(os.getloadavg())
    path = write_results("step_parts", results, args)
    log(f"wrote {path}")
    print(
        json.dumps(
            {"benchmark": "bench_step_parts", "ratios": results["ratios"], "results": str(path)}
        )
    )


if __name__ == "__main__":
    main()

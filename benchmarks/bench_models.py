"""Cost of the models: log Psi_K, its local kinetic energy, and p(K), on the 2D gas.

System: spin-polarized 2D electron gas at rs = 1, twist (1/4, 1/4), plane waves with
|n|^2 <= emax: N = 13 with emax = 25 (M = 81) and N = 57 with the smallest emax giving
M >= 2.5 N. Psi_K uses the lowest N modes (N = 57 is an open shell at this twist; the
cost does not depend on K). theta only sets beta, which no timed function uses.

Measured (float64): parameter counts; per-sample time of jit(vmap(log_psi)) for the
residual backflow, the ODE flow and no flow (the bare Slater determinant, a baseline);
per-sample time of the local kinetic energy by forward Laplacian (folx), by the exact
jvp loop, and by a one-probe Hutchinson estimate; per-sample time of log_prob and
sample of the set transformer p(K) at N = 13, 57 and (N, M) = (60, 150). Expensive
cases run on fewer walkers (see PLAN); the per-sample cost is what is compared.

Run: python benchmarks/bench_models.py [--quick] [--out PATH]
Units: Hartree atomic units; times in the key names (_s, _ms).
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
import numpy as np
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

from fermiflow.hamiltonians.kinetic import (
    chunked_vmap,
    make_hutchinson_kinetic_energy,
    make_kinetic_energy,
)
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.autoregressive import make_set_transformer
from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.ode_flow import make_ode_flow
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi, make_log_psi_fixed

BATCH = 256

# (flow, N) -> what to time, as (walkers per call, walkers per vmap chunk or None).
# The per-sample costs span four orders of magnitude, so the slow cases run on few
# walkers (one call of a few seconds on 2 cores); a (256, None) entry that needs more
# memory than --max-memory-gb is compiled only, to report that memory.
PLAN: dict[tuple[str, int], dict[str, Any]] = {
    ("backflow", 13): {
        "log_psi": [(256, None)],
        "kinetic": {
            "forward_laplacian": (16, None),
            "jvp_loop": (4, None),
            "hutchinson": (16, None),
        },
    },
    ("backflow", 57): {
        "log_psi": [(256, None), (8, 4)],
        "kinetic": {"forward_laplacian": (2, 1), "hutchinson": (2, 1)},
    },
    ("ode", 13): {
        "log_psi": [(32, None)],
        "kinetic": {"forward_laplacian": (1, 1), "jvp_loop": (1, None), "hutchinson": (2, None)},
    },
    ("ode", 57): {"log_psi": [(2, 1)], "kinetic": {}},
    # Baseline: the bare Slater determinant, to separate the cost of the flow.
    ("identity", 13): {"log_psi": [(256, None)], "kinetic": {"forward_laplacian": (256, None)}},
    ("identity", 57): {"log_psi": [(256, None)], "kinetic": {"forward_laplacian": (16, None)}},
}
QUICK_SHRINK = 8  # --quick divides every batch and chunk by this (at least 1)


def _shrink(size: int | None, quick: bool) -> int | None:
    if size is None or not quick:
        return size
    return max(1, size // QUICK_SHRINK)


def _kinetic_fn(method: str, log_psi_fixed):
    if method == "hutchinson":
        # One fixed probe for every walker: the cost of one estimate is what we time.
        estimate = make_hutchinson_kinetic_energy(log_psi_fixed, n_probes=1)
        return lambda params, x: estimate(jax.random.key(7), params, x)
    return make_kinetic_energy(log_psi_fixed, method=method)


def wavefunction_benchmarks(flow_name: str, gas: ElectronGas, args) -> dict[str, Any]:
    """Time log Psi_K and the local kinetic energy of one flow on one system."""
    n, box_length = gas.n_particles, gas.box_length
    if flow_name == "backflow":
        flow = make_backflow(n_up=n, n_down=0, dim=2, box_length=box_length, **BACKFLOW)
    elif flow_name == "ode":
        flow = make_ode_flow(n_up=n, n_down=0, dim=2, box_length=box_length)
    else:
        flow = make_identity_flow()
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(gas.spectrum, box_length),
        flow_apply=flow.apply,
        n_up=n,
        n_down=0,
    )
    log_psi_fixed = make_log_psi_fixed(log_psi, np.arange(n))
    key_x, key_params = jax.random.split(jax.random.key(0))
    x_all = jax.random.uniform(key_x, (BATCH, n, 2), jnp.float64) * box_length
    params = flow.init(key_params, x_all[0])
    out: dict[str, Any] = {"flow_param_count": param_count(params), "log_psi": [], "kinetic": {}}
    options = dict(
        repeats=args.repeats, max_memory_gb=args.max_memory_gb, max_call_s=args.max_call_s
    )
    plan = PLAN[(flow_name, n)]
    for batch, chunk in plan["log_psi"]:
        batch, chunk = _shrink(batch, args.quick), _shrink(chunk, args.quick)
        fn = chunked_vmap(log_psi_fixed, chunk_size=chunk)
        record = measure(fn, (params, x_all[:batch]), batch=batch, chunk_size=chunk, **options)
        if "output" in record:
            record["output_dtype"] = str(record["output"].dtype)
            record["n_nonfinite"] = int(jnp.sum(~jnp.isfinite(record["output"])))
        describe(f"{flow_name} N={n} log_psi", record)
        out["log_psi"].append(record)
    for method, (batch, chunk) in plan["kinetic"].items():
        batch, chunk = _shrink(batch, args.quick), _shrink(chunk, args.quick)
        fn = chunked_vmap(_kinetic_fn(method, log_psi_fixed), chunk_size=chunk)
        record = measure(fn, (params, x_all[:batch]), batch=batch, chunk_size=chunk, **options)
        if "output" in record:
            record["n_nonfinite"] = int(jnp.sum(~jnp.isfinite(record["output"])))
        describe(f"{flow_name} N={n} kinetic {method}", record)
        out["kinetic"][method] = record
    return out


def occupation_benchmarks(n: int, m: int, args) -> dict[str, Any]:
    """Time log_prob and sample of the set transformer p(K) at batch BATCH."""
    model = make_set_transformer(
        n_modes=m, n_particles=n, param_dtype=jnp.float64, **SET_TRANSFORMER
    )
    params = jax.jit(model.init)(jax.random.key(0))
    batch = _shrink(BATCH, args.quick)
    options = dict(
        batch=batch,
        repeats=args.repeats,
        max_memory_gb=args.max_memory_gb,
        max_call_s=args.max_call_s,
    )
    out: dict[str, Any] = {"n_particles": n, "n_modes": m, "param_count": param_count(params)}
    key = jax.random.key(1)
    out["sample"] = measure(lambda k, p: model.sample(k, p, batch), (key, params), **options)
    describe(f"p(K) N={n} M={m} sample", out["sample"])
    occ, _ = jax.jit(model.sample, static_argnums=2)(key, params, batch)
    out["log_prob"] = measure(model.log_prob, (params, occ), **options)
    describe(f"p(K) N={n} M={m} log_prob", out["log_prob"])
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], max_call_s=10.0)
    results: dict[str, Any] = {
        "benchmark": "bench_models",
        "quick": args.quick,
        "environment": environment(),
        "settings": {
            "system": "spin-polarized 2D electron gas",
            "rs": RS,
            "twist": TWIST,
            "dtype": "float64",
            "backflow": BACKFLOW,
            "ode_flow": "make_ode_flow defaults",
            "set_transformer": SET_TRANSFORMER,
            "repeats": args.repeats,
            "max_memory_gb": args.max_memory_gb,
            "max_call_s": args.max_call_s,
        },
        "systems": [],
    }
    for n, emax in ((13, 25), (57, None)):
        gas = electron_gas(n, emax)
        m = gas.spectrum.energies.shape[0]
        log(f"N={n}: emax={gas.emax}, M={m}, L={gas.box_length:.4f} Bohr")
        system = {
            "n_particles": n,
            "emax": gas.emax,
            "n_modes": m,
            "box_length_bohr": gas.box_length,
        }
        for flow_name in ("identity", "backflow", "ode"):
            system[flow_name] = wavefunction_benchmarks(flow_name, gas, args)
        system["set_transformer"] = occupation_benchmarks(n, m, args)
        results["systems"].append(system)
    results["set_transformer_n60_m150"] = occupation_benchmarks(60, 150, args)
    results["environment"]["load_average_at_end"] = list(os.getloadavg())
    path = write_results("bench_models", results, args)
    log(f"wrote {path}")
    print(json.dumps({"benchmark": "bench_models", "results": str(path)}))


if __name__ == "__main__":
    main()

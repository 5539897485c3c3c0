"""Shared pieces of the benchmark scripts: machine description, timing, JSON output.

Timing methodology (every script): ``jax.jit(fn).lower(*args).compile()`` is timed
separately (trace + lower + XLA compile) and never counted in a run; the compiled
executable then runs once untimed (warm-up) and ``repeats`` times timed, each call
ended by ``jax.block_until_ready``; we report the median and the minimum, and the
per-sample cost = time / batch. Before running, XLA's own estimate of the temporary
memory of the executable (``compiled.memory_analysis()``) is recorded, and the run is
skipped when it exceeds a limit, so a benchmark never takes the machine down.

The benchmarked system is shared too: the spin-polarized 2D electron gas at rs = 1
with twist (1/4, 1/4) and the model sizes of the models issue.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import fermiflow
from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.hamiltonians.units import electron_gas_scales
from fermiflow.run import provenance

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

RS = 1.0
TWIST = (0.25, 0.25)
THETA = 0.15  # sets beta only, which no timed function uses
MODES_PER_PARTICLE = 2.5  # N = 57: the smallest emax with M >= 2.5 N modes
BACKFLOW = dict(depth=2, width_one=16, width_two=16)
SET_TRANSFORMER = dict(n_layers=2, model_size=16, n_heads=4, hidden=32)


def smallest_emax(n: int, box_length: float) -> int:
    """Return the smallest integer cutoff with at least MODES_PER_PARTICLE * n modes."""
    emax = 0
    while True:
        spectrum = plane_wave_spectrum(dim=2, emax=emax, box_length=box_length, twist=TWIST)
        if spectrum.energies.shape[0] >= MODES_PER_PARTICLE * n:
            return emax
        emax += 1


def electron_gas(n: int, emax: int | None) -> ElectronGas:
    """Return the polarized 2D gas with n electrons (emax None: smallest_emax)."""
    box_length = electron_gas_scales(n_up=n, n_down=0, dim=2, rs=RS, theta=THETA).box_length
    emax = smallest_emax(n, box_length) if emax is None else emax
    return ElectronGas(n_up=n, n_down=0, dim=2, rs=RS, theta=THETA, emax=emax, twist=TWIST)


def parse_args(description: str, *, max_call_s: float) -> argparse.Namespace:
    """Parse the CLI flags shared by all benchmark scripts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: small batches, 2 repeats; writes <name>_<platform>_quick.json",
    )
    parser.add_argument("--out", type=pathlib.Path, help="JSON output path")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls (default 5; quick 2)"
    )
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=4.0,
        help="skip a run whose XLA temp-memory estimate exceeds this (GB)",
    )
    parser.add_argument(
        "--max-call-s",
        type=float,
        default=max_call_s,
        help="if the warm-up call takes longer than this, report it alone (no repeats)",
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    return args


def environment() -> dict[str, Any]:
    """Describe the run: :func:`fermiflow.run.provenance.environment` (versions, git
    commit and dirty flag, device, host, load average, date) plus the usable CPUs, the
    XLA flags and which checkout of fermiflow was benchmarked."""
    return {
        **provenance.environment(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "fermiflow_path": str(pathlib.Path(fermiflow.__file__).parent),
    }


def param_count(params: Any) -> int:
    """Return the number of scalars in a pytree of parameters."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def measure(
    fn: Callable,
    args: tuple,
    *,
    batch: int,
    repeats: int,
    max_memory_gb: float,
    max_call_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """Compile ``jax.jit(fn)`` on ``args`` and time it; return a JSON-ready record.

    Units are in the key names: ``_s`` seconds, ``_ms`` milliseconds, ``_bytes``.
    A run whose temp memory exceeds ``max_memory_gb`` is skipped (``skipped`` says
    why); an exception is recorded under ``error`` instead of stopping the script.
    """
    record: dict[str, Any] = {"batch": batch, **extra}
    try:
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        record["compile_s"] = time.perf_counter() - start
        memory = compiled.memory_analysis()
        if memory is not None:
            record["temp_memory_bytes"] = int(memory.temp_size_in_bytes)
            if memory.temp_size_in_bytes > max_memory_gb * 1e9:
                record["skipped"] = (
                    f"XLA temp memory {memory.temp_size_in_bytes / 1e9:.1f} GB > "
                    f"--max-memory-gb {max_memory_gb}"
                )
                return record
        start = time.perf_counter()
        output = jax.block_until_ready(compiled(*args))
        warmup = time.perf_counter() - start
        times = [warmup]
        if warmup <= max_call_s:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                times.append(time.perf_counter() - start)
        else:
            record["note"] = f"warm-up call took {warmup:.1f} s > --max-call-s: timed once"
    except Exception as error:  # noqa: BLE001 - a failed measurement is a result too
        record["error"] = f"{type(error).__name__}: {error}"[:2000]
        record["traceback_tail"] = traceback.format_exc().splitlines()[-6:]
        return record
    record.update(_summary(times, batch))
    record["output"] = output
    return record


def _summary(times: list[float], batch: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "repeats": len(times),
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "per_sample_median_ms": 1e3 * median / batch,
        "per_sample_min_ms": 1e3 * min(times) / batch,
    }


def strip_outputs(tree: Any) -> Any:
    """Drop the ``output`` entries (device arrays) before writing JSON."""
    if isinstance(tree, dict):
        return {k: strip_outputs(v) for k, v in tree.items() if k != "output"}
    if isinstance(tree, list):
        return [strip_outputs(v) for v in tree]
    return tree


def write_results(name: str, results: dict[str, Any], args: argparse.Namespace) -> pathlib.Path:
    """Write results to --out or benchmarks/results/<name>_<platform>[_quick].json."""
    platform_name = jax.devices()[0].platform
    suffix = "_quick" if args.quick else ""
    path = args.out or RESULTS_DIR / f"{name}_{platform_name}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(strip_outputs(results), indent=1, default=_to_json)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    return path


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic | jax.Array | np.ndarray):
        return np.asarray(value).tolist()
    return str(value)


def log(message: str) -> None:
    """Print a progress line to stderr (stdout carries the one-line JSON summary)."""
    print(message, file=sys.stderr, flush=True)


def describe(label: str, record: dict[str, Any]) -> None:
    """Log one measurement in a line."""
    if "error" in record:
        log(f"{label}: ERROR {record['error'][:200]}")
    elif "skipped" in record:
        log(f"{label}: skipped ({record['skipped']}); compile {record['compile_s']:.1f} s")
    else:
        log(
            f"{label}: batch {record['batch']}, {record['per_sample_median_ms']:.4g} ms/sample"
            f" (min {record['per_sample_min_ms']:.4g}), compile {record['compile_s']:.1f} s"
        )

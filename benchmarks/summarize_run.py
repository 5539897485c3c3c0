"""Write a finished `fermiflow run` directory as a benchmark result (JSON).

Reads RUN_DIR/metrics.jsonl (the per-step curve), summary.json (the run's own final
evaluation on fresh samples), events.jsonl, pretrain.jsonl and, where present,
RUN_DIR/observe/observables.json (``fermiflow observe``), and writes them with the
environment to ``benchmarks/results/NAME.json``. Per-particle values are in Hartree
and Rydberg (S in k_B); the curve is per system, Hartree.

Usage: ``python benchmarks/summarize_run.py RUN_DIR NAME [--start START.json]
[--note TEXT]``; ``--start`` is a JSON object with the identity-flow start's
per-particle F, E, S (Hartree) and its provenance.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from _common import RESULTS_DIR, environment


def _lines(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _per_particle(estimates: dict, n: int) -> dict:
    out = {}
    for name, entry in estimates.items():
        # summary.json holds {"value", "error", ...} per quantity ([value, error] before)
        value, err = (entry["value"], entry["error"]) if isinstance(entry, dict) else entry
        if name == "S":
            out[name] = {"per_particle_kB": [value / n, err / n]}
        else:
            out[name] = {"per_particle_hartree": [value / n, err / n],
                         "per_particle_rydberg": [2 * value / n, 2 * err / n]}
    return out


def summarize(run_dir: pathlib.Path, start: dict | None, note: str | None) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    n = summary["n_particles"]
    curve = [
        {key: row[key] for key in ("step", "F", "F_err", "E", "E_err", "S", "S_err",
                                    "step_time", "update_applied") if key in row}
        for row in _lines(run_dir / "metrics.jsonl")
    ]
    result = {
        "benchmark": run_dir.name,
        "environment": environment(),
        "config": json.loads((run_dir / "config.json").read_text()),
        "units": "curve: whole system, Hartree (S in k_B); summaries per particle",
        "final_step": summary["step"],
        "final": _per_particle(summary["estimates"], n),
        "final_evaluation": summary["evaluation"],
        "exact_noninteracting_reference_total_hartree": summary["reference"],
        "pretrain": {"n_steps": len(_lines(run_dir / "pretrain.jsonl")),
                     "last": (_lines(run_dir / "pretrain.jsonl") or [None])[-1]},
        "events": _lines(run_dir / "events.jsonl"),
        "total_step_time_s": sum(row.get("step_time", 0.0) for row in curve),
        "curve": curve,
    }
    if start is not None:
        result["start_identity_flow"] = start
    if note:
        result["note"] = note
    observed = run_dir / "observe" / "observables.json"
    if observed.exists():
        result["observe"] = json.loads(observed.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("name")
    parser.add_argument("--start", type=pathlib.Path, default=None)
    parser.add_argument("--note", default=None)
    args = parser.parse_args()
    start = json.loads(args.start.read_text()) if args.start else None
    path = RESULTS_DIR / f"{args.name}.json"
    path.write_text(json.dumps(summarize(args.run_dir, start, args.note), indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

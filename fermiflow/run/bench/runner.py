"""``fermiflow bench``: run the reference benchmarks and write one table with provenance.

Each case of :mod:`fermiflow.run.bench.registry` is a config (or a check that needs no
training), a reference (an exact solver, a row of the published data of
:mod:`fermiflow.exact.published`, or an exact ideal-gas value) and a tolerance rule.
The runner trains each case in ``OUT/runs/<case>`` through the ordinary run shell
(:func:`~fermiflow.run.loop.start_run`; a finished run directory with the same config
is reused, an unfinished one resumed), takes the final estimates from fresh samples
(the run's own evaluation), compares them with the reference and writes

- ``OUT/bench.json``: every case, quantity, value, error, reference, z-score and verdict,
  with the environment (device, versions, git commit, whether the tree was clean);
- ``OUT/bench.md``: the same as a Markdown table;
- ``OUT/bench.png``: ours against the reference with error bars, and the z-scores.

A result made from a modified tree is marked as such and never called committed.
``OUT`` defaults to a new directory ``bench-results/<date>-<time>``; the runner refuses
an ``OUT`` that already holds a ``bench.json`` (it never writes over results).
Progress goes to stderr.

z = (ours - reference) / sqrt(error^2 + reference error^2). Units: per particle,
Hartree; S in k_B per particle.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fermiflow.run.bench.case import TIERS, Case, Reference, Rule
from fermiflow.run.bench.registry import CASES
from fermiflow.run.config import config_from_json, config_from_toml, load_config
from fermiflow.run.loop import RunStopped, read_rows, resume_run, start_run
from fermiflow.run.provenance import environment

__all__ = ["case_config", "evaluate_case", "judge", "run_bench", "select_cases"]


def select_cases(names: Sequence[str] = (), tier: str | None = None) -> list[Case]:
    """Return the cases named, or those of a tier and the tiers below it.

    Raises:
      ValueError: for an unknown case name or tier.
    """
    if tier is not None and tier not in TIERS:
        raise ValueError(f"--tier must be one of {TIERS}, got {tier!r}.")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise ValueError(f"unknown benchmark case {unknown[0]!r}; `fermiflow bench --list` "
                         "lists them.")
    if names:
        return [CASES[n] for n in names]
    allowed = TIERS[: TIERS.index(tier or "quick") + 1]
    return [c for c in CASES.values() if c.tier in allowed]


def _log(message: str) -> None:
    print(f"fermiflow bench: {message}", file=sys.stderr, flush=True)


def case_config(case: Case):
    """Return the resolved config of a case (a preset under configs/ or inline TOML)."""
    path = Path(__file__).resolve().parents[3] / case.config  # a preset of configs/
    if case.config.endswith(".toml") and path.is_file():
        return load_config(path, case.overrides)
    return config_from_toml(case.config, case.overrides, source=f"bench case {case.name}")


def _train(case: Case, run_dir: Path) -> dict:
    """Return the run's summary, training (or reusing, or resuming) as needed."""
    config = case_config(case)
    config_file, summary_file = run_dir / "config.json", run_dir / "summary.json"
    # Same config: compare the resolved configs (a key added later takes its default).
    same = config_file.exists() and config_from_json(config_file.read_text()) == config
    with contextlib.redirect_stdout(sys.stderr):  # the run's report is progress here
        if same and summary_file.exists():
            rows = read_rows(run_dir / "metrics.jsonl")
            if rows and rows[-1]["step"] + 1 >= config.run.n_steps:
                _log(f"{case.name}: reusing the finished run in {run_dir}")
                return json.loads(summary_file.read_text())
        if same:
            _log(f"{case.name}: resuming {run_dir}")
            return resume_run(run_dir)
        if run_dir.exists():
            raise ValueError(f"{run_dir} holds a run of another config; remove it or pick "
                             "another --out.")
        _log(f"{case.name}: training in {run_dir}")
        return start_run(config, run_dir)


def _ours_from_summary(summary: dict) -> dict[str, tuple[float, float]]:
    n = summary["n_particles"]
    return {q: (e["value"] / n, e["error"] / n) for q, e in summary["estimates"].items()}


def judge(ours: dict, reference: Reference, rule: Rule) -> tuple[list[dict], bool]:
    """Compare per-particle estimates with a reference under a tolerance rule.

    Args:
      ours: quantity -> (value, error), per particle.
      reference: the :class:`~fermiflow.run.bench.case.Reference`.
      rule: the :class:`~fermiflow.run.bench.case.Rule`.

    Returns:
      (rows, passed): one row per quantity present in both, with z-score, the
      deviation, and ``ok`` (True/False where the rule judges it, None where it only
      reports); passed is True when every judged row is ok.

    Examples:
      >>> from fermiflow.run.bench.case import Reference, Rule
      >>> rows, ok = judge({"F": (1.0005, 0.0002)}, Reference({"F": (1.0, 0.0)}, "x"),
      ...                  Rule("accuracy", judged=("F",)))
      >>> ok, round(rows[0]["z"], 2)
      (True, 2.5)
    """
    rows = []
    for q, (ref, ref_err) in reference.values.items():
        if q not in ours:
            continue
        value, err = ours[q]
        sigma = math.hypot(err, ref_err)
        z = (value - ref) / sigma if sigma > 0 else None  # exact on both sides
        ok = None
        if q in rule.judged:
            ok = _verdict(rule, q, value, err, ref, sigma)
        rows.append({"quantity": q, "value": value, "error": err, "reference": ref,
                     "reference_error": ref_err, "deviation": value - ref,
                     "relative_deviation": (value - ref) / abs(ref) if ref else None,
                     "z": z, "ok": ok})
    judged = [r["ok"] for r in rows if r["ok"] is not None]
    return rows, bool(judged) and all(judged)


def _verdict(rule: Rule, q: str, value: float, err: float, ref: float, sigma: float) -> bool:
    if rule.kind == "identity":
        return abs(value - ref) <= rule.rtol * max(abs(ref), 1e-300)
    if rule.kind == "zscore":
        return abs(value - ref) <= rule.k * sigma
    # "accuracy": precise enough to mean something, and within max(k sigma, rel |ref|);
    # S within an absolute tolerance per particle.
    if q == "S":
        return abs(value - ref) <= rule.entropy_abs
    precise = err <= rule.max_sigma_rel * abs(ref)
    return precise and abs(value - ref) <= max(rule.k * sigma, rule.rel * abs(ref))


def evaluate_case(case: Case, out: Path) -> dict:
    """Train (or reuse) and judge one case; return its record for ``bench.json``."""
    start = time.perf_counter()
    reference = case.reference()
    run_dir = None
    if case.config is None:
        ours, info = case.check(), {"training": "none (exact check)"}
    else:
        run_dir = out / "runs" / case.name
        try:
            summary = _train(case, run_dir)
        except RunStopped as error:  # the NaN guard gave up: a failed case, not a crash
            _log(f"{case.name}: FAIL, the run stopped: {error}")
            return {"name": case.name, "tier": case.tier, "description": case.description,
                    "reference_source": reference.source, "rule": case.rule.describe(),
                    "run_dir": str(run_dir), "rows": [], "passed": False,
                    "note": f"run stopped by the NaN guard: {error}",
                    "wall_s": time.perf_counter() - start}
        ours = _ours_from_summary(summary)
        info = {"step": summary["step"], "evaluation": summary["evaluation"]}
    rows, passed = judge(ours, reference, case.rule)
    evaluation = info.get("evaluation", {})
    excluded = evaluation.get("n_excluded_samples") or evaluation.get("n_excluded_walkers")
    if excluded:  # non-finite local values were left out: F is not a guaranteed bound
        passed, info["note"] = False, f"{excluded} non-finite evaluation samples left out"
    fold = evaluation.get("fold_weight")
    if fold is not None:  # an uncertified flow: F is a bound only below the fold-weight bound
        passed = passed and bool(fold["below_bound"])
    record = {"name": case.name, "tier": case.tier, "description": case.description,
              "reference_source": reference.source, "rule": case.rule.describe(),
              "run_dir": None if run_dir is None else str(run_dir), "rows": rows,
              "passed": passed, "wall_s": time.perf_counter() - start, **info}
    verdict = "PASS" if passed else "FAIL"
    _log(f"{case.name}: {verdict} " + ", ".join(
        f"{r['quantity']} {_z(r['z'])}" for r in rows))
    return record


def _evaluate_or_record(case: Case, out: Path) -> dict:
    """Evaluate a case; an error in it fails that case (recorded), not the whole bench."""
    try:
        return evaluate_case(case, out)
    except Exception as error:  # noqa: BLE001 - recorded in the table and on stderr
        _log(f"{case.name}: FAIL with an error: {type(error).__name__}: {error}")
        return {"name": case.name, "tier": case.tier, "description": case.description,
                "reference_source": None, "rule": case.rule.describe(), "run_dir": None,
                "rows": [], "passed": False, "wall_s": 0.0,
                "note": f"error: {type(error).__name__}: {error}"}


def _markdown(records: list[dict], env: dict) -> str:
    clean = env.get("git_dirty") is False
    lines = [f"# fermiflow bench ({env['date_utc']})", "",
             f"Commit `{env.get('git_commit')}`"
             + ("" if clean else " **with a modified tree: not a committed result**")
             + f"; device {env['device_kind']} ({env['platform']}); jax {env['jax']}.", "",
             "Per particle: Hartree, S in k_B. z = (ours - ref) / sqrt(err^2 + ref_err^2).", "",
             "| case | quantity | ours | reference | rel. dev. | z | verdict | rule |",
             "|---|---|---|---|---|---|---|---|"]
    for rec in records:
        if not rec["rows"] or rec.get("note"):
            lines.append(f"| {rec['name']} | — | — | — | | | **fail** | "
                         f"{rec.get('note', 'no estimate')} |")
        for r in rec["rows"]:
            verdict = {True: "pass", False: "**fail**", None: "report"}[r["ok"]]
            rel = "" if r["relative_deviation"] is None else f"{r['relative_deviation']:+.2e}"
            ours = f"{r['value']:.6f}({_digits(r['error'])})"
            lines.append(f"| {rec['name']} | {r['quantity']} | {ours}"
                         f" | {r['reference']:.6f}({_digits(r['reference_error'])}) | {rel} | "
                         f"{_z(r['z'])} | {verdict} | {rec['rule']} |")
        fold = rec.get("evaluation", {}).get("fold_weight")
        if fold is not None:
            verdict = "pass" if fold["below_bound"] else "**fail**"
            lines.append(f"| {rec['name']} | fold weight | {fold['value']:.2e} ± "
                         f"{fold['error']:.1e} | < {fold['bound']:g} | | | {verdict} | "
                         f"weight of Psi_K^2 where det J <= 0, +3 sigma; "
                         f"{fold['n_chains']} tempered chains |")
    lines += ["", "Sources: " + "; ".join(sorted({f"{r['name']}: {r['reference_source']}"
                                                 for r in records}))]
    return "\n".join(lines) + "\n"


def _z(z: float | None) -> str:
    return "exact" if z is None else f"z={z:+.2f}"


def _digits(error: float) -> str:
    """Error in units of the last of six decimals, e.g. 0.000123 -> '123'."""
    return "0" if error == 0 else f"{error * 1e6:.0f}"


def _plot(records: list[dict], path: Path) -> None:
    rows = [(rec["name"], r) for rec in records for r in rec["rows"]]
    if not rows:
        return
    figure = Figure(figsize=(10, 0.3 * len(rows) + 1.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    labels = [f"{name} {r['quantity']}" for name, r in rows]
    scale = [abs(r["reference"]) or 1.0 for _, r in rows]
    left.errorbar([r["deviation"] / s for (_, r), s in zip(rows, scale, strict=True)], y,
                  xerr=[math.hypot(r["error"], r["reference_error"]) / s
                        for (_, r), s in zip(rows, scale, strict=True)], fmt="o", ms=3)
    left.axvline(0, color="k", lw=0.8)
    left.set_xlabel("(ours - reference) / |reference|")
    left.set_yticks(y, labels, fontsize=6)
    colors = ["C2" if r["ok"] else "C3" if r["ok"] is False else "C7" for _, r in rows]
    right.barh(y, [np.clip(r["z"] or 0.0, -20, 20) for _, r in rows], color=colors)
    for k in (-3, 3):
        right.axvline(k, color="k", ls="--", lw=0.8)
    right.set_xlabel("z-score (clipped at 20)")
    figure.savefig(path, dpi=110)


def run_bench(names: Sequence[str] = (), *, tier: str | None = None,
              out: str | Path | None = None) -> dict:
    """Run benchmark cases and write ``bench.json``, ``bench.md`` and ``bench.png``.

    Args:
      names: case names; empty for every case of ``tier`` and below.
      tier: "quick", "cpu" or "gpu" (default "quick" when no names are given).
      out: output directory; default a new ``bench-results/<date>-<time>``.

    Returns:
      The dict written to ``bench.json``.

    Raises:
      ValueError: for unknown cases or tiers, or an ``out`` that already holds results.
    """
    cases = select_cases(names, tier)
    out = Path(out) if out is not None else Path("bench-results") / time.strftime(
        "%Y%m%d-%H%M%S")
    if (out / "bench.json").exists():
        raise ValueError(f"{out} already holds bench results; pass a new --out (the runner "
                         "never writes over results).")
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    if env.get("git_dirty") is not False:
        _log("the source tree is modified (or not a git checkout): results will be marked "
             "as not committed.")
    records = [_evaluate_or_record(case, out) for case in cases]
    result = {"environment": env, "committed": env.get("git_dirty") is False,
              "tier": tier, "cases": records,
              "passed": sum(r["passed"] for r in records), "total": len(records)}
    (out / "bench.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    (out / "bench.md").write_text(_markdown(records, env))
    _plot(records, out / "bench.png")
    _log(f"{result['passed']} of {len(records)} cases pass; wrote {out}/bench.{{json,md,png}}")
    return result

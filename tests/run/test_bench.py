"""fermiflow bench: the quick tier passes; judging, outputs and provenance."""

import json
import math

import pytest

from fermiflow.run.bench import (
    CASES,
    TIERS,
    Reference,
    Rule,
    case_config,
    judge,
    run_bench,
    select_cases,
)
from fermiflow.run.cli import main


def test_quick_tier_passes_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--tier", "quick", "--out", str(out)]) == 0
    result = json.loads((out / "bench.json").read_text())
    names = {c["name"] for c in result["cases"]}
    assert names == {c.name for c in CASES.values() if c.tier == "quick"}
    assert result["passed"] == result["total"] == len(names) >= 6
    for case in result["cases"]:
        assert case["passed"] and case["rows"], case
        assert case["reference_source"]
    trained = next(c for c in result["cases"] if c["run_dir"])
    free = next(r for r in trained["rows"] if r["quantity"] == "F")
    assert free["error"] < 1e-3 * abs(free["reference"])  # a test with power
    env = result["environment"]
    assert env["git_commit"] and "jax" in env and env["device_kind"]
    assert result["committed"] == (env["git_dirty"] is False)
    table = (out / "bench.md").read_text()
    judged = sum(r["ok"] is not None for c in result["cases"] for r in c["rows"])
    assert table.count("| pass |") == judged > 0 and "**fail**" not in table
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "fermiflow bench:" in capsys.readouterr().err  # progress on stderr
    with pytest.raises(ValueError, match="never writes over results"):
        run_bench(["ideal2d_n13"], out=out)


def test_judge_rules():
    ref = Reference({"F": (-1.0, 0.0), "S": (0.5, 0.0), "E": (2.0, 0.01)}, "test")
    rule = Rule("accuracy", ("F", "S"))
    rows, ok = judge({"F": (-0.9995, 2e-4), "S": (0.52, 0.01), "E": (2.5, 0.01)}, ref, rule)
    assert ok and {r["quantity"]: r["ok"] for r in rows} == {"F": True, "S": True, "E": None}
    assert math.isclose(next(r["z"] for r in rows if r["quantity"] == "E"), 0.5 / math.hypot(
        0.01, 0.01))
    _, ok = judge({"F": (-0.990, 2e-4), "S": (0.5, 0.0)}, ref, rule)  # 1% off: fails
    assert not ok
    _, ok = judge({"F": (-1.0, 1e-3), "S": (0.5, 0.0)}, ref, rule)  # too noisy to count
    assert not ok
    _, ok = judge({"F": (-1.0, 0.0), "S": (0.6, 0.0)}, ref, rule)  # entropy off by 0.1
    assert not ok
    rows, ok = judge({"F": (-1.0 + 1e-12, 0.0)}, Reference({"F": (-1.0, 0.0)}, "x"),
                     Rule("identity", ("F",), rtol=1e-9))
    assert ok and rows[0]["z"] is None
    _, ok = judge({"F": (1.0, 0.1)}, Reference({"F": (0.0, 0.0)}, "x"), Rule("report", ()))
    assert not ok  # nothing judged is not a pass


def test_case_selection():
    assert TIERS == ("quick", "cpu", "gpu")
    cpu = select_cases(tier="cpu")
    assert {c.tier for c in cpu} == {"quick", "cpu"}
    two_electron = [c for c in cpu if c.name.startswith(("dot2d_pol", "dot2d_1u1d", "box2d"))]
    assert len([c for c in two_electron if c.tier == "cpu"]) >= 32
    with pytest.raises(ValueError, match="unknown benchmark case"):
        select_cases(["no_such_case"])
    with pytest.raises(ValueError, match="--tier"):
        select_cases(tier="tpu")


def test_every_case_config_resolves():
    """Configs of all tiers validate (nothing is built or compiled)."""
    for case in CASES.values():
        if case.config is not None:
            config = case_config(case)
            assert config.run.n_steps >= 1, case.name
        if case.name.startswith("dot2d") or case.config is None:  # cheap references
            reference = case.reference()
            assert reference.values and reference.source, case.name


@pytest.mark.parametrize("below", [True, False])
def test_fold_weight_is_judged_and_tabled(tmp_path, monkeypatch, below):
    """An uncertified run's fold weight fails the case when it is not below its bound."""
    from fermiflow.run.bench import runner

    fold = {"value": 0.0 if below else 3e-4, "error": 0.0 if below else 1e-4,
            "bound": 1e-6, "below_bound": below, "n_chains": 8}
    summary = {"n_particles": 2, "step": 9,
               "estimates": {"F": {"value": -2.0, "error": 1e-4}},
               "evaluation": {"fold_weight": fold}}
    monkeypatch.setattr(runner, "_train", lambda case, run_dir: summary)
    case = CASES["box2d_pol_rs10_t0.5"]._replace(
        reference=lambda: Reference({"F": (-1.0, 0.0)}, "test"))
    record = runner.evaluate_case(case, tmp_path)
    assert record["rows"][0]["ok"] is True  # F itself within tolerance
    assert record["passed"] is below
    env = {"date_utc": "d", "git_commit": "c", "git_dirty": False, "device_kind": "cpu",
           "platform": "cpu", "jax": "j"}
    line = next(row for row in runner._markdown([record], env).splitlines()
                if "fold weight" in row)
    assert ("| pass |" in line) is below and ("**fail**" in line) is not below
    assert line.count("|") == 9  # one table row of eight cells

"""Acceptance runs as slow tests: the bench cases that hold the project's record.

Each test runs one case of ``fermiflow bench`` (the same config, reference and rule as
the committed table in benchmarks/README.md) and asserts its verdict. They take
minutes to tens of minutes on a 2-core CPU: ``python -m pytest -m slow``. The quick
tier runs in the default suite (tests/run/test_bench.py).
"""

import pytest

from fermiflow.run.bench import run_bench


def _case(name, tmp_path):
    result = run_bench([name], out=tmp_path / "bench")
    (case,) = result["cases"]
    rows = {r["quantity"]: r for r in case["rows"]}
    return case, rows


@pytest.mark.slow
def test_ground_state_two_electrons_in_trap(tmp_path):
    """T = 0, 1 up + 1 down, omega = 1, coupling 1: E within 3e-4 of 3 Ha, sigma < 1.5e-4."""
    case, rows = _case("dot2d_1u1d_ground_state", tmp_path)
    assert case["passed"], rows
    assert rows["E"]["value"] > 1.5 - 5 * rows["E"]["error"]  # variational


@pytest.mark.slow
def test_ideal_quantum_dot_full_method(tmp_path):
    """Ideal 2D dot, N = 6 polarized, beta = 2: F within 3 sigma of exact, sigma small."""
    case, rows = _case("dot2d_n6_ideal", tmp_path)
    assert case["passed"], rows


@pytest.mark.slow
def test_classical_pair(tmp_path):
    """The committed classical-pair record: F within max(3 sigma, 2e-3 |F|) of the exact
    pair free energy, no non-finite sample (a fold would void the bound)."""
    case, rows = _case("classical_pair", tmp_path)
    assert "note" not in case, case.get("note")
    assert case["passed"], rows

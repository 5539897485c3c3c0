"""A user mistake gets one clear line on stderr and exit status 2, never a traceback."""

import json
import subprocess
import sys

import pytest

from fermiflow.run.cli import main


def _one_line_error(capsys, *needles):
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)


@pytest.mark.parametrize("command", ["run", "resume", "info", "observe"])
def test_missing_paths(tmp_path, capsys, command):
    missing = tmp_path / ("missing.toml" if command == "run" else "missing")
    assert main([command, str(missing)]) == 2
    _one_line_error(capsys, "missing", "not found" if command == "run" else "not a directory")


def test_config_that_is_a_directory(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    _one_line_error(capsys, "a directory")


def test_resume_without_checkpoints_and_a_broken_config_json(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert main(["resume", str(run_dir)]) == 2
    _one_line_error(capsys, "holds no config.json")
    (run_dir / "config.json").write_text('{"system": {"kind": "quantum_dot", "n_up": 1,')
    assert main(["resume", str(run_dir)]) == 2
    _one_line_error(capsys, str(run_dir / "config.json"))
    (run_dir / "config.json").write_text(json.dumps({"system": {
        "kind": "quantum_dot", "n_up": 1, "n_shells": 2, "beta": 1.0}}))
    assert main(["resume", str(run_dir)]) == 2
    _one_line_error(capsys, "holds no checkpoint")


def test_bad_override_values_name_the_key(capsys):
    assert main(["run", "--dry-run", "--set", "run.n_steps=abc"]) == 2
    _one_line_error(capsys, "run.n_steps must be int", "'abc'")
    assert main(["resume", "somewhere", "--set", "run.n_steps=abc"]) == 2
    _one_line_error(capsys, "run.n_steps")


def test_import_prints_no_warning():
    """ArviZ announces a refactor with a FutureWarning on import: not on our users' screens."""
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import fermiflow.observables, fermiflow.run.cli"],
        capture_output=True, text=True, timeout=300, check=True)
    assert result.stderr == ""

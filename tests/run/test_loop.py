"""Run shell: run directory, SIGKILL + resume bit for bit, NaN guard rollbacks, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import fermiflow.run.engine
import fermiflow.run.loop
from fermiflow.run.checkpoint import list_checkpoints
from fermiflow.run.cli import main
from fermiflow.run.config import load_config
from fermiflow.run.loop import RunStopped, read_rows, resume_run, start_run

# Two electrons in a 2D dot with the backflow: small enough to compile in seconds.
TINY = (Path(__file__).parent / "tiny_dot.toml").read_text()
N_STEPS = 240


def _env(cache: Path) -> dict:
    # A compilation cache shared by the three processes: only the first compiles.
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", TF_CPP_MIN_LOG_LEVEL="3")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fermiflow.run.cli", *args]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = root / "tiny.toml"
    config.write_text(TINY)
    reference = root / "reference"
    result = subprocess.run(_cli("run", str(config), "--run-dir", str(reference)),
                            env=_env(root / "cache"), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, config, reference, result.stdout


def _raw_state(path: Path) -> dict:
    return serialization.msgpack_restore(path.read_bytes()[8 + 32:])["state"]


def _assert_bitwise_equal(a: dict, b: dict) -> int:
    flat_a, flat_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(flat_a, flat_b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=True), (x, y)
    return len(flat_a)


def test_run_directory_holds_config_versions_metrics_checkpoints_plots(tiny):
    _, _, reference, stdout = tiny
    config = json.loads((reference / "config.json").read_text())
    assert config["sampler"]["batch"] == 16 and config["system"]["kind"] == "quantum_dot"
    versions = json.loads((reference / "versions.json").read_text())
    assert versions["jax"] == jax.__version__ and "git_commit" in versions
    rows = read_rows(reference / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(N_STEPS))
    for key in ("F", "F_err", "E", "K", "V", "S", "S_err", "acceptance", "width",
                "grad_norm_occupation", "grad_norm_wavefunction", "step_time"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert all(r["update_applied"] for r in rows)
    assert [p.name for p in list_checkpoints(reference / "checkpoints")] == [
        f"ckpt_{s:09d}.msgpack" for s in (N_STEPS - 20, N_STEPS - 10, N_STEPS)]
    assert (reference / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((reference / "summary.json").read_text())
    assert set(summary["estimates"]) == {"F", "E", "K", "V", "S"}
    for e in summary["estimates"].values():
        assert np.isfinite(e["value"]) and 0 < e["error"] < 1 and e["method"] == "blocking"
    # The ideal reference: two independent spins in the levels (1, 2, 2) Ha at beta = 2.
    z_one = np.exp(-2.0) + 2 * np.exp(-4.0)
    assert summary["reference"]["F"] == pytest.approx(-2 * np.log(z_one) / 2.0, rel=1e-10)
    assert "F/N" in stdout and "ideal [Ry]" in stdout
    assert "step" in fermiflow.run.loop.describe_run(reference)


def test_sigkill_then_resume_reaches_the_same_state_bit_for_bit(tiny):
    root, config, reference, _ = tiny
    killed = root / "killed"
    process = subprocess.Popen(_cli("run", str(config), "--run-dir", str(killed)),
                               env=_env(root / "cache"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        steps = [int(p.stem[5:]) for p in list_checkpoints(killed / "checkpoints")]
        if steps and max(steps) >= 20:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill"
    steps = [int(p.stem[5:]) for p in list_checkpoints(killed / "checkpoints")]
    assert 20 <= max(steps) < N_STEPS and not (killed / "summary.json").exists()
    # Damage the newest checkpoint too: the resume must fall back to the one before.
    newest = list_checkpoints(killed / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    result = subprocess.run(_cli("resume", str(killed)), env=_env(root / "cache"),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipping checkpoint {newest}" in result.stderr
    final = f"ckpt_{N_STEPS:09d}.msgpack"
    n_arrays = _assert_bitwise_equal(_raw_state(killed / "checkpoints" / final),
                                     _raw_state(reference / "checkpoints" / final))
    assert n_arrays > 10  # both networks, optimizer states, walkers, K, width, key, step
    ours, theirs = read_rows(killed / "metrics.jsonl"), read_rows(reference / "metrics.jsonl")
    assert [r["step"] for r in ours] == list(range(N_STEPS))
    for a, b in zip(ours, theirs, strict=True):
        a.pop("step_time"), b.pop("step_time")
        assert a == b


def test_info_and_cli_errors(tiny, capsys):
    _, _, reference, _ = tiny
    assert main(["info", str(reference)]) == 0
    out = capsys.readouterr().out
    assert "ckpt_000000240.msgpack" in out and "[sampler] batch=16," in out
    assert main(["run", "--dry-run", "--set", "system.rs=1.0"]) == 2
    assert "system.rs is not a parameter of kind='quantum_dot'" in capsys.readouterr().err
    assert main(["resume", str(reference), "--set", "sampler.batch=8"]) == 2
    with pytest.raises(ValueError, match="already holds a run"):
        start_run(load_config(None), reference)
    with pytest.raises(ValueError, match="resume can change run"):
        resume_run(reference, {"seed": 3})


def test_dry_run_builds_without_writing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: config valid" in out and "ideal [Ha]" in out
    assert not list(tmp_path.iterdir())


def _guard_config(tmp_path, **run):
    overrides = ["model.flow=identity", "run.n_steps=8", "run.checkpoint_every=2",
                 *[f"run.{k}={v}" for k, v in run.items()]]
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return load_config(path, overrides)


def _poisoned(monkeypatch, fails):
    """Make build_engine's step report a NaN step where fails(step, lr_scale) holds."""
    real = fermiflow.run.engine.build_engine

    def build(config, *, learning_rate_scale=1.0, devices=None):
        engine = real(config, learning_rate_scale=learning_rate_scale, devices=devices)

        def step(state):
            new, metrics = engine.step(state)
            bad = fails(state.step, learning_rate_scale)
            estimates = jax.tree.map(lambda a: jnp.where(bad, jnp.nan, a), metrics.estimates)
            metrics = metrics._replace(estimates=estimates,
                                       update_applied=metrics.update_applied & ~bad,
                                       n_nonfinite_local=jnp.where(bad, 5, 0))
            return new, metrics

        return engine._replace(step=jax.jit(step))

    monkeypatch.setattr(fermiflow.run.loop, "build_engine", build)


def test_nan_step_rolls_back_with_a_smaller_learning_rate(tmp_path, monkeypatch):
    config = _guard_config(tmp_path)
    _poisoned(monkeypatch, lambda step, scale: (step == 3) & (scale == 1.0))
    summary = start_run(config, tmp_path / "run")
    run_dir = tmp_path / "run"
    events = [e for e in read_rows(run_dir / "events.jsonl") if e["event"] == "rollback"]
    assert len(events) == 1
    assert events[0]["to_step"] == 2 and events[0]["learning_rate_scale"] == 0.5
    failed = events[0]["failed_steps"]  # logged as null, never as NaN or averaged
    assert [r["step"] for r in failed] == [3] and failed[0]["F"] is None
    assert failed[0]["n_nonfinite_local"] == 5 and not failed[0]["update_applied"]
    assert ": NaN" not in (run_dir / "events.jsonl").read_text()
    rows = read_rows(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(8))  # the failed attempt is gone
    assert all(r["update_applied"] and r["F"] is not None for r in rows)
    final = serialization.msgpack_restore(
        list_checkpoints(run_dir / "checkpoints")[-1].read_bytes()[40:])
    assert json.loads(final["metadata"])["control"] == {"learning_rate_scale": 0.5,
                                                        "n_rollbacks": 1}
    assert np.isfinite(summary["estimates"]["F"]["value"])


@pytest.mark.slow
def test_persistent_nans_stop_the_run_with_a_clear_message(tmp_path, monkeypatch):
    config = _guard_config(tmp_path, max_rollbacks=1)
    _poisoned(monkeypatch, lambda step, scale: step >= 3)
    with pytest.raises(RunStopped, match=r"step 3: no update applied .* after 1 rollbacks"):
        start_run(config, tmp_path / "run")
    text = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert ": NaN" not in text and "Infinity" not in text
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert rows[-1]["step"] == 3 and rows[-1]["F"] is None
    assert not rows[-1]["update_applied"] and rows[-1]["n_nonfinite_local"] == 5
    assert all(r["F"] is not None for r in rows[:-1])


@pytest.mark.slow
def test_classical_run_is_variational(tmp_path):
    """The classical Coulomb pair end to end: F >= the exact F (quadrature), within errors."""
    from fermiflow.run.config import config_from_dict, resolve

    config = resolve(config_from_dict({
        "system": {"kind": "classical", "dim": 2, "n": 2, "temperature": 0.5},
        "model": {"depth": 1, "width_one": 8, "width_two": 8, "base_scale": 0.7},
        "sampler": {"batch": 256},
        "optimizer": {"wavefunction": "adam", "wavefunction_learning_rate": 1e-2},
        "run": {"n_steps": 40, "checkpoint_every": 20, "n_eval_steps": 16}}))
    summary = start_run(config, tmp_path / "classical")
    mean, err = summary["estimates"]["F"]["value"], summary["estimates"]["F"]["error"]
    exact = summary["exact"]["F"]
    assert err < 0.05, f"too noisy to test: {err:.3g}"
    assert mean > exact - 5 * err, (mean, exact, err)  # variational: F >= F_exact
    # ... and training moved F down toward it: below the untrained flow's F (step 0).
    first = read_rows(tmp_path / "classical" / "metrics.jsonl")[0]
    assert mean < first["F"] - 5 * np.hypot(err, first["F_err"]), (mean, first)
    assert set(summary["estimates"]) == {"F", "E", "S"}  # no K, V for the classical gas
    assert [r["step"] for r in read_rows(tmp_path / "classical" / "metrics.jsonl")] == list(
        range(40))


@pytest.mark.slow  # 25-60 s of compiles; the estimator itself is tested on an exact ring
def test_uncertified_box_flow_reports_its_fold_weight(tmp_path):
    """model.certify = false: the final estimates carry the fold weight and its verdict."""
    from fermiflow.run.config import config_from_dict, resolve

    config = resolve(config_from_dict({
        "system": {"kind": "electron_gas", "dim": 2, "n_up": 2, "n_down": 0, "rs": 2.0,
                   "theta": 1.0, "emax": 6, "twist": [0.25, 0.25]},
        "model": {"occupation": "categorical", "certify": False, "free_displacement": True,
                  "depth": 1, "width_one": 8, "width_two": 8},
        "sampler": {"batch": 32, "n_sweeps": 2},
        "optimizer": {"wavefunction": "adam", "wavefunction_learning_rate": 1e-3},
        "run": {"n_steps": 2, "checkpoint_every": 2, "n_eval_steps": 4}}))
    summary = start_run(config, tmp_path / "run")
    fold = summary["evaluation"]["fold_weight"]
    assert fold["n_chains"] == 32 and fold["n_samples"] == 32 * 200
    assert 0 <= fold["value"] <= 1 and np.isfinite(fold["error"])
    assert 0 < fold["acceptance"] < 1
    # Two steps from a near-identity flow: no fold anywhere, so the verdict is "below".
    assert fold["tempered_fraction"] == 0 and fold["below_bound"]
    assert "fold weight (uncertified flow)" in (tmp_path / "run" / "summary.txt").read_text()

"""`fermiflow observe`: a saved run is observed after a fresh Python start."""

import json
import os
import subprocess
import sys

import arviz
import numpy as np
import pytest

from fermiflow.observables import (
    ideal_entropy,
    plane_wave_pair_correlation,
    plane_wave_structure_factor,
    reciprocal_lattice,
)
from fermiflow.run.build import build_pieces
from fermiflow.run.config import load_config
from fermiflow.run.loop import start_run
from fermiflow.run.observe import json_ready, load_run, observe_run

GAS = """
[system]
kind = "electron_gas"
dim = 2
n_up = 2
n_down = 1
rs = 2.0
theta = 0.5
emax = 2
twist = [0.25, 0.25]
[model]
occupation = "categorical"
max_excitation = 20.0
flow = "backflow"
depth = 1
width_one = 4
width_two = 4
[sampler]
batch = 32
n_sweeps = 3
n_extra_sweeps = 3
n_thermalize = 5
[optimizer]
occupation = "adam"
occupation_learning_rate = 0.01
wavefunction = "adam"
wavefunction_learning_rate = 1e-3
[run]
n_steps = 4
checkpoint_every = 2
n_eval_steps = 16
"""

DOT = """
[system]
kind = "quantum_dot"
dim = 2
n_up = 1
n_down = 1
omega = 1.0
coupling = 1.0
beta = 2.0
n_shells = 2
[model]
occupation = "categorical"
max_excitation = 3.0
flow = "identity"
[sampler]
batch = 32
n_sweeps = 3
n_extra_sweeps = 2
n_thermalize = 5
[optimizer]
occupation = "adam"
occupation_learning_rate = 0.01
[run]
n_steps = 2
checkpoint_every = 2
n_eval_steps = 8
"""


def _observe_in_fresh_python(run_dir, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "fermiflow.run.cli", "observe", str(run_dir), *args]
    result = subprocess.run(command,
                            env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout, json.loads((run_dir / "observe" / "observables.json").read_text())


def test_cli_routes_observe_and_names_a_missing_run(tmp_path, capsys):
    from fermiflow.run.cli import main

    assert main(["observe", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1  # one line, on stderr
    assert "missing is not a directory" in captured.err
    (tmp_path / "empty").mkdir()
    assert main(["observe", str(tmp_path / "empty")]) == 2
    assert "holds no config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_electron_gas_run_is_observed_after_a_fresh_start(tmp_path):
    config_file = tmp_path / "gas.toml"
    config_file.write_text(GAS)
    run_dir = tmp_path / "gas"
    summary = start_run(load_config(config_file), run_dir)
    stdout, result = _observe_in_fresh_python(run_dir, "--samples", "1024")
    assert "m*/m" in stdout
    assert result["n_samples"] == 1024 and result["step"] == 4
    thermo = result["thermodynamics"]["estimates"]
    for name in ("free_energy", "energy", "kinetic", "potential", "entropy", "pressure"):
        o = thermo[name]
        assert np.isfinite(o["value"]) and o["error"] > 0 and o["n_samples"] == 1024
    assert thermo["entropy"]["units"] == "k_B" and thermo["pressure"]["units"] == "Hartree/Bohr^2"
    # The same params as the run's final evaluation, other fresh samples: consistent.
    for key, name in (("F", "free_energy"), ("E", "energy"), ("S", "entropy")):
        mean, err = summary["estimates"][key]["value"], summary["estimates"][key]["error"]
        combined = np.hypot(err, thermo[name]["error"])
        assert abs(thermo[name]["value"] - mean) < 5 * combined, (name, mean, thermo[name])
    mass = result["thermodynamics"]["effective_mass"]
    s0 = ideal_entropy(build_pieces(load_config(config_file)).system)
    np.testing.assert_allclose(mass["value"] * s0, thermo["entropy"]["value"], rtol=1e-12)
    for key in ("effective_mass_entropy_inversion", "effective_mass_occupation_fit"):
        estimate = result["thermodynamics"][key]
        assert 0 < estimate["value"] < 10 and estimate["error"] > 0, (key, estimate)
    g = result["pair_correlation"]
    assert g["channels"] == ["all", "up-up", "up-down"]
    assert np.array(g["value"]).shape == (3, 32)
    assert np.array(result["structure_factor"]["value"]).shape[0] == 3
    n_k = result["momentum"]
    # Both estimators of n(k) count the electrons of each species (sum rule).
    np.testing.assert_allclose(np.sum(n_k["quasi_particle"]["value"], axis=1), [2, 1],
                               rtol=1e-12)
    assert np.array(n_k["off_diagonal"]["value"]).shape == (2, 9)
    box = result["density"]["box"]
    np.testing.assert_allclose(np.mean(box["value"]), box["uniform"], rtol=1e-12)
    # A 4-step backflow is still a bijection: no fold on 4096 uniform configurations.
    assert result["flow_fold_fraction"]["value"] == 0.0
    idata = arviz.from_netcdf(run_dir / "observe" / "local_values.nc")
    assert idata.posterior["energy"].shape == (32, 1024 // 32)
    assert (run_dir / "observe" / "observables.png").stat().st_size > 10_000


@pytest.mark.slow
def test_quantum_dot_run_gives_densities(tmp_path):
    config_file = tmp_path / "dot.toml"
    config_file.write_text(DOT)
    run_dir = tmp_path / "dot"
    start_run(load_config(config_file), run_dir)
    _, result = _observe_in_fresh_python(run_dir, "--observables", "thermodynamics", "density",
                                         "--bins", "12")
    assert "pair_correlation" not in result and "pressure" not in result["thermodynamics"][
        "estimates"]
    radial = result["density"]["radial"]
    r, rho = np.array(radial["r"]), np.array(radial["value"])
    # Shell areas are exactly 2 pi r_mid dr: the radial density integrates to N times
    # the fraction of electrons inside r_max, the 99.9% quantile of the same samples.
    total = np.sum(rho * 2 * np.pi * r * (r[1] - r[0]))
    assert 2 * 0.998 <= total <= 2 * (1 + 1e-12), total
    assert np.array(result["density"]["image"]["value"]).shape == (24, 24)


def test_validation_and_json_cleaning(tmp_path):
    with pytest.raises(ValueError, match="unknown observables"):
        observe_run(tmp_path, observables=["g_of_r"])
    with pytest.raises(ValueError, match="--samples"):
        observe_run(tmp_path, n_samples=0)
    cleaned = json_ready({"a": np.float64(np.nan), "b": (np.int64(3), 1.5), "c": [float("inf")]})
    assert cleaned == {"a": None, "b": [3, 1.5], "c": [None]}
    json.dumps(cleaned, allow_nan=False)


IDEAL_GAS = """
[system]
kind = "electron_gas"
dim = 2
n_up = 2
n_down = 1
rs = 2.0
theta = 1.0
emax = 2
twist = [0.25, 0.25]
[model]
occupation = "categorical"
max_excitation = 4.0
flow = "identity"
[sampler]
batch = 64
n_sweeps = 4
n_extra_sweeps = 4
n_thermalize = 20
[optimizer]
occupation = "adam"
occupation_learning_rate = 0.01
[run]
n_steps = 2
checkpoint_every = 2
pretrain_steps = 30
"""


@pytest.mark.slow  # ~45 s, statistical; g(r) and S(k) have exact unit tests
def test_pair_correlation_and_structure_factor_match_the_exact_mixture(tmp_path):
    """With the identity flow, x | K ~ |D_K|^2 exactly: g(r) and S(k) of the run are the
    p(K)-weighted means of the exact per-set plane-wave values (any p(K))."""
    config_file = tmp_path / "ideal.toml"
    config_file.write_text(IDEAL_GAS)
    run_dir = tmp_path / "ideal"
    start_run(load_config(config_file), run_dir)
    result = observe_run(run_dir, n_samples=64 * 64, n_bins=8,
                         observables=["pair", "structure_factor"])
    run = load_run(run_dir)
    problem, spectrum = run.problem, run.system.spectrum
    states = problem.occupation_states
    p = np.exp(np.asarray(problem.occupation_model.log_prob(run.state.params.occupation,
                                                            states)))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-10)
    box = problem.box_length
    edges = np.linspace(0.0, box / 2, 9)
    exact_g = np.einsum("s,scb->cb", p, plane_wave_pair_correlation(
        states, spectrum.wavevectors, edges, n_up=2))
    k = reciprocal_lattice(box_length=box, dim=2, max_norm2=4 * 2)
    q = np.rint(k * box / (2 * np.pi)).astype(int)
    norm2 = (q**2).sum(1)
    shells = np.unique(norm2)
    onehot = (norm2[:, None] == shells[None, :]) / np.bincount(norm2)[shells]
    exact_s = np.einsum("s,scq->cq", p, plane_wave_structure_factor(
        states, spectrum.quantum_numbers, q, n_up=2)) @ onehot
    for name, exact, max_error in (("pair_correlation", exact_g, 0.15),
                                   ("structure_factor", exact_s, 0.05)):
        value, error = (np.array(result[name][key]) for key in ("value", "error"))
        assert value.shape == exact.shape
        assert error.max() < max_error, f"{name}: too noisy to test ({error.max():.3f})"
        sigma = np.abs(value - exact) / error
        assert sigma.max() < 5, (name, sigma.max())
        # Power: uncorrelated electrons (g = S = 1) would be off by > 10 sigma somewhere.
        assert (np.abs(exact - 1) / error).max() > 10, name

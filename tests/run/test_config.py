"""Config: TOML/JSON round trips, key paths in errors, --set overrides, physics checks."""

import dataclasses
import math
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot
from fermiflow.hamiltonians.units import electron_gas_scales
from fermiflow.run.config import (
    DEMO_TOML,
    Config,
    config_from_dict,
    config_from_json,
    config_to_json,
    load_config,
    make_system,
    resolve,
    temperature_of,
)

PRESETS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


def _write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


GAS = """
[system]
kind = "electron_gas"
dim = 2
n_up = 13
rs = 10.0
theta = 0.15
emax = 25
twist = [0.25, 0.25]
[model]
occupation = "transformer"
"""


def test_demo_is_the_default_and_round_trips_through_json():
    config = load_config(None)
    assert config.system.kind == "quantum_dot" and config.system.n_up == 2
    assert config_from_json(config_to_json(config)) == config
    assert (Path(__file__).parents[2] / "configs" / "demo.toml").read_text() == DEMO_TOML


def test_gas_config_resolves_units_at_the_edge(tmp_path):
    config = load_config(_write(tmp_path, GAS))
    assert config.system.n_down == 0 and config.system.twist == (0.25, 0.25)
    gas = make_system(config)
    assert isinstance(gas, ElectronGas)
    scales = electron_gas_scales(n_up=13, n_down=0, dim=2, rs=10.0, theta=0.15)
    assert gas.box_length == scales.box_length == math.sqrt(13 * math.pi) * 10.0
    assert temperature_of(config.system) == pytest.approx(1 / gas.beta, rel=1e-14)
    assert config_from_json(config_to_json(config)) == config


def test_dot_temperature_or_beta_and_classical_system():
    dot = load_config(None, ["system.beta=4.0"])
    assert isinstance(make_system(dot), QuantumDot) and temperature_of(dot.system) == 0.25
    data = dataclasses.asdict(dot)
    data["system"].update(beta=None, temperature=0.25)
    assert make_system(resolve(config_from_dict(data))).beta == 4.0
    classical = config_from_dict({"system": {"kind": "classical", "n": 3, "temperature": 0.5},
                                  "optimizer": {"wavefunction": "adam"}})
    gas = make_system(resolve(classical))
    assert isinstance(gas, ClassicalCoulombGas) and gas.omega == 1.0 and gas.coupling == 1.0


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["sampler.batchsize=3"], r"unknown key sampler\.batchsize"),
        (["samplers.batch=3"], r"unknown section \[samplers\]"),
        (["sampler.batch='many'"], r"sampler\.batch must be int"),
        (["sampler.batch=true"], r"sampler\.batch must be int"),
        (["run.seed=1.5"], r"run\.seed must be int"),
        (["system.twist=['a', 'b']"], r"system\.twist\[0\] must be float"),
        (["system.kind='plasma'"], r"system\.kind must be one of"),
        (["system.omega=-1.0"], r"system\.omega must be a finite number > 0"),
        (["system.beta=-2.0"], r"system\.beta must be a finite number > 0"),
        (["system.n_shells=1"], r"system\.n_shells=1 keeps 1 .* use system\.n_shells >= 2"),
        (["system.rs=1.0"], r"system\.rs is not a parameter of kind='quantum_dot'"),
        (["system.temperature=0.5"], r"exactly one of system\.beta and system\.temperature"),
        (["model.occupation='ground_state'"], r"needs model\.occupation = 'ground_state'"),
        (["model.flow='odeint'"], r"model\.flow must be one of"),
        (["optimizer.occupation='lbfgs'"], r"optimizer\.occupation must be one of"),
        (["sampler.batch=255", "optimizer.n_micro_batches=2"], r"divisible by optimizer"),
        (["run.n_eval_steps=2"], r"run\.n_eval_steps must be >= 4"),
        (["run.learning_rate_backoff=1.5"], r"run\.learning_rate_backoff"),
        (["sampler"], r"--set takes section\.key=value"),
    ],
)
def test_bad_configs_name_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, overrides)


@pytest.mark.parametrize(
    "edit, match",
    [
        ({"rs": -1.0}, r"system\.rs must be a finite number > 0"),
        ({"theta": -0.1}, r"system\.theta must be a finite number >= 0"),
        ({"emax": 2}, r"system\.emax=2 keeps 9 .* for 13 electrons .* system\.emax >= 4"),
        ({"n_up": 85}, r"system\.emax=25 keeps 81 .* system\.emax >= 26"),
        ({"dim": 1}, r"system\.dim must be one of \(2, 3\)"),
        ({"omega": 1.0}, r"system\.omega is not a parameter of kind='electron_gas'"),
        ({"twist": [0.25]}, r"system\.twist needs dim=2 components"),
    ],
)
def test_bad_gas_physics_fails_before_any_compilation(tmp_path, edit, match):
    config = load_config(_write(tmp_path, GAS))
    data = dataclasses.asdict(config)
    data["system"].update(edit)
    with pytest.raises(ValueError, match=match):
        resolve(config_from_dict(data))


def test_required_keys_missing_temperature_and_zero_temperature():
    gas = {"kind": "electron_gas", "n_up": 2, "theta": 1.0, "emax": 4}
    with pytest.raises(ValueError, match=r"system\.rs is required for kind='electron_gas'"):
        resolve(config_from_dict({"system": gas}))
    with pytest.raises(ValueError, match=r"exactly one of system\.beta"):
        resolve(config_from_dict({"system": {"n_up": 1, "n_shells": 2}}))
    cold = {"n_up": 1, "n_shells": 2, "temperature": 0.0}
    with pytest.raises(ValueError, match=r"T = 0 run .* needs model\.occupation = 'ground_s"):
        resolve(config_from_dict({"system": cold, "model": {"max_excitation": 1.0}}))
    config = resolve(config_from_dict({"system": cold, "model": {"occupation": "ground_state"}}))
    assert temperature_of(config.system) == 0.0
    with pytest.raises(ValueError, match=r"system\.temperature must be > 0 for the classical"):
        resolve(config_from_dict({"system": {"kind": "classical", "n": 2, "temperature": 0.0}}))


def test_overrides_are_toml_literals_and_bare_words_are_strings():
    config = load_config(None, ["sampler.width=0.25", "model.flow=identity",
                                "optimizer.max_norm=1e-3", "run.n_steps=7"])
    assert config.sampler.width == 0.25 and config.model.flow == "identity"
    assert config.optimizer.max_norm == 1e-3 and config.run.n_steps == 7
    assert isinstance(load_config(None, ["system.omega=2"]).system.omega, float)


def test_ground_state_gas_uses_theta_zero(tmp_path):
    text = GAS.replace("theta = 0.15", "theta = 0.0").replace("transformer", "ground_state")
    config = load_config(_write(tmp_path, text))
    assert temperature_of(config.system) == 0.0
    assert isinstance(make_system(config), ElectronGas)


def test_config_is_hashable_and_frozen():
    config = Config()
    hash(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.run.n_steps = 3  # type: ignore[misc]


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_passes_the_dry_run(path):
    """Validation and model building (an abstract init, nothing compiled)."""
    from fermiflow.run.engine import build_engine

    config = load_config(path)
    engine = build_engine(config)
    leaves = jax.tree.leaves(engine.template)
    assert leaves and all(hasattr(leaf, "shape") for leaf in leaves)
    assert sum(engine.n_params.values()) > 0
    assert engine.reference["F"] is not None and np.isfinite(engine.reference["F"])
    assert "expected" in path.read_text().lower()  # each preset states its expected range
    _assert_header_references(path.read_text(), engine.reference, engine.n_particles)
    if config.model.radial_blocks:  # the stacked radial layers reach the flow params
        paths = jax.tree_util.tree_flatten_with_path(engine.template)[0]
        names = " ".join(jax.tree_util.keystr(path) for path, _ in paths)
        assert f"scale_radial_{config.model.radial_blocks}" in names


def _assert_header_references(text, reference, n):
    """Every 'X0/N = value unit' of a preset's header equals the computed exact value.

    The header rounds to the digits it prints: the tolerance is half a unit of its last
    digit (Ha or Ry; S in k_B).
    """
    found = re.findall(r"([FES])0/N = (-?\d+\.(\d+)) (Ha|Ry|k_B)", text)
    assert found, "the header states no exact reference"
    for quantity, value, decimals, unit in found:
        computed = reference[quantity] / n * (2.0 if unit == "Ry" else 1.0)
        assert abs(computed - float(value)) <= 0.5 * 10.0 ** -len(decimals) + 1e-12, (
            quantity, value, unit, computed)


def test_radial_blocks_in_a_trap_is_rejected_before_compiling():
    from fermiflow.run.engine import build_engine

    config = load_config(None, ["model.radial_blocks=1"])  # the demo: a quantum dot
    with pytest.raises(ValueError, match="radial_blocks"):
        build_engine(config)


def test_ode_flow_needs_the_jvp_loop_laplacian():
    with pytest.raises(ValueError, match="model.flow = 'ode' needs optimizer.laplacian"):
        load_config(None, ["model.flow=ode"])
    with pytest.raises(ValueError, match="model.flow = 'ode' needs"):
        load_config(None, ["model.flow=ode", "optimizer.laplacian=jvp_loop",
                           "optimizer.kinetic=split"])


@pytest.mark.slow
def test_ode_flow_is_trainable_from_a_config():
    """model.flow = 'ode' runs a step with the jvp_loop Laplacian (3 min on 2 cores)."""
    from fermiflow.run.engine import build_engine

    config = load_config(None, ["model.flow=ode", "optimizer.laplacian=jvp_loop",
                                "model.ode_steps=2", "model.width_one=4", "sampler.batch=8",
                                "run.pretrain_steps=2", "sampler.n_thermalize=1"])
    engine = build_engine(config)
    state, _ = engine.init()
    new, metrics = engine.step(engine.place(state))
    assert bool(metrics.update_applied) and np.isfinite(float(metrics.estimates.energy.value))
    before = jax.tree.leaves(state.params.wavefunction)
    after = jax.tree.leaves(jax.device_get(new.params.wavefunction))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, before, strict=True)) > 0


def test_a_system_table_alone_is_a_runnable_config():
    """Only [system]: the categorical p(K) gets its cutoff from T (14 T)."""
    config = resolve(config_from_dict({"system": {
        "kind": "quantum_dot", "dim": 2, "n_up": 1, "n_down": 1, "beta": 2.0, "n_shells": 4}}))
    assert config.model.occupation == "categorical"
    assert config.model.max_excitation == pytest.approx(14.0 / 2.0)
    from fermiflow.run.build import build_pieces

    pieces = build_pieces(config)
    states = pieces.problem.occupation_states
    energies = pieces.problem.mode_energies[states].sum(-1)
    assert energies.max() - energies.min() <= 7.0 + 1e-12 and len(states) > 10
    with pytest.raises(ValueError, match="max_excitation must be > 0"):
        resolve(config_from_dict({"system": {"kind": "quantum_dot", "n_up": 1, "n_shells": 2,
                                             "beta": 1.0}, "model": {"max_excitation": -1.0}}))


PAIR = GAS.replace("n_up = 13", "n_up = 2").replace("emax = 25", "emax = 6").replace(
    "transformer", "categorical")


def test_uncertified_and_free_displacement_options_reach_the_box_flow(tmp_path):
    from fermiflow.run.build import sampler_kind
    from fermiflow.run.engine import build_engine

    path = _write(tmp_path, PAIR)
    certified = load_config(path, ["model.free_displacement=true"])
    assert sampler_kind(certified) == "exact"  # the certified flow still inverts exactly
    names = " ".join(jax.tree_util.keystr(path) for path, _ in
                     jax.tree_util.tree_flatten_with_path(build_engine(certified).template)[0])
    assert "scale_free" in names and "displacement" in names
    field = build_engine(load_config(path, ["model.pair_field=2"])).template
    names = " ".join(jax.tree_util.keystr(path) for path, _ in
                     jax.tree_util.tree_flatten_with_path(field)[0])
    assert "pair_field" in names
    uncertified = load_config(path, ["model.certify=false"])
    assert sampler_kind(uncertified) == "metropolis"  # T^-1 need not exist uncapped


@pytest.mark.parametrize("gas, overrides", [
    (False, ["model.free_displacement=true"]),  # the demo is a quantum dot
    (False, ["model.certify=false"]),
    (True, ["model.certify=false", "sampler.kind=latent"]),
    (True, ["model.free_displacement=true", "model.flow=ode"]),
])
def test_bad_certify_or_free_displacement_is_one_line_before_compiling(tmp_path, gas, overrides):
    path = _write(tmp_path, PAIR) if gas else None
    with pytest.raises(ValueError, match="model.certify = false and model.free_displacement"):
        load_config(path, overrides)


@pytest.mark.parametrize("gas, overrides", [
    (False, ["model.pair_field=2"]),  # the demo is a quantum dot
    (True, ["model.pair_field=-1"]),
    (True, ["model.pair_field=1", "model.flow=identity"]),
])
def test_bad_pair_field_is_one_line_before_compiling(tmp_path, gas, overrides):
    path = _write(tmp_path, PAIR) if gas else None
    with pytest.raises(ValueError, match="model.pair_field = "):
        load_config(path, overrides)

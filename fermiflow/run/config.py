"""Run configuration: nested frozen dataclasses, TOML in, JSON out, eager validation.

A config has five tables, ``[system]``, ``[model]``, ``[sampler]``, ``[optimizer]`` and
``[run]``, mapped onto :class:`SystemConfig` ... :class:`RunConfig`. Unknown keys and
wrong types raise ``ValueError`` naming the dotted key (``sampler.batch``);
``--set section.key=value`` overrides parse the value as a TOML literal. Physics
checks (particle number against the cutoff, signs of rs, T, omega, the system kind,
T = 0 against the ground-state model) run in :func:`resolve`, before anything is
traced or compiled.

Units at the edge, converted once by :func:`make_system`: the electron gas is given
by ``rs`` (Bohr) and ``theta`` = T / T_F (``theta = 0``: a ground-state run); quantum
dots by ``omega``, ``coupling`` and ``beta`` (1/Hartree) or ``temperature`` (Hartree,
0: ground state); the classical Coulomb gas by ``temperature`` or ``beta``. Learning
rates and the rest are dimensionless or in Hartree atomic units.

Examples:
  >>> config = load_config(None, ["sampler.batch=64", "run.n_steps=10"])
  >>> config.sampler.batch, config.system.kind
  (64, 'quantum_dot')
  >>> config_from_json(config_to_json(config)) == config
  True
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.hamiltonians.systems import ClassicalCoulombGas, ElectronGas, QuantumDot
from fermiflow.hamiltonians.units import electron_gas_scales
from fermiflow.run.demo import DEMO_TOML
from fermiflow.run.model_checks import check_model_options
from fermiflow.run.schema import (
    KIND_DEFAULTS,
    KIND_KEYS,
    KINDS,
    Config,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    SamplerConfig,
    SystemConfig,
)

__all__ = [
    "DEMO_TOML",
    "Config",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "SamplerConfig",
    "SystemConfig",
    "config_from_dict",
    "config_from_json",
    "config_from_toml",
    "config_to_dict",
    "config_to_json",
    "load_config",
    "make_system",
    "resolve",
    "temperature_of",
]




# Default cutoff of the categorical p(K), in units of T (see resolve).
DEFAULT_EXCITATION_T = 14.0


def _check_value(path: str, value: Any, hint: Any) -> Any:
    """Return value converted to the annotated type, or raise naming ``path``."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is tuple and isinstance(value, list | tuple):
            return tuple(_check_value(f"{path}[{i}]", v, float) for i, v in enumerate(value))
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ValueError(f"{path} must be {names}, got {value!r} ({type(value).__name__}).")


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a table, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown key {path}.{unknown[0]}; the keys of [{path}] are {names}.")
    values = {}
    for name in names:
        if name not in data:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data[name], name)
        else:
            values[name] = _check_value(f"{path}.{name}", data[name], hint)
    return cls(**values)


def config_from_dict(data: dict) -> Config:
    """Return the :class:`Config` of a nested dict (TOML or JSON), checking every key."""
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a table of tables, got {type(data).__name__}.")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise ValueError(
            f"unknown section [{unknown[0]}]; use [system], [model], [sampler], "
            "[optimizer] and [run]."
        )
    return Config(**{k: _build(typing.get_type_hints(Config)[k], v, k) for k, v in data.items()})


def config_to_dict(config: Config) -> dict:
    """Return the config as nested dicts of JSON-ready values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_to_json(config: Config) -> str:
    """Return the config as indented JSON."""
    return json.dumps(config_to_dict(config), indent=2, sort_keys=True)


def config_from_json(text: str) -> Config:
    """Return the config of :func:`config_to_json` output."""
    return config_from_dict(json.loads(text))


def _apply_override(data: dict, override: str) -> None:
    key, sep, literal = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ValueError(f"--set takes section.key=value, got {override!r}.")
    try:
        value = tomllib.loads(f"v = {literal.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = literal.strip()  # a bare word is a string: --set model.flow=identity
    # The type check of _build names the dotted key (run.n_steps=abc is not an int).
    data.setdefault(parts[0], {})
    if not isinstance(data[parts[0]], dict):
        raise ValueError(f"--set {key}: [{parts[0]}] is not a table.")
    data[parts[0]][parts[1]] = value


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML config (None: the demo), apply ``--set`` overrides and resolve it.

    Args:
      path: a TOML file, or None for :data:`DEMO_TOML`.
      overrides: ``"section.key=value"`` strings; the value is a TOML literal.

    Returns:
      The resolved :class:`Config` (see :func:`resolve`).

    Raises:
      ValueError: for bad TOML, an unknown key, a wrong type or bad physics.
    """
    if path is None:
        return config_from_toml(DEMO_TOML, overrides, source="demo config")
    if not Path(path).is_file():
        what = "a directory" if Path(path).is_dir() else "not found"
        raise ValueError(f"config file {path}: {what}; pass a TOML file (see configs/), "
                         "or no file for the demo.")
    return config_from_toml(Path(path).read_text(), overrides, source=str(path))


def config_from_toml(text: str, overrides: Sequence[str] = (), *, source: str = "config"
                     ) -> Config:
    """Parse TOML text, apply ``--set`` overrides and resolve it (see :func:`load_config`).

    Args:
      text: the TOML document.
      overrides: ``"section.key=value"`` strings.
      source: what to call the text in error messages (a file name).

    Raises:
      ValueError: for bad TOML, an unknown key, a wrong type or bad physics.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{source} is not valid TOML: {error}") from None
    for override in overrides:
        _apply_override(data, override)
    return resolve(config_from_dict(data))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_system(system: SystemConfig) -> SystemConfig:
    _require(system.kind in KINDS, f"system.kind must be one of {KINDS}, got {system.kind!r}.")
    allowed = KIND_KEYS[system.kind]
    for key in KIND_KEYS["electron_gas"] + KIND_KEYS["quantum_dot"] + KIND_KEYS["classical"]:
        if getattr(system, key) is not None and key not in allowed:
            raise ValueError(f"system.{key} is not a parameter of kind={system.kind!r}; "
                             f"its keys are {('dim',) + allowed}.")
    fill = {k: v for k, v in KIND_DEFAULTS.get(system.kind, {}).items()
            if getattr(system, k) is None}
    system = dataclasses.replace(system, **fill)
    needed = {"electron_gas": ("n_up", "rs", "theta", "emax"),
              "quantum_dot": ("n_up", "n_shells"), "classical": ("n",)}[system.kind]
    for key in needed:
        _require(getattr(system, key) is not None,
                 f"system.{key} is required for kind={system.kind!r}.")
    if system.kind != "classical" and system.n_down is None:
        system = dataclasses.replace(system, n_down=0)
    dims = (2, 3) if system.kind == "electron_gas" else (1, 2, 3)
    _require(system.dim in dims, f"system.dim must be one of {dims} for kind="
                                 f"{system.kind!r}, got {system.dim}.")
    for key in ("rs", "omega", "beta"):
        value = getattr(system, key)
        _require(value is None or (math.isfinite(value) and value > 0),
                 f"system.{key} must be a finite number > 0, got {value}.")
    for key in ("theta", "temperature", "coupling"):
        value = getattr(system, key)
        _require(value is None or (math.isfinite(value) and value >= 0),
                 f"system.{key} must be a finite number >= 0, got {value}.")
    for key in ("n_up", "n_down", "n", "emax", "n_shells"):
        value = getattr(system, key)
        _require(value is None or value >= 0, f"system.{key} must be >= 0, got {value}.")
    if system.kind != "electron_gas":
        _require((system.beta is None) != (system.temperature is None),
                 f"give exactly one of system.beta and system.temperature for kind="
                 f"{system.kind!r}, got beta={system.beta}, temperature={system.temperature}.")
    if system.kind == "classical":
        _require(system.n >= 1, f"system.n must be >= 1, got {system.n}.")
        _require(temperature_of(system) > 0, "system.temperature must be > 0 for the "
                                             "classical gas (there is no T = 0 mode).")
    else:
        _require(system.n_up + system.n_down >= 1, "system.n_up + system.n_down must be >= 1.")
        _check_cutoff(system)
    return system


def _n_modes(system: SystemConfig) -> int:
    if system.kind == "electron_gas":
        return plane_wave_spectrum(dim=system.dim, emax=system.emax, box_length=1.0,
                                   twist=system.twist).energies.shape[0]
    return oscillator_spectrum(dim=system.dim, n_shells=system.n_shells).energies.shape[0]


def _check_cutoff(system: SystemConfig) -> None:
    key = "emax" if system.kind == "electron_gas" else "n_shells"
    if system.twist is not None and len(system.twist) != system.dim:
        raise ValueError(f"system.twist needs dim={system.dim} components, got {system.twist}.")
    n_major, n_modes = max(system.n_up, system.n_down), _n_modes(system)
    if n_modes < n_major:
        least = getattr(system, key)
        while _n_modes(dataclasses.replace(system, **{key: least})) < n_major:
            least += 1
        raise ValueError(f"system.{key}={getattr(system, key)} keeps {n_modes} single-particle "
                         f"modes for {n_major} electrons of one spin; use system.{key} >= {least}.")


def temperature_of(system: SystemConfig) -> float:
    """Return T in Hartree of a checked system config (0 for a ground-state run)."""
    if system.kind == "electron_gas":
        if system.theta == 0:
            return 0.0
        return electron_gas_scales(n_up=system.n_up, n_down=system.n_down, dim=system.dim,
                                   rs=system.rs, theta=system.theta).temperature
    return system.temperature if system.temperature is not None else 1.0 / system.beta


def resolve(config: Config) -> Config:
    """Check the physics of a config and fill the kind defaults; no JAX is traced.

    Raises:
      ValueError: naming the key, for an unknown system kind, negative rs / T / omega,
        too few modes for N, T = 0 without the ground-state model (or the reverse),
        an unknown model, sampler or optimizer choice, or a bad run length.
    """
    system = _check_system(config.system)
    model, sampler, opt, run = config.model, config.sampler, config.optimizer, config.run
    zero_t = system.kind != "classical" and temperature_of(system) == 0
    choices = {"model.occupation": (model.occupation, ("transformer", "categorical",
                                                        "ground_state")),
               "model.flow": (model.flow, ("backflow", "identity", "ode")),
               "sampler.kind": (sampler.kind, ("auto", "exact", "metropolis", "latent")),
               "sampler.kernel": (sampler.kernel, ("rwm", "mala")),
               "optimizer.occupation": (opt.occupation, ("sr", "adam", "sgd", "none")),
               "optimizer.wavefunction": (opt.wavefunction, ("sr", "adam", "sgd", "none")),
               "optimizer.schedule": (opt.schedule, ("constant", "cosine")),
               "optimizer.laplacian": (opt.laplacian, ("forward_laplacian", "jvp_loop")),
               "optimizer.kinetic": (opt.kinetic, ("exact", "split")),
               "run.pretrain_optimizer": (run.pretrain_optimizer, ("adam", "sr"))}
    for key, (value, allowed) in choices.items():
        _require(value in allowed, f"{key} must be one of {allowed}, got {value!r}.")
    if system.kind != "classical":
        _require(zero_t == (model.occupation == "ground_state"),
                 "a T = 0 run (system.theta = 0 or system.temperature = 0) needs "
                 "model.occupation = 'ground_state', and that model needs T = 0; got "
                 f"T = {temperature_of(system):.6g} Ha with model.occupation = "
                 f"{model.occupation!r}.")
        _require(model.max_excitation is None or model.max_excitation > 0,
                 "model.max_excitation must be > 0 (Hartree above the ideal ground state), "
                 f"got {model.max_excitation}; leave it out for the default "
                 f"{DEFAULT_EXCITATION_T:g} T = "
                 f"{DEFAULT_EXCITATION_T * temperature_of(system):.3g} Ha.")
        if model.occupation == "categorical" and model.max_excitation is None:
            # Sets more than 14 T above the ideal ground state have ideal Boltzmann
            # weights below e^-14 = 8e-7 of it.
            model = dataclasses.replace(
                model, max_excitation=DEFAULT_EXCITATION_T * temperature_of(system))
    check_model_options(system.kind, model, sampler, opt)
    positive = {"sampler.batch": sampler.batch, "model.ode_steps": model.ode_steps,
                "sampler.n_sweeps": sampler.n_sweeps,
                "run.n_steps": run.n_steps, "run.log_every": run.log_every,
                "run.checkpoint_every": run.checkpoint_every,
                "run.keep_checkpoints": run.keep_checkpoints,
                "run.n_eval_steps": run.n_eval_steps,
                "optimizer.n_micro_batches": opt.n_micro_batches,
                "optimizer.n_probes": opt.n_probes}
    for key, value in positive.items():
        _require(value >= 1, f"{key} must be >= 1, got {value}.")
    for key, value in {"optimizer.occupation_learning_rate": opt.occupation_learning_rate,
                       "optimizer.wavefunction_learning_rate": opt.wavefunction_learning_rate,
                       "optimizer.damping": opt.damping,
                       "run.pretrain_learning_rate": run.pretrain_learning_rate}.items():
        _require(math.isfinite(value) and value > 0, f"{key} must be > 0, got {value}.")
    _require(0 < opt.final_fraction <= 1,
             f"optimizer.final_fraction must lie in (0, 1], got {opt.final_fraction}.")
    _require(0 < run.learning_rate_backoff < 1,
             f"run.learning_rate_backoff must lie in (0, 1), got {run.learning_rate_backoff}.")
    _require(sampler.batch >= 2, f"sampler.batch must be >= 2, got {sampler.batch}.")
    _require(run.pretrain_batch is None or run.pretrain_batch >= 2,
             f"run.pretrain_batch must be >= 2, got {run.pretrain_batch}.")
    _require(run.n_eval_steps >= 4, "run.n_eval_steps must be >= 4 (blocking errors need "
                                    f"4 draws per walker), got {run.n_eval_steps}.")
    _require(run.memory_gb is None or (math.isfinite(run.memory_gb) and run.memory_gb > 0),
             f"run.memory_gb must be > 0 GB (or unset), got {run.memory_gb}.")
    _require(sampler.batch % opt.n_micro_batches == 0,
             f"sampler.batch={sampler.batch} must be divisible by optimizer.n_micro_batches="
             f"{opt.n_micro_batches}.")
    return dataclasses.replace(config, system=system, model=model)


def make_system(config: Config) -> Any:
    """Return the ElectronGas, QuantumDot or ClassicalCoulombGas of a resolved config.

    A ground-state electron gas (theta = 0) is built with theta = 1: the T = 0 model
    never uses the temperature, only the box and the plane waves.
    """
    s = config.system
    try:
        if s.kind == "electron_gas":
            return ElectronGas(n_up=s.n_up, n_down=s.n_down, dim=s.dim, rs=s.rs,
                               theta=s.theta or 1.0, emax=s.emax, twist=s.twist)
        temperature = temperature_of(s)
        if s.kind == "quantum_dot":
            return QuantumDot(n_up=s.n_up, n_down=s.n_down, dim=s.dim, omega=s.omega,
                              coupling=s.coupling, beta=1 / temperature if temperature else 1.0,
                              n_shells=s.n_shells)
        return ClassicalCoulombGas(n=s.n, dim=s.dim, omega=s.omega, coupling=s.coupling,
                                   temperature=temperature)
    except ValueError as error:
        raise ValueError(f"system (kind={s.kind!r}): {error}") from None

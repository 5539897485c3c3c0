"""Issue 5, acceptance 1: pretrain p(K) on the ideal 2D electron gas, N = 13.

Spin-polarized gas, rs = 1, theta = 0.15, twist (1/4, 1/4), emax = 25 (M = 81 modes).
p(K) is the set transformer (2 layers, width 16, 4 heads, MLP 32, float64), trained
from its initialization by natural gradient (stochastic reconfiguration, sample-space
solve) on F0[p] = E_p[T ln p + E0], then evaluated on a large fresh batch. The exact
canonical F and S of the same mode set come from fermiflow.hamiltonians.free_fermions.
At rs = 1 an energy in Rydberg equals Ry / rs^2 (= 2 x Hartree).

Run: python benchmarks/bench_pretrain.py [--steps S] [--batch B] [--lr ETA] ...
Writes benchmarks/results/pretrain_heg2d_n13_cpu.json; prints one JSON line.
Training stops early (and says so) when it passes --max-train-s of wall time.
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent))

import argparse
import json
import os
import time

import jax.numpy as jnp
import optax
from _common import RESULTS_DIR, environment, log, param_count

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.autoregressive import make_set_transformer
from fermiflow.training.natural_gradient import natural_gradient
from fermiflow.training.pretrain import make_pretrain_evaluate, make_pretrain_step

RYDBERG = 2.0  # Hartree -> Ry / rs^2 at rs = 1
GAS = dict(n_up=13, n_down=0, dim=2, rs=1.0, theta=0.15, emax=25, twist=(0.25, 0.25))
NETWORK = dict(n_layers=2, model_size=16, n_heads=4, hidden=32, param_dtype=jnp.float64)
DEFAULTS = dict(
    seed=0,
    steps=300,
    batch=512,
    lr=2.0,
    lr_final=0.5,
    decay_steps=100,
    damping=1e-3,
    max_norm=0.3,
    eval_batch=2**16,
    eval_chunks=16,
    max_train_s=780.0,
)


def _schedule(settings: dict) -> optax.Schedule:
    """Constant lr, then an exponential decay to lr_final over the last decay_steps."""
    hold = settings["steps"] - settings["decay_steps"]
    decay = optax.exponential_decay(
        settings["lr"], max(settings["decay_steps"], 1), settings["lr_final"] / settings["lr"]
    )
    return optax.join_schedules([optax.constant_schedule(settings["lr"]), decay], [hold])


def run_acceptance(**overrides) -> dict:
    """Train and evaluate; return the JSON-ready result (energies in Hartree and Ry)."""
    settings = DEFAULTS | overrides
    start = time.perf_counter()
    load_start = list(os.getloadavg())
    gas = ElectronGas(**GAS)
    exact = electron_gas_ideal_thermo(gas)
    temperature, energies = 1.0 / gas.beta, gas.spectrum.energies
    model = make_set_transformer(n_modes=energies.shape[0], n_particles=13, **NETWORK)
    optimizer = natural_gradient(
        _schedule(settings), damping=settings["damping"], max_norm=settings["max_norm"]
    )
    pre = make_pretrain_step(
        model,
        energies,
        temperature=temperature,
        batch=settings["batch"],
        optimizer=optimizer,
        sr=True,
        clip_width=None,
    )
    key_init, key_run, key_eval = jax.random.split(jax.random.key(settings["seed"]), 3)
    params = jax.jit(model.init)(key_init)  # eager flax init is slow on CPU
    state, step = pre.init(key_run, params), jax.jit(pre.step)
    compile_start = time.perf_counter()
    step = step.lower(state).compile()
    compile_s = time.perf_counter() - compile_start
    curve, stopped_early = [], False
    train_start = time.perf_counter()
    for i in range(settings["steps"]):
        state, metrics = step(state)
        curve.append(metrics)
        if i % 10 == 0:
            free = metrics.estimates.free_energy
            f, err = float(free.value), float(free.error)
            elapsed = time.perf_counter() - train_start
            log(
                f"step {i}: F - F_exact = {RYDBERG * (f - float(exact.free_energy)):.5f}"
                f" +- {RYDBERG * err:.5f} Ry/rs^2, {elapsed:.0f} s"
            )
            if time.perf_counter() - start > settings["max_train_s"]:
                stopped_early = True
                break
    curve = jax.device_get(curve)
    train_s = time.perf_counter() - train_start
    evaluate = jax.jit(
        make_pretrain_evaluate(
            model,
            energies,
            temperature=temperature,
            batch=settings["eval_batch"],
            n_chunks=settings["eval_chunks"],
        )
    )
    eval_start = time.perf_counter()
    final = jax.device_get(evaluate(key_eval, state.params))  # Thermodynamics
    eval_s = time.perf_counter() - eval_start
    f_exact, s_exact = float(exact.free_energy), float(exact.entropy)

    def ry(x):
        return RYDBERG * float(x)

    result = {
        "benchmark": "pretrain_heg2d_n13",
        "system": GAS | {"n_modes": int(energies.shape[0]), "temperature_ha": temperature},
        "network": {k: str(v) for k, v in NETWORK.items()} | {"n_params": param_count(params)},
        "settings": settings
        | {
            "optimizer": "natural_gradient (SR, sample-space solve)",
            "clip_width": None,
            "stopped_early": stopped_early,
        },
        "exact": {
            "free_energy_ha": f_exact,
            "free_energy_ry_rs2": ry(f_exact),
            "entropy": s_exact,
            "energy_ha": float(exact.energy),
        },
        "final": {
            "eval_batch": settings["eval_batch"],
            "free_energy_ha": float(final.free_energy.value),
            "free_energy_err_ha": float(final.free_energy.error),
            "delta_free_energy_ry_rs2": ry(final.free_energy.value - f_exact),
            "delta_free_energy_err_ry_rs2": ry(final.free_energy.error),
            "delta_in_sigma": float((final.free_energy.value - f_exact) / final.free_energy.error),
            "entropy": float(final.entropy.value),
            "entropy_err": float(final.entropy.error),
            "delta_entropy": float(final.entropy.value) - s_exact,
            "energy_ha": float(final.energy.value),
            "energy_err_ha": float(final.energy.error),
        },
        "curve": {
            "step": list(range(len(curve))),
            "delta_free_energy_ry_rs2": [ry(m.estimates.free_energy.value - f_exact)
                                         for m in curve],
            "free_energy_err_ry_rs2": [ry(m.estimates.free_energy.error) for m in curve],
            "entropy": [float(m.estimates.entropy.value) for m in curve],
            "grad_norm": [float(m.grad_norm) for m in curve],
        },
        "timing": {
            "steps_done": len(curve),
            "compile_s": compile_s,
            "train_s": train_s,
            "eval_s": eval_s,
            "total_wall_s": time.perf_counter() - start,
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
        },
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument(
        "--out", type=pathlib.Path, default=RESULTS_DIR / "pretrain_heg2d_n13_cpu.json"
    )
    args = vars(parser.parse_args())
    out = args.pop("out")
    result = {"environment": environment()} | run_acceptance(**args)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)
    final = result["final"]
    print(
        json.dumps(
            {
                "result": str(out),
                "delta_free_energy_ry_rs2": final["delta_free_energy_ry_rs2"],
                "err_ry_rs2": final["delta_free_energy_err_ry_rs2"],
                "entropy": final["entropy"],
                "entropy_exact": result["exact"]["entropy"],
                "total_wall_s": result["timing"]["total_wall_s"],
            }
        )
    )


if __name__ == "__main__":
    main()

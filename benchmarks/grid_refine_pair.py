"""Is a two-electron box run limited by its ansatz or by its optimizer?

For a finished ``fermiflow run`` of two polarized electrons in the 2D box, takes the
trained flow and the lowest occupation K = [0, 1] and computes, deterministically on a
midpoint grid of the relative coordinate (x_1 = r, x_2 = 0; the centre of mass only
adds its exact plane wave),

  E[params] = sum_r [1/2 |grad_x Psi_K|^2 + V |Psi_K|^2] / sum_r |Psi_K|^2,

fermiflow's own log Psi_K and Ewald potential (first derivatives only, so E can be
differentiated cheaply). It reports E at the trained params, then minimizes E over
ALL flow params with L-BFGS (steps into a fold, where log det J is NaN, count as
rejected), and compares both with the exact lowest level of the same total momentum
(:func:`fermiflow.exact.box_relative.box_relative_levels` plus the Madelung constant
and P^2 / 4). If the refined E reaches the exact level while the run's E_K does not,
the ansatz can represent the state from where training stopped, and what stops the
training is the stochastic optimizer.

Usage: ``python benchmarks/grid_refine_pair.py RUN_DIR [OUT.json] [--iterations N]``.
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent))

import argparse
import json
import time

import jax.numpy as jnp
import numpy as np
import scipy.optimize
from _common import RESULTS_DIR, environment

from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import ewald_pair_constant
from fermiflow.run.observe import load_run

N_GRID = 64


def _exact_level(problem, labels) -> float:
    length = problem.box_length
    twist = np.asarray(problem.system.twist)
    total = 2 * np.pi / length * (labels[0] + labels[1] + 2 * twist)
    d = labels[0] - labels[1]
    level = box_relative_levels(dim=2, box_length=length, coupling=1.0,
                                parity_class=tuple(int(v) % 2 for v in d), exchange=-1,
                                n_cuts=[24])[0][0]
    return float(ewald_pair_constant(dim=2, box_length=length) + level + total @ total / 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path, nargs="?",
                        default=RESULTS_DIR / "grid_refine_box2d_pol_rs10.json")
    parser.add_argument("--iterations", type=int, default=150)
    args = parser.parse_args()
    run = load_run(args.run_dir, None)
    problem = run.problem
    if problem.n_up != 2 or problem.n_down != 0 or problem.box_length is None:
        raise SystemExit("grid_refine_pair: needs a run of two polarized electrons in a box.")
    params = run.state.params.wavefunction
    leaves, treedef = jax.tree.flatten(params)
    shapes = [leaf.shape for leaf in leaves]

    def unflatten(v):
        out, i = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(v[i:i + size].reshape(shape))
            i += size
        return jax.tree.unflatten(treedef, out)

    length = problem.box_length
    points = (np.arange(N_GRID) + 0.5) * length / N_GRID
    grid = jnp.asarray(np.stack(np.meshgrid(points, points, indexing="ij"), -1).reshape(-1, 2))
    occ = jnp.asarray([0, 1])

    def energy(v):
        p = unflatten(v)

        def terms(r):
            x = jnp.stack([r, jnp.zeros(2)])
            log_psi = lambda y: problem.log_psi(p, occ, y)  # noqa: E731
            weight = jnp.exp(2 * jnp.real(log_psi(x)))
            grad = jax.jacfwd(log_psi)(x)  # complex d log Psi / dx
            return weight, weight * 0.5 * jnp.sum(jnp.abs(grad) ** 2), weight * problem.potential(x)

        w, kinetic, potential = jax.vmap(terms)(grid)
        return (jnp.sum(kinetic) + jnp.sum(potential)) / jnp.sum(w)

    value_and_grad = jax.jit(jax.value_and_grad(energy))

    def fn(v):
        value, grad = value_and_grad(jnp.asarray(v))
        value, grad = float(value), np.asarray(grad)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1.0, np.zeros_like(v)  # a fold: rejected by the line search
        return value, grad

    start = np.concatenate([np.asarray(leaf).ravel() for leaf in leaves])
    trained = fn(start)[0]
    begin = time.perf_counter()
    result = scipy.optimize.minimize(fn, start, jac=True, method="L-BFGS-B",
                                     options={"maxiter": args.iterations})
    labels = np.asarray(problem.system.spectrum.quantum_numbers)[:2]
    exact = _exact_level(problem, labels)
    versions = json.loads((args.run_dir / "versions.json").read_text())
    out = {"environment": environment(), "run_dir": str(args.run_dir),
           "run_git_commit": versions.get("git_commit"), "run_git_dirty": versions.get("git_dirty"),
           "run_config_model": json.loads((args.run_dir / "config.json").read_text())["model"],
           "occupation": [0, 1], "n_grid": N_GRID, "exact_level": exact,
           "grid_energy_trained": trained, "grid_energy_refined": float(result.fun),
           "gap_trained_mHa": 1e3 * (trained - exact),
           "gap_refined_mHa": 1e3 * (float(result.fun) - exact),
           "lbfgs_iterations": int(result.nit), "lbfgs_seconds": time.perf_counter() - begin,
           "units": "Hartree, whole system (two electrons)",
           "command": "python benchmarks/grid_refine_pair.py " + " ".join(sys.argv[1:])}
    print(f"trained {trained:.6f}, refined {result.fun:.6f}, exact {exact:.6f} Ha "
          f"(gaps {out['gap_trained_mHa']:.3f} -> {out['gap_refined_mHa']:.4f} mHa)")
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

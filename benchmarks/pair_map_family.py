"""Which pair maps can represent the exact two-electron state: s(r) u(r) or a general field.

Two polarized electrons in the 2D box (rs = 10, twist irrelevant for the relative
motion): the lowest antisymmetric relative state of the momentum class c = (1, 0) has
the exact level E_exact (plane-wave diagonalization, :mod:`fermiflow.exact.box_relative`,
Madelung constant left out). A flow of the relative coordinate r' = r + g(r), g odd and
periodic, turns the ideal state sin(pi x / L) into

  psi(r) = sin(pi x'(r) / L) |det dr'/dr|^(1/2),

and E[g] = int (|grad psi|^2 + V psi^2) / int psi^2 (relative kinetic -grad^2, reduced
mass 1/2) on a midpoint grid of the relative torus. This script minimizes E[g]
deterministically (L-BFGS, no sampling) over two families:

* ``scalar``: g(r) = s(r) u(r) with u = (L / 2 pi) sin(2 pi r / L) componentwise and
  s(r) = c_0 + sum_m c_m cos(2 pi m . r / L), |m|_inf <= M: the form of every pair
  term of fermiflow's backflow before ``pair_field`` (each particle moves along its
  pair vectors with a scalar weight);
* ``field``: g(r) = sum_m a_m sin(2 pi m . r / L) with free vectors a_m, |m|_inf <= M:
  the ``pair_field`` layer.

It also reports the identity map against the analytic diagonal element, as a check
of the quadrature. Usage: ``python benchmarks/pair_map_family.py [OUT.json]``.
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent))

import itertools
import json
import math

import jax.numpy as jnp
import numpy as np
import scipy.optimize
from _common import RESULTS_DIR, environment

from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import ewald_pair_fourier

RS, N_GRID, G_MAX = 10.0, 96, 40


def _problem():
    length = math.sqrt(math.pi * 2) * RS
    points = (np.arange(N_GRID) + 0.5) * length / N_GRID  # never r = 0
    grid = np.stack(np.meshgrid(points, points, indexing="ij"), -1).reshape(-1, 2)
    axis = np.arange(-G_MAX, G_MAX + 1)
    g = np.array(list(itertools.product(axis, axis)))
    potential = np.real(np.exp(2j * np.pi / length * grid @ g.T)
                        @ ewald_pair_fourier(g, dim=2, box_length=length))
    return length, grid, potential


def _modes(order):
    return np.array([m for m in itertools.product(range(-order, order + 1), repeat=2)
                     if m > (0, 0)], float)


def _energy(family, order, length, grid, potential):
    modes = 2 * np.pi / length * _modes(order)

    def shift(p, r):
        if family == "field":
            return jnp.sin(modes @ r) @ p.reshape(-1, 2)
        s = p[0] + jnp.cos(modes @ r) @ p[1:]
        return s * length / (2 * np.pi) * jnp.sin(2 * np.pi * r / length)

    def psi(p, r):
        mapped = lambda y: y + shift(p, y)  # noqa: E731
        jac = jax.jacfwd(mapped)(r)
        return jnp.sin(np.pi * mapped(r)[0] / length) * jnp.sqrt(jnp.abs(jnp.linalg.det(jac)))

    def energy(p):
        values = jax.vmap(lambda r: psi(p, r))(grid)
        grads = jax.vmap(jax.grad(lambda r: psi(p, r)))(grid)
        return (jnp.sum(grads**2) + jnp.sum(potential * values**2)) / jnp.sum(values**2)

    size = 2 * len(modes) if family == "field" else 1 + len(modes)
    return jax.jit(jax.value_and_grad(energy)), size, modes


def _numpy(value_and_grad):
    def fn(p):
        value, grad = value_and_grad(p)
        return float(value), np.asarray(grad)

    return fn


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else (
        RESULTS_DIR / "pair_map_family_box2d_pol_rs10.json")
    length, grid, potential = _problem()
    exact = float(box_relative_levels(dim=2, box_length=length, coupling=1.0,
                                      parity_class=(1, 0), exchange=-1, n_cuts=[24])[0][0])
    identity = (np.pi / length) ** 2 - float(ewald_pair_fourier(np.array([1, 0]), dim=2,
                                                                box_length=length))
    rows = []
    for family, order in (("scalar", 1), ("scalar", 3), ("scalar", 5), ("field", 1),
                          ("field", 2), ("field", 3)):
        value_and_grad, size, modes = _energy(family, order, length, grid, potential)
        start = np.zeros(size)
        grid_identity = float(value_and_grad(start)[0])
        result = scipy.optimize.minimize(
            _numpy(value_and_grad), start, jac=True, method="L-BFGS-B",
            options={"maxiter": 3000})
        row = {"family": family, "order": order, "n_params": size,
               "energy": float(result.fun), "gap_mHa": 1e3 * (float(result.fun) - exact),
               "iterations": int(result.nit), "identity_on_grid": grid_identity}
        if family == "field":  # the certified bound of this field as one layer, n = 2
            vectors = result.x.reshape(-1, 2)
            row["lipschitz_bound_n2"] = float(2 * np.sum(np.linalg.norm(vectors, axis=1)
                                                         * np.linalg.norm(modes, axis=1)))
        rows.append(row)
        print(f"{family} M={order}: E = {row['energy']:.6f} Ha, gap {row['gap_mHa']:.4f} mHa",
              flush=True)
    result = {"environment": environment(), "rs": RS, "box_length": length,
              "n_grid": N_GRID, "g_max": G_MAX, "parity_class": [1, 0], "exchange": -1,
              "exact_level": exact, "identity_analytic": identity, "rows": rows,
              "units": "Hartree, relative problem without the Madelung constant",
              "command": "python benchmarks/pair_map_family.py"}
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The backflow's Fourier pair field can represent the exact two-electron box state.

Two polarized electrons in the 2D box at rs = 10: a general odd periodic map of the
relative coordinate, r' = r + g(r) with g(r) = sum_m g_m sin(k_m . r), |m|_inf <= 2,
is first fitted deterministically (L-BFGS on a grid of the relative torus, as in
benchmarks/pair_map_family.py); the same field, written into the ``pair_field`` layer
of fermiflow's backflow (theta_m = |k_m| g_m / 2, every other term off), must then
give fermiflow's own local energy, averaged over |Psi_K|^2 on the grid, equal to the
exact lowest level of that momentum (plane-wave diagonalization) to 2e-5 Ha, while
the identity flow is 6 mHa above it. This checks the layer, its derivatives in the
kinetic energy and its parametrization end to end against an exact value.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import ewald_pair_constant, ewald_pair_fourier
from fermiflow.hamiltonians.kinetic import make_local_energy
from fermiflow.models.backflow_jet import field_modes
from fermiflow.run.build import build_pieces
from fermiflow.run.config import config_from_toml

RS, ORDER, N_GRID = 10.0, 2, 64
CONFIG = f"""
[system]
kind = "electron_gas"
dim = 2
n_up = 2
n_down = 0
rs = {RS}
theta = 0.5
emax = 4
twist = [0.25, 0.25]
[model]
occupation = "categorical"
certify = false
pair_field = {ORDER}
"""


def _grid(length):
    points = (np.arange(N_GRID) + 0.5) * length / N_GRID  # never r = 0
    return np.stack(np.meshgrid(points, points, indexing="ij"), -1).reshape(-1, 2)


def _fitted_field(length, grid):
    """g_m of the best relative map on the grid, node of sin(pi x / L) kept: (M, 2)."""
    axis = np.arange(-24, 25)
    g = np.array(list(itertools.product(axis, axis)))
    potential = np.real(np.exp(2j * np.pi / length * grid @ g.T)
                        @ ewald_pair_fourier(g, dim=2, box_length=length))
    k = 2 * np.pi / length * field_modes(ORDER, 2)

    def psi(p, r):
        mapped = lambda y: y + jnp.sin(k @ y) @ p.reshape(-1, 2)  # noqa: E731
        det = jnp.linalg.det(jax.jacfwd(mapped)(r))
        return jnp.sin(np.pi * mapped(r)[0] / length) * jnp.sqrt(jnp.abs(det))

    @jax.jit
    def value_and_grad(p):
        def energy(p):
            values = jax.vmap(lambda r: psi(p, r))(grid)
            grads = jax.vmap(jax.grad(lambda r: psi(p, r)))(grid)
            return (jnp.sum(grads**2) + jnp.sum(potential * values**2)) / jnp.sum(values**2)
        return jax.value_and_grad(energy)(p)

    def fn(p):
        value, grad = value_and_grad(p)
        return float(value), np.asarray(grad)

    result = scipy.optimize.minimize(fn, np.zeros(2 * len(k)), jac=True, method="L-BFGS-B")
    return result.x.reshape(-1, 2), k


@pytest.mark.slow  # about a minute: the fit and one Laplacian per grid point
def test_pair_field_reaches_the_exact_two_electron_level():
    problem = build_pieces(config_from_toml(CONFIG)).problem
    length = problem.box_length
    assert math.isclose(length, math.sqrt(2 * math.pi) * RS)
    labels = np.asarray(problem.system.spectrum.quantum_numbers)
    occ = jnp.asarray([0, 1])
    assert (labels[0] - labels[1]).tolist() == [1, 0]  # relative class (1, 0), node x = 0
    exact = ewald_pair_constant(dim=2, box_length=length) + box_relative_levels(
        dim=2, box_length=length, coupling=1.0, parity_class=(1, 0), exchange=-1,
        n_cuts=[24])[0][0] + float(np.sum((2 * np.pi / length * (labels[0] + labels[1]
                                             + np.asarray([0.5, 0.5])))**2)) / 4
    grid = _grid(length)
    fitted, k = _fitted_field(length, grid)
    _, params = problem.init_params(jax.random.PRNGKey(0))
    inner = dict(params["params"])
    inner["scale_pair"] = jnp.zeros(())
    inner["scale_radial"] = jnp.zeros_like(inner["scale_radial"])
    field = np.zeros(inner["pair_field"].shape)
    field[0] = 0.5 * fitted * np.linalg.norm(k, axis=1)[:, None]  # same-spin row
    energies = {}
    for name, values in (("identity", np.zeros_like(field)), ("field", field)):
        p = {**params, "params": {**inner, "pair_field": jnp.asarray(values)}}
        log_psi = lambda q, x: problem.log_psi(q, occ, x)  # noqa: E731
        local = make_local_energy(log_psi, problem.potential)

        def at(r, p=p, log_psi=log_psi, local=local):
            x = jnp.stack([r, jnp.zeros(2)])
            return 2 * jnp.real(log_psi(p, x)), jnp.real(local(p, x))

        log_w, e_loc = jax.jit(jax.vmap(at))(jnp.asarray(grid))
        weights = np.exp(np.asarray(log_w) - float(np.max(log_w)))
        energies[name] = float(np.sum(weights * np.asarray(e_loc)) / np.sum(weights))
    assert energies["identity"] - exact > 5e-3  # the identity is far off: a test with power
    assert abs(energies["field"] - exact) < 2e-5, (energies, exact)

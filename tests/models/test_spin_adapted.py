"""Spin-adapted Psi_K (n_up = n_down): exchange parity, orthonormality, exact ideal limit."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.kinetic import make_local_energy
from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.hamiltonians.systems import QuantumDot
from fermiflow.models.density_matrix import make_quantum_problem
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi


def _dot_problem(coupling=1.0):
    dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=coupling, beta=2.0,
                     n_shells=3)
    return make_quantum_problem(dot, occupation="categorical",
                                occupation_options={"max_excitation": 4.0},
                                spin_adapted=True, flow_options={"init_scale": 0.1})


def test_singlets_are_even_and_triplets_odd_under_exchange(key):
    problem = _dot_problem()
    params = problem.init_params(key).wavefunction
    x = jax.random.normal(jax.random.fold_in(key, 1), (8, 2, 2))
    occ = jnp.array([[0, 1], [1, 0], [2, 2], [3, 1], [1, 3]])
    parity = np.array([1, -1, 1, -1, 1])
    psi = jax.jit(jax.vmap(jax.vmap(lambda o, y: problem.log_psi(params, o, y),
                                    in_axes=(None, 0)), in_axes=(0, None)))
    ratio = np.asarray(jnp.exp(psi(occ, x[:, ::-1]) - psi(occ, x)))  # (states, walkers)
    np.testing.assert_allclose(ratio, np.broadcast_to(parity[:, None], ratio.shape), atol=1e-10)


def test_orthonormal_basis_on_an_exact_grid():
    """Identity flow, plane waves: the Gram matrix of all Psi_K is the identity (grid
    sums are exact for trigonometric polynomials of low degree)."""
    box = 1.0
    spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=box, twist=(0.25, 0.25))
    log_psi = make_log_psi(orbitals=make_plane_wave_orbitals(spectrum, box),
                           flow_apply=make_identity_flow().apply, n_up=1, n_down=1,
                           spin_adapted=True)
    m = len(spectrum.energies)
    labels = np.array(list(itertools.product(range(m), repeat=2)))
    grid = (np.arange(8) + 0.5) / 8 * box
    points = np.array(list(itertools.product(grid, repeat=4))).reshape(-1, 2, 2)
    values = jax.jit(jax.vmap(jax.vmap(lambda o, y: jnp.exp(log_psi({}, o, y)),
                                       in_axes=(0, None)), in_axes=(None, 0)))(
        jnp.asarray(labels), jnp.asarray(points))  # (points, states)
    gram = np.asarray(values).conj().T @ np.asarray(values) * (box**4 / len(points))
    np.testing.assert_allclose(gram, np.eye(len(labels)), atol=1e-12)


def test_ideal_dot_local_energy_is_exact_for_every_state(key):
    """Coupling 0, identity flow: the +- combinations mix products of equal energy, so
    every Psi_K is an eigenstate with E_loc = eps_a + eps_b exactly."""
    dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=0.0, beta=2.0, n_shells=3)
    problem = make_quantum_problem(dot, occupation="categorical",
                                   occupation_options={"max_excitation": 4.0},
                                   flow="identity", spin_adapted=True)
    x = jax.random.normal(key, (16, 2, 2))
    states = jnp.asarray(problem.occupation_states[:12])
    energy = make_local_energy(lambda o, y: problem.log_psi({}, o, y), problem.potential)
    local = jax.jit(jax.vmap(jax.vmap(energy, in_axes=(None, 0)), in_axes=(0, None)))(
        states, x)  # (states, walkers)
    exact = problem.mode_energies[np.asarray(states)].sum(-1)[:, None]
    np.testing.assert_allclose(np.asarray(local.real), np.broadcast_to(exact, local.shape),
                               rtol=1e-9)
    np.testing.assert_allclose(np.asarray(local.imag), 0.0, atol=1e-9)


def test_spin_adapted_needs_equal_spins():
    dot = QuantumDot(n_up=2, n_down=1, dim=2, omega=1.0, coupling=1.0, beta=2.0, n_shells=3)
    with pytest.raises(ValueError, match="n_up = n_down"):
        make_quantum_problem(dot, occupation="categorical",
                             occupation_options={"max_excitation": 4.0}, spin_adapted=True)


def test_parity_sectors_with_their_own_flows_keep_exact_parity(key):
    """Even states use one flow, odd states another; each keeps its exchange parity, so
    the two sectors stay orthogonal whatever the two flows are."""
    dot = QuantumDot(n_up=1, n_down=1, dim=2, omega=1.0, coupling=1.0, beta=2.0, n_shells=3)
    problem = make_quantum_problem(dot, occupation="categorical",
                                   occupation_options={"max_excitation": 4.0},
                                   spin_adapted=True, parity_flows=True,
                                   flow_options={"init_scale": 0.2})
    params = problem.init_params(key).wavefunction
    assert set(params) == {"even", "odd"}
    x = jax.random.normal(jax.random.fold_in(key, 1), (8, 2, 2))
    occ = jnp.array([[0, 1], [1, 0], [2, 2], [3, 1], [1, 3]])
    parity = np.array([1, -1, 1, -1, 1])

    def values(p):
        return jax.vmap(jax.vmap(lambda o, y: problem.log_psi(p, o, y), in_axes=(None, 0)),
                        in_axes=(0, None))

    psi = jax.jit(values(params))
    ratio = np.asarray(jnp.exp(psi(occ, x[:, ::-1]) - psi(occ, x)))
    np.testing.assert_allclose(ratio, np.broadcast_to(parity[:, None], ratio.shape), atol=1e-10)
    # Moving the odd flow changes exactly the odd states.
    moved = {"even": params["even"], "odd": jax.tree.map(lambda a: 1.01 * a, params["odd"])}
    changed = np.abs(np.asarray(jax.jit(values(moved))(occ, x) - psi(occ, x))).max(axis=1)
    assert np.all(changed[parity > 0] == 0) and np.all(changed[parity < 0] > 1e-6)

"""n(k) from the off-diagonal density matrix and <n_k> from p(K) vs the exact ideal gas."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.observables import (
    displacement_grid,
    make_one_body_ratios,
    momentum_distribution,
    occupation_indicator,
    random_displacements,
    spin_species,
)
from tests.observables.ideal_gas_samples import assert_consistent, chains

N_DISPLACEMENTS = 4


def _setup(samples):
    problem = samples.problem
    ratios = make_one_body_ratios(problem.log_psi, n_up=problem.n_up, n_down=problem.n_down)
    wavevectors = problem.system.spectrum.wavevectors
    counts = (problem.n_up, problem.n_down)
    return problem, ratios, wavevectors, counts


def _flat(samples, n_samples=None):
    occ = samples.occ.reshape(-1, samples.occ.shape[-1])
    x = samples.x.reshape((-1,) + samples.x.shape[2:])
    return (occ, x) if n_samples is None else (occ[:n_samples], x[:n_samples])


def test_grid_estimator_is_the_indicator_of_k_per_sample(ideal_samples):
    # Plane-wave determinant, exact grid (|n_k - n_k'| <= 2 < M = 3 per axis): the
    # per-sample off-diagonal estimate is exactly [k in K], whatever x is.
    problem, ratios, wavevectors, counts = _setup(ideal_samples)
    grid = displacement_grid(box_length=problem.box_length, dim=2, n_grid=3)
    occ, x = _flat(ideal_samples, 512)
    psi_params = ideal_samples.params.wavefunction

    @jax.jit
    def estimate(occ, x):
        r = jax.vmap(ratios, in_axes=(None, 0, 0, None))(psi_params, occ, x, grid)
        return jax.vmap(lambda a: momentum_distribution(
            a, grid, wavevectors, n_per_species=counts))(r)

    n_k = np.asarray(estimate(occ, x))
    indicator = jax.vmap(lambda o: occupation_indicator(o, n_modes=9, n_up=3))(occ)
    np.testing.assert_allclose(n_k, indicator, rtol=0, atol=1e-10)


def test_random_displacement_estimator_matches_canonical_occupations(ideal_samples):
    problem, ratios, wavevectors, counts = _setup(ideal_samples)
    steps, batch = ideal_samples.occ.shape[:2]
    occ, x = _flat(ideal_samples)
    psi_params = ideal_samples.params.wavefunction
    keys = jax.random.split(jax.random.key(7), occ.shape[0])

    def one(key, occ, x):
        d = random_displacements(key, box_length=problem.box_length, dim=2,
                                 n_displacements=N_DISPLACEMENTS)
        return momentum_distribution(ratios(psi_params, occ, x, d), d, wavevectors,
                                     n_per_species=counts)

    n_k = np.asarray(jax.jit(lambda *a: jax.lax.map(
        lambda c: one(*c), a, batch_size=1024))(keys, occ, x))
    n_k = chains(n_k.reshape(steps, batch, 2, -1))
    exact = electron_gas_ideal_thermo(problem.system).occupations  # (2, m)
    for s in range(2):
        for k in range(exact.shape[1]):
            assert_consistent(n_k[:, :, s, k], exact[s, k], max_stderr=0.05, name=f"n[{s},{k}]")
    # The estimator has power: the exact occupations are far from uniform.
    assert np.ptp(exact) > 0.5


def test_quasi_particle_occupations_from_p_of_k(ideal_samples):
    problem = ideal_samples.problem
    indicator = jax.vmap(jax.vmap(
        lambda o: occupation_indicator(o, n_modes=9, n_up=problem.n_up)))(ideal_samples.occ)
    trace = chains(np.asarray(indicator))
    exact = electron_gas_ideal_thermo(problem.system).occupations
    np.testing.assert_allclose(indicator.sum(-1)[..., 0], 3)
    np.testing.assert_allclose(indicator.sum(-1)[..., 1], 2)
    for s in range(2):
        for k in range(exact.shape[1]):
            assert_consistent(trace[:, :, s, k], exact[s, k], max_stderr=0.01,
                              name=f"<n[{s},{k}]>")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtypes(dtype):
    from fermiflow.hamiltonians.spectrum import plane_wave_spectrum

    spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=2.0)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, 2.0),
        flow_apply=lambda p, x: (x, jnp.zeros((), x.dtype)), n_up=2, n_down=1,
    )
    ratios = make_one_body_ratios(log_psi, n_up=2, n_down=1)
    x = jnp.array([[0.1, 0.2], [0.7, 1.1], [1.5, 0.3]], dtype)
    occ = jnp.array([0, 1, 2])
    d = random_displacements(jax.random.key(0), box_length=2.0, dim=2,
                             n_displacements=5, dtype=dtype)
    r = jax.jit(ratios)(None, occ, x, d)
    chex.assert_shape(r, (2, 5))
    n_k = jax.jit(lambda r, d: momentum_distribution(
        r, d, spectrum.wavevectors, n_per_species=(2, 1)))(r, d)
    chex.assert_shape(n_k, (2, 5))
    assert d.dtype == dtype and n_k.dtype == dtype
    chex.assert_shape(displacement_grid(box_length=2.0, dim=3, n_grid=2), (8, 3))
    assert spin_species(2, 1) == ("up", "down") and spin_species(0, 3) == ("down",)
    chex.assert_shape(occupation_indicator(occ, n_modes=5, n_up=3), (1, 5))


def test_validation():
    with pytest.raises(ValueError, match="n_up"):
        make_one_body_ratios(lambda p, o, x: 0.0, n_up=-1, n_down=1)
    with pytest.raises(ValueError, match=">= 1"):
        make_one_body_ratios(lambda p, o, x: 0.0, n_up=0, n_down=0)
    with pytest.raises(ValueError, match="n_per_species"):
        momentum_distribution(jnp.ones((2, 3)), jnp.zeros((3, 2)), jnp.zeros((4, 2)),
                              n_per_species=(3,))
    with pytest.raises(ValueError, match="n_grid"):
        displacement_grid(box_length=1.0, dim=2, n_grid=0)
    with pytest.raises(ValueError, match="box_length"):
        random_displacements(jax.random.key(0), box_length=-1.0, dim=2, n_displacements=2)

"""NetKet operators built from fermiflow Hamiltonians agree with fermiflow, per sample.

Independent references: NetKet's own ``KineticEnergy`` (dense jacrev/jacfwd Hessian
diagonal) for the kinetic energy, and fermiflow's ``make_kinetic_energy`` plus
potential on (n, dim) configurations for the local energies.
"""

import functools
import math

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from fermiflow.hamiltonians.ewald import make_ewald_potential
from fermiflow.hamiltonians.harmonic import make_quantum_dot_potential
from fermiflow.hamiltonians.kinetic import make_kinetic_energy
from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.interop.operators import (
    ForwardLaplacianKineticEnergy,
    electron_gas_hamiltonian,
    ewald_operator,
    particle_hilbert,
    quantum_dot_hamiltonian,
    quantum_dot_operator,
)

GAS = ElectronGas(
    n_up=2, n_down=1, dim=2, rs=1.5, theta=1.0, emax=4, twist=(0.25, 0.25)
)
DOT = QuantumDot(n_up=2, n_down=1, dim=2, omega=0.7, coupling=1.0, beta=1.0, n_shells=2)


def box_log_psi(params, x_flat, *, n, dim, box_length):
    """Complex periodic Jastrow times a phase; x_flat: (..., n * dim) -> (...,)."""
    x = x_flat.reshape(*x_flat.shape[:-1], n, dim)
    q = 2 * jnp.pi / box_length
    r = x[..., :, None, :] - x[..., None, :, :]
    jastrow = params["a"] * jnp.sum(jnp.cos(q * r), axis=(-1, -2, -3))
    phase = jnp.sum(params["b"] * jnp.sin(q * x) + 0.3 * jnp.cos(2 * q * x), (-1, -2))
    return jastrow + 1j * phase


def trap_log_psi(params, x_flat, *, n, dim):
    """Real Gaussian times a Pade Jastrow; x_flat: (..., n * dim) -> (...,)."""
    x = x_flat.reshape(*x_flat.shape[:-1], n, dim)
    gauss = -params["a"] * jnp.sum(x**2, axis=(-1, -2))
    i, j = np.triu_indices(n, 1)
    r = jnp.linalg.norm(x[..., i, :] - x[..., j, :], axis=-1)
    return gauss + jnp.sum(r / (1 + params["b"] * r), axis=-1) + 0.1 * x_flat[..., 0]


def case(name):
    """(system, log_psi(params, x_flat), params, potential(x: (n, dim)))."""
    if name == "box":
        box_length = GAS.box_length
        fn = functools.partial(box_log_psi, n=3, dim=2, box_length=box_length)
        potential = make_ewald_potential(dim=2, box_length=box_length)
        return GAS, fn, {"a": 0.4, "b": 0.7}, potential
    fn = functools.partial(trap_log_psi, n=3, dim=2)
    potential = make_quantum_dot_potential(dim=2, omega=0.7, coupling=1.0)
    return DOT, fn, {"a": 0.35, "b": 0.8}, potential


def our_local_energy(fn, params, potential, x_flat, *, with_potential=True):
    """fermiflow's local energy on (n, dim) configurations, vmapped over x_flat."""
    kinetic = make_kinetic_energy(lambda p, x: fn(p, x.reshape(-1)))

    def one(x):
        e_kin = kinetic(params, x)
        return e_kin + potential(x) if with_potential else e_kin

    return jax.jit(jax.vmap(one))(x_flat.reshape(x_flat.shape[0], -1, 2))


def kernel(op, fn, params, x):
    """op's local values, jitted as NetKet does (eager evaluation is ~10x slower)."""
    return jax.jit(lambda p, y: op._expect_kernel(fn, p, y))(params, x)


def configurations(key, system, batch):
    scale = system.box_length if isinstance(system, ElectronGas) else 1.5
    return scale * jax.random.uniform(key, (batch, 3 * system.dim), minval=-0.5)


def test_particle_hilbert_gas():
    hilbert = particle_hilbert(GAS)
    assert hilbert.n_per_spin == (2, 1) and hilbert.n_particles == 3
    assert hilbert.size == 6
    assert hilbert.geometry.pbc == (True, True)
    np.testing.assert_allclose(hilbert.domain, (GAS.box_length,) * 2, rtol=1e-15)


def test_particle_hilbert_dot():
    hilbert = particle_hilbert(DOT)
    assert hilbert.n_per_spin == (2, 1) and hilbert.size == 6
    assert hilbert.geometry.pbc == (False, False)
    assert all(math.isinf(e) for e in hilbert.domain)


@pytest.mark.parametrize("name", ["box", "trap"])
@pytest.mark.parametrize("method", ["forward_laplacian", "jvp_loop"])
def test_kinetic_matches_netket_kinetic_energy(key, name, method):
    system, fn, params, potential = case(name)
    hilbert = particle_hilbert(system)
    x = configurations(key, system, 8)
    ours_op = ForwardLaplacianKineticEnergy(hilbert, method=method)
    theirs_op = nk.operator.KineticEnergy(hilbert, mass=1.0)
    ours = kernel(ours_op, fn, params, x)
    theirs = kernel(theirs_op, fn, params, x)
    direct = our_local_energy(fn, params, potential, x, with_potential=False)
    assert ours.shape == (8,) and ours.dtype == theirs.dtype
    assert jnp.iscomplexobj(ours) == (name == "box")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours, direct, rtol=1e-12, atol=1e-12)


def test_kinetic_chunked_matches_unchunked(key):
    _, fn, params, _ = case("box")
    x = configurations(key, GAS, 5)
    hilbert = particle_hilbert(GAS)
    full = kernel(ForwardLaplacianKineticEnergy(hilbert), fn, params, x)
    chunked = ForwardLaplacianKineticEnergy(hilbert, chunk_size=2)
    np.testing.assert_allclose(kernel(chunked, fn, params, x), full, rtol=1e-13)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_kinetic_keeps_dtype(key, dtype):
    _, fn, params, _ = case("trap")
    x = configurations(key, DOT, 2).astype(dtype)
    params = jax.tree.map(lambda p: jnp.asarray(p, dtype), params)
    out = kernel(ForwardLaplacianKineticEnergy(particle_hilbert(DOT)), fn, params, x)
    assert out.dtype == dtype and out.shape == (2,)


def test_potentials_use_particle_major_order():
    """NetKet's flat (x_1, y_1, x_2, y_2, ...) maps to particles (n, dim)."""
    positions = jnp.array([[0.1, 0.9], [1.3, 0.2], [0.4, 2.0]])
    flat = jnp.concatenate(list(positions))[None]
    ewald = make_ewald_potential(dim=2, box_length=GAS.box_length)
    dot = make_quantum_dot_potential(dim=2, omega=0.7, coupling=1.0)
    for op, energy in ((ewald_operator(GAS), ewald), (quantum_dot_operator(DOT), dot)):
        value = kernel(op, None, None, flat)
        np.testing.assert_allclose(value, [jax.jit(energy)(positions)], rtol=1e-14)


@pytest.mark.parametrize("name", ["box", "trap"])
def test_hamiltonian_local_energies_match_ours(key, name):
    """NetKet's local energies of our Hamiltonians (the kernel that MCState's
    local_estimators jits), and of NetKet's own KineticEnergy + our potential."""
    system, fn, params, potential = case(name)
    hilbert = particle_hilbert(system)
    if name == "box":
        hamiltonian = electron_gas_hamiltonian(system)
        potential_op = ewald_operator(system)
    else:
        hamiltonian = quantum_dot_hamiltonian(system)
        potential_op = quantum_dot_operator(system)
    reference = nk.operator.KineticEnergy(hilbert, mass=1.0) + potential_op
    x = configurations(key, system, 16)
    ours = our_local_energy(fn, params, potential, x)
    assert jnp.all(jnp.isfinite(ours))
    np.testing.assert_allclose(kernel(hamiltonian, fn, params, x), ours, rtol=1e-10)
    np.testing.assert_allclose(kernel(reference, fn, params, x), ours, rtol=1e-10)


def test_operators_of_equal_systems_are_equal():
    assert ewald_operator(GAS) == ewald_operator(GAS)
    assert hash(quantum_dot_operator(DOT)) == hash(quantum_dot_operator(DOT))
    hilbert = particle_hilbert(GAS)
    assert ForwardLaplacianKineticEnergy(hilbert) == ForwardLaplacianKineticEnergy(
        hilbert
    )
    assert ForwardLaplacianKineticEnergy(hilbert).is_hermitian


def test_bad_input_raises():
    hilbert = particle_hilbert(DOT)
    with pytest.raises(ValueError, match="method"):
        ForwardLaplacianKineticEnergy(hilbert, method="hessian")
    with pytest.raises(ValueError, match="chunk_size"):
        ForwardLaplacianKineticEnergy(hilbert, chunk_size=0)
    with pytest.raises(ValueError, match="system"):
        particle_hilbert("a gas")
    with pytest.raises(ValueError, match="method"):
        electron_gas_hamiltonian(GAS, method="bad")

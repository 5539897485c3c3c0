"""fermiflow's coordinate proposal as a NetKet rule: same moments both ways.

Statistical tests sample |Psi|^2 of free-fermion Slater determinants with closed-form
moments twice, with NetKet's MCState driving our rule and with fermiflow's own
make_metropolis, and compare each estimate with the exact value and with the other
within 5 sigma; sigma comes from the bulk ESS of the (chains, draws) traces, and each
test also asserts that sigma is small enough for the comparison to mean something.
"""

import arviz
import chex
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from netket.experimental.geometry import Cell, FreeSpace
from netket.experimental.hilbert import Particle

from fermiflow.hamiltonians.systems import ElectronGas, QuantumDot
from fermiflow.interop.model import make_ground_state_model
from fermiflow.interop.operators import particle_hilbert
from fermiflow.interop.rule import FermiflowGaussianRule, make_netket_sampler
from fermiflow.models.flow import make_identity_flow
from fermiflow.sampling.metropolis import make_metropolis

K_SIGMA = 5
N_CHAINS = 64
SWEEPS = 4  # all-electron moves per recorded sample, both ways

# N = 3 polarized fermions in the 2D oscillator (omega = 1): orbitals (0,0), (1,0),
# (0,1), so <sum_i r_i^2> = sum (n_x + n_y + 1) / omega = 1 + 2 + 2.
DOT = QuantumDot(n_up=3, n_down=0, dim=2, omega=1.0, coupling=0.0, beta=1.0, n_shells=2)
DOT_R2 = 5.0
# N = 3 polarized plane waves; a generic twist leaves no degenerate shell.
GAS = ElectronGas(n_up=3, n_down=0, dim=2, rs=1.0, theta=1.0, emax=2, twist=(0.2, 0.1))


def _mean_and_stderr(trace):
    """trace: (chains, draws) -> mean and ESS-based standard error."""
    data = np.asarray(trace)
    ess = float(arviz.ess(data, method="bulk"))
    return float(data.mean()), float(data.std() / np.sqrt(ess))


def _assert_exact(mean, stderr, exact, max_stderr, label):
    assert stderr < max_stderr, f"{label}: too noisy to test, stderr={stderr:.2e}"
    dev = abs(mean - exact)
    assert dev < K_SIGMA * stderr, (
        f"{label}: {mean:.5f} +- {stderr:.5f} vs exact {exact}: {dev / stderr:.1f} sigma"
    )


def _assert_agree(a, b, label):
    (mean_a, err_a), (mean_b, err_b) = a, b
    err = np.hypot(err_a, err_b)
    assert abs(mean_a - mean_b) < K_SIGMA * err, (
        f"{label}: netket {mean_a:.5f} +- {err_a:.5f} vs fermiflow {mean_b:.5f} +- {err_b:.5f}"
    )


def _netket_samples(system, width, seed, *, draws, discard, kernel="rwm"):
    """(chains, draws, n, dim) samples of MCState(model, our sampler)."""
    model = make_ground_state_model(system, flow=make_identity_flow())
    sampler = make_netket_sampler(
        particle_hilbert(system),
        width=width,
        n_chains=N_CHAINS,
        sweep_size=SWEEPS,
        kernel=kernel,
    )
    state = nk.vqs.MCState(
        sampler,
        model,
        n_samples=N_CHAINS * draws,
        n_discard_per_chain=discard,
        seed=seed,
        sampler_seed=seed + 1,
    )
    x = np.asarray(state.samples)
    return x.reshape(N_CHAINS, draws, system.n_particles, system.dim)


def _fermiflow_samples(system, width, key, x0, *, draws, discard, box_length=None, kernel="rwm"):
    """(chains, draws, n, dim) samples of make_metropolis on the same |Psi|^2."""
    model = make_ground_state_model(system, flow=make_identity_flow())
    log_prob = lambda params, aux, x: 2 * jnp.real(model.log_psi(params, x))  # noqa: E731
    sampler = make_metropolis(log_prob, box_length=box_length, kernel=kernel, n_sweeps=SWEEPS)
    state = sampler.init(x0, {}, None, width)

    @jax.jit
    def run(state, key):
        def body(state, key):
            state, _ = sampler.step(key, state, {}, None)
            return state, state.chain.position

        return jax.lax.scan(body, state, jax.random.split(key, discard + draws))[1]

    positions = np.asarray(run(state, key))[discard:]
    return np.swapaxes(positions, 0, 1)


def _trap_r2(x):
    return np.sum(x**2, axis=(-1, -2))


def test_trap_moments_both_ways(seed, key):
    key_x, key_run = jax.random.split(key)
    width = 0.7
    x_netket = _netket_samples(DOT, width, seed, draws=150, discard=50)
    x0 = jax.random.normal(key_x, (N_CHAINS, DOT.n_particles, DOT.dim))
    x_ff = _fermiflow_samples(DOT, width, key_run, x0, draws=150, discard=50)
    netket = _mean_and_stderr(_trap_r2(x_netket))
    fermiflow = _mean_and_stderr(_trap_r2(x_ff))
    for label, stats in (("netket", netket), ("fermiflow", fermiflow)):
        _assert_exact(*stats, DOT_R2, 0.02 * DOT_R2, f"{label} <sum r^2>")
    _assert_agree(netket, fermiflow, "<sum r^2>")


@pytest.mark.slow
def test_trap_moments_mala_both_ways(seed, key):
    key_x, key_run = jax.random.split(key)
    width, draws = 0.35, 3000  # MALA mixes slowly near the nodes: long chains
    x_netket = _netket_samples(DOT, width, seed, draws=draws, discard=200, kernel="mala")
    x0 = jax.random.normal(key_x, (N_CHAINS, DOT.n_particles, DOT.dim))
    x_ff = _fermiflow_samples(DOT, width, key_run, x0, draws=draws, discard=200, kernel="mala")
    netket = _mean_and_stderr(_trap_r2(x_netket))
    fermiflow = _mean_and_stderr(_trap_r2(x_ff))
    for label, stats in (("netket", netket), ("fermiflow", fermiflow)):
        _assert_exact(*stats, DOT_R2, 0.02 * DOT_R2, f"{label} mala <sum r^2>")
    _assert_agree(netket, fermiflow, "mala <sum r^2>")


def _exact_structure_factor(system, q):
    """<|sum_i exp(i 2 pi q.x_i / L)|^2> = N - #{occupied k: k + q occupied}."""
    occupied = {tuple(n) for n in np.asarray(system.spectrum.quantum_numbers)[: system.n_up]}
    shifted = {tuple(np.add(n, q)) for n in occupied}
    return system.n_particles - len(occupied & shifted)


def _box_observables(x, box_length):
    """x: (chains, draws, n, dim) -> structure factor at q = x, y and <cos>, <sin>."""
    phase = np.exp(2j * np.pi * x / box_length)
    structure = np.mean(np.abs(np.sum(phase, axis=2)) ** 2, axis=-1)
    return structure, phase.real.mean((-1, -2)), phase.imag.mean((-1, -2))


def test_box_density_and_structure_factor_both_ways(seed, key):
    key_x, key_run = jax.random.split(key)
    box_length, width = GAS.box_length, 0.8
    exact = [_exact_structure_factor(GAS, q) for q in ((1, 0), (0, 1))]
    assert exact == [2, 2]  # N = 3 for distinguishable particles: Pauli matters
    x_netket = _netket_samples(GAS, width, seed, draws=100, discard=30)
    x0 = jax.random.uniform(key_x, (N_CHAINS, GAS.n_particles, GAS.dim)) * box_length
    x_ff = _fermiflow_samples(GAS, width, key_run, x0, draws=100, discard=30, box_length=box_length)
    for x in (x_netket, x_ff):
        assert np.all((x >= 0) & (x < box_length))
    both = [_box_observables(x, box_length) for x in (x_netket, x_ff)]
    # (name, exact value, largest useful stderr): 2 % of S(q); cos, sin lie in [-1, 1].
    checks = (("S(q)", 2.0, 0.04), ("<cos>", 0.0, 0.01), ("<sin>", 0.0, 0.01))
    for index, (name, exact_value, max_stderr) in enumerate(checks):
        stats = [_mean_and_stderr(observables[index]) for observables in both]
        for label, (mean, err) in zip(("netket", "fermiflow"), stats, strict=True):
            _assert_exact(mean, err, exact_value, max_stderr, f"{label} {name}")
        _assert_agree(*stats, name)


def _proposals(hilbert, width, key, x, dtype=jnp.float64):
    sampler = make_netket_sampler(hilbert, width=width, n_chains=x.shape[0], dtype=dtype)
    return sampler.rule.transition(sampler, None, None, None, key, x)[0]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_proposal_is_gaussian_with_std_width(key, dtype):
    n_chains, width = 4000, 0.3
    hilbert = Particle(N=3, geometry=FreeSpace(d=2))
    x = jnp.ones((n_chains, hilbert.size), dtype)
    proposal = _proposals(hilbert, width, key, x, dtype)
    chex.assert_shape(proposal, x.shape)
    assert proposal.dtype == dtype
    eta = np.asarray(proposal - x, np.float64) / width  # should be iid N(0, 1)
    m = eta.size
    # sum eta^2 ~ chi^2_m; sum eta^4 has mean 3 m, variance 96 m; sum eta has var m.
    assert 5 * np.sqrt(2 * m) < 0.05 * m  # the chi^2 test pins the std to 2.5 %
    assert abs(np.sum(eta**2) - m) < K_SIGMA * np.sqrt(2 * m)
    assert abs(np.sum(eta**4) - 3 * m) < K_SIGMA * np.sqrt(96 * m)
    assert abs(np.sum(eta)) < K_SIGMA * np.sqrt(m)
    # Independent chains and coordinates: neighbour products have mean 0, var 1.
    for products in (eta[1:] * eta[:-1], eta[:, 1:] * eta[:, :-1]):
        assert abs(np.sum(products)) < K_SIGMA * np.sqrt(products.size)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_proposal_wraps_into_the_cell(key, dtype):
    n_chains, width, box = 500, 2.0, (1.0, 1.5)
    free = Particle(N=2, geometry=FreeSpace(d=2))
    cell = Particle(N=2, geometry=Cell(d=2, L=box, pbc=True))
    slab = Particle(N=2, geometry=Cell(d=2, L=box, pbc=(True, False)))
    x = jnp.tile(jnp.asarray([0.9, 0.1, 0.05, 1.4], dtype), (n_chains, 1))
    unwrapped = _proposals(free, width, key, x, dtype)
    modulus = jnp.asarray(box * 2, dtype)
    for hilbert, periodic in ((cell, [1, 1, 1, 1]), (slab, [1, 0, 1, 0])):
        proposal = _proposals(hilbert, width, key, x, dtype)
        assert proposal.dtype == dtype
        expected = jnp.where(jnp.asarray(periodic, bool), unwrapped % modulus, unwrapped)
        np.testing.assert_array_equal(proposal, expected)
    proposal = np.asarray(_proposals(cell, width, key, x, dtype))
    assert np.all((proposal >= 0) & (proposal < np.asarray(box * 2)))
    assert np.any(np.asarray(unwrapped) < 0)  # the test does exercise the wrap


def test_rule_width_is_traced_not_static():
    hilbert = Particle(N=1, geometry=FreeSpace(d=1))
    a = make_netket_sampler(hilbert, width=0.3, n_chains=2)
    b = make_netket_sampler(hilbert, width=0.6, n_chains=2)
    assert jax.tree.structure(a.rule) == jax.tree.structure(b.rule)
    assert repr(a.rule) == "FermiflowGaussianRule(width=0.3)"


def test_mala_kernel_is_langevin_with_matching_step():
    hilbert = particle_hilbert(DOT)
    sampler = make_netket_sampler(hilbert, width=0.4, n_chains=4, kernel="mala")
    assert isinstance(sampler.rule, nk.sampler.rules.LangevinRule)
    np.testing.assert_allclose(sampler.rule.dt, 0.4**2 / 2, rtol=1e-15)
    assert sampler.sweep_size == hilbert.size and sampler.machine_pow == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 0.0}, "width"),
        ({"width": -1.0}, "width"),
        ({"width": float("nan")}, "width"),
        ({"n_chains": 0}, "n_chains"),
        ({"n_chains": 2.5}, "n_chains"),
        ({"sweep_size": 0}, "sweep_size"),
        ({"kernel": "hmc"}, "kernel"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    arguments = {"width": 0.5, "n_chains": 4} | kwargs
    with pytest.raises(ValueError, match=match):
        make_netket_sampler(particle_hilbert(DOT), **arguments)


def test_bad_hilbert_and_rule_width_raise():
    with pytest.raises(ValueError, match="hilbert"):
        make_netket_sampler(nk.hilbert.Spin(0.5, 3), width=0.5, n_chains=4)
    with pytest.raises(ValueError, match="width"):
        FermiflowGaussianRule(0.0)

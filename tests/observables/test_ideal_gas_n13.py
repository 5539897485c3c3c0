"""The reference ideal gas of the issue: 2D polarized, N=13, Theta=0.15 (slow).

ElectronGas(n_up=13, dim=2, theta=0.15, emax=25, twist=(1/4, 1/4)): 81 modes. p(K) is
the exact canonical distribution over every set within 24 T of the ground state
(374,473 sets, missing Boltzmann weight 1.6e-6: its effect on S and <n_k> is far below
the statistical errors), sampled exactly by inverse CDF; x | K by Metropolis with the
identity flow, with 100 extra sweeps after every change of K (K changes at almost
every step; with 20 the walkers keep a memory of the previous K's exchange hole and g(r)
is biased by up to 4 sigma). Compared with the exact canonical S_0 and <n_k> of ALL C(81, 13) sets
(fermiflow.hamiltonians.free_fermions). Prints one JSON line with the measurements
(run with -s to see it).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.autoregressive import ARModel
from fermiflow.models.categorical import enumerate_sets, make_categorical_model
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.observables import (
    effective_mass_ratio,
    estimate,
    ideal_entropy,
    make_one_body_ratios,
    momentum_distribution,
    occupation_indicator,
    pair_correlation,
    plane_wave_pair_correlation,
    random_displacements,
)
from fermiflow.sampling.joint import make_joint_sampler
from tests.observables.ideal_gas_samples import assert_consistent, chains

pytestmark = pytest.mark.slow

N, M_MODES = 13, 81
GAS = ElectronGas(n_up=N, n_down=0, dim=2, rs=1.0, theta=0.15, emax=25, twist=(0.25, 0.25))


def _exact_model():
    energies = GAS.spectrum.energies
    ground = np.sort(energies)[:N].sum()
    states = enumerate_sets(M_MODES, N, max_energy=ground + 24 / GAS.beta, energies=energies)
    logits = -GAS.beta * energies[states].sum(1)
    log_p = logits - logsumexp(logits)
    model = make_categorical_model(states)
    table, log_p_j = jnp.asarray(states, jnp.int32), jnp.asarray(log_p)
    cdf = np.cumsum(np.exp(log_p))
    cdf = jnp.asarray(cdf / cdf[-1])

    def sample(key, params, batch):  # inverse CDF: no (batch, sets) Gumbel table
        u = jax.random.uniform(key, (batch,), cdf.dtype)
        index = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), len(states) - 1)
        return table[index], log_p_j[index]

    return ARModel(model.init, model.log_prob, sample), states


def _sigma_summary(devs):
    devs = np.asarray(devs)
    return {"max_abs_sigma": float(np.max(np.abs(devs))),
            "rms_sigma": float(np.sqrt(np.mean(devs**2))), "n": int(devs.size)}


def test_reference_gas_n13_theta015():
    model, states = _exact_model()
    thermo = electron_gas_ideal_thermo(GAS)
    exact_occupations = thermo.occupations[0]  # (2, m): [up, down]
    report = {"system": "2D polarized ideal gas N=13 theta=0.15 emax=25 twist=(1/4,1/4)",
              "n_sets": int(len(states))}

    # K only: S and <n_k> from 64 x 1024 exact draws.
    keys = jax.random.split(jax.random.key(13), 1024)
    occ, log_p = jax.jit(lambda k: jax.lax.map(lambda kk: model.sample(kk, None, 64), k))(keys)
    entropy = estimate(-chains(np.asarray(log_p)), name="S")
    mass = effective_mass_ratio(entropy, ideal_entropy(GAS))
    assert mass.error < 0.005
    assert abs(mass.value - 1) < 5 * mass.error
    report["m_star_over_m"] = [mass.value, mass.error]
    report["m_star_sigma"] = (mass.value - 1) / mass.error
    indicator = jax.jit(jax.vmap(jax.vmap(
        lambda o: occupation_indicator(o, n_modes=M_MODES, n_up=N)[0])))(occ)
    trace = chains(np.asarray(indicator))
    devs, n_draws = [], trace.shape[0] * trace.shape[1]
    expected = n_draws * np.minimum(exact_occupations, 1 - exact_occupations)
    for k in range(M_MODES):
        if expected[k] < 25:  # too few events for a Gaussian error: Poisson bound
            count = trace[:, :, k].sum()
            assert count <= expected[k] + 5 * np.sqrt(expected[k]) + 5, (k, count)
            continue
        mean, err = assert_consistent(trace[:, :, k], exact_occupations[k], max_stderr=0.01,
                                      name=f"<n_{k}>")
        devs.append((mean - exact_occupations[k]) / err)
    report["occupations_p_of_k"] = _sigma_summary(devs)

    # x | K: Metropolis, identity flow.
    orbitals = make_plane_wave_orbitals(GAS.spectrum, GAS.box_length)
    log_psi = make_log_psi(orbitals=orbitals, flow_apply=lambda p, x: (x, jnp.zeros((), x.dtype)),
                           n_up=N, n_down=0)
    params = JointParams(None, None)
    batch, n_steps = 128, 96
    sampler = make_joint_sampler(model, log_psi, batch=batch, n=N, dim=2,
                                 box_length=GAS.box_length, n_sweeps=10, n_extra_sweeps=100)
    box = GAS.box_length
    edges = np.linspace(0, box / 2, 16)
    ratios = make_one_body_ratios(log_psi, n_up=N, n_down=0)
    k_vectors = GAS.spectrum.wavevectors

    def measure(key, state):
        def body(state, key_step):
            key_s, key_d = jax.random.split(key_step)
            state, info = sampler.sample(key_s, state, params)
            x, o = state.walkers.chain.position, state.occ
            d = jax.vmap(lambda kk: random_displacements(kk, box_length=box, dim=2,
                                                         n_displacements=4))(
                jax.random.split(key_d, batch))
            n_k = jax.vmap(lambda oo, xx, dd: momentum_distribution(
                ratios(None, oo, xx, dd), dd, k_vectors, n_per_species=(N,))[0])(o, x, d)
            g = jax.vmap(lambda xx: pair_correlation(xx, edges, box_length=box, n_up=N)[0])(x)
            return state, (o, n_k, g, jnp.mean(info.acceptance))

        return jax.lax.scan(body, state, jax.random.split(key, n_steps))

    measure = jax.jit(measure)
    state = sampler.init(jax.random.key(1), params)
    state, _ = measure(jax.random.key(2), state)  # thermalization
    state, (occ_x, n_k, g, acceptance) = measure(jax.random.key(3), state)
    report["metropolis"] = {"batch": batch, "steps": n_steps,
                            "acceptance": float(acceptance.mean())}

    n_k = chains(np.asarray(n_k))
    devs, errs = [], []
    for k in range(M_MODES):
        mean, err = assert_consistent(n_k[:, :, k], exact_occupations[k], max_stderr=0.1,
                                      name=f"n_{k}")
        devs.append((mean - exact_occupations[k]) / err)
        errs.append(err)
    report["n_k_off_diagonal"] = {**_sigma_summary(devs), "max_stderr": float(max(errs))}

    flat_occ = np.asarray(occ_x).reshape(-1, N)
    exact_g = plane_wave_pair_correlation(flat_occ, k_vectors, edges, n_up=N)[:, 0]
    diff = chains((np.asarray(g).reshape(-1, len(edges) - 1) - exact_g).reshape(
        n_steps, batch, -1))
    devs, errs = [], []
    for b in range(len(edges) - 1):
        mean, err = assert_consistent(diff[:, :, b], 0.0, max_stderr=0.05, name=f"g[{b}]")
        devs.append(mean / err)
        errs.append(err)
    report["g_r"] = {**_sigma_summary(devs), "max_stderr": float(max(errs)),
                     "g_exact_first_bins": exact_g.mean(0)[:4].tolist()}
    print(json.dumps(report))

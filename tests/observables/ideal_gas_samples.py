"""Helpers and shared samples of an exactly solvable state: the ideal gas with its exact p(K).

The state is rho = sum_K p(K)|Psi_K><Psi_K| of a small spinful 2D gas (3 up, 2 down,
emax=2: 9 twisted plane waves per spin, all 84 * 36 = 3024 sets) with p(K) the exact
canonical distribution exp(-beta E0(K)) / Z (a categorical model with those logits)
and the identity flow, so Psi_K is the plane-wave determinant and every observable has
a closed form. K is drawn exactly at every step and x | K by Metropolis; traces are
(chains = walkers, draws = steps). The sampler is compiled once per test session.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.density_matrix import (
    JointParams,
    QuantumProblem,
    make_quantum_problem,
    occupation_energies,
)
from fermiflow.observables import estimate
from fermiflow.sampling.joint import make_joint_sampler
from fermiflow.training.loss import LocalValues, make_free_energy_loss

K_SIGMA = 5.0
BATCH = 256
CHUNK = 32  # sampler steps per compiled call
N_CHUNKS = 2  # production chunks, after one thermalization chunk


class IdealSamples(NamedTuple):
    gas: ElectronGas
    problem: QuantumProblem
    params: JointParams
    occ: np.ndarray  # (steps, batch, n) int
    x: np.ndarray  # (steps, batch, n, dim)
    values: LocalValues  # (steps, batch) leaves


def exact_canonical_problem(gas: ElectronGas) -> tuple[QuantumProblem, JointParams]:
    """Categorical p(K) over ALL sets with logits -beta E0(K), identity flow."""
    problem = make_quantum_problem(
        gas, occupation="categorical", occupation_options={"max_excitation": 1e6},
        flow="identity",
    )
    energies = occupation_energies(problem.mode_energies, problem.occupation_states)
    flow_params = problem.init_params(jax.random.key(0)).wavefunction
    return problem, JointParams(jnp.asarray(-gas.beta * energies), flow_params)


def draw_samples(key, gas: ElectronGas, *, batch=BATCH, n_chunks=N_CHUNKS, n_sweeps=5):
    problem, params = exact_canonical_problem(gas)
    sampler = make_joint_sampler(
        problem.occupation_model, problem.log_psi, batch=batch, n=problem.n,
        dim=problem.dim, box_length=problem.box_length, n_sweeps=n_sweeps,
        n_extra_sweeps=2 * n_sweeps,
    )
    # The ideal gas: kinetic energy only, V = 0.
    loss = make_free_energy_loss(
        problem.occupation_model.log_prob, problem.log_psi,
        lambda x: jnp.zeros((), x.dtype), temperature=problem.temperature,
    )

    @jax.jit
    def chunk(key, state):
        def body(state, key_step):
            state, _ = sampler.sample(key_step, state, params)
            values = loss.local_values(params, state)
            return state, (state.occ, state.walkers.chain.position, values)

        return jax.lax.scan(body, state, jax.random.split(key, CHUNK))

    key_init, key_therm, *keys = jax.random.split(key, 2 + n_chunks)
    state = sampler.init(key_init, params)
    state, _ = chunk(key_therm, state)
    outputs = []
    for key_chunk in keys:
        state, out = chunk(key_chunk, state)
        outputs.append(out)
    occ, x, values = jax.tree.map(lambda *a: np.concatenate(a), *outputs)
    return IdealSamples(gas, problem, params, occ, x, values)


def chains(per_sample: np.ndarray) -> np.ndarray:
    """(steps, batch, ...) -> (batch, steps, ...): chains = walkers, draws = steps."""
    return np.swapaxes(np.asarray(per_sample), 0, 1)


def assert_consistent(trace, exact, *, max_stderr, name="trace", k=K_SIGMA):
    """|mean - exact| < k * stderr (the larger of ESS and blocking), stderr small."""
    est = estimate(trace, name=name)  # error: the larger of ESS and blocking
    stderr = est.error
    assert stderr < max_stderr, f"{name}: too noisy to test: stderr={stderr:.2e}"
    dev = abs(est.value - exact)
    assert dev < k * stderr, f"{name}: {est.value:.6f} vs {exact:.6f}: {dev / stderr:.1f} sigma"
    return est.value, stderr

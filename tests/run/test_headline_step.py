"""One optimization step of the headline configuration, end to end.

configs/heg2d_n13_rs10_fast.toml (2D gas, N = 13, rs = 10: exact i.i.d. sampler, split
kinetic energy, certified backflow with 3 radial blocks, set-transformer p(K), SR for
both networks) with a small batch: the step runs, applies an update to both networks,
and its split kinetic energy agrees with the exact forward Laplacian on the same
walkers (unbiased), and its walkers are the flow's inverse of their latent points.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.kinetic import make_kinetic_energy
from fermiflow.run.build import sampler_kind
from fermiflow.run.config import load_config
from fermiflow.run.engine import build_engine

HEADLINE = Path(__file__).parents[2] / "configs" / "heg2d_n13_rs10_fast.toml"
SMALL = ["sampler.batch=32", "sampler.n_sweeps=5", "sampler.n_thermalize=2",
         "run.pretrain_steps=5", "optimizer.n_probes=4"]


@pytest.mark.slow  # 7 min on a loaded 2-core CPU: the N = 13 compiles dominate
def test_headline_configuration_takes_one_step():
    config = load_config(HEADLINE, SMALL)
    assert (sampler_kind(config), config.optimizer.kinetic, config.model.radial_blocks) == (
        "exact", "split", 3)
    engine = build_engine(config)
    state, rows = engine.init()
    assert len(rows) == 5
    placed = engine.place(state)
    new, metrics = engine.step(placed)
    assert bool(metrics.update_applied) and int(new.step) == 1
    assert int(metrics.n_nonfinite_local) == 0 and int(metrics.n_nonfinite_proposals) == 0
    for before, after in zip(state.params, jax.device_get(new.params), strict=True):
        moved = [np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in
                 zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)]
        assert max(moved) > 0  # both networks were updated
    # The split kinetic energy is an unbiased estimate of the exact one, walker by walker.
    # The walkers of the step were drawn at the params before its update.
    problem, loss = engine.pieces.problem, engine.pieces.loss
    params, sampler_state = placed.params, new.sampler_state
    x, occ = sampler_state.walkers.chain.position, sampler_state.occ
    exact = make_kinetic_energy(lambda p, y: problem.log_psi(p[0], p[1], y))
    exact_k = jax.jit(jax.vmap(lambda o, y: exact((params.wavefunction, o), y)))(occ, x)
    draws = jax.jit(lambda keys: jax.lax.map(
        lambda k: loss.local_values(params, sampler_state, k).kinetic, keys))(
        jax.random.split(jax.random.key(0), 8))
    diff = np.real(np.asarray(draws - exact_k[None]))  # (draws, batch)
    err = diff.std() / np.sqrt(diff.size - 1)
    assert err < 1e-2 * np.abs(np.real(np.asarray(exact_k))).mean(), err
    assert abs(diff.mean()) < 5 * err, (diff.mean(), err)
    # The walkers are x = T^{-1}(zeta): the flow maps them back to their latent points.
    zeta = jax.jit(jax.vmap(lambda y: problem.flow.apply(params.wavefunction, y)[0]))(x)
    latent = sampler_state.latent.chain.position
    box = problem.box_length
    wrapped = (zeta - latent + box / 2) % box - box / 2
    assert float(jnp.max(jnp.abs(wrapped))) < 1e-8

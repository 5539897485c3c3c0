"""Exact plane-wave DPP sampler: closed-form one- and two-point functions, N = 2 law, cost."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.observables.pair import (
    plane_wave_structure_factor,
    reciprocal_lattice,
    structure_factor,
)
from fermiflow.sampling.dpp import (
    DPPSample,
    make_plane_wave_dpp_sampler,
    sample_plane_wave_dpp,
)

K_SIGMA = 5.0
L_BOX = 3.0
TWIST = (0.25, 0.25)
SPECTRUM = plane_wave_spectrum(dim=2, emax=9, box_length=L_BOX, twist=TWIST)
# Non-closed-shell sets (holes and particles) so that S(q) is not the ground state's.
OCC_POLARIZED = np.array([0, 1, 2, 4, 5, 7, 11])
OCC_SPINFUL = np.array([0, 1, 3, 6, 0, 2, 5])  # 4 up, 3 down
BATCH = 6000
MAX_NORM2 = 5  # q = 2 pi n / L with 0 < |n|^2 <= 5: 20 vectors


def _batched(n_up: int, n_down: int, dtype=jnp.float64):
    return _compiled(n_up, n_down, jnp.dtype(dtype).name)


@functools.cache
def _compiled(n_up: int, n_down: int, dtype: str):
    sampler = make_plane_wave_dpp_sampler(
        modes_wavevectors=SPECTRUM.wavevectors,
        box_length=L_BOX,
        n_up=n_up,
        n_down=n_down,
        dtype=dtype,
    )
    # lax.map, not vmap: on CPU it compiles and runs faster (a vmapped rejection loop
    # runs every walker as long as the slowest); vmap is tested in test_exact_latent.py.
    return jax.jit(lambda keys, occ: jax.lax.map(lambda key: sampler(key, occ), keys))


@functools.cache
def _samples(n_up: int, n_down: int, seed: int) -> DPPSample:
    occ = OCC_POLARIZED if n_down == 0 else OCC_SPINFUL
    keys = jax.random.split(jax.random.key(seed), BATCH)
    return _batched(n_up, n_down)(keys, jnp.asarray(occ))


def _assert_within(mean, stderr, exact, *, max_stderr):
    mean, stderr, exact = (np.asarray(a, np.float64) for a in (mean, stderr, exact))
    assert np.all(stderr < max_stderr), f"too noisy to test: {stderr.max():.2e}"
    sigmas = np.abs(mean - exact) / stderr
    assert np.all(sigmas < K_SIGMA), f"max deviation {sigmas.max():.1f} sigma"


def _harmonic_moments(n: int) -> tuple[float, float]:
    """Mean and variance of the proposals of one block: sum of geometric(r / n) counts."""
    mean = sum(n / r for r in range(1, n + 1))
    variance = sum((1 - r / n) * (n / r) ** 2 for r in range(1, n + 1))
    return mean, variance


@pytest.mark.parametrize(("n_up", "n_down"), [(7, 0), (4, 3)])
def test_structure_factor_matches_the_exact_determinant(n_up, n_down):
    sample = _samples(n_up, n_down, seed=0)
    occ = OCC_POLARIZED if n_down == 0 else OCC_SPINFUL
    q = reciprocal_lattice(box_length=L_BOX, dim=2, max_norm2=MAX_NORM2)
    q_integers = np.rint(q * L_BOX / (2 * np.pi)).astype(int)
    values = jax.jit(jax.vmap(lambda x: structure_factor(x, q, n_up=n_up)))(sample.position)
    exact = plane_wave_structure_factor(occ[None], SPECTRUM.quantum_numbers, q_integers, n_up=n_up)[
        0
    ]
    values = np.asarray(values)  # (batch, channels, nq)
    assert values.shape[1:] == exact.shape
    stderr = values.std(0) / math.sqrt(BATCH)
    _assert_within(values.mean(0), stderr, exact, max_stderr=0.03)
    # Power: S(q) is far from the uncorrelated value 1 somewhere (Pauli hole).
    assert np.max(np.abs(exact - 1) / stderr) > 10 * K_SIGMA


def test_one_point_function_is_uniform():
    sample = _samples(7, 0, seed=0)
    q = reciprocal_lattice(box_length=L_BOX, dim=2, max_norm2=MAX_NORM2)
    phase = jnp.einsum("qd,bnd->bqn", q, sample.position)
    density = np.asarray(jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], 1).mean(-1))
    stderr = density.std(0) / math.sqrt(BATCH)
    _assert_within(density.mean(0), stderr, 0.0, max_stderr=0.01)
    x = np.asarray(sample.position)
    assert np.all((x >= 0) & (x < L_BOX))


def _cell_probabilities(delta: np.ndarray, n_grid: int) -> np.ndarray:
    """Exact P(x1 - x2 mod L in cell) for |det|^2 / 2 of two plane waves: (n_grid, n_grid).

    The relative coordinate r has density (1 - cos(delta . r)) / V on the torus, delta =
    k1 - k2 a reciprocal-lattice vector; the cell integral of cos factorizes.
    """
    edges = np.linspace(0.0, L_BOX, n_grid + 1)

    def integral(a):  # (n_grid,) complex int_cell e^{i a r} dr
        if a == 0:
            return np.diff(edges).astype(complex)
        return np.diff(np.exp(1j * a * edges)) / (1j * a)

    cos_part = np.real(np.outer(integral(delta[0]), integral(delta[1])))
    return (np.diff(edges)[:, None] * np.diff(edges)[None, :] - cos_part) / L_BOX**2


def test_two_electrons_follow_the_exact_law_of_the_relative_coordinate():
    # N = 2, modes n = (0, 0) and (1, 1) (twisted): 16-cell histogram of x1 - x2 mod L.
    modes = np.array([0, int(np.flatnonzero((SPECTRUM.quantum_numbers == 1).all(1))[0])])
    keys = jax.random.split(jax.random.key(3), BATCH)
    x = np.asarray(_batched(2, 0)(keys, jnp.asarray(modes)).position)
    n_grid = 4
    cell = np.floor(np.mod(x[:, 0] - x[:, 1], L_BOX) / L_BOX * n_grid).astype(int)
    counts = np.zeros((n_grid, n_grid))
    np.add.at(counts, (cell[:, 0], cell[:, 1]), 1.0)
    delta = SPECTRUM.wavevectors[modes[0]] - SPECTRUM.wavevectors[modes[1]]
    exact = _cell_probabilities(delta, n_grid)
    assert math.isclose(exact.sum(), 1.0, rel_tol=1e-12)
    frequency = counts / BATCH
    stderr = np.sqrt(exact * (1 - exact) / BATCH)  # binomial, exact p
    _assert_within(frequency, stderr, exact, max_stderr=0.006)
    # Power: the uniform law (no exchange hole) is rejected.
    assert np.max(np.abs(exact - 1 / n_grid**2) / stderr) > 3 * K_SIGMA


@pytest.mark.parametrize(("n_up", "n_down"), [(7, 0), (4, 3)])
def test_mean_number_of_proposals_is_n_harmonic_number(n_up, n_down):
    sample = _samples(n_up, n_down, seed=0)
    moments = [_harmonic_moments(n) for n in (n_up, n_down) if n]
    mean = sum(m for m, _ in moments)
    stderr = math.sqrt(sum(v for _, v in moments) / BATCH)
    assert sample.n_proposals.dtype == jnp.int32
    _assert_within(np.mean(sample.n_proposals), stderr, mean, max_stderr=0.2)


@pytest.mark.parametrize(("n_up", "n_down"), [(7, 0), (4, 3)])
def test_log_density_is_the_latent_log_psi(n_up, n_down):
    sample = jax.tree.map(lambda a: a[:16], _samples(n_up, n_down, seed=0))
    occ = OCC_POLARIZED if n_down == 0 else OCC_SPINFUL
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(SPECTRUM, L_BOX),
        flow_apply=make_identity_flow().apply,
        n_up=n_up,
        n_down=n_down,
    )
    expected = jax.jit(jax.vmap(lambda x: 2 * jnp.real(log_psi(None, jnp.asarray(occ), x))))
    chex.assert_trees_all_close(sample.log_density, expected(sample.position), rtol=1e-10)


def test_consecutive_samples_are_uncorrelated_and_keys_matter():
    first = _samples(7, 0, seed=0)
    q = reciprocal_lattice(box_length=L_BOX, dim=2, max_norm2=1)
    s = np.asarray(jax.jit(jax.vmap(lambda x: structure_factor(x, q, n_up=7)))(first.position))
    for statistic in (s[:, 0].mean(-1), np.asarray(first.position[:, 0, 0])):
        z = (statistic - statistic.mean()) / statistic.std()
        lag1 = np.mean(z[1:] * z[:-1])
        assert abs(lag1) < K_SIGMA / math.sqrt(BATCH), lag1
    # Same key, same sample; another seed, other samples.
    again = _batched(7, 0)(jax.random.split(jax.random.key(0), BATCH), jnp.asarray(OCC_POLARIZED))
    assert bool(jnp.all(again.position == first.position))
    other = _samples(7, 0, seed=1)
    assert not bool(jnp.any(jnp.all(other.position == first.position, axis=(1, 2))))


def test_repeated_mode_gives_nan_not_a_hang():
    keys = jax.random.split(jax.random.key(0), BATCH)  # BATCH: the compiled shape
    sample = _batched(2, 0)(keys, jnp.asarray([3, 3]))
    assert bool(jnp.all(jnp.isnan(sample.position))) and bool(
        jnp.all(jnp.isnan(sample.log_density))
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtypes_follow_the_input(dtype):
    k = jax.ShapeDtypeStruct((3, 2), dtype)
    shapes = jax.eval_shape(lambda k: sample_plane_wave_dpp(jax.random.key(0), k, L_BOX), k)
    assert shapes.position.shape == (3, 2) and shapes.log_density.shape == ()
    assert shapes.position.dtype == shapes.log_density.dtype == dtype
    assert shapes.n_proposals.shape == () and shapes.n_proposals.dtype == jnp.int32
    # One real run per dtype: float32 uniforms * L must stay inside [0, L).
    keys = jax.random.split(jax.random.key(1), BATCH)
    sample = _batched(2, 0, dtype)(keys, jnp.asarray([0, 1]))
    chex.assert_shape(sample.position, (BATCH, 2, 2))
    assert sample.position.dtype == sample.log_density.dtype == dtype
    x = sample.position
    assert bool(jnp.all((x >= 0) & (x < L_BOX))) and bool(jnp.all(jnp.isfinite(sample.log_density)))


def test_bad_arguments_raise():
    make = functools.partial(
        make_plane_wave_dpp_sampler, modes_wavevectors=SPECTRUM.wavevectors, box_length=L_BOX
    )
    with pytest.raises(ValueError, match="n_up"):
        make(n_up=-1, n_down=2)
    with pytest.raises(ValueError, match="n_up \\+ n_down"):
        make(n_up=0, n_down=0)
    with pytest.raises(ValueError, match="box_length"):
        make_plane_wave_dpp_sampler(
            modes_wavevectors=SPECTRUM.wavevectors, box_length=0.0, n_up=1, n_down=0
        )
    with pytest.raises(ValueError, match="n_candidates"):
        make(n_up=1, n_down=0, n_candidates=0)
    with pytest.raises(ValueError, match="distinct"):
        make_plane_wave_dpp_sampler(
            modes_wavevectors=np.zeros((3, 2)), box_length=L_BOX, n_up=2, n_down=0
        )
    sampler = make(n_up=2, n_down=1)
    with pytest.raises(ValueError, match="occ"):
        sampler(jax.random.key(0), jnp.arange(2))
    with pytest.raises(ValueError, match="wavevectors"):
        sample_plane_wave_dpp(jax.random.key(0), jnp.zeros((3,)), L_BOX)


@pytest.mark.slow
def test_structure_factor_in_3d_with_33_electrons():
    spectrum = plane_wave_spectrum(dim=3, emax=6, box_length=L_BOX, twist=(0.1, 0.2, 0.3))
    occ = np.r_[0:30, 31, 35, 40]  # holes and particles above the 30 lowest
    sampler = make_plane_wave_dpp_sampler(
        modes_wavevectors=spectrum.wavevectors, box_length=L_BOX, n_up=33, n_down=0
    )
    batch = 2000
    keys = jax.random.split(jax.random.key(5), batch)
    x = jax.jit(lambda keys: jax.lax.map(lambda key: sampler(key, jnp.asarray(occ)), keys))(keys)
    x = x.position
    q = reciprocal_lattice(box_length=L_BOX, dim=3, max_norm2=3)
    q_integers = np.rint(q * L_BOX / (2 * np.pi)).astype(int)
    values = np.asarray(jax.jit(jax.vmap(lambda x: structure_factor(x, q, n_up=33)))(x))
    exact = plane_wave_structure_factor(occ[None], spectrum.quantum_numbers, q_integers, n_up=33)
    stderr = values.std(0) / math.sqrt(batch)
    _assert_within(values.mean(0), stderr, exact[0], max_stderr=0.03)
    assert np.max(np.abs(exact[0] - 1) / stderr) > 10 * K_SIGMA

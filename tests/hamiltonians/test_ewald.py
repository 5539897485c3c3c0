"""Tests of the Ewald energy of the uniform electron gas (2D and 3D, 1/r)."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.ewald import madelung_constant, make_ewald_potential

# Literature values: simple cubic (3D) and square (2D) lattices of unit charges in a
# neutralizing background, E = madelung / (2 L) for one charge per box of side L.
MADELUNG = {3: -2.8372974794806, 2: -3.9002649200020}
RTOL = 1e-10


def _positions(key, n, dim, box_length, batch=None):
    shape = (n, dim) if batch is None else (batch, n, dim)
    return jax.random.uniform(key, shape, maxval=box_length)


@functools.cache
def _batched(dim, box_length, **kwargs):
    """Jitted (batch, n, dim) -> (batch,) energy, cached so that it compiles once."""
    energy = make_ewald_potential(dim=dim, box_length=box_length, **kwargs)
    return jax.jit(jax.vmap(energy))


@pytest.mark.parametrize("dim", [2, 3])
def test_madelung_constant_matches_literature(dim):
    # The literature values carry 13 decimals, i.e. ~3e-14 relative.
    np.testing.assert_allclose(madelung_constant(dim), MADELUNG[dim], rtol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("box_length", [0.7, 1.0, 3.3])
def test_single_electron_energy_is_madelung_over_2l(key, dim, box_length):
    x = _positions(key, 1, dim, box_length, batch=3)
    expected = MADELUNG[dim] / (2.0 * box_length)
    np.testing.assert_allclose(_batched(dim, box_length)(x), expected, rtol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_independent_of_alpha_and_cutoffs(key, dim):
    box_length = 2.3
    x = _positions(key, 7, dim, box_length, batch=3)
    reference = _batched(dim, box_length)(x)
    cases = [(2.5, 1.0), (2.5, 1.25), (5.0, 1.0), (12.0, 1.0), (12.0, 1.25)]
    for kappa, widen in cases:
        # widen > 1 pushes both cutoffs beyond their defaults 5.6/alpha, 11.2 alpha.
        alpha = kappa / box_length
        energy = _batched(
            dim,
            box_length,
            alpha=alpha,
            real_cutoff=widen * 5.6 / alpha,
            k_cutoff=widen * 11.2 * alpha,
        )
        np.testing.assert_allclose(
            energy(x), reference, rtol=RTOL, err_msg=f"{kappa=}, {widen=}"
        )


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("n", [2, 7])
def test_translation_image_and_permutation_invariance(dim, n):
    box_length, n_seeds = 1.9, 3
    configurations = []
    for seed in range(n_seeds):
        key_x, key_shift, key_particle, key_perm = jax.random.split(
            jax.random.key(seed), 4
        )
        x = _positions(key_x, n, dim, box_length)
        shift = jax.random.normal(key_shift, (dim,)) * box_length
        particle = int(jax.random.randint(key_particle, (), 0, n))
        moved = [
            x.at[particle, axis].add(multiple * box_length)
            for axis, multiple in itertools.product(range(dim), [1, -2])
        ]
        permuted = x[jax.random.permutation(key_perm, n)]
        configurations.append(jnp.stack([x, x + shift, permuted, *moved]))
    energies = _batched(dim, box_length)(jnp.concatenate(configurations))
    energies = np.asarray(energies).reshape(n_seeds, -1)
    expected = np.repeat(energies[:, :1], energies.shape[1], axis=1)
    np.testing.assert_allclose(energies, expected, rtol=RTOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_scaling_with_box(key, dim):
    box_length = 2.3
    x = _positions(key, 7, dim, box_length, batch=3)
    reference = _batched(dim, box_length)(x)
    for scale in [0.5, 2.7]:
        scaled = _batched(dim, scale * box_length)(scale * x)
        np.testing.assert_allclose(scaled, reference / scale, rtol=RTOL)


def _neville_at_zero(h, values):
    """Values at h = 0 of the polynomials through the first 2, 3, ... points."""
    table = list(values)
    estimates = []
    for order in range(1, len(h)):
        table = [
            (h[i + order] * table[i] - h[i] * table[i + 1]) / (h[i + order] - h[i])
            for i in range(len(table) - 1)
        ]
        estimates.append(table[0])
    return estimates


@functools.cache
def _lattice(dim, box_length, radius):
    """Lattice vectors nL with |n L| <= radius + L, shape (m, dim)."""
    reach = radius / box_length + 1.0
    axis = np.arange(-int(reach), int(reach) + 1, dtype=np.float64)
    grid = np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), -1).reshape(-1, dim)
    grid = grid[np.linalg.norm(grid, axis=1) <= reach]
    return box_length * grid


def _direct_two_electron_energy(dim, box_length, separation):
    """Return E(2 electrons) from damped lattice sums, and its extrapolation error.

    NumPy only, no Ewald splitting. With f(r) = exp(-eps r)/r, Poisson summation gives
      sum_n f(r + nL) - (1/V) int f = (1/V) sum_{k != 0} f_hat(k) exp(i k.r),
    f_hat = 4 pi / (k^2 + eps^2) (3D) or 2 pi / sqrt(k^2 + eps^2) (2D), so the pair sum
    and the self sum (after removing its linear term eps = lim_{r->0} 1/r - f(r))
    approach the undamped energy as power series in eps^2 (radius of convergence
    (2 pi / L)^2). We extrapolate in h = eps^2 (Neville) from eps L = 1, 1.25, ...,
    2.75; the sums stop at eps R = 42, where the tails are below 1e-14 relative.
    """
    eps = np.arange(1.0, 2.8, 0.25) / box_length
    radius = 42.0 / eps.min()
    grid = _lattice(dim, box_length, radius)
    self_distance = np.linalg.norm(grid, axis=1)
    self_distance = self_distance[(self_distance > 0) & (self_distance <= radius)]
    assert np.linalg.norm(separation) <= box_length  # all images within reach
    pair_distance = np.linalg.norm(grid + separation, axis=1)
    pair_distance = pair_distance[pair_distance <= radius]
    volume = box_length**dim
    values = []
    for e in eps:
        background = (2.0 * np.pi / e if dim == 2 else 4.0 * np.pi / e**2) / volume
        self_part = np.sum(np.exp(-e * self_distance) / self_distance) - background - e
        pair_part = np.sum(np.exp(-e * pair_distance) / pair_distance) - background
        values.append(self_part + pair_part)
    estimates = _neville_at_zero(eps**2, values)
    return estimates[-1], abs(estimates[-1] - estimates[-2])


@pytest.mark.parametrize("dim", [2, 3])
def test_two_electrons_against_damped_direct_sum(dim):
    box_length = 1.7
    separations = [(0.31, -0.52, 0.17), (0.05, 0.45, -0.38), (0.5, 0.5, 0.5)]
    separations = np.asarray(separations)[:, :dim] * box_length
    x = jnp.stack([jnp.zeros_like(separations), separations], axis=1)
    ewald = _batched(dim, box_length)(x)
    for r, e in zip(separations, ewald, strict=True):
        direct, error = _direct_two_electron_energy(dim, box_length, r)
        # The last Neville correction estimates the error of the previous order and
        # bounds that of the last one (about 7x smaller where we checked against a
        # higher order). It must be small for the comparison to mean something.
        assert error < 1e-8 * abs(direct), f"extrapolation too poor: {error:.1e}"
        assert abs(float(e) - direct) < error, f"{e} vs {direct} +- {error:.1e}"


@pytest.mark.parametrize("dim", [2, 3])
def test_dtype_is_preserved(key, dim):
    energy = make_ewald_potential(dim=dim, box_length=1.5)
    x64 = _positions(key, 5, dim, 1.5, batch=2)
    x32 = x64.astype(jnp.float32)
    e64, e32 = _batched(dim, 1.5)(x64), _batched(dim, 1.5)(x32)
    assert e64.dtype == jnp.float64
    assert e32.dtype == jnp.float32
    assert jax.eval_shape(energy, x32[0]).dtype == jnp.float32
    assert jax.eval_shape(jax.grad(energy), x32[0]).dtype == jnp.float32
    assert jax.eval_shape(jax.grad(energy), x64[0]).dtype == jnp.float64
    np.testing.assert_allclose(e32, e64, rtol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
def test_shapes(key, dim):
    energy = make_ewald_potential(dim=dim, box_length=1.5)
    x = _positions(key, 5, dim, 1.5, batch=2)
    chex.assert_shape(jax.eval_shape(energy, x[0]), ())
    chex.assert_shape(_batched(dim, 1.5)(x), (2,))


@pytest.mark.parametrize("dim", [2, 3])
def test_gradient_is_finite_and_matches_finite_differences(key, dim):
    box_length, n = 1.5, 6
    x = _positions(key, n, dim, box_length)
    energy = make_ewald_potential(dim=dim, box_length=box_length)
    force = jax.jit(jax.grad(energy))(x)
    assert bool(jnp.all(jnp.isfinite(force)))
    # Translation invariance: the forces sum to zero.
    np.testing.assert_allclose(force.sum(axis=0), 0.0, atol=1e-10)
    # Central differences, step 1e-5: truncation ~1e-10 |E'''|, rounding ~1e-11 |E|.
    step, entries = 1e-5, [(0, 0), (n - 1, dim - 1)]
    displaced = [x.at[i, d].add(sign * step) for i, d in entries for sign in (1, -1)]
    energies = _batched(dim, box_length)(jnp.stack(displaced)).reshape(-1, 2)
    finite_difference = (energies[:, 0] - energies[:, 1]) / (2 * step)
    exact = jnp.stack([force[i, d] for i, d in entries])
    np.testing.assert_allclose(exact, finite_difference, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dim", [2, 3])
def test_single_electron_gradient_vanishes(key, dim):
    energy = make_ewald_potential(dim=dim, box_length=1.2)
    force = jax.jit(jax.grad(energy))(_positions(key, 1, dim, 1.2))
    np.testing.assert_allclose(force, 0.0, atol=1e-12)


def test_coupling_scales_energy(key):
    x = _positions(key, 4, 2, 1.0, batch=2)
    base = _batched(2, 1.0)(x)
    scaled = _batched(2, 1.0, coupling=0.3)(x)
    np.testing.assert_allclose(scaled, 0.3 * base, rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(dim=1, box_length=1.0), "dim"),
        (dict(dim=4, box_length=1.0), "dim"),
        (dict(dim=3, box_length=0.0), "box_length"),
        (dict(dim=3, box_length=-1.0), "box_length"),
        (dict(dim=2, box_length=1.0, alpha=0.0), "alpha"),
        (dict(dim=2, box_length=1.0, alpha=-2.0), "alpha"),
        (dict(dim=2, box_length=1.0, real_cutoff=0.0), "real_cutoff"),
        (dict(dim=3, box_length=1.0, k_cutoff=-1.0), "k_cutoff"),
        (dict(dim=3, box_length=1.0, coupling=float("nan")), "coupling"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_ewald_potential(**kwargs)


def test_bad_configuration_shape_raises():
    energy = make_ewald_potential(dim=3, box_length=1.0)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        energy(jnp.zeros((4, 2)))


def test_madelung_constant_rejects_bad_dim():
    with pytest.raises(ValueError, match="dim"):
        madelung_constant(1)

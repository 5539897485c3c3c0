import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.harmonic import make_quantum_dot_potential
from fermiflow.hamiltonians.kinetic import (
    chunked_vmap,
    make_hutchinson_kinetic_energy,
    make_kinetic_energy,
    make_local_energy,
)
from fermiflow.hamiltonians.spectrum import plane_wave_spectrum

METHODS = ("forward_laplacian", "jvp_loop")
# The exact eigenstate tests run the default method in the fast suite; the jvp loop
# is checked against it (and jax.hessian) on random functions there, and on the
# eigenstates in the slow suite.
EIGENSTATE_METHODS = (
    "forward_laplacian",
    pytest.param("jvp_loop", marks=pytest.mark.slow),
)


# ---------------------------------------------------------------- test functions
class Draws:
    """Standard normals and uniforms from one jax.random call each, handed out in order.

    Every eager jax.random call compiles once per shape; fixed-size tables keep that
    to one compile per session instead of one per parameter shape.
    """

    size = 4096

    def __init__(self, key):
        key_normal, key_uniform = jax.random.split(key)
        self._tables = {
            "normal": np.asarray(jax.random.normal(key_normal, (self.size,))),
            "uniform": np.asarray(jax.random.uniform(key_uniform, (self.size,))),
        }
        self._used = {"normal": 0, "uniform": 0}

    def _take(self, kind, shape):
        start, count = self._used[kind], math.prod(shape)
        assert start + count <= self.size, "enlarge Draws.size"
        self._used[kind] += count
        return self._tables[kind][start : start + count].reshape(shape)

    def normal(self, shape):
        return self._take("normal", shape)

    def uniform(self, shape):
        return self._take("uniform", shape)


def init_mlp(draws, n_in, width=8, complex_weights=False, dtype=np.float64):
    def weight(shape):
        w = draws.normal(shape) / math.sqrt(shape[0])
        if complex_weights:
            w = w + 1j * draws.normal(shape) / math.sqrt(shape[0])
        return w

    params = {
        "w1": weight((n_in, width)),
        "b1": draws.normal((width,)),
        "w2": weight((width, 1)),
        "w0": draws.normal(()),
    }
    real, cplx = np.dtype(dtype), np.result_type(dtype, np.complex64)
    return {
        k: jnp.asarray(v, cplx if np.iscomplexobj(v) else real)
        for k, v in params.items()
    }


def mlp_log_psi(params, x):
    """Real or complex two-layer tanh MLP of the flattened x, plus a Gaussian."""
    h = jnp.tanh(x.reshape(-1) @ params["w1"] + params["b1"])
    return (h @ params["w2"])[0] - 0.1 * params["w0"] ** 2 * jnp.sum(x**2)


def init_waves(draws, n_terms, n, dim):
    return {
        "k": jnp.asarray(draws.normal((n_terms, n, dim))),
        "mu": jnp.asarray(draws.normal((n_terms, n, dim))),
        "c": jnp.asarray(draws.normal((n_terms, 2))),
    }


def waves_log_psi(params, x):
    """log sum_a c_a exp(i k_a . x - |x - mu_a|^2 / 2): complex wave packets."""
    exponent = 1j * jnp.sum(params["k"] * x, axis=(1, 2)) - 0.5 * jnp.sum(
        (x - params["mu"]) ** 2, axis=(1, 2)
    )
    c = params["c"][:, 0] + 1j * params["c"][:, 1]
    return jnp.log(jnp.sum(c * jnp.exp(exponent)))


def hessian_parts(log_psi, params, x):
    """Independent reference: (tr H, gradient) from jax.hessian of Re and Im."""
    flat = x.reshape(-1)

    def part(take):
        f = lambda y: take(log_psi(params, y.reshape(x.shape)))  # noqa: E731
        return jnp.trace(jax.hessian(f)(flat)), jax.grad(f)(flat)

    lap_re, g_re = part(jnp.real)
    if not jnp.iscomplexobj(log_psi(params, x)):
        return lap_re, g_re
    lap_im, g_im = part(jnp.imag)
    return lap_re + 1j * lap_im, g_re + 1j * g_im


def hessian_kinetic(log_psi, params, x):
    laplacian, gradient = hessian_parts(log_psi, params, x)
    return -0.5 * (laplacian + jnp.sum(gradient * gradient))


CASES = {
    "real_mlp": (mlp_log_psi, lambda draws, n, dim: init_mlp(draws, n * dim)),
    "complex_mlp": (
        mlp_log_psi,
        lambda draws, n, dim: init_mlp(draws, n * dim, complex_weights=True),
    ),
    "complex_waves": (
        waves_log_psi,
        lambda draws, n, dim: init_waves(draws, 3, n, dim),
    ),
}


def function_case(case, key, n, dim, n_seeds=None):
    """(log_psi, params) of a named random test function; stacked over n_seeds."""
    log_psi, init = CASES[case]
    if n_seeds is None:
        return log_psi, init(Draws(key), n, dim)
    stack = [init(Draws(jax.random.fold_in(key, s)), n, dim) for s in range(n_seeds)]
    return log_psi, jax.tree.map(lambda *a: jnp.asarray(np.stack(a)), *stack)


# ----------------------------------------------------------- exact agreement
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("case", ["real_mlp", "complex_mlp", "complex_waves"])
def test_forward_laplacian_jvp_loop_and_hessian_agree(key, dim, case):
    n, n_seeds = 3, 4
    # A different random function and configuration for each seed, vmapped.
    log_psi, params = function_case(case, key, n, dim, n_seeds)
    x = jnp.asarray(Draws(jax.random.fold_in(key, 1000)).normal((n_seeds, n, dim)))
    reference = jax.jit(jax.vmap(lambda p, y: hessian_kinetic(log_psi, p, y)))(
        params, x
    )
    assert jnp.all(jnp.isfinite(reference)) and jnp.all(abs(reference) > 1e-3)
    assert jnp.iscomplexobj(reference) == (case != "real_mlp")
    for method in METHODS:
        kinetic = jax.vmap(make_kinetic_energy(log_psi, method=method))
        np.testing.assert_allclose(
            jax.jit(kinetic)(params, x), reference, rtol=1e-10, err_msg=method
        )


def test_forward_laplacian_with_sparsity_matches(key):
    log_psi, params = function_case("complex_waves", key, 4, 2)
    x = jnp.asarray(Draws(jax.random.fold_in(key, 1000)).normal((4, 2)))
    dense = jax.jit(make_kinetic_energy(log_psi))(params, x)
    sparse = jax.jit(make_kinetic_energy(log_psi, sparsity_threshold=0.6))(params, x)
    np.testing.assert_allclose(sparse, dense, rtol=1e-12)


def test_parameter_gradients_agree_between_methods(key):
    log_psi, params = function_case("complex_mlp", key, 3, 2)
    x = jnp.asarray(Draws(jax.random.fold_in(key, 1000)).normal((3, 2)))

    def grad_of(method):
        kinetic = make_kinetic_energy(log_psi, method=method)
        return jax.jit(jax.grad(lambda p: kinetic(p, x).real))(params)

    chex.assert_trees_all_close(
        grad_of("forward_laplacian"), grad_of("jvp_loop"), rtol=1e-10
    )


# -------------------------------------------------------------- Hutchinson
def separable_log_psi(params, x):
    """Sum of one-coordinate terms: diagonal (complex) Hessian."""
    a, b = params
    y = x.reshape(-1)
    return jnp.sum(a * jnp.sin(y) - 0.5 * y**2 + 1j * b * y**3)


def test_hutchinson_exact_for_diagonal_hessian(key):
    params = (jnp.linspace(0.5, 1.5, 6), jnp.linspace(-1.0, 1.0, 6))
    x = jnp.asarray(Draws(key).normal((3, 2)))
    exact = jax.jit(hessian_kinetic, static_argnums=0)(separable_log_psi, params, x)
    kinetic = make_hutchinson_kinetic_energy(separable_log_psi, n_probes=3)
    keys = jax.random.split(key, 4)
    values = jax.jit(jax.vmap(kinetic, (0, None, None)))(keys, params, x)
    np.testing.assert_allclose(values, exact, rtol=1e-10)


@pytest.mark.parametrize(
    "distribution", ["rademacher", pytest.param("gaussian", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("case", ["real_mlp", "complex_waves"])
def test_hutchinson_unbiased(key, case, distribution):
    n, dim, n_samples = 3, 2, 10000
    log_psi, params = function_case(case, key, n, dim)
    x = jnp.asarray(Draws(jax.random.fold_in(key, 1000)).normal((n, dim)))
    laplacian, gradient = jax.jit(hessian_parts, static_argnums=0)(log_psi, params, x)
    exact = complex(-0.5 * (laplacian + jnp.sum(gradient * gradient)))
    kinetic = make_hutchinson_kinetic_energy(log_psi, distribution=distribution)
    keys = jax.random.split(jax.random.fold_in(key, 8), n_samples)
    samples = jax.jit(jax.vmap(kinetic, in_axes=(0, None, None)))(keys, params, x)
    parts = (np.real, np.imag) if case.startswith("complex") else (np.real,)
    for take in parts:
        values = take(np.asarray(samples))
        stderr = values.std(ddof=1) / np.sqrt(n_samples)
        # The probes estimate only the Laplacian term; gate against its size.
        max_stderr = 0.05 * abs(0.5 * complex(laplacian))
        assert 0 < stderr < max_stderr, f"stderr={stderr:.2e} vs {max_stderr:.2e}"
        dev = abs(values.mean() - take(exact))
        assert dev < 5 * stderr, f"{values.mean()} vs {take(exact)}: {dev / stderr:.1f}"


# ---------------------------------------------------------- exact eigenstates
def make_plane_wave_determinant(wavevectors):
    k = jnp.asarray(wavevectors)

    def log_psi(params, x):
        sign, log_abs = jnp.linalg.slogdet(jnp.exp(1j * x @ k.T))
        return log_abs + 1j * jnp.angle(sign)

    return log_psi


@pytest.mark.parametrize("method", EIGENSTATE_METHODS)
@pytest.mark.parametrize("dim, n", [(2, 5), (3, 7)])
def test_plane_wave_determinant_kinetic_energy(key, method, dim, n):
    box_length = 2.5
    spectrum = plane_wave_spectrum(
        dim=dim, emax=4, box_length=box_length, twist=(0.25,) * dim
    )
    log_psi = make_plane_wave_determinant(spectrum.wavevectors[:n])
    exact = spectrum.energies[:n].sum()
    x = box_length * jnp.asarray(Draws(key).uniform((16, n, dim)))
    kinetic = jax.jit(jax.vmap(make_kinetic_energy(log_psi, method=method), (None, 0)))
    values = kinetic(None, x)
    np.testing.assert_allclose(values.real, exact, rtol=1e-10)
    np.testing.assert_allclose(values.imag, 0.0, atol=1e-10 * exact)


def oscillator_orbitals_log_psi(omega):
    def log_psi(params, x):
        gaussian = jnp.exp(-0.5 * omega * jnp.sum(x**2, axis=-1))
        orbitals = jnp.stack([gaussian, jnp.sqrt(omega) * x[:, 0] * gaussian], -1)
        return jnp.linalg.slogdet(orbitals)[1]

    return log_psi


@pytest.mark.parametrize("method", EIGENSTATE_METHODS)
@pytest.mark.parametrize("dim, n, omega", [(2, 3, 1.0), (3, 4, 0.7)])
def test_oscillator_ground_state_local_energy(key, method, dim, n, omega):
    log_psi = lambda params, x: -0.5 * omega * jnp.sum(x**2)  # noqa: E731
    potential = make_quantum_dot_potential(dim=dim, omega=omega, coupling=0.0)
    local_energy = make_local_energy(log_psi, potential, method=method)
    x = jnp.asarray(Draws(key).normal((16, n, dim)))
    values = jax.jit(jax.vmap(local_energy, (None, 0)))(None, x)
    np.testing.assert_allclose(values, n * dim * omega / 2, rtol=1e-10)


@pytest.mark.parametrize("method", EIGENSTATE_METHODS)
def test_two_fermion_oscillator_determinant(key, method):
    omega = 1.3
    potential = make_quantum_dot_potential(dim=2, omega=omega, coupling=0.0)
    local_energy = make_local_energy(
        oscillator_orbitals_log_psi(omega), potential, method=method
    )
    x = jnp.asarray(Draws(key).normal((16, 2, 2)))
    values = jax.jit(jax.vmap(local_energy, (None, 0)))(None, x)
    np.testing.assert_allclose(values, omega * (1 + 2), rtol=1e-10)


# ---------------------------------------------------------------- batching
@pytest.mark.parametrize("batch, chunk_size", [(6, 3), (7, 3), (2, 5), (7, None)])
def test_chunked_vmap_equals_vmap(key, batch, chunk_size):
    log_psi, params = function_case("complex_mlp", key, 3, 2)
    x = jnp.asarray(Draws(jax.random.fold_in(key, 1000)).normal((batch, 3, 2)))
    expected = jax.jit(jax.vmap(log_psi, (None, 0)))(params, x)
    values = jax.jit(chunked_vmap(log_psi, chunk_size=chunk_size))(params, x)
    chex.assert_shape(values, (batch,))
    np.testing.assert_allclose(values, expected, rtol=1e-12)


# ------------------------------------------------------------ dtype and shape
def public_functions(log_psi):
    potential = lambda x: 0.5 * jnp.sum(x**2)  # noqa: E731
    hutchinson = make_hutchinson_kinetic_energy(log_psi, n_probes=2)
    return {
        "forward_laplacian": make_kinetic_energy(log_psi),
        "jvp_loop": make_kinetic_energy(log_psi, method="jvp_loop"),
        "hutchinson": lambda p, x: hutchinson(jax.random.key(0), p, x),
        "local_energy": make_local_energy(log_psi, potential),
    }


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("complex_weights", [False, True])
def test_dtype_and_shape(key, dtype, complex_weights):
    # Output dtypes and shapes are fixed at trace time: eval_shape, no compiles.
    params = init_mlp(Draws(key), 6, complex_weights=complex_weights, dtype=dtype)
    x = jax.ShapeDtypeStruct((4, 3, 2), dtype)
    x_one = jax.ShapeDtypeStruct((3, 2), dtype)
    expected = jnp.result_type(dtype, jnp.complex64 if complex_weights else dtype)
    for name, fn in public_functions(mlp_log_psi).items():
        value = jax.eval_shape(fn, params, x_one)
        assert value.shape == () and value.dtype == expected, name
        batched = jax.eval_shape(chunked_vmap(fn, chunk_size=3), params, x)
        assert batched.shape == (4,) and batched.dtype == expected, name


def test_single_precision_agrees_with_double(key):
    log_psi, params = function_case("complex_waves", key, 3, 2)
    x = jnp.asarray(Draws(key).normal((3, 2)))
    kinetic = jax.jit(make_kinetic_energy(log_psi))
    double = kinetic(params, x)
    params32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    single = kinetic(params32, x.astype(jnp.float32))
    assert double.dtype == jnp.complex128 and single.dtype == jnp.complex64
    np.testing.assert_allclose(single, double, rtol=1e-4)


def test_bad_input_raises():
    log_psi = lambda params, x: -jnp.sum(x**2)  # noqa: E731
    with pytest.raises(ValueError, match="method"):
        make_kinetic_energy(log_psi, method="hessian")
    with pytest.raises(ValueError, match="sparsity_threshold"):
        make_kinetic_energy(log_psi, sparsity_threshold=-1)
    with pytest.raises(ValueError, match="n_probes"):
        make_hutchinson_kinetic_energy(log_psi, n_probes=0)
    with pytest.raises(ValueError, match="distribution"):
        make_hutchinson_kinetic_energy(log_psi, distribution="uniform")
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_vmap(make_kinetic_energy(log_psi), chunk_size=0)
    for method in METHODS:
        with pytest.raises(ValueError, match=r"\(n, dim\)"):
            make_kinetic_energy(log_psi, method=method)(None, jnp.ones(6))

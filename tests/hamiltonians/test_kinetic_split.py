"""Split kinetic energy: exact folx Laplacian of log D_K(T(x)), Hutchinson for log det."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.kinetic import make_kinetic_energy
from fermiflow.hamiltonians.kinetic_split import (
    make_flow_kinetic_energy,
    make_split_kinetic_energy,
)
from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi

N = 3
L_BOX = float(np.sqrt(np.pi * N))
K_SIGMA = 5.0
N_KEYS = 2000  # independent one-probe estimates per configuration
A = np.array([[1.1, 0.2], [-0.1, 0.9]])  # a linear flow zeta_i = A x_i


def _linear_flow(params, x):
    del params
    return x @ jnp.asarray(A.T, x.dtype), jnp.asarray(N * np.log(np.linalg.det(A)), x.dtype)


@functools.cache
def _system(geometry: str, flow_name: str, dtype=jnp.float64):
    """Return (log_psi, log_slater_k, flow_apply, params, occ, x: (3, n, 2))."""
    key = jax.random.key(11)
    if geometry == "box":
        box_length = L_BOX
        spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L_BOX, twist=(0.25, 0.25))
        orbitals = make_plane_wave_orbitals(spectrum, L_BOX)
        x = jax.random.uniform(key, (3, N, 2), dtype) * L_BOX
        occ = jnp.asarray([0, 2, 3])
    else:
        box_length = None
        spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
        orbitals = make_oscillator_orbitals(spectrum, omega=1.0)
        x = jax.random.normal(key, (3, N, 2), dtype)
        occ = jnp.asarray([0, 1, 4])
    params = None
    if flow_name == "backflow":
        flow = make_backflow(n_up=N, n_down=0, dim=2, box_length=box_length, init_scale=0.1)
        flow_apply = flow.apply
        params = flow.init(jax.random.key(4), x[0])
    elif flow_name == "linear":
        flow_apply = _linear_flow
    else:
        flow_apply = make_identity_flow().apply
    log_psi = make_log_psi(orbitals=orbitals, flow_apply=flow_apply, n_up=N, n_down=0)
    bare = make_log_psi(orbitals=orbitals, flow_apply=make_identity_flow().apply, n_up=N, n_down=0)
    return log_psi, lambda o, z: bare(None, o, z), flow_apply, params, occ, x


def _exact_and_split(geometry, flow_name, n_probes=1):
    log_psi, log_slater_k, flow_apply, params, occ, x = _system(geometry, flow_name)
    exact = make_kinetic_energy(lambda p, y: log_psi(p, occ, y))
    split = make_flow_kinetic_energy(log_slater_k, flow_apply, n_probes=n_probes)
    return (
        jax.jit(jax.vmap(exact, in_axes=(None, 0)))(params, x),
        jax.jit(
            jax.vmap(jax.vmap(split, (0, None, None, None)), (None, None, None, 0)),
        ),
        params,
        occ,
        x,
    )


@pytest.mark.parametrize(
    ("geometry", "flow_name"),
    [
        ("box", "identity"),
        ("trap", "linear"),
        pytest.param("trap", "identity", marks=pytest.mark.slow),
        pytest.param("box", "linear", marks=pytest.mark.slow),
    ],
)
def test_constant_log_det_is_exact_for_every_key(geometry, flow_name):
    # f2 = log|det A| / 2 is constant: the estimate has zero variance.
    exact, split, params, occ, x = _exact_and_split(geometry, flow_name)
    values = split(jax.random.split(jax.random.key(0), 6), params, occ, x)  # (3, 6)
    assert values.shape == (3, 6) and values.dtype == jnp.complex128
    scale = float(jnp.max(jnp.abs(exact)))
    np.testing.assert_allclose(
        values, jnp.broadcast_to(exact[:, None], values.shape), rtol=1e-12, atol=1e-12 * scale
    )


@pytest.mark.slow
@pytest.mark.parametrize("geometry", ["box", "trap"])
def test_backflow_mean_over_probes_matches_forward_laplacian(geometry):
    # Box: complex plane-wave determinant; trap: real oscillator determinant.
    exact, split, params, occ, x = _exact_and_split(geometry, "backflow")
    values = split(jax.random.split(jax.random.key(1), N_KEYS), params, occ, x)
    flow_apply = _system(geometry, "backflow")[2]

    def lap_f2(y):
        return jnp.trace(jax.hessian(lambda v: 0.5 * flow_apply(params, v.reshape(N, 2))[1])(y))

    laplacians = jax.jit(jax.vmap(lap_f2))(x.reshape(x.shape[0], -1))
    for b in range(x.shape[0]):
        real = np.asarray(values[b].real)
        mean, sigma = real.mean(), real.std(ddof=1) / np.sqrt(N_KEYS)
        assert sigma > 0  # really stochastic: log det of the backflow is not quadratic
        assert abs(mean - float(exact[b].real)) < K_SIGMA * sigma, (b, mean, exact[b], sigma)
        # Only lap f2 (real) is estimated: the imaginary part is exact for every key.
        np.testing.assert_allclose(values[b].imag, exact[b].imag, rtol=0, atol=1e-10)
        # Power: dropping -1/2 lap f2 would be detected at > 2 K sigma.
        assert 0.5 * abs(float(laplacians[b])) > 2 * K_SIGMA * sigma, (laplacians[b], sigma)


def test_generic_real_parts_with_gaussian_probes_match_hessian():
    def f1(params, x):
        return -params * jnp.sum(x**2) + jnp.sin(x[0, 0] * x[1, 1])

    def f2(params, x):
        return jnp.sum(jnp.cos(x @ x.T)) * 0.1

    def total(y):
        x = y.reshape(2, 2)
        return f1(0.7, x) + f2(0.7, x)

    def reference(y):
        return -0.5 * (jnp.trace(jax.hessian(total)(y)) + jnp.sum(jax.grad(total)(y) ** 2))

    x = jnp.asarray([[0.3, -0.4], [0.8, 0.1]])
    exact = jax.jit(reference)(x.reshape(-1))
    kinetic = make_split_kinetic_energy(f1, f2, n_probes=4, distribution="gaussian")
    values = jax.jit(jax.vmap(kinetic, (0, None, None)))(
        jax.random.split(jax.random.key(2), N_KEYS), 0.7, x
    )
    assert values.dtype == jnp.float64 and values.shape == (N_KEYS,)
    mean, sigma = float(values.mean()), float(values.std(ddof=1)) / np.sqrt(N_KEYS)
    assert 0 < sigma < 0.01 * abs(float(exact))
    assert abs(mean - float(exact)) < K_SIGMA * sigma, (mean, exact, sigma)


def test_float32_stays_float32():
    _, log_slater_k, _, _, occ, x = _system("box", "linear")
    x32 = x[0].astype(jnp.float32)
    split = make_flow_kinetic_energy(log_slater_k, _linear_flow, n_probes=2)
    value = jax.jit(split)(jax.random.key(0), None, occ, x32)
    assert value.shape == () and value.dtype == jnp.complex64
    generic = make_split_kinetic_energy(
        lambda p, y: -jnp.sum(y**2), lambda p, y: jnp.sum(jnp.cos(y)), n_probes=3
    )
    value = jax.jit(generic)(jax.random.key(0), None, x32)
    assert value.shape == () and value.dtype == jnp.float32
    # cos has a diagonal Hessian: Rademacher probes give it exactly.
    gradient = -2 * x32 - jnp.sin(x32)
    expected = x32.size + 0.5 * jnp.sum(jnp.cos(x32)) - 0.5 * jnp.sum(gradient**2)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_bad_arguments_raise():
    f = lambda params, x: jnp.sum(x)  # noqa: E731
    with pytest.raises(ValueError, match="n_probes"):
        make_split_kinetic_energy(f, f, n_probes=0)
    with pytest.raises(ValueError, match="distribution"):
        make_split_kinetic_energy(f, f, distribution="uniform")
    with pytest.raises(ValueError, match="sparsity_threshold"):
        make_split_kinetic_energy(f, f, sparsity_threshold=-1)
    kinetic = make_split_kinetic_energy(f, f)
    with pytest.raises(ValueError, match="ONE configuration"):
        kinetic(jax.random.key(0), None, jnp.zeros((2, 3, 2)))

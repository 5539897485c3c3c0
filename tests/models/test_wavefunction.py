"""Tests for fermiflow.models.wavefunction: orthonormality, antisymmetry, structure.

<Psi_K|Psi_K'> = delta_KK' must hold for ANY bijective flow; it is checked by
quadrature with flows far from the identity (residual scales raised, displacement and
log-det asserted), for two particles in a 2D periodic box and in a 1D trap. Each
quadrature is also run with the identity flow (control) and with the 1/2 log|det|
term dropped (must fail visibly), so the test cannot pass for a trivial reason.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.spectrum import oscillator_spectrum, plane_wave_spectrum
from fermiflow.models.backflow import make_backflow
from fermiflow.models.flow import make_identity_flow
from fermiflow.models.ode_flow import make_ode_flow
from fermiflow.models.orbitals import make_oscillator_orbitals, make_plane_wave_orbitals
from fermiflow.models.wavefunction import (
    closed_shell_occupation,
    make_log_psi,
    make_log_psi_fixed,
)

BOX_LENGTH, TWIST = 2.0, (0.13, -0.31)
BOX_SCALE = 0.5  # backflow residual scale: no fold on the grid, |log_det| up to 1.7
# Pairs of integer vectors n (k = 2 pi (n + twist) / L). Most pairs share their total
# momentum with another, so their overlaps are not zero by translation symmetry alone.
BOX_SETS = [
    ((1, 0), (0, 1)), ((0, 0), (1, 1)), ((1, 0), (-1, 0)),
    ((0, 1), (0, -1)), ((1, -1), (-1, 1)), ((0, 0), (1, 0)),
]  # fmt: skip
# Residual scales of the 1D trap flows: no fold (NaN log-det) on the quadrature domain
# |x_i| <= 11 (the backflow folds there from about 0.1 on).
TRAP_SCALE = {"backflow": 0.08, "ode": 0.2}
TRAP_SETS = {  # 1D oscillator modes; several pairs share a parity
    (2, 0): [[0, 1], [0, 3], [1, 2], [2, 3], [0, 2], [1, 3], [0, 4]],
    (1, 1): [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [2, 0], [3, 1]],
}
# The uncapped backflow (certify=False, no radial term), so that residual scales can
# drive it far from the identity; the certified cap is tested in test_certified_backflow.
FLOWS = {
    "backflow": functools.partial(make_backflow, certify=False, n_radial=0),
    "ode": make_ode_flow,
}


def _with_scales(params, value):
    """Set every learnable residual scale ('scale*' leaves) to value."""

    def set_scale(path, leaf):
        is_scale = str(path[-1].key).startswith("scale")
        return jnp.full_like(leaf, value) if is_scale else leaf

    return jax.tree_util.tree_map_with_path(set_scale, params)


@functools.cache
def _flow_and_init(kind, n_up, n_down, dim, box_length):
    flow = FLOWS[kind](n_up=n_up, n_down=n_down, dim=dim, box_length=box_length)
    return flow, jax.jit(flow.init)  # one compile beats op-by-op flax init


def _strong_flow(kind, n_up, n_down, dim, box_length, scale, seed=0):
    flow, init = _flow_and_init(kind, n_up, n_down, dim, box_length)
    params = init(jax.random.key(seed), jnp.zeros((n_up + n_down, dim)))
    return flow, _with_scales(params, scale)


def _overlaps(flow, params, orbitals, spins, occs, nodes, weights, inner):
    """Overlap matrices (K, K) of Psi_K by quadrature over nodes (points, n, dim).

    Returns them for the flow, for the identity flow and for the flow without its
    Jacobian factor, the overlaps <Psi_K^identity|Psi_K^flow> (K,) and flow
    diagnostics (inner: only nodes with all |x_i| < inner, where the density is not
    negligible).
    """
    log_psi, plain = (
        make_log_psi(orbitals=orbitals, flow_apply=apply, n_up=spins[0], n_down=spins[1])
        for apply in (flow.apply, make_identity_flow().apply)
    )

    def point(x):
        values = jnp.exp(jax.vmap(log_psi, (None, 0, None))(params, occs, x))
        zeta, log_det = flow.apply(params, x)
        mask = jnp.all(jnp.abs(x) < inner)
        return dict(
            flow=values,
            identity=jnp.exp(jax.vmap(plain, (None, 0, None))(None, occs, x)),
            no_jacobian=values * jnp.exp(-0.5 * log_det),  # the wrong normalization
            displacement=jnp.where(mask, jnp.abs(zeta - x).max(), 0),
            log_det=jnp.where(mask, jnp.abs(log_det), 0),
            nan=jnp.isnan(log_det),
        )

    v = jax.vmap(point)(nodes)
    gram = {
        name: jnp.einsum("p,pk,pl->kl", weights, v[name].conj(), v[name])
        for name in ("flow", "identity", "no_jacobian")
    }
    fidelity = jnp.einsum("p,pk,pk->k", weights, v["identity"].conj(), v["flow"])
    return gram | dict(fidelity=fidelity, displacement=v["displacement"].max(),
                       log_det=v["log_det"].max(), n_nan=v["nan"].sum())  # fmt: skip


def _integrate(run, params, nodes, weights, max_points=2**16):
    """Sum the quadrature of ``run`` (a jitted _overlaps) over equal chunks of nodes."""
    n = len(nodes)
    n_parts = next(d for d in range(1, n + 1) if n % d == 0 and n // d <= max_points)
    parts = [
        jax.tree.map(np.asarray, run(params, x, w))
        for x, w in zip(jnp.split(nodes, n_parts), jnp.split(weights, n_parts), strict=True)
    ]  # fmt: skip
    out = {k: sum(part[k] for part in parts) for k in parts[0]}
    out["fidelity"] = np.abs(out["fidelity"])
    for k in ("displacement", "log_det"):
        out[k] = max(part[k] for part in parts)
    return out


def _box_nodes(m_rel, m_com):
    """Periodic trapezoid nodes in (x1, r = x2 - x1), (m_com^2 m_rel^2, 2, 2).

    The shear (x1, x2) -> (x1, r) has unit Jacobian and keeps the integrand periodic,
    so this is a product trapezoid rule over the 4D torus. Translation equivariance of
    the flow makes the x1-dependence of conj(Psi_K) Psi_K' exactly exp(i (P' - P).x1),
    |P' - P| <= 2 pi / L per axis here, which m_com = 4 points integrate exactly (the
    slow test checks this against the full m^4 grid). r is offset by half a step so
    that x1 != x2: the flow's pair distance has a cone at r = 0 (NaN Jacobian there).
    """
    com = np.arange(m_com) * BOX_LENGTH / m_com
    rel = (np.arange(m_rel) + 0.5) * BOX_LENGTH / m_rel
    x1 = np.stack(np.meshgrid(com, com, indexing="ij"), -1).reshape(-1, 1, 1, 2)
    r = np.stack(np.meshgrid(rel, rel, indexing="ij"), -1).reshape(1, -1, 1, 2)
    nodes = np.concatenate([np.broadcast_to(x1, (m_com**2, m_rel**2, 1, 2)),
                            np.broadcast_to(x1 + r, (m_com**2, m_rel**2, 1, 2))], 2)  # fmt: skip
    nodes = nodes.reshape(-1, 2, 2)
    weight = (BOX_LENGTH / m_com) ** 2 * (BOX_LENGTH / m_rel) ** 2
    return jnp.asarray(nodes), jnp.full(len(nodes), weight)


@functools.cache
def _box_result(m_rel, m_com=4):
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=BOX_LENGTH, twist=TWIST)
    labels = [tuple(n) for n in spectrum.quantum_numbers.tolist()]
    occs = jnp.array([[labels.index(a), labels.index(b)] for a, b in BOX_SETS])
    flow, params = _strong_flow("backflow", 2, 0, 2, BOX_LENGTH, BOX_SCALE)
    nodes, weights = _box_nodes(m_rel, m_com)
    orbitals = make_plane_wave_orbitals(spectrum, BOX_LENGTH)
    run = jax.jit(lambda p, x, w: _overlaps(flow, p, orbitals, (2, 0), occs, x, w,
                                            inner=BOX_LENGTH + 1))  # fmt: skip
    return _integrate(run, params, nodes, weights)


def _trap_nodes(n_com, n_rel):
    """Nodes (n_com * 2 n_rel, 2, 1) and weights in R = (x1 + x2) / 2, r = x1 - x2.

    The flows use |x1 - x2|, so the integrand is analytic on either side of r = 0 but
    not across it: Gauss-Legendre on r in (0, 10) and (-10, 0) separately (spectral
    convergence), trapezoid in R on [-6, 6] (a Gaussian times analytic functions).
    Beyond the domain the integrand is < exp(-2 * 36) or ~exp(-10^2 / 2) 10^6.
    """
    com = np.linspace(-6.0, 6.0, n_com)
    w_com = np.full(n_com, com[1] - com[0])
    w_com[[0, -1]] /= 2
    t, w_t = np.polynomial.legendre.leggauss(n_rel)
    rel, w_rel = np.concatenate([5 * (t + 1), -5 * (t + 1)]), np.concatenate([5 * w_t] * 2)
    big_r, small_r = (a.ravel() for a in np.meshgrid(com, rel, indexing="ij"))
    nodes = np.stack([big_r + small_r / 2, big_r - small_r / 2], -1)[..., None]
    return jnp.asarray(nodes), jnp.asarray(np.outer(w_com, w_rel).ravel())


@functools.cache
def _trap_result(kind, spins, n_com=200, n_rel=90):
    spectrum = oscillator_spectrum(dim=1, n_shells=6, omega=1.0)
    flow, params = _strong_flow(kind, *spins, 1, None, TRAP_SCALE[kind])
    nodes, weights = _trap_nodes(n_com, n_rel)
    orbitals = make_oscillator_orbitals(spectrum, omega=1.0)
    occs = jnp.array(TRAP_SETS[spins])
    run = jax.jit(lambda p, x, w: _overlaps(flow, p, orbitals, spins, occs, x, w,
                                            inner=2.0))  # fmt: skip
    return _integrate(run, params, nodes, weights)


def _error(overlap):
    return float(np.abs(overlap - np.eye(len(overlap))).max())


# max|S - 1| against m_rel (test_box_quadrature_convergence, -m slow): 16: 1.0e-3,
# 24: 3.6e-5, 32: 2.8e-6, 48: 7.4e-9, 64: 2.8e-11, 96: 1.9e-12 (exponential; the full
# 16^4 grid gives the same S to 9e-16). Asserted at m_rel = 64 with tol 1e-9.
def test_orthonormal_in_periodic_box_with_strong_backflow():
    r = _box_result(64)
    assert r["n_nan"] == 0, "the flow folds space on the grid"
    assert r["displacement"] > 0.04 * BOX_LENGTH and r["log_det"] > 0.3
    assert np.abs(r["fidelity"]).max() < 0.99  # the flow changes every Psi_K
    assert _error(r["flow"]) < 1e-9
    assert _error(r["identity"]) < 1e-12  # exact for band-limited plane waves
    assert _error(r["no_jacobian"]) > 1e-2  # teeth: a wrong normalization fails


# max|S - 1| at (n_com, n_rel) = (200, 90) and (400, 180) (test_trap_quadrature_
# convergence, -m slow): backflow (2,0) 8e-15, 6e-15; backflow (1,1) 8e-12, 1.4e-14;
# ode (2,0) 1.8e-13, 6e-15; ode (1,1) 1.7e-8, 3.5e-9. (n_com = 60, 120, 240 at
# n_rel = 60 gave 3e-5, 5e-8, 1.5e-13 for backflow (1,1): n_com limits.) The spinful
# RK4 map is only piecewise smooth (|x1 - x2| along trajectories that cross x1 = x2
# away from r = 0), so that case converges algebraically and gets a looser tolerance.
TRAP_TOL = {("backflow", (2, 0)): 1e-10, ("backflow", (1, 1)): 1e-10,
            ("ode", (2, 0)): 1e-10, ("ode", (1, 1)): 1e-7}  # fmt: skip
SLOW = pytest.mark.slow  # the ODE flow takes most of the compile time


@pytest.mark.parametrize(
    "kind, spins",
    [(k, s) if k == "backflow" else pytest.param(k, s, marks=SLOW) for k, s in TRAP_TOL],
)
def test_orthonormal_in_1d_trap_with_strong_flow(kind, spins):
    r = _trap_result(kind, spins)
    assert r["n_nan"] == 0, "the flow folds space on the quadrature domain"
    # Diagnostics over |x_i| < 2, where the density is not negligible.
    assert r["displacement"] > 0.04 and r["log_det"] > 0.1
    assert np.abs(r["fidelity"]).max() < 0.999  # the flow changes every Psi_K
    assert _error(r["flow"]) < TRAP_TOL[kind, spins]
    assert _error(r["identity"]) < 1e-12
    assert _error(r["no_jacobian"]) > 1e-2


# ------------------------------------------------------------------ antisymmetry
SPINFUL = (3, 2)
SPINFUL_OCC = jnp.array([0, 2, 4, 1, 3])  # up modes, then down modes
UP_SWAP, DOWN_SWAP = np.array([1, 0, 2, 3, 4]), np.array([0, 1, 2, 4, 3])
ACROSS = np.array([3, 1, 2, 0, 4])  # swaps an up and a down electron


def _spinful_orbitals(geometry):
    if geometry == "box":
        spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=BOX_LENGTH, twist=TWIST)
        return make_plane_wave_orbitals(spectrum, BOX_LENGTH)
    spectrum = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)
    return make_oscillator_orbitals(spectrum, omega=1.0)


def _spinful_log_psi(geometry, seed):
    """log Psi_K for 3 up + 2 down in a 2D box or a 2D trap, with a backflow at the
    STRONG residual scales of tests/models/test_flows.py."""
    box_length = BOX_LENGTH if geometry == "box" else None
    scale = 0.2 if geometry == "box" else 0.03
    flow, params = _strong_flow("backflow", *SPINFUL, 2, box_length, scale, seed)
    log_psi = make_log_psi(
        orbitals=_spinful_orbitals(geometry), flow_apply=flow.apply, n_up=3, n_down=2
    )
    return log_psi, flow, params


@functools.cache
def _spinful_check(geometry):
    """Jitted (params, x: (batch, 5, 2)) -> log Psi_K at x and at its exchanged
    images (batch, 4), and log Psi_K of the identity flow at x (batch,)."""
    log_psi, _, _ = _spinful_log_psi(geometry, 0)
    plain = make_log_psi(
        orbitals=_spinful_orbitals(geometry),
        flow_apply=make_identity_flow().apply, n_up=3, n_down=2,
    )  # fmt: skip

    def check(params, x):
        images = jnp.stack([x, x[UP_SWAP], x[DOWN_SWAP], x[ACROSS]])
        values = jax.vmap(log_psi, (None, None, 0))(params, SPINFUL_OCC, images)
        return values, plain(None, SPINFUL_OCC, x)

    return jax.jit(jax.vmap(check, (None, 0)))


@pytest.mark.parametrize("geometry", ["box", "trap"])
@pytest.mark.parametrize("seed", [0, 1])
def test_antisymmetric_within_spin_blocks(geometry, seed):
    _, _, params = _spinful_log_psi(geometry, seed)
    x = jax.random.normal(jax.random.key(seed + 10), (6, 5, 2))
    x = x * BOX_LENGTH if geometry == "box" else x
    values, plain = _spinful_check(geometry)(params, x)
    assert bool(jnp.all(jnp.isfinite(values.real)))
    # The flow changes |Psi_K| by more than 10% somewhere (it is far from identity).
    assert float(jnp.abs(values[:, 0].real - plain.real).max()) > 0.1
    ratio = np.exp(np.asarray(values - values[:, :1]))  # (batch, image)
    np.testing.assert_allclose(ratio[:, 1:3], -1.0, rtol=0, atol=1e-12)
    # An up and a down electron are distinguishable: no sign rule for that exchange.
    assert np.abs(np.abs(ratio[:, 3]) - 1).max() > 1e-2


# ------------------------------------------------------------------ structure
def _numpy_log_det(quantum_numbers, r, twist, box_length):
    """log det [exp(i k_a . r_j) / sqrt(L^dim)] with k = 2 pi (n + twist) / L."""
    k = 2 * np.pi * (np.asarray(quantum_numbers) + np.asarray(twist)) / box_length
    matrix = np.exp(1j * k @ np.asarray(r).T) / np.sqrt(box_length ** r.shape[1])
    sign, log_abs = np.linalg.slogdet(matrix)
    return log_abs + 1j * np.angle(sign)


@pytest.mark.parametrize("n_up, n_down", [(3, 2), (2, 0), (0, 2), (1, 1), (4, 3)])
def test_identity_flow_gives_product_of_spin_determinants(key, n_up, n_down):
    box_length, twist = 1.7, (0.25, -0.1)
    spectrum = plane_wave_spectrum(dim=2, emax=4, box_length=box_length, twist=twist)
    log_psi = jax.jit(make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, box_length),
        flow_apply=make_identity_flow().apply, n_up=n_up, n_down=n_down,
    ))  # fmt: skip
    key_up, key_down, key_x = jax.random.split(key, 3)
    m = len(spectrum.energies)
    up = np.asarray(jax.random.permutation(key_up, m))[:n_up]
    down = np.asarray(jax.random.permutation(key_down, m))[:n_down]
    x = np.asarray(jax.random.uniform(key_x, (n_up + n_down, 2))) * box_length
    value = complex(log_psi(None, np.concatenate([up, down]), x))
    qn = spectrum.quantum_numbers
    expected = (
        _numpy_log_det(qn[np.asarray(up)], x[:n_up], twist, box_length)
        + _numpy_log_det(qn[np.asarray(down)], x[n_up:], twist, box_length)
        - 0.5 * math.log(math.factorial(n_up) * math.factorial(n_down))
    )
    # Compare log|Psi| and the phase modulo 2 pi.
    np.testing.assert_allclose(value.real, expected.real, rtol=1e-10)
    np.testing.assert_allclose(np.exp(1j * (value.imag - expected.imag)), 1, atol=1e-10)


def _dilation(params, x):
    """zeta = a x, log|det| = n dim log|a|: a flow whose log-det is in x.dtype."""
    return params * x, x.size * jnp.log(jnp.abs(params))


@pytest.mark.parametrize("geometry", ["box", "trap"])
def test_flow_enters_as_orbitals_at_zeta_times_sqrt_jacobian(key, geometry):
    # log Psi_K(x) = log Psi_K^identity(zeta) + 1/2 log|det d zeta / d x|, exactly.
    orbitals, occ = _spinful_orbitals(geometry), jnp.array([1, 0, 3, 2, 0])
    flowed, plain = (
        jax.jit(make_log_psi(orbitals=orbitals, flow_apply=apply, n_up=3, n_down=2))
        for apply in (_dilation, make_identity_flow().apply)
    )
    x = jax.random.normal(key, (5, 2))
    expected = plain(None, occ, 0.8 * x) + 0.5 * 10 * math.log(0.8)
    np.testing.assert_allclose(np.exp(flowed(0.8, occ, x) - expected), 1, atol=1e-12)


def test_fixed_occupation_matches_log_psi(key):
    log_psi = make_log_psi(
        orbitals=_spinful_orbitals("box"), flow_apply=_dilation, n_up=3, n_down=2
    )
    params, occ = jnp.asarray(0.9), [0, 1, 2, 0, 3]
    x = jax.random.uniform(key, (5, 2)) * BOX_LENGTH
    fixed = make_log_psi_fixed(log_psi, occ)(params, x)
    assert fixed.shape == ()
    assert complex(fixed) == complex(log_psi(params, jnp.array(occ), x))


@pytest.mark.parametrize("geometry", ["box", "trap"])
@pytest.mark.parametrize("dtype, complex_dtype",
                         [(jnp.float32, jnp.complex64), (jnp.float64, jnp.complex128)])  # fmt: skip
def test_dtype_follows_positions(geometry, dtype, complex_dtype):
    x = jax.random.uniform(jax.random.key(0), (5, 2), dtype)
    log_psi = make_log_psi(
        orbitals=_spinful_orbitals(geometry), flow_apply=_dilation, n_up=3, n_down=2
    )
    value = jax.jit(log_psi)(jnp.asarray(1.3, dtype), SPINFUL_OCC, x)
    assert value.shape == () and value.dtype == complex_dtype
    assert bool(jnp.isfinite(value.real))


# ------------------------------------------------------------------ occupations
@pytest.mark.parametrize(
    "dim, n_up, n_down, expected",
    [(2, 5, 5, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]), (2, 9, 1, list(range(9)) + [0]),
     (2, 0, 5, [0, 1, 2, 3, 4]), (2, 1, 0, [0]), (2, 13, 13, list(range(13)) * 2)],
)  # fmt: skip
def test_closed_shell_occupation_plane_waves(dim, n_up, n_down, expected):
    # 2D plane waves at the Gamma point: shells of 1, 4, 4, 4 modes (|n|^2 = 0, 1, 2, 4).
    spectrum = plane_wave_spectrum(dim=dim, emax=4, box_length=1.0)
    occ = closed_shell_occupation(spectrum, n_up, n_down)
    assert occ.tolist() == expected and np.issubdtype(occ.dtype, np.integer)


def test_closed_shell_occupation_oscillator_and_twist():
    trap = oscillator_spectrum(dim=2, n_shells=3, omega=1.0)  # shells of 1, 2, 3
    assert closed_shell_occupation(trap, 3, 1).tolist() == [0, 1, 2, 0]
    assert closed_shell_occupation(trap, 6, 6).tolist() == list(range(6)) * 2
    # A generic twist lifts every degeneracy, so any particle number is closed.
    twisted = plane_wave_spectrum(dim=2, emax=4, box_length=1.0, twist=(0.1, 0.23))
    assert closed_shell_occupation(twisted, 2, 3).tolist() == [0, 1, 0, 1, 2]


@pytest.mark.parametrize(
    "n_up, n_down, match",
    [(2, 0, "n_up=2 fills a degenerate shell"), (1, 3, "n_down=3 fills a degenerate"),
     (14, 0, "keeps only 13"), (-1, 1, "n_up"), (1, 1.5, "n_down")],
)  # fmt: skip
def test_closed_shell_occupation_rejects_bad_input(n_up, n_down, match):
    spectrum = plane_wave_spectrum(dim=2, emax=4, box_length=1.0)  # 13 modes
    with pytest.raises(ValueError, match=match):
        closed_shell_occupation(spectrum, n_up, n_down)


def test_factories_reject_bad_input():
    spectrum = plane_wave_spectrum(dim=2, emax=1, box_length=1.0)
    kwargs = dict(orbitals=make_plane_wave_orbitals(spectrum, 1.0),
                  flow_apply=make_identity_flow().apply)  # fmt: skip
    for n_up, n_down, match in [(-1, 1, "n_up"), (1, -2, "n_down"),
                                (0, 0, "n_up \\+ n_down"), (1.5, 0, "n_up")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            make_log_psi(n_up=n_up, n_down=n_down, **kwargs)
    log_psi = make_log_psi(n_up=2, n_down=0, **kwargs)
    for occ in ([0.0, 1.0], [[0, 1]]):
        with pytest.raises(ValueError, match="occ must be a 1-d array of integer"):
            make_log_psi_fixed(log_psi, occ)
    with pytest.raises(TypeError, match="occ must hold integer"):
        log_psi(None, jnp.array([0.0, 1.0]), jnp.zeros((2, 2)))


# ------------------------------------------------------------------ convergence
@pytest.mark.slow
def test_box_quadrature_convergence():
    # Fixing the x1 grid at 4 points per axis is exact (translation equivariance):
    # the full 16^4 grid gives the same overlaps.
    full, sheared = _box_result(16, m_com=16), _box_result(16)
    assert np.abs(full["flow"] - sheared["flow"]).max() < 1e-13
    # The quadrature error at m_rel = 64 is 10x below the tolerance of the fast test.
    fine = _box_result(96)
    assert np.abs(_box_result(64)["flow"] - fine["flow"]).max() < 1e-10
    assert _error(fine["flow"]) < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("kind, spins", list(TRAP_TOL))
def test_trap_quadrature_convergence(kind, spins):
    default, fine = _trap_result(kind, spins), _trap_result(kind, spins, 400, 180)
    assert np.abs(default["flow"] - fine["flow"]).max() < TRAP_TOL[kind, spins] / 5
    assert _error(fine["flow"]) < TRAP_TOL[kind, spins] / 10

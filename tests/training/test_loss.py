"""Free-energy estimates and score-function gradients against exact values."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fermiflow.hamiltonians.spectrum import plane_wave_spectrum
from fermiflow.models.backflow import make_backflow
from fermiflow.models.categorical import make_categorical_model
from fermiflow.models.density_matrix import JointParams
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.wavefunction import make_log_psi
from fermiflow.sampling.joint import make_joint_state
from fermiflow.training.loss import clip_around_mean, make_free_energy_loss

L, N, T = 2.0, 2, 0.7
K_SIGMA = 5


def _identity(params, x):
    return x, jnp.zeros((), x.dtype)


def _ideal_gas_setup():
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L, twist=(0.25, 0.1))
    m = len(spectrum.energies)
    sets = np.array(list(itertools.combinations(range(6), N)))
    model = make_categorical_model(sets, param_dtype=jnp.float64)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, L), flow_apply=_identity,
        n_up=N, n_down=0,
    )
    energies = np.asarray(spectrum.energies)[sets].sum(-1)
    assert m >= 6
    return model, log_psi, sets, energies


def _exact_free_energy(logits, energies):
    log_p = jax.nn.log_softmax(logits)
    return jnp.sum(jnp.exp(log_p) * (T * log_p + energies))


def test_ideal_gas_local_energy_is_exact_and_p_gradient_is_unbiased():
    # Identity flow, plane waves: E_loc(x; K) = sum_{k in K} k^2 / 2 exactly, so the
    # only noise is from sampling K, and the score-function gradient must average
    # to the exact gradient of F = sum_K p (T ln p + E_K).
    model, log_psi, sets, energies = _ideal_gas_setup()
    logits = jax.random.normal(jax.random.key(0), (len(sets),))
    loss = make_free_energy_loss(
        model.log_prob, log_psi, lambda x: jnp.zeros((), x.dtype),
        temperature=T, clip_width=None,
    )
    batch, n_batches = 512, 40
    keys = jax.random.split(jax.random.key(1), n_batches)

    def one(key):
        key_k, key_x = jax.random.split(key)
        occ, _ = model.sample(key_k, logits, batch)
        x = jax.random.uniform(key_x, (batch, N, 2)) * L
        (estimates, values), grads = loss.value_and_grad(
            JointParams(logits, None), make_joint_state(occ, x)
        )
        return estimates, values, grads.occupation, occ

    estimates, values, grads, occ = jax.lax.map(one, keys)
    index = {tuple(s): i for i, s in enumerate(sets)}
    e_of_k = energies[[index[tuple(k)] for k in np.asarray(occ).reshape(-1, N)]]
    # Round-off grows like eps * cond(Slater matrix)^2: uniform x lands a few walkers
    # in 2e4 next to a node, where 1e-8 relative is all float64 can give.
    relative = np.abs(np.real(values.kinetic).reshape(-1) / e_of_k - 1)
    assert np.median(relative) < 1e-13 and np.mean(relative > 1e-10) < 1e-3
    assert relative.max() < 1e-6
    assert np.max(np.abs(np.imag(values.kinetic))) < 1e-6
    exact_grad = jax.grad(_exact_free_energy)(logits, jnp.asarray(energies))
    mean = grads.mean(0)
    err = grads.std(0) / np.sqrt(n_batches)
    assert float(jnp.max(err)) < 0.2 * float(jnp.max(jnp.abs(exact_grad)))
    assert bool(jnp.all(jnp.abs(mean - exact_grad) < K_SIGMA * err + 1e-12))
    # The free-energy estimate is unbiased too.
    exact_f = float(_exact_free_energy(logits, jnp.asarray(energies)))
    f_mean = float(estimates.free_energy.value.mean())
    f_err = float(estimates.free_energy.value.std() / np.sqrt(n_batches))
    assert abs(f_mean - exact_f) < K_SIGMA * f_err


def _gaussian_setup():
    # psi_a(x) = exp(-a |x|^2 / 2) in 2D, H = -lap/2 + |x|^2/2:
    # E(a) = a/2 + 1/(2a), dE/da = 1/2 - 1/(2 a^2).
    def log_psi(a, occ, x):
        return (-0.5 * a * jnp.sum(x**2)).astype(jnp.complex128)

    def potential(x):
        return 0.5 * jnp.sum(x**2)

    return log_psi, potential


@pytest.mark.parametrize("a", [0.6, 1.7])
def test_flow_gradient_of_gaussian_trial_state(a):
    log_psi, potential = _gaussian_setup()
    loss = make_free_energy_loss(
        lambda p, occ: jnp.zeros(occ.shape[0]), log_psi, potential,
        temperature=0.0, clip_width=None,
    )
    batch, n_batches = 4096, 16

    def one(key):
        x = jax.random.normal(key, (batch, 1, 2)) / jnp.sqrt(2 * a)  # |psi|^2 exactly
        occ = jnp.zeros((batch, 1), jnp.int32)
        (estimates, _), grads = loss.value_and_grad(
            JointParams(None, jnp.asarray(a)), make_joint_state(occ, x)
        )
        return estimates.energy.value, grads.wavefunction

    energy, grad = jax.lax.map(one, jax.random.split(jax.random.key(2), n_batches))
    exact_e, exact_g = a / 2 + 1 / (2 * a), 0.5 - 0.5 / a**2
    err = float(grad.std() / np.sqrt(n_batches))
    assert err < 0.05 * abs(exact_g)
    assert abs(float(grad.mean()) - exact_g) < K_SIGMA * err
    e_err = float(energy.std() / np.sqrt(n_batches))
    assert abs(float(energy.mean()) - exact_e) < K_SIGMA * e_err


def test_micro_batches_do_not_change_the_result():
    model, log_psi, sets, _ = _ideal_gas_setup()
    logits = jax.random.normal(jax.random.key(0), (len(sets),))
    occ, _ = model.sample(jax.random.key(3), logits, 24)
    x = jax.random.uniform(jax.random.key(4), (24, N, 2)) * L
    potential = lambda x: jnp.sum(jnp.cos(x))  # noqa: E731
    results = []
    for n_micro in (1, 2, 4):
        loss = make_free_energy_loss(
            model.log_prob, log_psi, potential, temperature=T, n_micro_batches=n_micro
        )
        state = make_joint_state(occ, x)
        results.append(jax.jit(loss.value_and_grad)(JointParams(logits, None), state))
    for other in results[1:]:
        scale = float(jnp.max(jnp.abs(results[0][1].occupation)))
        np.testing.assert_allclose(
            other[1].occupation, results[0][1].occupation, rtol=1e-12, atol=1e-14 * scale
        )
        np.testing.assert_allclose(
            other[0][0].free_energy.value, results[0][0][0].free_energy.value, rtol=1e-12
        )


def test_clip_around_mean():
    values = jnp.array([0.0, 1.0, 2.0, 3.0, 100.0])
    mean = values.mean()
    deviation = jnp.mean(jnp.abs(values - mean))
    clipped = clip_around_mean(values, 1.0)
    assert float(clipped.max()) == pytest.approx(float(mean + deviation))
    assert bool(jnp.all(clip_around_mean(values, None) == values))


def test_bad_arguments_raise():
    args = (lambda p, o: o, lambda p, o, x: x, lambda x: x)
    with pytest.raises(ValueError, match="temperature"):
        make_free_energy_loss(*args, temperature=-1.0)
    with pytest.raises(ValueError, match="clip_width"):
        make_free_energy_loss(*args, temperature=1.0, clip_width=0.0)
    with pytest.raises(ValueError, match="n_micro_batches"):
        make_free_energy_loss(*args, temperature=1.0, n_micro_batches=0)


@pytest.mark.slow  # about 30 s
def test_control_variate_removes_between_set_noise_at_the_identity():
    # Ideal gas, backflow with both scales at 0 (exactly the identity): E_loc = E0(K)
    # per walker, so with E0 as the control variate every flow weight vanishes and
    # the flow gradient is 0 sample by sample; with the batch mean alone it is noise.
    model, _, sets, energies = _ideal_gas_setup()
    spectrum = plane_wave_spectrum(dim=2, emax=2, box_length=L, twist=(0.25, 0.1))
    flow = make_backflow(n_up=N, n_down=0, dim=2, box_length=L)
    log_psi = make_log_psi(
        orbitals=make_plane_wave_orbitals(spectrum, L), flow_apply=flow.apply,
        n_up=N, n_down=0,
    )
    flow_params = flow.init(jax.random.key(5), jnp.zeros((N, 2)))
    inner = {k: 0.0 * v if k.startswith("scale_") else v
             for k, v in flow_params["params"].items()}
    assert "scale_pair" in inner
    params = JointParams(jax.random.normal(jax.random.key(0), (len(sets),)), {"params": inner})
    occ, _ = model.sample(jax.random.key(6), params.occupation, 64)
    x = jax.random.uniform(jax.random.key(7), (64, N, 2)) * L
    mode_energies = jnp.asarray(spectrum.energies)

    def reference(o):
        return mode_energies[o].sum(-1)

    grads = {}
    for name, ref in (("batch", None), ("mode", reference)):
        loss = make_free_energy_loss(
            model.log_prob, log_psi, lambda y: jnp.zeros((), y.dtype), temperature=T,
            clip_width=None, reference_energy=ref,
        )
        grads[name] = jax.jit(loss.value_and_grad)(params, make_joint_state(occ, x))[1].wavefunction
    norm = lambda g: float(optax.global_norm(g))  # noqa: E731
    assert norm(grads["batch"]) > 1e-3
    assert norm(grads["mode"]) < 1e-9 * norm(grads["batch"])


def test_control_variate_keeps_the_flow_gradient_unbiased():
    # Two sets K in {0, 1} with p = (0.3, 0.7), Psi_K(x) = sqrt(a_K / pi) exp(-a_K |x|^2
    # / 2) in the 2D trap (normalized, as every Psi_K of fermiflow: the baselines rely
    # on it), x drawn exactly from |Psi_K|^2: dF/da_K = p_K (1/2 - 1/(2 a_K^2)). The
    # control variate E0(K) = (0, 5) is deliberately poor (only its fitted slope
    # matters); the estimate must average to the exact gradient with each baseline.
    # (The noise reduction is the identity test above: here E_loc varies within K.)
    log_psi_1, potential = _gaussian_setup()
    a = jnp.array([0.6, 3.0])
    p = np.array([0.3, 0.7])

    def log_psi(params, occ, x):
        a_k = params[occ[0]]
        return log_psi_1(a_k, occ, x) + 0.5 * jnp.log(a_k / jnp.pi)

    exact_energy = a / 2 + 1 / (2 * a)
    exact_grad = p * (0.5 - 0.5 / np.asarray(a) ** 2)
    batch, n_batches = 2048, 32
    results = {}
    for name, table in (("batch", None), ("poor", jnp.array([0.0, 5.0])),
                        ("exact", exact_energy)):
        ref = None if table is None else (lambda o, t=table: t[o[:, 0]])
        loss = make_free_energy_loss(
            lambda q, occ: jnp.zeros(occ.shape[0]), log_psi, potential,
            temperature=0.0, clip_width=None, reference_energy=ref,
        )

        def one(key, loss=loss):
            key_k, key_x = jax.random.split(key)
            occ = jax.random.bernoulli(key_k, p[1], (batch, 1)).astype(jnp.int32)
            width = jnp.sqrt(2 * a[occ[:, 0]])[:, None, None]
            x = jax.random.normal(key_x, (batch, 1, 2)) / width
            state = make_joint_state(occ, x)
            return loss.value_and_grad(JointParams(None, a), state)[1].wavefunction

        grads = jax.lax.map(one, jax.random.split(jax.random.key(8), n_batches))
        results[name] = (np.asarray(grads.mean(0)), np.asarray(grads.std(0)) / np.sqrt(n_batches))
    for name, (mean, err) in results.items():
        assert np.all(err < 0.05 * np.abs(exact_grad)), (name, err)
        assert np.all(np.abs(mean - exact_grad) < K_SIGMA * err), (name, mean, exact_grad, err)

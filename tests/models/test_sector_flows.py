"""Momentum-class flows keep every Psi_K orthonormal; flows by any other rule do not.

Two polarized electrons in a twisted 2D box, eight sets K in all four momentum
classes, a different strongly deformed (certified) backflow per class. The overlaps
<Psi_K|Psi_K'> are Riemann sums on a grid of the 4D torus, exact for trigonometric
polynomials and converged here to about 3e-5 for the smooth flows (M = 16, 20, 24:
3e-4, 3e-5, 9e-6; the two particles' grids are offset so that they never coincide),
while flows chosen by another rule give overlaps of 7e-3 between states of one
total momentum.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.models.backflow import make_backflow
from fermiflow.models.density_matrix import make_quantum_problem
from fermiflow.models.orbitals import make_plane_wave_orbitals
from fermiflow.models.sector_flows import make_sector_select, momentum_class, stacked_flows
from fermiflow.models.wavefunction import make_log_psi

GAS = ElectronGas(n_up=2, n_down=0, dim=2, rs=2.0, theta=1.0, emax=3, twist=(0.25, 0.25))
# Two pairs of sets share a total momentum: {1, 2} and {0, 3}, {2, 4} and {1, 5}.
STATES = np.array([[0, 1], [0, 2], [1, 2], [0, 3], [1, 3], [2, 3], [2, 4], [1, 5]])
M = 20  # grid points per coordinate
SCALE = 10.0  # the residual scales go from 0.01 to 0.1


@functools.cache
def _gram(rule: str) -> np.ndarray:
    length = GAS.box_length
    class_of, count = momentum_class(GAS.spectrum.quantum_numbers)
    sector = {"momentum": class_of, "first_mode": lambda occ: occ[0] % count}[rule]
    backflow = make_backflow(n_up=2, n_down=0, dim=2, box_length=length, certify=False)
    flow = stacked_flows(backflow, count)
    params = jax.tree_util.tree_map_with_path(  # far from the identity, still unfolded
        lambda path, a: a * SCALE if "scale" in jax.tree_util.keystr(path) else a,
        flow.init(jax.random.key(0), jnp.zeros((2, 2))))
    log_psi = make_log_psi(orbitals=make_plane_wave_orbitals(GAS.spectrum, length),
                           flow_apply=backflow.apply,
                           n_up=2, n_down=0,
                           flow_select=make_sector_select(backflow, count, sector))
    g = (jnp.arange(M) + 0.5) / M * length
    grid = jnp.stack(jnp.meshgrid(g, g, g + 0.3 * length / M, g + 0.3 * length / M,
                                  indexing="ij"), -1).reshape(-1, 2, 2)
    values = jax.jit(jax.vmap(lambda x: jnp.stack(
        [jnp.exp(log_psi(params, jnp.asarray(k), x)) for k in STATES])))(grid)
    return np.asarray(jnp.conj(values).T @ values) * (length / M) ** 4


def test_states_of_one_momentum_class_share_a_flow_and_stay_orthonormal():
    class_of, _ = momentum_class(GAS.spectrum.quantum_numbers)
    classes = [int(class_of(jnp.asarray(k))) for k in STATES]
    assert len(set(classes)) == 4  # several classes, and several states per class
    np.testing.assert_allclose(_gram("momentum"), np.eye(len(STATES)), atol=1e-4)


@pytest.mark.slow  # the negative control: another compile of the grid (about 10 s)
def test_flows_chosen_by_another_rule_break_orthogonality():
    gram = _gram("first_mode")
    assert np.max(np.abs(gram - np.eye(len(STATES)))) > 3e-3


def test_problem_with_momentum_flows_stacks_one_flow_per_class():
    problem = make_quantum_problem(GAS, occupation="categorical",
                                   occupation_options={"max_excitation": 5.0},
                                   momentum_flows=True)
    params = problem.flow.init(jax.random.key(0), jnp.zeros((2, 2)))
    assert {leaf.shape[0] for leaf in jax.tree.leaves(params)} == {4}
    assert not problem.single_flow


def test_momentum_flows_in_a_trap_and_bad_labels_raise():
    from fermiflow.hamiltonians.systems import QuantumDot

    dot = QuantumDot(n_up=2, n_down=0, dim=2, omega=1.0, coupling=1.0, beta=1.0, n_shells=3)
    with pytest.raises(ValueError, match="momentum_flows=True needs a periodic box"):
        make_quantum_problem(dot, occupation="categorical",
                             occupation_options={"max_excitation": 5.0}, momentum_flows=True)
    with pytest.raises(ValueError, match="quantum_numbers"):
        momentum_class(np.zeros((3, 2)))


def _primitives(jaxpr):
    """Yield every equation of a closed jaxpr, sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _primitives(inner)


def test_certified_caps_are_computed_once_per_flow_not_per_walker():
    """A per-walker SVD is a batched LAPACK call: it deadlocked jaxlib's 2-core pool."""
    problem = make_quantum_problem(GAS, occupation="categorical",
                                   occupation_options={"max_excitation": 5.0},
                                   momentum_flows=True)
    params = problem.flow.init(jax.random.key(0), jnp.zeros((2, 2)))
    occ = jnp.asarray(STATES)
    x = jax.random.uniform(jax.random.key(1), (len(STATES), 2, 2)) * GAS.box_length

    def total(p):
        return jnp.sum(jax.vmap(lambda k, y: problem.log_psi(p, k, y))(occ, x).real)

    jaxpr = jax.make_jaxpr(jax.value_and_grad(total))(params)
    svds = [e for e in _primitives(jaxpr.jaxpr) if e.primitive.name == "svd"]
    assert svds and all(e.invars[0].aval.ndim == 2 for e in svds)  # unbatched only
    # The prepared (cap precomputed) params give the same Psi_K as the plain ones.
    flow = make_backflow(n_up=2, n_down=0, dim=2, box_length=GAS.box_length)
    plain = flow.init(jax.random.key(2), x[0])
    np.testing.assert_array_equal(flow.apply(plain, x[0])[0],
                                  flow.apply(flow.prepare(plain), x[0])[0])


def test_walkers_select_their_flow_from_host_params():
    """Params restored from a checkpoint are numpy arrays; a traced K must index them."""
    problem = make_quantum_problem(GAS, occupation="categorical",
                                   occupation_options={"max_excitation": 5.0},
                                   flow_options={"certify": False}, momentum_flows=True)
    params = problem.flow.init(jax.random.key(0), jnp.zeros((2, 2)))
    host = jax.tree.map(np.asarray, params)
    occ = jnp.asarray(STATES)
    x = jax.random.uniform(jax.random.key(1), (len(STATES), 2, 2)) * GAS.box_length
    values = [jax.jit(jax.vmap(lambda k, y, p=p: problem.log_psi(p, k, y)))(occ, x)
              for p in (params, host)]
    np.testing.assert_array_equal(values[0], values[1])

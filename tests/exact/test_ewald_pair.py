"""Tests of the two-electron Ewald pair potential against make_ewald_potential.

Reference: fermiflow.hamiltonians.ewald.make_ewald_potential (its own Ewald sum, with
self-images and background, converged to ~1e-13) on two electrons. Agreement for
several alpha checks the Fourier components phi_G = v(G) / V and the constant
madelung / L that the box Hamiltonian uses.
"""

import jax
import numpy as np
import pytest

from fermiflow.exact.ewald_pair import (
    ewald_pair_constant,
    ewald_pair_fourier,
    ewald_pair_potential,
    ewald_pair_split,
)
from fermiflow.hamiltonians.ewald import make_ewald_potential


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("box_length", [0.9, 25.066])
def test_pair_potential_matches_make_ewald_potential(key, dim, box_length):
    x = jax.random.uniform(key, (6, 2, dim), minval=-box_length, maxval=2 * box_length)
    reference = jax.jit(jax.vmap(make_ewald_potential(dim=dim, box_length=box_length)))(x)
    displacement = np.asarray(x[:, 0] - x[:, 1])
    for kappa in (3.0, 6.0, 14.0):
        value = ewald_pair_potential(
            displacement, dim=dim, box_length=box_length, alpha=kappa / box_length
        )
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-11)


@pytest.mark.parametrize("dim", [2, 3])
def test_zero_mean_and_constant(dim):
    # The cell average of V over r is the constant: phi has no G = 0 component, and the
    # constant is twice the one-electron energy madelung / (2 L) (literature Madelung
    # constants of the square and simple cubic lattices).
    box_length = 1.7
    assert float(ewald_pair_fourier(np.zeros(dim), dim=dim, box_length=box_length)) == 0.0
    madelung = {2: -3.9002649200020, 3: -2.8372974794806}[dim]
    constant = ewald_pair_constant(dim=dim, box_length=box_length)
    assert constant == pytest.approx(madelung / box_length, rel=1e-12)


def test_fourier_components_closed_form():
    g = np.array([[1, 0], [1, 1], [0, 3]])
    box_length = 2.0
    norm = 2 * np.pi / box_length * np.linalg.norm(g, axis=1)
    np.testing.assert_allclose(
        ewald_pair_fourier(g, dim=2, box_length=box_length), 2 * np.pi / norm / box_length**2
    )
    g3 = np.array([[1, 0, 0], [1, 2, 2]])
    norm3 = 2 * np.pi / box_length * np.linalg.norm(g3, axis=1)
    np.testing.assert_allclose(
        ewald_pair_fourier(g3, dim=3, box_length=box_length), 4 * np.pi / norm3**2 / 8.0
    )


def test_split_shapes_and_errors():
    split = ewald_pair_split(dim=3, box_length=1.0, alpha=3.0)
    assert split.long_range.ndim == 3 and split.long_range.shape[0] % 2 == 1
    assert split.constant == pytest.approx(np.pi / 9.0)
    with pytest.raises(ValueError, match="alpha"):
        ewald_pair_split(dim=2, box_length=1.0, alpha=0.0)
    with pytest.raises(ValueError, match="shape"):
        ewald_pair_fourier(np.zeros((2, 3)), dim=2, box_length=1.0)
    with pytest.raises(ValueError, match="dim"):
        ewald_pair_constant(dim=1, box_length=1.0)

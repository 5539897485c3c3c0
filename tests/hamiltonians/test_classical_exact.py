"""The exact classical pair free energy against closed forms and an independent quadrature.

Coupling 0 closed form: H = sum_i omega^2 |x_i|^2 / 2 for two particles in dim
dimensions gives Z = (2 pi T / omega^2)^dim, so F = -T dim ln(2 pi T / omega^2).
"""

import functools
import math

import numpy as np
import pytest

from fermiflow.hamiltonians.classical_exact import classical_pair_free_energy

T = 0.5


@functools.cache
def _legendre(n_nodes):
    return np.polynomial.legendre.leggauss(n_nodes)


def _gauss_legendre_free_energy(temperature, omega, coupling, dim, length=30.0, n_nodes=200):
    """Independent reference: Gauss-Legendre in r on [0, length], no shift of the peak.

    Agrees with 400 nodes to ~1e-14 relative for the cases below.
    """
    nodes, weights = _legendre(n_nodes)
    r = (nodes + 1) * length / 2
    integrand = r ** (dim - 1) * np.exp(-(omega**2 * r**2 / 4 + coupling / r) / temperature)
    radial = np.sum(weights * integrand) * length / 2
    area = {1: 2.0, 2: 2 * np.pi, 3: 4 * np.pi}[dim]
    z = (np.pi * temperature / omega**2) ** (dim / 2) * area * radial
    return -temperature * np.log(z)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize(("temperature", "omega"), [(0.5, 1.0), (0.13, 2.5), (3.0, 0.7)])
def test_pair_free_energy_coupling_zero_closed_form(dim, temperature, omega):
    exact = -temperature * dim * math.log(2 * math.pi * temperature / omega**2)
    value = classical_pair_free_energy(temperature=temperature, omega=omega, coupling=0.0, dim=dim)
    np.testing.assert_allclose(value, exact, rtol=1e-12)


@pytest.mark.parametrize(
    ("temperature", "omega", "coupling", "dim"),
    [(0.5, 1.0, 1.0, 2), (0.5, 1.0, 1.0, 3), (0.2, 2.0, 0.3, 2), (2.0, 0.8, 3.0, 2)],
)
def test_pair_free_energy_against_gauss_legendre(temperature, omega, coupling, dim):
    value = classical_pair_free_energy(
        temperature=temperature, omega=omega, coupling=coupling, dim=dim
    )
    reference = _gauss_legendre_free_energy(temperature, omega, coupling, dim)
    np.testing.assert_allclose(value, reference, rtol=1e-11)


def test_pair_free_energy_acceptance_value_and_bounds():
    exact = classical_pair_free_energy(temperature=T)
    # Repulsion raises F above the ideal value; the ground-state energy min H
    # = 3 / 2^(2/3) (at r^3 = 2, R = 0) bounds F from above only with entropy, so
    # check the ordering F_ideal < F < F_ideal + <1/r>_ideal (Gibbs-Bogoliubov).
    ideal = -T * math.log((2 * math.pi * T) ** 2)
    # <1/r> for r = x1 - x2 ~ N(0, 2T I_2): sqrt(pi / (4 T)).
    assert ideal < exact < ideal + math.sqrt(math.pi / (4 * T))

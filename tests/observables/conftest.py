"""Session fixture: samples of the ideal gas with its exact p(K) (ideal_gas_samples.py)."""

import jax
import pytest

from fermiflow.hamiltonians.systems import ElectronGas
from tests.observables.ideal_gas_samples import IdealSamples, draw_samples


@pytest.fixture(scope="session")
def ideal_samples(request) -> IdealSamples:
    gas = ElectronGas(n_up=3, n_down=2, dim=2, rs=1.0, theta=0.5, emax=2, twist=(0.25, 0.25))
    seed = request.config.getoption("--seed")
    return draw_samples(jax.random.key(seed + 1000), gas)

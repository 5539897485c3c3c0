"""fermiflow.training: the pure core of the variational optimization.

- :mod:`~fermiflow.training.loss`: the free-energy estimates and score-function
  gradients of a batch of walkers;
- :mod:`~fermiflow.training.step`: one optimization step (sample, estimate, update)
  of p(K) and the flow, and fresh-sample evaluation;
- :mod:`~fermiflow.training.natural_gradient`: stochastic reconfiguration (SR) as an
  optax transformation and the per-sample Jacobians it needs;
- :mod:`~fermiflow.training.pretrain`: p(K) alone against the ideal Boltzmann weights;
- :mod:`~fermiflow.training.averaging`: Polyak iterate averaging;
- :mod:`~fermiflow.training.classical`: the classical Coulomb gas (reparameterized).

Every trainer is an :class:`~fermiflow.types.Algorithm` ``(init, step)`` of pure
functions; nothing here does I/O (that is :mod:`fermiflow.run`).
"""

from fermiflow.training.averaging import IterateAverage, init_average, update_average
from fermiflow.training.classical import (
    ClassicalMetrics,
    ClassicalState,
    classical_adam,
    make_classical_evaluator,
    make_classical_step,
    train_classical,
)
from fermiflow.training.loss import (
    FreeEnergyLoss,
    LocalValues,
    clip_around_mean,
    estimates_from_local_values,
    flow_energy_weights,
    make_free_energy_loss,
)
from fermiflow.training.natural_gradient import SRState, make_sr_inputs, natural_gradient
from fermiflow.training.pretrain import (
    PretrainMetrics,
    PretrainState,
    make_pretrain_evaluate,
    make_pretrain_step,
    pretrain,
)
from fermiflow.training.step import Metrics, TrainState, make_evaluate, make_train_step

__all__ = [
    "ClassicalMetrics",
    "ClassicalState",
    "FreeEnergyLoss",
    "IterateAverage",
    "LocalValues",
    "Metrics",
    "PretrainMetrics",
    "PretrainState",
    "SRState",
    "TrainState",
    "classical_adam",
    "clip_around_mean",
    "estimates_from_local_values",
    "flow_energy_weights",
    "init_average",
    "make_classical_evaluator",
    "make_classical_step",
    "make_evaluate",
    "make_free_energy_loss",
    "make_pretrain_evaluate",
    "make_pretrain_step",
    "make_sr_inputs",
    "make_train_step",
    "natural_gradient",
    "pretrain",
    "train_classical",
    "update_average",
]

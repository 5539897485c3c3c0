"""Memory plans: the micro-batching of a training step from a memory budget.

A step holds the whole batch's local energies, Laplacians and per-sample Jacobians at
once unless ``optimizer.n_micro_batches`` slices the batch (the loss gradients and the
SR Jacobians are then computed slice by slice: the same numbers, a smaller peak). With
``run.memory_gb`` set, :func:`plan_memory` picks the smallest ``n_micro_batches``
dividing ``sampler.batch`` whose compiled step fits the budget on one device, by
XLA's own estimate (``compiled.memory_analysis()``: temporaries + arguments + outputs
- aliased buffers). It compiles the step (no run) at most ``MAX_COMPILES`` times: the
configured value first, then the value predicted by the model bytes = a + b / n from
the points measured so far, checked by compiling it.

The exact i.i.d. samplers draw walkers one at a time on a CPU (their memory does not
grow with the batch); the Metropolis samplers hold the whole batch.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from fermiflow.run.config import Config
from fermiflow.run.engine import build_engine

__all__ = ["MAX_COMPILES", "MemoryPlan", "plan_memory", "step_memory_bytes"]

MAX_COMPILES = 5


class MemoryPlan(NamedTuple):
    """The outcome of :func:`plan_memory`.

    Attributes:
      n_micro_batches: the chosen number of micro-batches.
      step_bytes: XLA's estimate of the chosen step's memory on one device [bytes].
      budget_bytes: the budget [bytes].
      tried: ``((n_micro_batches, bytes), ...)`` of every compiled candidate.
    """

    n_micro_batches: int
    step_bytes: int
    budget_bytes: int
    tried: tuple[tuple[int, int], ...]

    def describe(self) -> str:
        """One line for the terminal and the event log."""
        tried = ", ".join(f"{n}: {b / 1e9:.2f} GB" for n, b in self.tried)
        return (f"memory plan: optimizer.n_micro_batches={self.n_micro_batches}, step "
                f"{self.step_bytes / 1e9:.2f} GB of run.memory_gb="
                f"{self.budget_bytes / 1e9:.2f} GB (compiled: {tried})")


def step_memory_bytes(config: Config, devices: list | None = None) -> int:
    """Return XLA's estimate of the memory of one training step [bytes, one device].

    Compiles (does not run) the jitted step of ``build_engine(config)`` on its
    abstract state. Raises RuntimeError when the backend gives no estimate.
    """
    engine = build_engine(config, devices=devices)
    analysis = engine.step.lower(engine.template).compile().memory_analysis()
    if analysis is None:
        raise RuntimeError("XLA gives no memory estimate on this backend; unset "
                           "run.memory_gb and set optimizer.n_micro_batches by hand.")
    return int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
               + analysis.output_size_in_bytes - analysis.alias_size_in_bytes)


def _with_micro(config: Config, n_micro: int) -> Config:
    return dataclasses.replace(
        config, optimizer=dataclasses.replace(config.optimizer, n_micro_batches=n_micro))


def _predict(points: dict[int, int], budget: int, divisors: list[int]) -> int:
    """The smallest untried divisor that the model a + b / n puts within the budget."""
    untried = [d for d in divisors if d > max(points)]  # every point so far failed
    if len(points) >= 2:
        (n1, b1), (n2, b2) = sorted(points.items())[-2:]
        slope = (b1 - b2) / (1 / n1 - 1 / n2)
        offset = b2 - slope / n2
        if slope > 0 and offset < budget:
            need = slope / (budget - offset)
            fitting = [d for d in untried if d >= need]
            if fitting:
                return fitting[0]
    else:
        ((n1, b1),) = points.items()
        need = n1 * b1 / budget  # as if all memory scaled with the slice
        fitting = [d for d in untried if d >= need]
        if fitting:
            return fitting[0]
    return untried[-1] if untried else -1


def plan_memory(config: Config, budget_gb: float,
                devices: list | None = None) -> tuple[Config, MemoryPlan]:
    """Choose ``optimizer.n_micro_batches`` so that one step fits ``budget_gb``.

    Args:
      config: a resolved quantum config; its ``n_micro_batches`` is the first guess.
      budget_gb: memory of one device for the step [GB = 1e9 bytes], > 0.
      devices: the devices of the walker mesh (default: all).

    Returns:
      ``(config with the chosen n_micro_batches, MemoryPlan)``.

    Raises:
      ValueError: if budget_gb is not positive, the config is the classical gas, or no
        divisor of the batch fits (the message gives the smallest estimate and the fix).
    """
    if not budget_gb > 0:
        raise ValueError(f"run.memory_gb must be > 0, got {budget_gb}.")
    if config.system.kind == "classical":
        raise ValueError("run.memory_gb plans quantum steps; unset it for the classical gas.")
    budget = int(budget_gb * 1e9)
    batch = config.sampler.batch
    divisors = [d for d in range(1, batch + 1) if batch % d == 0]
    n_micro = config.optimizer.n_micro_batches
    points: dict[int, int] = {}
    for _ in range(MAX_COMPILES):
        points[n_micro] = step_memory_bytes(_with_micro(config, n_micro), devices)
        if points[n_micro] <= budget:
            break
        n_micro = _predict(points, budget, divisors)
        if n_micro < 0:
            break
    fitting = {n: b for n, b in points.items() if b <= budget}
    tried = tuple(sorted(points.items()))
    if not fitting:
        n, b = min(points.items(), key=lambda item: item[1])
        raise ValueError(
            f"no optimizer.n_micro_batches fits run.memory_gb={budget_gb}: the smallest "
            f"step estimate is {b / 1e9:.2f} GB at n_micro_batches={n}. Lower sampler.batch "
            "or raise run.memory_gb.")
    chosen = min(fitting)
    plan = MemoryPlan(chosen, fitting[chosen], budget, tried)
    return _with_micro(config, chosen), plan


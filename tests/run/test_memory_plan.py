"""Memory plans: the search over micro-batches, and the real step memory they act on."""

import pytest

from fermiflow.run import memory_plan
from fermiflow.run.config import load_config
from fermiflow.run.memory_plan import plan_memory, step_memory_bytes

SMALL = ["sampler.batch=16", "run.pretrain_steps=0", "sampler.n_thermalize=0",
         "sampler.kind='metropolis'", "sampler.n_sweeps=2", "sampler.n_extra_sweeps=0"]


def _fake_memory(monkeypatch, constant, per_batch):
    """Replace the compile by the model bytes = constant + per_batch / n; log calls."""
    calls = []

    def fake(config, devices=None):
        n = config.optimizer.n_micro_batches
        calls.append(n)
        return int(constant + per_batch / n)

    monkeypatch.setattr(memory_plan, "step_memory_bytes", fake)
    return calls


def test_plan_picks_the_smallest_fitting_divisor(monkeypatch):
    config = load_config(None, ["sampler.batch=48"])
    calls = _fake_memory(monkeypatch, 1e9, 11e9)  # n = 1: 12 GB, 2: 6.5, 3: 4.67, 4: 3.75
    planned, plan = plan_memory(config, 4.0)
    assert plan.n_micro_batches == planned.optimizer.n_micro_batches == 4
    assert plan.step_bytes == int(1e9 + 11e9 / 4) <= plan.budget_bytes == int(4e9)
    assert calls[0] == 1 and calls[-1] == 4 and len(calls) <= memory_plan.MAX_COMPILES
    assert "n_micro_batches=4" in plan.describe()
    # a budget that the configured value already meets keeps it (one compile)
    calls.clear()
    _, plan = plan_memory(config, 20.0)
    assert (plan.n_micro_batches, calls) == (1, [1])


def test_plan_refuses_a_budget_below_the_constant_part(monkeypatch):
    config = load_config(None, ["sampler.batch=8"])
    _fake_memory(monkeypatch, 5e9, 8e9)
    with pytest.raises(ValueError, match=r"no optimizer.n_micro_batches fits.*6\.00 GB at "
                                         r"n_micro_batches=8"):
        plan_memory(config, 4.0)


def test_bad_budgets_are_refused_before_any_compile():
    with pytest.raises(ValueError, match="run.memory_gb must be > 0"):
        load_config(None, ["run.memory_gb=0"])
    with pytest.raises(ValueError, match="classical"):
        plan_memory(load_config(None, ["system.kind='classical'", "system.n=2",
                                       "system.temperature=0.5"]), 1.0)


@pytest.mark.slow  # two compiles of a full step, 65 s
def test_micro_batches_lower_the_compiled_step_memory():
    one = step_memory_bytes(load_config(None, SMALL))
    four = step_memory_bytes(load_config(None, [*SMALL, "optimizer.n_micro_batches=4"]))
    assert 0 < four < one, (four, one)

"""``fermiflow bench``: reference benchmarks against exact solvers and published data.

- :mod:`~fermiflow.run.bench.case`: a case = config, reference, tolerance rule, tier;
- :mod:`~fermiflow.run.bench.registry`: every case (``CASES``), built from
  :mod:`~fermiflow.run.bench.ideal_cases`, :mod:`~fermiflow.run.bench.two_electron_cases`,
  :mod:`~fermiflow.run.bench.gas_cases` and :mod:`~fermiflow.run.bench.small_cases`;
- :mod:`~fermiflow.run.bench.runner`: training, judging and the outputs.
"""

from fermiflow.run.bench.case import TIERS, Case, Reference, Rule
from fermiflow.run.bench.registry import CASES
from fermiflow.run.bench.runner import case_config, evaluate_case, judge, run_bench, select_cases

__all__ = [
    "CASES",
    "TIERS",
    "Case",
    "Reference",
    "Rule",
    "case_config",
    "evaluate_case",
    "judge",
    "run_bench",
    "select_cases",
]

"""fermiflow.observables: error bars (blocking, ESS), R-hat and ArviZ conversion."""

from fermiflow.observables.blocking import BlockingResult, blocking_analysis, blocking_error
from fermiflow.observables.diagnostics import (
    AcceptanceSummary,
    Estimate,
    acceptance_summary,
    estimate,
    integrated_autocorrelation_time,
    to_inference_data,
)

__all__ = [
    "AcceptanceSummary",
    "BlockingResult",
    "Estimate",
    "acceptance_summary",
    "blocking_analysis",
    "blocking_error",
    "estimate",
    "integrated_autocorrelation_time",
    "to_inference_data",
]

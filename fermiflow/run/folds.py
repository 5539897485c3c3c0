"""Fold checks of a run's flow: the fold weight of an uncertified box backflow.

A certified box backflow (``model.certify = true``, the default) cannot fold. With
``model.certify = false`` the free energy is a bound only as far as the fold region
carries no |Psi_K|^2 weight, so every final estimate of such a run comes with the
weight eps of :mod:`fermiflow.observables.fold_weight`, measured from tempered chains
started at the evaluation walkers, and the verdict against ``FOLD_WEIGHT_BOUND``.

Units: eps and the fractions are dimensionless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from fermiflow.observables.fold_weight import fold_weight, make_flow_log_weight

__all__ = ["FOLD_WEIGHT_BOUND", "fold_weight_line", "make_fold_check"]

FOLD_WEIGHT_BOUND = 1e-6  # a run's F counts as a bound only with eps + 3 sigma below this
MAX_CHAINS = 256
GAMMA = 0.3


def make_fold_check(config: Any, problem: Any, log_slater: Callable) -> Callable | None:
    """Return ``check(key, occ: (b, n), x: (b, n, dim), params) -> dict``, or None.

    None where no check is needed: a certified flow, a trap (its flow is checked by
    NaN rejection and ``fermiflow observe``), the identity or ODE flow. Spin-adapted
    Psi_K and several flows (parity, momentum class) are checked with the flow and
    the determinant combination of each K (``problem.flow_of``, ``log_slater``).
    """
    model = config.model
    if model.certify or problem.box_length is None or model.flow != "backflow":
        return None
    log_weight = make_flow_log_weight(problem.base_flow.apply, log_slater,
                                      flow_of=problem.flow_of)

    @jax.jit
    def run(key, occ, x, params):
        return fold_weight(key, log_weight, params, occ, x, box_length=problem.box_length,
                           gamma=GAMMA)

    def check(key, occ, x, params) -> dict:
        chains = min(MAX_CHAINS, x.shape[0])
        result = jax.tree.map(float, run(key, occ[:chains], x[:chains], params)._asdict())
        certified = result["value"] + 3 * result["error"] < FOLD_WEIGHT_BOUND
        return {**result, "gamma": GAMMA, "bound": FOLD_WEIGHT_BOUND, "below_bound": certified,
                "n_chains": chains, "method": "tempered chains |Psi_K|^(2 gamma), importance "
                "weights |Psi_K|^(2 (1 - gamma)), error over chains"}

    return check


def fold_weight_line(fold: dict) -> str:
    """Return the one-line verdict for a summary table."""
    verdict = ("below" if fold["below_bound"] else "NOT below") + f" the bound {fold['bound']:g}"
    note = "" if fold["below_bound"] else ": F is not a certified upper bound"
    return (f"fold weight (uncertified flow): {fold['value']:.3g} +- {fold['error']:.2g}, "
            f"{verdict}{note} (tempered fraction {fold['tempered_fraction']:.3g} of "
            f"{int(fold['n_samples'])} samples)")

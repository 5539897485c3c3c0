"""Fold checks of a finished box run: uniform fold fraction and the |Psi|^2 weight there.

For RUN_DIR (a ``fermiflow run`` of the electron gas), draws M uniform configurations
in the box and reports the fraction where det d zeta / d x <= 0 (binomial error), and
log(V^N |Psi_K|^2) (with |det J|) on the folded ones against its values on walkers of
|Psi_K|^2, for K from the run's own samples: a fold that matters carries weight
comparable to the walkers'; one at log-weight -30 below them carries none. Complements
the fold weight of the run's final estimates (importance sampling from tempered chains).

Usage: ``python benchmarks/fold_check.py RUN_DIR OUT.json [M]``.
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent))

import json
import math

import jax.numpy as jnp
import numpy as np
from _common import environment

from fermiflow.models.flow import fold_fraction
from fermiflow.observables.fold_weight import make_flow_log_weight
from fermiflow.run.build import log_slater_k
from fermiflow.run.observe import load_run, sample_run


def main() -> None:
    run_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    run = load_run(run_dir, None)
    problem, params = run.problem, run.state.params.wavefunction
    n, dim, length = problem.n, problem.dim, problem.box_length
    key = jax.random.key(11)
    uniform = jax.random.uniform(key, (m, n, dim), jnp.float64) * length
    fraction, err = fold_fraction(problem.flow.apply, params, uniform)
    occ, x, _ = sample_run(run, 4)
    occ = jnp.asarray(occ.reshape(-1, n))
    walkers = jnp.asarray(x.reshape(-1, n, dim))
    log_weight = jax.jit(jax.vmap(make_flow_log_weight(problem.flow.apply, log_slater_k(problem)),
                                  in_axes=(None, 0, 0)))
    offset = n * math.log(length**dim)  # log V^N
    k = occ[jnp.arange(m) % occ.shape[0]]
    on_uniform, margin = log_weight(params, k, uniform)
    on_walkers, _ = log_weight(params, occ, walkers)
    folded = np.asarray(margin <= 0)
    quantiles = (0.01, 0.5, 0.99)
    result = {
        "environment": environment(), "run_dir": str(run_dir),
        "run_versions": json.loads((run_dir / "versions.json").read_text()),
        "n_uniform": m, "fold_fraction": float(fraction), "fold_fraction_error": float(err),
        "log_VN_psi2_folded_quantiles": (np.quantile(np.asarray(on_uniform)[folded] + offset,
                                                     quantiles).tolist() if folded.any()
                                         else None),
        "log_VN_psi2_walkers_quantiles": np.quantile(np.asarray(on_walkers) + offset,
                                                     quantiles).tolist(),
        "quantiles": list(quantiles), "n_walkers": int(walkers.shape[0]),
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("environment",
                                                                    "run_versions")}))


if __name__ == "__main__":
    main()

"""Where the free energy of a two-electron box run is lost: p(K) or the states Psi_K.

For finished ``fermiflow run`` directories of two electrons in the 2D box, draws fresh
samples and writes, per run:

* F, E, S per particle from the run's own final evaluation (summary.json), against the
  exact canonical values (:func:`fermiflow.exact.two_electron_box_converged`);
* E_K = <Psi_K|H|Psi_K> per occupation set K (sample means, standard errors), and
  F_opt = -T ln sum_K exp(-E_K / T) over the sets seen: the F that the optimal p(K)
  would give with these states. F_model - F_opt is what p(K) loses; F_opt - F_exact
  is what the states lose;
* for the lowest sets, the exact lowest level of the same total momentum
  (K^2 / 4 + the relative levels of its parity class, ``fermiflow.exact.box_relative``);
  Psi_K of one total momentum are orthonormal, so the sum of their m lowest E_K is at
  least the sum of the m lowest exact levels there (Ky Fan), and E_K - E_exact of the
  lowest set of a momentum is a gap the flow has left.

Usage: ``python benchmarks/diagnose_pair_box.py OUT.json LABEL=RUN_DIR ...``. Each run
records its git commit and whether its tree was clean (versions.json).
"""

# ruff: noqa: E402
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent))

import json
import math
from collections import defaultdict

import numpy as np
from _common import environment

from fermiflow.exact import two_electron_box_converged
from fermiflow.exact.augmented_basis import augmented_tables
from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import ewald_pair_constant
from fermiflow.run.config import make_system
from fermiflow.run.observe import load_run, sample_run

N_STEPS = 100  # fresh sampler calls per run (x batch walkers)


def _sector_levels(gas, exchange_sectors):
    """Exact lowest levels (Hartree, whole system) per total-momentum index N."""
    length = gas.box_length
    tables = augmented_tables(dim=2, box_length=length, n_max=32)
    shift = ewald_pair_constant(dim=2, box_length=length)
    relative = {}
    for c in ((0, 0), (1, 0), (0, 1), (1, 1)):
        levels = [box_relative_levels(dim=2, box_length=length, coupling=1.0, parity_class=c,
                                      exchange=e, n_cuts=[32], n_aug=8, tables=tables)[0]
                  for e in exchange_sectors]
        relative[c] = np.sort(np.concatenate(levels)) + shift

    def levels(total_index):
        k = 2 * math.pi * (np.asarray(total_index) + 2 * np.asarray(gas.twist)) / length
        return k @ k / 4 + relative[tuple(int(v) % 2 for v in total_index)]

    return levels


def diagnose(run_dir: pathlib.Path) -> dict:
    run = load_run(run_dir, None)
    gas = make_system(run.config)
    temperature = run.problem.temperature
    occ, _, values = sample_run(run, N_STEPS)
    energy = (values.kinetic.real + values.potential).reshape(-1)
    log_p = values.log_p.reshape(-1)
    groups = defaultdict(list)
    for i, k in enumerate(occ.reshape(-1, occ.shape[-1]).tolist()):
        groups[tuple(k)].append(i)
    labels = np.asarray(gas.spectrum.quantum_numbers)
    exchange = (-1,) if gas.n_down == 0 else (1, -1)
    levels = _sector_levels(gas, exchange)
    sets = []
    for k, idx in groups.items():
        e = energy[np.asarray(idx)]
        total = labels[list(k)].sum(0)
        sets.append({"K": list(k), "count": len(idx), "p_model": float(np.exp(log_p[idx[0]])),
                     "E_K": float(e.mean()), "E_K_err": float(e.std(ddof=1) / math.sqrt(len(e)))
                     if len(e) > 1 else None, "total_index": total.tolist()})
    sets.sort(key=lambda s: s["E_K"])
    e_k = np.array([s["E_K"] for s in sets])
    weights = np.exp(-(e_k - e_k.min()) / temperature)
    f_opt = float(e_k.min() - temperature * np.log(np.sum(weights)))
    seen = defaultdict(int)
    for s in sets[:12]:
        key = tuple(s["total_index"])
        exact = levels(key)
        s["E_exact_same_momentum_rank"] = float(exact[seen[key]])
        seen[key] += 1
    summary = json.loads((run_dir / "summary.json").read_text())
    exact = two_electron_box_converged(gas).thermo
    n = 2
    est = summary["estimates"]
    versions = json.loads((run_dir / "versions.json").read_text())
    return {
        "run_dir": str(run_dir),
        "git_commit": versions.get("git_commit"), "git_dirty": versions.get("git_dirty"),
        "model": json.loads((run_dir / "config.json").read_text())["model"],
        "optimizer": json.loads((run_dir / "config.json").read_text())["optimizer"],
        "per_particle_hartree": {
            q: {"value": est[q]["value"] / n, "error": est[q]["error"] / n,
                "exact": getattr(exact, name) / n,
                "z": (est[q]["value"] - getattr(exact, name)) / est[q]["error"]
                if est[q]["error"] > 0 else None}
            for q, name in (("F", "free_energy"), ("E", "energy"), ("S", "entropy"))},
        "fresh_samples": int(energy.size),
        "F_model_per_particle": float(np.mean(energy + temperature * log_p)) / n,
        "F_opt_per_particle": f_opt / n,
        "lowest_sets": sets[:12],
    }


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    result = {"environment": environment(), "runs": {}}
    for item in sys.argv[2:]:
        label, run_dir = item.split("=", 1)
        result["runs"][label] = diagnose(pathlib.Path(run_dir))
        r = result["runs"][label]
        f = r["per_particle_hartree"]["F"]
        print(f"{label}: F/N {f['value']:.6f} +- {f['error']:.6f} (exact {f['exact']:.6f}, "
              f"z {f['z']}); F_model {r['F_model_per_particle']:.6f}, F_opt "
              f"{r['F_opt_per_particle']:.6f}", flush=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Command-line interface of fermiflow.

- ``fermiflow run [CONFIG] [--set section.key=value ...] [--dry-run] [--run-dir DIR]``:
  a variational run from a TOML config (no CONFIG: the default demo, 3 interacting
  electrons in a 2D quantum dot at finite temperature); ``--dry-run`` validates the
  config and builds the models without compiling or writing anything.
- ``fermiflow resume RUN_DIR [--set run.n_steps=...]``: continue a killed or finished
  run from its newest readable checkpoint, exactly.
- ``fermiflow info RUN_DIR``: config, versions, checkpoints, progress, summary.
- ``fermiflow observe RUN_DIR [--samples N] [--observables ...]``: observables from the
  newest checkpoint of a run (fresh samples): observables.json, PNG plots, an ArviZ
  netcdf file of the per-sample local values, and m*/m for the electron gas.
- ``fermiflow bench [NAMES...] [--tier quick|cpu|gpu] [--out DIR] [--list]``: reference
  benchmarks against exact solvers and published data (:mod:`fermiflow.run.bench`);
  exit code 1 when a case fails its tolerance rule.
- ``fermiflow exact``: the exact canonical thermodynamics of the ideal electron gas.

Several hosts: start one process per host with ``--coordinator HOST:PORT
--num-processes N --process-id I`` (or the environment variables
``FERMIFLOW_COORDINATOR``, ``FERMIFLOW_NUM_PROCESSES``, ``FERMIFLOW_PROCESS_ID``) and
the same ``--run-dir`` on a shared file system; ``jax.distributed.initialize`` joins
them, CPU hosts talk through gloo collectives, and the walkers are split over the
devices of all hosts. ``--distributed`` alone lets JAX detect a cluster (SLURM, ...).

Exit codes: 0 success, 1 a benchmark case failed, 2 a bad config or argument, 3 the NaN
guard stopped the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.hamiltonians.units import hartree_to_rydberg
from fermiflow.run.schema import OBSERVABLES

# The commands that build models import fermiflow.run.loop (and through it BlackJAX)
# inside the command, after jax.distributed.initialize: BlackJAX touches the backend
# on import, and the distributed runtime must start before any backend does.

__all__ = ["main"]

_THETAS = (0.0625, 0.15, 0.25, 0.5, 1.0, 2.0, 4.0)


def _exact_table(args: argparse.Namespace) -> str:
    twist = tuple(args.twist) if args.twist else None
    rows = [
        f"# exact canonical ideal Fermi gas: dim={args.dim} n_up={args.n_up} "
        f"n_down={args.n_down} rs={args.rs} emax={args.emax} twist={twist}",
        "# per particle, Rydberg; S and C_V in k_B per particle",
        f"{'theta':>8} {'F/N [Ry]':>14} {'E/N [Ry]':>14} {'S/N':>12} {'C_V/N':>12}",
    ]
    for theta in args.theta or _THETAS:
        gas = ElectronGas(
            n_up=args.n_up, n_down=args.n_down, dim=args.dim, rs=args.rs,
            theta=theta, emax=args.emax, twist=twist,
        )
        thermo = electron_gas_ideal_thermo(gas)
        n = gas.n_particles
        rows.append(
            f"{theta:8.4f} {hartree_to_rydberg(thermo.free_energy) / n:14.8f} "
            f"{hartree_to_rydberg(thermo.energy) / n:14.8f} "
            f"{thermo.entropy / n:12.8f} {thermo.heat_capacity / n:12.8f}"
        )
    return "\n".join(rows)


def _add_distributed(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several hosts (jax.distributed)")
    group.add_argument("--coordinator", default=os.environ.get("FERMIFLOW_COORDINATOR"),
                       help="HOST:PORT of process 0 [env FERMIFLOW_COORDINATOR]")
    group.add_argument("--num-processes", type=int,
                       default=os.environ.get("FERMIFLOW_NUM_PROCESSES"),
                       help="number of processes [env FERMIFLOW_NUM_PROCESSES]")
    group.add_argument("--process-id", type=int, default=os.environ.get("FERMIFLOW_PROCESS_ID"),
                       help="this process, 0..N-1 [env FERMIFLOW_PROCESS_ID]")
    group.add_argument("--distributed", action="store_true",
                       help="call jax.distributed.initialize() with cluster auto-detection")


def _add_observe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir")
    parser.add_argument("--samples", type=int, default=None, help="fresh samples in all")
    parser.add_argument("--observables", nargs="+", choices=OBSERVABLES, default=None)
    parser.add_argument("--checkpoint", default=None, help="default: the newest readable")
    parser.add_argument("--out", default=None, help="default: RUN_DIR/observe")
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--displacements", type=int, default=2, help="per sample, for n(k)")



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fermiflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train from a TOML config (default: the demo)")
    run.add_argument("config", nargs="?", default=None, help="TOML file; none: the demo")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="SECTION.KEY=VALUE", help="override a key (a TOML literal)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate and build the models; compile and write nothing")
    run.add_argument("--run-dir", default=None, help="default: runs/<date>-<time>")
    _add_distributed(run)
    resume = sub.add_parser("resume", help="continue a run from its newest checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="run.KEY=VALUE", help="e.g. run.n_steps=2000 to extend")
    _add_distributed(resume)
    info = sub.add_parser("info", help="describe a run directory")
    info.add_argument("run_dir")
    observe = sub.add_parser("observe", help="observables from a run's newest checkpoint")
    _add_observe_arguments(observe)
    bench = sub.add_parser("bench", help="reference benchmarks against exact and published data")
    bench.add_argument("names", nargs="*", help="cases to run (default: the tier's)")
    bench.add_argument("--tier", choices=("quick", "cpu", "gpu"), default=None,
                       help="quick (default), cpu or gpu; a tier includes those before it")
    bench.add_argument("--out", default=None, help="default: bench-results/<date>-<time>")
    bench.add_argument("--list", action="store_true", help="list the cases and exit")
    exact = sub.add_parser("exact", help="exact ideal-gas thermodynamics table")
    exact.add_argument("--dim", type=int, default=2)
    exact.add_argument("--n-up", type=int, default=13)
    exact.add_argument("--n-down", type=int, default=0)
    exact.add_argument("--rs", type=float, default=1.0)
    exact.add_argument("--emax", type=int, default=25)
    exact.add_argument("--twist", type=float, nargs="*", default=[0.25, 0.25])
    exact.add_argument("--theta", type=float, nargs="*", default=None)
    return parser


def _initialize_distributed(args: argparse.Namespace) -> None:
    import jax

    explicit = args.coordinator or args.num_processes or args.process_id is not None
    if not (explicit or args.distributed):
        return
    if explicit and None in (args.coordinator, args.num_processes, args.process_id):
        raise ValueError("several hosts need all of --coordinator, --num-processes and "
                         "--process-id (or FERMIFLOW_COORDINATOR, FERMIFLOW_NUM_PROCESSES, "
                         "FERMIFLOW_PROCESS_ID).")
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if explicit:
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=int(args.num_processes),
                                   process_id=int(args.process_id))
    else:
        jax.distributed.initialize()


def _default_run_dir() -> Path:
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _dry_run(config) -> str:
    import jax

    from fermiflow.run.config import config_to_json
    from fermiflow.run.engine import build_engine
    from fermiflow.run.reports import summary_table

    engine = build_engine(config)
    n = engine.n_particles
    table = summary_table(None, n_particles=n, reference=engine.reference, exact=engine.exact,
                          title="exact references (per particle):")
    return "\n".join([config_to_json(config), f"N = {n}, parameters: {engine.n_params}, "
                      f"devices: {len(jax.devices())}", table,
                      "dry run: config valid, models built; nothing compiled or written."])


def _resume_overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("run."):
            raise ValueError(f"resume takes --set run.KEY=VALUE, got {item!r}.")
        try:
            overrides[key[4:]] = int(value)
        except ValueError:
            raise ValueError(f"--set {key}: must be an integer, got {value!r}.") from None
    return overrides


def _train(args: argparse.Namespace) -> int:
    import jax

    from fermiflow.run.config import load_config

    jax.config.update("jax_enable_x64", True)  # float64 local energies and determinants
    _initialize_distributed(args)  # before anything touches a backend (blackjax does)
    from fermiflow.run.loop import RunStopped, resume_run, start_run

    try:
        if args.command == "run":
            config = load_config(args.config, args.overrides)
            if args.dry_run:
                print(_dry_run(config))
                return 0
            if args.run_dir is None and jax.process_count() > 1:
                raise ValueError("several processes need the same --run-dir.")
            run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir()
            print(f"fermiflow: run directory {run_dir}", flush=True)
            start_run(config, run_dir)
        else:
            resume_run(args.run_dir, _resume_overrides(args.overrides))
    except RunStopped as error:
        print(f"fermiflow: stopped: {error}", file=sys.stderr)
        return 3
    return 0


def _observe(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from fermiflow.run.observe import format_summary, observe_run

    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}.")
    result = observe_run(args.run_dir, n_samples=args.samples, observables=args.observables,
                         checkpoint=args.checkpoint, out_dir=args.out, n_bins=args.bins,
                         n_displacements=args.displacements)
    print(format_summary(result))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from fermiflow.run.bench import run_bench, select_cases

    if args.list:
        for case in select_cases(args.names, args.tier or "gpu"):
            print(f"{case.name:28s} {case.tier:6s} {case.description}")
        return 0
    result = run_bench(args.names, tier=args.tier, out=args.out)
    return 0 if result["passed"] == result["total"] else 1


def _info(args: argparse.Namespace) -> int:
    from fermiflow.run.loop import describe_run

    print(describe_run(args.run_dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    A user mistake (a bad config, argument or path) prints one line on stderr and
    returns 2, never a traceback.
    """
    args = _parser().parse_args(argv)
    commands = {"run": _train, "resume": _train, "observe": _observe, "info": _info,
                "bench": _bench,
                "exact": lambda a: print(_exact_table(a)) or 0}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
        print(f"fermiflow {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

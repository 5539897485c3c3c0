"""Command-line interface: ``fermiflow exact`` prints exact ideal-gas thermodynamics.

The variational training run (``fermiflow run``) arrives with the runs issue; until
then the main job is the exact canonical thermodynamics of the non-interacting
electron gas, the reference every interacting run is compared against.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fermiflow.hamiltonians.free_fermions import electron_gas_ideal_thermo
from fermiflow.hamiltonians.systems import ElectronGas
from fermiflow.hamiltonians.units import hartree_to_rydberg

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fermiflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    exact = sub.add_parser("exact", help="exact ideal-gas thermodynamics table")
    exact.add_argument("--dim", type=int, default=2)
    exact.add_argument("--n-up", type=int, default=13)
    exact.add_argument("--n-down", type=int, default=0)
    exact.add_argument("--rs", type=float, default=1.0)
    exact.add_argument("--emax", type=int, default=25)
    exact.add_argument("--twist", type=float, nargs="*", default=[0.25, 0.25])
    exact.add_argument("--theta", type=float, nargs="*", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        print(_exact_table(args))
    except ValueError as error:
        print(f"fermiflow: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

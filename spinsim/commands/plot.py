"""Draw the figures a spinsim file supports, as PNG and PDF.

* sweeps: phase-diagram heat maps of chi, <|m|> and C over T x h (and <m.u>, chi_u, Binder U)
  with the phase boundaries drawn and labelled by method; observables against T with error
  bars, one curve per field. Several sweeps of one system at different sizes on one grid also
  get their Binder crossings.
* results: observables against T with error bars.
* per-head values (datasets with dims (layer, head)): layer x head grids.

Examples:
  spinsim plot s.h5 --out figs/
  spinsim plot ising8.h5 ising16.h5 ising32.h5 --out figs/     # + Binder crossings L=8/16/32
"""
from __future__ import annotations

import argparse
import sys

from ..cli import add_common

HELP = "figures (PNG + PDF) of sweeps, results and per-head values in spinsim files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="spinsim HDF5 file(s)")
    add_common(p, out_default="figs", out_help="output folder for the figures (default figs/)")


def run(args: argparse.Namespace) -> int:
    from ..analysis.figures import plot_files

    paths = plot_files(args.files, args.out)
    for p in paths:
        print(p)
    print(f"spinsim plot: wrote {len(paths)} files to {args.out}", file=sys.stderr)
    return 0

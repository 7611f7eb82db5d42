"""``spinsim`` command line. Each subcommand lives in ``spinsim/commands/<name>.py`` and defines

    HELP: str                                   # one line
    def add_arguments(p: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    # 0 ok, 1 failure

Exit codes: 0 ok, 2 usage error (bad option or value, checked before any model load or heavy
work: :mod:`spinsim.commands.checks`), 1 failure, 130 interrupted; errors are
printed as one line ``spinsim <cmd>: error: ...``.

Every command with ``--out`` holds that output's lock (:func:`spinsim.locks.hold`) for its whole
run, from the check of an existing file to the last write: a second run into the same output is
refused naming the first. An interrupt (Ctrl-C, SIGTERM in a sweep) says truthfully what was saved.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ._version import __version__

COMMANDS = ("extract", "gaps", "ablate", "sweep", "atlas", "validate", "ground", "plot", "info", "demo")


README = "README.md"


class UsageError(ValueError):
    """A bad option value: exit code 2."""


class ArgumentsExit(SystemExit):
    """argparse refused the command line (exit code 2); :func:`main` returns 2 instead of exiting."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``spinsim CMD: error: MESSAGE (see --help)``, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")
        raise ArgumentsExit(2)


def one_line(message: str) -> str:
    """A message on one line: its first non-empty line, without a leading 'error:' (no 'error: error:')."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    while text.lower().startswith("error:"):
        text = text[len("error:"):].strip()
    return text + (" ..." if len(lines) > 1 else "")


def add_common(p: argparse.ArgumentParser, out_default: str | None = None, out_help: str = "output HDF5 file") -> None:
    """Options every command takes: --seed, --device, --quiet, --out."""
    from .commands.checks import seed

    p.add_argument("--seed", type=seed, default=0, help="random seed, an integer in [0, 2**63) (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (errors and results are still printed)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="where Monte Carlo runs: cpu, cuda or auto (CUDA when a GPU is present; default)")
    if out_default is not False:
        p.add_argument("--out", default=out_default, required=out_default is None, help=out_help)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = Parser(
        prog="spinsim",
        description="Attention heads of transformers as classical spin systems (H = -sum W_ij S_i.M S_j - sum h.S, k_B = 1).",
        epilog=f"Run 'spinsim <command> --help' for a command's options and an example. Documentation: {README}.",
    )
    parser.add_argument("--version", action="version", version=f"spinsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    mods: dict[str, object] = {}
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"spinsim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"spinsim.commands.{name}":
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=(mod.__doc__ or mod.HELP),
                           epilog=f"Documentation: {README}.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        mods[name] = mod
    return parser, mods


def main(argv: Sequence[str] | None = None) -> int:
    parser, mods = build_parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentsExit:
        return 2
    if not args.command:
        parser.print_help()
        return 2
    try:
        out = getattr(args, "out", None)
        if out:
            from .locks import hold
            with hold(out, "this output"):
                return int(mods[args.command].run(args) or 0)
        return int(mods[args.command].run(args) or 0)
    except UsageError as exc:
        print(f"spinsim {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spinsim {args.command}: interrupted; {_saved(args)}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback
        from .io import SpinsimFileError
        kind = "" if isinstance(exc, (ValueError, SpinsimFileError, FileNotFoundError)) else f"{type(exc).__name__}: "
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"spinsim {args.command}: error: {kind}{one_line(text)}", file=sys.stderr)
        if "SPINSIM_DEBUG" in __import__("os").environ:
            raise
        return 1


def _saved(args: argparse.Namespace) -> str:
    """What an interrupted command has saved, in words (true for every command)."""
    import os

    from .atomic import written
    out = getattr(args, "out", None)
    if not out:
        return "nothing was written"
    here = os.path.abspath(out)
    if args.command in ("sweep", "atlas"):
        if here in written:
            return f"the finished rows are saved in {out}: rerun the same command to resume"
        return f"no row was finished, {out} was not written" + (" (the file there is unchanged)"
                                                                  if os.path.exists(out) else "")
    if args.command == "plot":
        return f"the figures finished before the interrupt are in {out}; rerun the command for the rest"
    if args.command == "demo":
        done = sorted(p for p in written if p.startswith(here + os.sep))
        what = ", ".join(os.path.relpath(p, here) for p in done) or "no file"
        return f"{what} written in {out} (each complete); rerun the same command to go on from them"
    if here in written:
        return f"{out} was written completely before the interrupt"
    return f"{out} was not written" + (" (the earlier file there is unchanged)" if os.path.exists(out) else "")


if __name__ == "__main__":      # `python -m spinsim.cli`: run the package's module, so that the commands'
    from spinsim.cli import main as _main       # UsageError is this module's UsageError (exit code 2)
    sys.exit(_main())

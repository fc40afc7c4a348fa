"""The ``clusterlens`` command.

Each subcommand lives in its own module of this package and defines

* ``HELP``: one line shown in ``clusterlens --help``;
* ``add_arguments(parser)``: adds its options to an ``argparse`` parser;
* ``run(args) -> int``: does the work and returns the exit status.

Modules are discovered by name, so adding a stage's command means adding one file here.
A :class:`~clusterlens.errors.ClusterlensError` raised by a subcommand (or a file that
cannot be found or opened) is printed as one line on stderr with exit status 2, never as a
traceback; bad options are argparse's usage errors, also status 2.

Subcommand modules import nothing heavy at module level (numba, torch, astropy... are
imported inside ``run``), so that ``clusterlens --help`` and ``clusterlens COMMAND --help``
answer at once; while a subcommand runs, the first compilation of the numba kernels is
announced once on stderr (:mod:`clusterlens.cli._compile_notice`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from clusterlens import __version__
from clusterlens.errors import ClusterlensError

__all__ = ["main", "build_parser"]


def _subcommand_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        yield info.name, importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``clusterlens`` command, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="clusterlens",
        description="Find galaxy-cluster-scale strong gravitational lenses in imaging surveys.",
    )
    parser.add_argument("--version", action="version", version=f"clusterlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _subcommand_modules():
        p = sub.add_parser(
            name.replace("_", "-"),
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clusterlens`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 1
    from clusterlens._malloc import keep_temporaries_on_heap
    from clusterlens.cli._compile_notice import compile_notice

    keep_temporaries_on_heap()  # the command owns its process (docs/mock.md, "In your own process")
    try:
        with compile_notice():
            return int(args._run(args) or 0)
    except ClusterlensError as exc:
        print(f"clusterlens {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path the user gave that cannot be used: one line, not a traceback
        where = f": {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(f"clusterlens {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"clusterlens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

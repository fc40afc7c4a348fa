"""``clusterlens inspect``: serve the inspection app for a search project."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
from pathlib import Path

from clusterlens.errors import ClusterlensError

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run"]

HELP = "grade the selected candidates in the browser (local web app)"
DESCRIPTION = """\
Serve the inspection app: each grader opens the page, enters their name and works through
the iteration's queue with the keyboard; every decision goes straight into the project.

  clusterlens inspect search.sqlite --cutouts cutouts/
  clusterlens inspect search.sqlite --cutouts cutouts/ --host 0.0.0.0 --port 8765 --token T

Cutouts come from a folder of <id>.fits files (as `clusterlens fetch` writes them) or from
any CutoutSource: --source legacy (the Legacy Surveys viewer), or --source module:factory
(a callable returning a CutoutSource). The app listens on 127.0.0.1 unless --host says
otherwise; any other address needs a shared token (--token, or one is generated and
printed): graders open http://HOST:PORT/?token=TOKEN once.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", type=Path, help="search project (.sqlite)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cutouts", type=Path, help="folder of <id>.fits cutouts")
    where.add_argument("--source", help="'legacy' or 'module:factory' returning a CutoutSource")
    parser.add_argument("--iteration", type=int, default=None, help="default: the open one")
    parser.add_argument(
        "--size", type=int, default=None, help="field side in pixels (the project's, else 371)"
    )
    parser.add_argument(
        "--crop", type=int, default=None, help="network crop in pixels (the project's, else 223)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (8765; 0 picks a free one)")
    parser.add_argument("--token", default=None, help="shared token (required off loopback)")
    parser.add_argument("--cache", type=Path, default=None, help="image cache folder")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _source(args):
    from clusterlens.survey import FitsDirectoryCutouts, LegacySurveyCutouts

    if args.source is None:
        folder = args.cutouts or args.project.with_name("cutouts")
        if not folder.is_dir():
            raise ClusterlensError(
                f"No cutout folder {str(folder)!r}; pass --cutouts DIR or --source."
            )
        return FitsDirectoryCutouts(folder)
    if args.source == "legacy":
        return LegacySurveyCutouts()
    module, sep, name = args.source.partition(":")
    if not sep or not module or not name:
        raise ClusterlensError(
            f"--source must be 'legacy' or 'module:factory'. Got {args.source!r}."
        )
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ClusterlensError(f"Cannot load --source {args.source!r}: {exc}") from exc
    return factory()


def run(args: argparse.Namespace) -> int:
    from clusterlens.app import create_app, new_token, serve

    if not args.project.is_file():
        raise ClusterlensError(f"No search project at {str(args.project)!r}.")
    if not 0 <= args.port <= 65535:
        raise ClusterlensError(f"--port must be in [0, 65535]. Got {args.port}.")
    token = args.token
    if token is None and not _is_loopback(args.host):
        token = new_token()
        print(f"clusterlens inspect: listening on {args.host}, so a token is required: {token}")
    app = create_app(
        args.project,
        _source(args),
        iteration=args.iteration,
        size=args.size,
        crop=args.crop,
        token=token,
        cache_dir=args.cache,
    )
    if token:
        print(f"clusterlens inspect: graders open http://HOST:PORT/?token={token} once")
    serve(app, host=args.host, port=args.port)
    return 0

"""`facemask params` and `facemask check-params`: the settings' files from the command line.

* ``check [FILE]``: validate a params file: ``params.yaml`` (or any file named so) must hold every key; any
  other file (``configs/paper.yaml``) is an overlay, checked as applied to the schema's defaults.
* ``defaults``: print params.yaml as the schema writes it (every key, its default and its comment).
* ``apply OVERLAY [--to params.yaml]``: write params.yaml with the overlay's values (how the paper's
  configuration is switched on: DVC reads params.yaml alone).
* ``overrides OVERLAY``: the overlay as DVC ``-S key=value`` arguments, for one experiment:
  ``dvc exp run $(facemask params overrides configs/paper.yaml)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facemask.core import paramfile
from facemask.core.io import atomic_file
from facemask.core.params import Params


def load_any(path: str | Path) -> Params:
    """A complete params file (named ``params.yaml``) or an overlay (any other name) applied to the defaults."""
    path = Path(path)
    return paramfile.load_params(path) if path.name == "params.yaml" else paramfile.load_overlay(path)


def check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="params.yaml",
                   help="the params file to check (default: %(default)s); e.g. configs/paper.yaml (an overlay)")


CHECK_EPILOG = """\
Checks every key's type, range and choices, that no key is unknown, and for params.yaml that none is missing
(the schema is facemask/core/params.py; each key's meaning is documented there). A file not named params.yaml
is an overlay (only the keys that differ, like configs/paper.yaml), checked as applied to the defaults. The
pipeline's stages run the same check when they start; run it yourself before `dvc exp run` or in CI. One line
per problem, e.g.

  error: params.yaml: masks.crop_scale: must be > 0, got -1

exit status: 0 valid, 1 not.
"""


def check_run(args: argparse.Namespace) -> int:
    load_any(args.file)
    print(f"{args.file}: valid")
    return 0


def params_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check_arguments(sub.add_parser("check", help="validate a params file or an overlay"))
    sub.add_parser("defaults", help="print params.yaml as the schema writes it")
    apply = sub.add_parser("apply", help="write params.yaml with an overlay's values (e.g. configs/paper.yaml)")
    apply.add_argument("overlay")
    apply.add_argument("--to", default="params.yaml", metavar="FILE", help="the file to write (default: %(default)s)")
    over = sub.add_parser("overrides", help="an overlay as `dvc exp run` -S arguments")
    over.add_argument("overlay")


def params_run(args: argparse.Namespace) -> int:
    if args.action == "check":
        return check_run(args)
    if args.action == "defaults":
        sys.stdout.write(paramfile.render())
    elif args.action == "apply":
        params = paramfile.load_overlay(args.overlay)
        with atomic_file(Path(args.to), "w") as f:
            f.write(paramfile.render(params))
        print(f"{args.to}: written with {args.overlay}")
    else:
        print(" ".join(f"-S {o}" for o in paramfile.overrides(paramfile.load_overlay(args.overlay))))
    return 0

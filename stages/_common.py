"""What every stage script shares: params, logging, seeding, its paths, and the entry point `run_stage`.

A stage's paths are named once, in its ``cmd`` in dvc.yaml (``--out ${paths.raw}``; the folders are the
``vars`` at its top): `stage_args` reads them from the command line, so the scripts hold no path of
their own and `dvc.yaml`'s deps and outs are the paths the stage really reads and writes.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from pathlib import Path
from typing import Callable, NoReturn

import numpy as np

from facemask.core import errors, paramfile
from facemask.core.params import Params

ROOT = Path(__file__).resolve().parent.parent


def load_params(path: str | Path | None = None) -> Params:
    """The whole params.yaml (DVC's `-S` overrides are already written into it), checked against
    `facemask.core.params.Params` and returned validated; raises `facemask.core.errors.ParamsError` naming the
    bad keys."""
    path = Path(path) if path else Path(os.environ.get("FACEMASK_PARAMS", "params.yaml"))
    return paramfile.load_params(path)


def run_stage(main: Callable[[], object]) -> NoReturn:
    """A stage script's ``__main__``: run `main` with one-line errors and signal clean-up, then exit.

    A `facemask.core.errors.FacemaskError` prints ``error: <file or key>: <reason>`` and exits 1; Ctrl-C,
    SIGTERM and SIGHUP exit 128 + the signal after the clean-up (`facemask.core.errors.run`). ``--debug``
    on the command line (or ``FACEMASK_DEBUG=1``) shows the traceback too.
    """
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    sys.exit(errors.run(main, debug=debug))


def stage_args(stage: str, *paths: str, optional: tuple[str, ...] = (), positional: tuple[str, ...] = (),
               argv: list[str] | None = None) -> argparse.Namespace:
    """The stage's command line as dvc.yaml's ``cmd`` gives it: the `positional` words, then ``--<path> PATH``
    for each of `paths` (required) and `optional` (each a `Path`, or None when not given).

    A missing or unknown option exits with argparse's usage line (status 2), naming the stage."""
    ap = argparse.ArgumentParser(prog=f"python -m stages.{stage}", description=f"DVC stage {stage} (see dvc.yaml)")
    for name in positional:
        ap.add_argument(name)
    for name in paths:
        ap.add_argument(f"--{name.replace('_', '-')}", dest=name, type=Path, required=True, metavar="PATH")
    for name in optional:
        ap.add_argument(f"--{name.replace('_', '-')}", dest=name, type=Path, default=None, metavar="PATH")
    return ap.parse_args(sys.argv[1:] if argv is None else argv)


def setup_logging() -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    return logging.getLogger("facemask")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass

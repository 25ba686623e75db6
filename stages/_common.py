"""What every stage script shares: params, logging, seeding, and the entry point `run_stage`."""
from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path
from typing import Callable, NoReturn

import numpy as np

from facemask import errors, params

ROOT = Path(__file__).resolve().parent.parent


def load_params(path: str | Path | None = None) -> dict:
    """The whole params.yaml (DVC's `-S` overrides are already written into it), checked against
    `facemask.params.Params`; raises `facemask.errors.ParamsError` naming the bad keys."""
    path = Path(path) if path else Path(os.environ.get("FACEMASK_PARAMS", "params.yaml"))
    return params.load_params(path)


def run_stage(main: Callable[[], object]) -> NoReturn:
    """A stage script's ``__main__``: run `main` with one-line errors and signal clean-up, then exit.

    A `facemask.errors.FacemaskError` prints ``error: <file or key>: <reason>`` and exits 1; Ctrl-C,
    SIGTERM and SIGHUP exit 128 + the signal after the clean-up (`facemask.errors.run`). ``--debug``
    on the command line (or ``FACEMASK_DEBUG=1``) shows the traceback too.
    """
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    sys.exit(errors.run(main, debug=debug))


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

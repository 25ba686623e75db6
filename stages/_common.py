"""What every stage script shares: params, logging, seeding."""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent


def load_params(path: str | Path | None = None) -> dict:
    """The whole params.yaml (DVC's `-S` overrides are already written into it)."""
    path = Path(path) if path else Path(os.environ.get("FACEMASK_PARAMS", "params.yaml"))
    with open(path) as f:
        return yaml.safe_load(f)


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

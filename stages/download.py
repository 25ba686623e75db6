"""Stage `download`: params `data` (`data.seed` seeds the generator) -> data/raw (300VW layout, metadata.csv, report.json)."""
from __future__ import annotations

from pathlib import Path

from facemask.raw import fetch_raw
from stages._common import load_params, run_stage, seed_everything, setup_logging


def main() -> None:
    setup_logging()
    params = load_params()
    seed_everything(params["data"]["seed"])
    fetch_raw(params["data"], Path("data/raw"), params["data"]["seed"])


if __name__ == "__main__":
    run_stage(main)

"""Stage `download`: params `data` (`data.seed` seeds the generator) -> ``--out`` (data/raw: the 300VW layout,
metadata.csv, report.json).

    python -m stages.download --out data/raw
"""
from __future__ import annotations

from facemask.data.raw.fetch import fetch_raw
from stages._common import load_params, run_stage, seed_everything, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("download", "out", argv=argv)
    setup_logging()
    params = load_params()
    seed_everything(params.data.seed)
    fetch_raw(params.data.model_dump(), args.out, params.data.seed)


if __name__ == "__main__":
    run_stage(main)

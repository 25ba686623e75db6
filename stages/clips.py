"""Stage `clips`: params `data.seed`, `data.source`, `clips`, ``--masks`` -> ``--out`` (data/clips).

    python -m stages.clips --masks data/300VW-Mask --out data/clips

Reads data/300VW-Mask (frames.csv, images_orig/, labels_orig/, and data_splits/split_1/ for the
authors' release) and writes data/clips/{index.csv, split/*_per10.txt, <region>/<split>/*.npy,
meta.json, contact_*.png}; see `facemask.data.clips.build.build_clips`.
"""
from __future__ import annotations

from facemask.data.clips.build import build_clips
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("clips", "masks", "out", argv=argv)
    setup_logging()
    params = load_params()
    build_clips(args.masks, args.out, params.clips.model_dump(), params.data.seed, source=params.data.source)


if __name__ == "__main__":
    run_stage(main)

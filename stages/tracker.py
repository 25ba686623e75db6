"""Stage `tracker`: the paper's landmark-tracker baseline (Table 2, row 1) on the test frames ->
data/predictions/tracker.

    python -m stages.tracker --clips data/clips --masks data/300VW-Mask --raw data/raw --out data/predictions/tracker

Reads params ``fuse.tracker``; the test clips (``data/clips/index.csv``), each test frame's crop box
(``data/300VW-Mask/frames.csv``) and the raw test videos (``data/raw/300VW``; the crops ``images_orig`` for the
authors' release, which has no videos). dlib's tracker (`facemask.inference.tracker`) runs over each test video
from its first frame, and each test frame's landmarks become a mask inside that frame's crop. Writes ``--out``:
``VVV_FFFFFF.png`` per test frame (no face: all background) and ``info.json`` (where the landmarks came from, how
each frame was found). It uses no trained model: retraining one reruns nothing here.
"""
from __future__ import annotations

import json

from facemask.core.io import atomic_dir
from facemask.data.clips.build import read_split_clips
from facemask.data.layout import VIDEOS_DIR
from facemask.inference.tracker import landmark_info, predict_test_clips
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("tracker", "clips", "masks", "raw", "out", argv=argv)
    setup_logging()
    params = load_params()
    clips = read_split_clips(args.clips, "test")
    with atomic_dir(args.out) as out:
        stats = predict_test_clips(clips, args.raw / VIDEOS_DIR, args.masks, out, **params.fuse.tracker.model_dump())
        (out / "info.json").write_text(json.dumps(landmark_info(stats), indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)

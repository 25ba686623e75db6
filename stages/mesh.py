"""Stage `mesh`: the face-mesh landmark method (MediaPipe's face mesh -> 68 points -> masks; not in the paper) on
the test frames -> data/predictions/mesh.

    python -m stages.mesh --clips data/clips --masks data/300VW-Mask --raw data/raw --out data/predictions/mesh

Reads params ``fuse.mesh``; the same inputs as stage `tracker`, run the same way (`facemask.inference.mesh`
instead of dlib's tracker). Writes ``--out``: ``VVV_FFFFFF.png`` per test frame and ``info.json``; where
mediapipe is not installed (Python 3.13), ``info.json`` alone, with the reason (``{"skipped": ...}``), and the
evaluate stage leaves the method out. It uses no trained model.
"""
from __future__ import annotations

import json

from facemask.core.io import atomic_dir
from facemask.data.clips.build import read_split_clips
from facemask.data.layout import VIDEOS_DIR
from facemask.inference.landmarker import OneEuroFilter
from facemask.inference.mesh import MediaPipeError, MediaPipeLandmarker
from facemask.inference.tracker import landmark_info, predict_test_clips
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("mesh", "clips", "masks", "raw", "out", argv=argv)
    log = setup_logging()
    settings = load_params().fuse.mesh
    clips = read_split_clips(args.clips, "test")
    smoothing = None if settings.one_euro is None else OneEuroFilter(**settings.one_euro.model_dump())
    with atomic_dir(args.out) as out:
        try:
            landmarker = MediaPipeLandmarker(refine=settings.refine, smoothing=smoothing)
        except MediaPipeError as e:
            log.warning("mesh: method mesh left out: %s", e)
            stats = {"skipped": str(e)}
        else:
            with landmarker:
                stats = predict_test_clips(clips, args.raw / VIDEOS_DIR, args.masks, out, landmarker=landmarker,
                                           method="mesh")
        (out / "info.json").write_text(json.dumps(landmark_info(stats), indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)

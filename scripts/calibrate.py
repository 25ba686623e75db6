"""Measure the boxes the face detectors and the landmark tracker hand to each other.

    python scripts/calibrate.py detector [--detector haar] [--videos 24] [--frames 60] [--seed 1]
    python scripts/calibrate.py tracker [--detectors hog,cnn,haar] [--frames 40]

``detector``: a detector's box -> landmark box mapping (``to_landmarks``, `HAAR_TO_LANDMARKS` in
`facemask.inference.detect`), on synthetic video whose landmarks are known
(`facemask.inference.detect.calibrate_to_landmarks`).
``tracker``: the detectors' ``to_rect`` and `LANDMARKS_TO_RECT` (`facemask.inference.tracker`) on a real face,
scikit-image's astronaut under similarity transforms (`facemask.inference.tracker.calibrate_rect`).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from facemask.data.synth.generate import generate as synth_generate
from facemask.data.ibug68 import read_pts
from facemask.data.realface import moving_face
from facemask.data.frames import iter_frames
from facemask.inference.detect import DETECTORS, calibrate_to_landmarks, make_detector
from facemask.inference.tracker import calibrate_rect


def synthetic_samples(root: Path):
    """(frame, landmarks) of every frame of a synthetic 300VW-layout folder, streamed."""
    for vid in sorted(root.glob("*/vid.avi")):
        for k, frame in iter_frames(vid):
            if frame is not None:
                yield frame, read_pts(vid.parent / "annot" / f"{k:06d}.pts")


def detector(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"videos": args.videos, "frames": args.frames, "fps": 30, "width": 320, "height": 240,
               "categories": [0.4, 0.3, 0.3]}
        synth_generate(tmp, cfg, args.seed)
        print(calibrate_to_landmarks(synthetic_samples(Path(tmp)), make_detector(args.detector)))


def tracker(args) -> None:
    frames = list(moving_face(args.frames, (640, 480), 120, seed=4, rotation=15, scale_range=0.3).frames)
    for name in args.detectors.split(","):
        print(name, calibrate_rect(frames, make_detector(name)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("detector", help="a detector's box -> landmark box, on synthetic video")
    d.add_argument("--detector", default="haar", choices=list(DETECTORS))
    d.add_argument("--videos", type=int, default=24)
    d.add_argument("--frames", type=int, default=60)
    d.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("tracker", help="the detectors' to_rect and LANDMARKS_TO_RECT, on a real face")
    t.add_argument("--detectors", default="hog,cnn,haar")
    t.add_argument("--frames", type=int, default=40)
    args = ap.parse_args(argv)
    {"detector": detector, "tracker": tracker}[args.what](args)


if __name__ == "__main__":
    main()

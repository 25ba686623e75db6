"""Frames/s of the landmarkers (`facemask.inference.landmarker`) on 640 x 480 real-face video, and of every
other step of `facemask predict`'s landmark method, each timed alone on the same frames.

Steps per frame: decode (MJPG .avi, `cv2.VideoCapture`), landmarks (each landmarker), masks (the
authors' crop `square_crop_box` + `landmarks_to_mask` in it, pasted into the full frame), label PNG
(`write_label_png`, full frame), overlay (`facemask.app.outputs.draw_overlay`) and its video (mp4v).
``serial ms`` adds them up: the whole landmark method on one core; with decoding and writing in threads
of their own (as `predict` runs them) two cores can at best overlap the writing with the rest.

``--pipeline`` also runs the whole landmark method end to end as `facemask predict` runs it (its
decoding thread `facemask.app.sources.Prefetch`, its writer thread `facemask.app.outputs.Writer`: label PNGs
+ boxes.csv + overlay.mp4), with each landmarker: frames/s and CPU ms a frame of the whole run.

``--cores 1`` pins the process to one core before anything is loaded (MediaPipe's TFLite runs its
own threads: pinning is the single-core figure); the default uses every core. CPU ms are this
process's (all threads); the 1-minute load average is printed: on a busy machine wall figures are floors.

    python bench/bench_landmarker.py                  # every core
    python bench/bench_landmarker.py --cores 1
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(fn, items):
    """(wall s, cpu s, results) of fn over items."""
    out = []
    t0, c0 = time.perf_counter(), time.process_time()
    for it in items:
        out.append(fn(it))
    return time.perf_counter() - t0, time.process_time() - c0, out


def _landmarker(spec: str):
    """``mediapipe[:refine][:faces2]`` or ``dlib`` -> the landmarker (no smoothing)."""
    from facemask.inference.landmarker import DlibLandmarker
    from facemask.inference.mesh import MediaPipeLandmarker

    name, *opts = spec.split(":")
    if name == "dlib":
        return DlibLandmarker()
    return MediaPipeLandmarker(refine="refine" in opts, max_faces=2 if "faces2" in opts else 1)


def pipeline(video: Path, out: Path, spec: str) -> tuple[float, float, int]:
    """`facemask predict`'s landmark method with a landmarker: decoding thread, landmarks + masks here,
    writing thread (label PNGs, boxes.csv, overlay.mp4). Returns (wall s, cpu s, frames with a face)."""
    from facemask.app.outputs import FrameItem, Writer
    from facemask.app.sources import Prefetch, open_source
    from facemask.data.masks.draw import landmarks_to_mask, square_crop_box

    lm = _landmarker(spec)
    source = open_source(video)
    lm(next(iter(source))[1])  # warm
    lm.reset()
    out.mkdir()
    t0, c0 = time.perf_counter(), time.process_time()
    writer, decoder, found = Writer(out, source, True, "mp4"), Prefetch(source), 0
    try:
        for name, frame in decoder:
            item = FrameItem(name, frame)
            r = lm(frame)
            item.status = r.status
            if r.points is not None:
                h, w = frame.shape[:2]
                try:
                    x0, y0, x1, y1 = item.box = square_crop_box(r.points, h, w)
                    item.label = landmarks_to_mask(r.points - (x0, y0), y1 - y0, x1 - x0)
                    found += 1
                except ValueError:
                    item.box, item.status = None, "lost"
            writer.write(item)
    finally:
        decoder.close()
        writer.close()
        lm.close()
    return time.perf_counter() - t0, time.process_time() - c0, found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--cores", type=int, default=0, help="pin to this many cores (0: all)")
    ap.add_argument("--landmarkers", default="mediapipe,mediapipe:refine,mediapipe:faces2,mediapipe:refine:faces2,dlib")
    ap.add_argument("--pipeline", action="store_true", help="also time the whole landmark method end to end")
    args = ap.parse_args(argv)
    if args.cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cores]))
    import cv2

    from facemask.app.outputs import draw_overlay, paste_label
    from facemask.data.labels import write_label_png
    from facemask.data.masks.draw import landmarks_to_mask, square_crop_box
    from facemask.data.realface import moving_face, write_video

    cv2.setNumThreads(max(1, args.cores or len(os.sched_getaffinity(0))))
    w, h = (int(v) for v in args.size.lower().split("x"))
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mf = moving_face(args.frames, (w, h), 0.27 * h, seed=0, border="replicate")
        write_video(mf.frames, tmp / "in.avi")

        def decode_all(_):
            cap, n = cv2.VideoCapture(str(tmp / "in.avi")), 0
            while cap.read()[0]:
                n += 1
            cap.release()
            return n

        wall, cpu, _ = _timed(decode_all, [0])
        rows.append(("decode (MJPG)", wall, cpu, args.frames))
        frames = list(mf.frames)
        points = None
        for spec in args.landmarkers.split(","):
            lm = _landmarker(spec)
            lm(frames[0])  # warm
            lm.reset()
            wall, cpu, res = _timed(lm, frames)
            found = sum(r.points is not None for r in res)
            rows.append((f"landmarks: {spec} ({found}/{len(frames)} faces)", wall, cpu, len(frames)))
            lm.close()
            if points is None:
                points = [r.points for r in res]
        pts = [p for p in points if p is not None]

        def masks(p):
            box = square_crop_box(p, h, w)
            x0, y0, x1, y1 = box
            return paste_label(landmarks_to_mask(p - (x0, y0), y1 - y0, x1 - x0), box, (h, w)), box

        wall, cpu, labels = _timed(masks, pts)
        rows.append(("masks (crop + landmarks_to_mask + paste)", wall, cpu, len(pts)))
        full = [lab for lab, _ in labels]
        wall, cpu, _ = _timed(lambda p: landmarks_to_mask(p, h, w), pts)
        rows.append(("  (landmarks_to_mask on the whole frame instead)", wall, cpu, len(pts)))
        k = iter(range(len(full)))
        wall, cpu, _ = _timed(lambda lab: write_label_png(tmp / f"{next(k):06d}.png", lab), full)
        rows.append(("label PNG (full frame, compress_level 1)", wall, cpu, len(full)))
        vw = cv2.VideoWriter(str(tmp / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h))

        def overlay(i):
            lab, box = labels[i]
            x0, y0, x1, y1 = box
            return draw_overlay(frames[i], lab[y0:y1, x0:x1], box)

        wall, cpu, over = _timed(overlay, range(len(labels)))
        rows.append(("overlay (draw_overlay)", wall, cpu, len(labels)))
        wall, cpu, _ = _timed(vw.write, over)
        vw.release()
        rows.append(("overlay video (mp4v encode)", wall, cpu, len(over)))
        if args.pipeline:
            for spec in args.landmarkers.split(","):
                wall, cpu, found = pipeline(tmp / "in.avi", tmp / f"out_{spec.replace(':', '_')}", spec)
                rows.append((f"**whole landmark method: {spec}** ({found}/{args.frames} faces)", wall, cpu, args.frames))

    print(f"\n{args.frames} frames of {w}x{h} (the astronaut, face {0.27 * h:.0f} px), cores "
          f"{len(os.sched_getaffinity(0))}, load average (1 min) before: {load:.2f}\n")
    print("| step | ms/frame (wall) | cpu ms/frame | frames/s |\n|---|---|---|---|")
    for name, wall, cpu, n in rows:
        print(f"| {name} | {1000 * wall / n:.2f} | {1000 * cpu / n:.2f} | {n / wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

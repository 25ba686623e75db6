"""Benchmark the masks stage: frames/s in one process and with the process pool, and where the time goes.

    python bench/bench_masks.py                        # 8 synthetic videos at params.yaml's size
    python bench/bench_masks.py --videos 30 --workers 4
    python bench/bench_masks.py --raw data/raw         # an existing data/raw (300VW/ inside)

Wall time depends on what else runs on the machine; CPU seconds per frame (this process and its
workers) do not, so both are reported. The breakdown times one video's steps in this process.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from facemask.data.frames import iter_frames
from facemask.data.ibug68 import read_pts
from facemask.data.labels import write_label_png
from facemask.data.masks.build import build_masks
from facemask.data.masks.draw import landmarks_to_mask, square_crop_box

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(raw: Path, out: Path, workers: int, m: dict) -> tuple[float, float, int]:
    c0, t0 = _cpu(), time.perf_counter()
    s = build_masks(raw, out, "synthetic", crop_scale=m["crop_scale"], jpeg_quality=m["jpeg_quality"],
                          workers=workers, progress=False)
    return time.perf_counter() - t0, _cpu() - c0, s["kept"]


def _breakdown(vdir: Path, m: dict, tmp: Path) -> dict[str, float]:
    """Milliseconds per frame of each step, on one video."""
    t = dict.fromkeys(("decode", "read .pts", "crop box", "mask", "write jpg", "write png"), 0.0)
    n = 0
    it = iter_frames(vdir / "vid.avi")
    while True:
        t0 = time.perf_counter()
        item = next(it, None)
        t1 = time.perf_counter()
        if item is None:
            break
        k, frame = item
        t["decode"] += t1 - t0
        pts = read_pts(vdir / "annot" / f"{k:06d}.pts")
        t2 = time.perf_counter()
        x0, y0, x1, y1 = square_crop_box(pts, *frame.shape[:2], m["crop_scale"])
        t3 = time.perf_counter()
        lab = landmarks_to_mask(pts - (x0, y0), y1 - y0, x1 - x0)
        t4 = time.perf_counter()
        cv2.imwrite(str(tmp / "a.jpg"), frame[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, m["jpeg_quality"]])
        t5 = time.perf_counter()
        write_label_png(tmp / "a.png", lab)
        t6 = time.perf_counter()
        for key, dt in zip(list(t)[1:], (t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            t[key] += dt
        n += 1
    return {k: 1000 * v / max(n, 1) for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--raw", help="an existing data/raw folder (with 300VW/) instead of a generated set")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--workers", type=int, help="pool size (default: params masks.workers)")
    args = ap.parse_args()
    params = yaml.safe_load(open(args.params))
    m = params["masks"]
    workers = args.workers or int(m["workers"])
    tmp = Path(tempfile.mkdtemp(prefix="bench_masks-"))
    try:
        if args.raw:
            raw = Path(args.raw)
        else:
            from facemask.data.synth.generate import generate

            cfg = dict(params["data"]["synthetic"], videos=args.videos)
            if args.frames:
                cfg["frames"] = args.frames
            raw = tmp / "raw"
            t0 = time.perf_counter()
            generate(raw / "300VW", cfg, seed=int(params.get("seed", 0)))
            print(f"generated  : {cfg['videos']} videos x {cfg['frames']} frames at {cfg['width']}x{cfg['height']}"
                  f" in {time.perf_counter() - t0:.1f} s")
        print(f"machine    : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        for w in sorted({1, workers}):
            wall, cpu, n = _run(raw, tmp / f"out{w}", w, m)
            print(f"workers {w:<3}: {n} frames, wall {wall:.2f} s -> {n / wall:.0f} frames/s; "
                  f"CPU {1000 * cpu / n:.2f} ms/frame ({n / cpu:.0f} frames per CPU-second)")
        vdir = sorted(p for p in (raw / "300VW").iterdir() if p.is_dir())[0]
        steps = _breakdown(vdir, m, tmp)
        print(f"per frame  : {sum(steps.values()):.2f} ms in one process (video {vdir.name}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
        sizes = [np.mean([cv2.imread(str(p)).shape[0] for p in sorted((tmp / f"out{workers}" / "images_orig").glob("*.jpg"))[:50]])]
        print(f"crops      : about {sizes[0]:.0f} px a side")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

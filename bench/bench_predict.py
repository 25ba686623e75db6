"""Frames/s of `facemask predict` at the default model size, split into decode, detection, network, writing.

The input is a short video made here: synthetic talking-face frames (`facemask.synth`, 320 x 240)
pasted into a larger frame (default 640 x 480, MJPG .avi). The models are the trained ones in
``--models`` (default ``models/``) when they are there; otherwise untrained models of the default
configuration in params.yaml (``model.*``, ``clips.input_size``, ``train.convlstm.T``) are built with
`facemask.nets` and saved to a temporary folder — the figures are then for untrained weights, which
changes nothing in the speed (the cascade's work does not depend on what it predicts).

    python bench/bench_predict.py [--frames 120] [--size 640x480] [--device cpu] [--batch 4]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facemask import synth  # noqa: E402
from facemask.nets import build_model, save_model  # noqa: E402
from facemask.predict import PredictError, load_cascade, predict  # noqa: E402

CLASSES = {"face": 5, "eyes": 2, "mouth": 3}


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.machine()} x {os.cpu_count()}"


def make_video(path: Path, frames: int, size: tuple[int, int], seed: int = 0) -> None:
    """Synthetic 320 x 240 frames pasted at the centre of a grey frame of `size`, written as MJPG."""
    w, h = size
    with tempfile.TemporaryDirectory() as tmp:
        synth.generate(tmp, {"videos": 1, "frames": frames, "fps": 30, "width": 320, "height": 240,
                             "categories": [1, 0, 0], "workers": 1}, seed)
        cap = cv2.VideoCapture(str(Path(tmp) / "001" / "vid.avi"))
        vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
        x0, y0 = (w - 320) // 2, (h - 240) // 2
        while True:
            ok, small = cap.read()
            if not ok:
                break
            big = np.full((h, w, 3), 110, np.uint8)
            big[y0:y0 + 240, x0:x0 + 320] = small
            vw.write(big)
        vw.release()
        cap.release()


def untrained_models(root: Path, params: dict) -> dict:
    """Untrained ConvLSTM-FCNs of the default configuration, saved as the pipeline saves them."""
    m = params["model"]
    cfg = {"encoder": m["encoder"], "output_stride": m["output_stride"], "peephole": m["peephole"],
           "input_size": params["clips"]["input_size"], "T": params["train"]["convlstm"]["T"]}
    for region, classes in CLASSES.items():
        (root / region).mkdir(parents=True)
        c = dict(cfg, classes=classes, region=region)
        save_model(root / region / "convlstm.pt", build_model("convlstm", c), "convlstm", c)
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--size", default="640x480", help="frame size WxH (default: %(default)s)")
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, all cores)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--keep", metavar="DIR", help="keep predict's output (labels, overlay, summary) in DIR")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    load = os.getloadavg()[0]  # other work on the machine: the figures are only as good as it is idle

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "bench.avi"
        make_video(video, args.frames, size)
        models, weights = Path(args.models), "trained"
        try:
            cfg = dict(load_cascade(models, "cpu").models["face"].config)
        except PredictError as e:
            print(f"no usable trained models ({e}); timing untrained models of the default config", file=sys.stderr)
            models, weights = tmp / "models", "untrained (same speed)"
            cfg = untrained_models(models, yaml.safe_load(open(args.params)))
        out = Path(args.keep) if args.keep else tmp / "out"
        s = predict(video, out, models=models, device=args.device, batch=args.batch, threads=args.threads,
                    progress=False, overwrite=bool(args.keep))

    t, n = s["timings_s"], s["frames"]
    print(json.dumps({"frames": n, "frame_size": s["frame_size"], "faces_found": s["faces_found"],
                      "device": s["device"], "batch": args.batch, "weights": weights,
                      "model": {k: cfg.get(k) for k in ("encoder", "output_stride", "input_size", "T")},
                      "torch_threads": torch.get_num_threads(), "cpu": cpu_name(),
                      "load_avg_1min_before": round(load, 2),
                      "timings_s": t, "frames_per_s": s["frames_per_s"]}, indent=2))
    print(f"\n{'phase':<10} {'s':>8} {'ms/frame':>9} {'frames/s':>9} {'share':>6}")
    for phase in ("decode", "detection", "network", "writing", "setup", "total"):
        sec = t[phase]
        print(f"{phase:<10} {sec:8.2f} {1000 * sec / n:9.1f} {n / sec if sec else float('inf'):9.1f} "
              f"{100 * sec / t['total']:5.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

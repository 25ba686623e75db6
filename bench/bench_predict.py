"""Frames/s of `facemask predict` for every method, landmarker and detector, split into its phases.

Phases: decode, detection (dlib: the detector; mediapipe: the tile search for small faces), landmarks
(the landmarker, its smoothing, and the landmark method's masks), network (the learned methods), writing.
``--landmarkers``: ``mediapipe`` (MediaPipe's face mesh; ``--detectors`` do not apply) and ``dlib`` (one row
per detector).

The input is a real-face video made here (`facemask.data.realface`: scikit-image's astronaut photograph
moving through the frames, default 640 x 480, MJPG .avi, with a few occluded frames), so every
detector finds the face and the landmark method runs as it does on real video. ``--input synthetic``
uses synthetic talking-face frames (`facemask.data.synth`, 320 x 240) pasted into the larger frame instead.

The learned methods use the trained models in ``--models`` (default ``models/``) when they are there (their
encoders in ONNX Runtime where the pipeline's ``export`` stage or `facemask export` has exported them, else
torch: the ``runtime`` column);
otherwise untrained models of the default configuration in params.yaml (``model.*``, ``clips.input_size``,
``train.convlstm.T``) are built with `facemask.models.nets`, saved to a temporary folder and exported
(unless ``--runtime torch``) — the figures are then for untrained weights, which changes nothing in the speed.

Decoding and writing run in threads of their own (`facemask.app.predict`), so the phases overlap: their
times are each thread's own and add up to more than the wall time. ``frames/s`` is frames / (wall
time - setup); setup (loading models) is shown apart. ``cpu ms/frame`` (all threads of this process, setup
left out) is less sensitive to other work on the machine than the wall time; the 1-minute load average is
printed before and after: wall figures mean something only on an idle machine (load under ~1 on 2 cores).
``idle 2-core bound`` is what the CPU times allow at most on an idle 2-core machine (`idle_bound`: each
thread's own CPU from summary.json's ``cpu_s``), a figure that a busy machine leaves roughly alone.

    python bench/bench_predict.py                                    # every method, both landmarkers
    python bench/bench_predict.py --methods landmarks --landmarkers dlib --detectors hog,cnn,haar --frames 240
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
import yaml

from facemask.app.predict import PredictError, predict
from facemask.app.runtime import RUNTIMES, export_models
from facemask.app.segmenters import load_cascade
from facemask.data.synth.generate import generate as synth_generate
from facemask.models.registry import build_model, save_model

ROOT = Path(__file__).resolve().parent.parent

CLASSES = {"face": 5, "eyes": 2, "mouth": 3}
PHASES = ("decode", "detection", "landmarks", "network", "writing")


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.machine()} x {os.cpu_count()}"


def make_video(path: Path, frames: int, size: tuple[int, int], kind: str = "real", seed: int = 0) -> None:
    """A real-face video (the astronaut, face ~ a quarter of the frame height, 6 occluded frames) or
    synthetic 320 x 240 frames pasted at the centre of a grey frame of `size`, as MJPG."""
    from facemask.data.realface import moving_face, write_video

    w, h = size
    if kind == "real":
        mf = moving_face(frames, size, 0.27 * h, seed=seed, occluded=range(frames // 2, frames // 2 + 6),
                         border="replicate")
        write_video(mf.frames, path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        synth_generate(tmp, {"videos": 1, "frames": frames, "fps": 30, "width": 320, "height": 240,
                             "categories": [1, 0, 0], "workers": 1}, seed)
        cap = cv2.VideoCapture(str(Path(tmp) / "001" / "vid.avi"))
        big = []
        x0, y0 = (w - 320) // 2, (h - 240) // 2
        while True:
            ok, small = cap.read()
            if not ok:
                break
            frame = np.full((h, w, 3), 110, np.uint8)
            frame[y0:y0 + 240, x0:x0 + 320] = small
            big.append(frame)
        cap.release()
        write_video(np.stack(big), path)


def runtime_name(run: dict) -> str:
    """Where a run's encoders ran: ``onnxruntime``, ``torch``, ``mixed`` or ``-`` (the landmark method)."""
    names = {v.split()[0] for v in (run.get("runtime") or {}).values()}
    return "-" if not names else names.pop() if len(names) == 1 else "mixed"


def idle_bound(run: dict) -> float:
    """Frames/s that an idle machine with two cores could reach at most, from the run's CPU times: frames /
    max(the longest thread chain, all the CPU / 2). The main thread's chain holds the landmarker's own threads
    (it waits for MediaPipe's graph); the network, writing and decoding threads are chains of their own."""
    c = run["cpu_s"]
    work = c["total"] - c["setup"]
    rest = work - c["main"] - c["decode"] - c["network"] - c["writing"]
    longest = max(c["main"] + max(rest, 0.0), c["decode"], c["network"], c["writing"], work / 2)
    return run["frames"] / longest if longest > 0 else float("nan")


def untrained_models(root: Path, params: dict) -> dict:
    """Untrained ConvLSTM-FCNs (and the face FCN) of the default configuration, saved as the pipeline saves them."""
    m = params["model"]
    size = params["clips"]["input_size"]
    cfg = {"encoder": m["encoder"], "output_stride": m["output_stride"], "encoder_depth": m["encoder_depth"],
           "peephole": m["peephole"], "T": params["train"]["convlstm"]["T"]}
    for region, classes in CLASSES.items():
        (root / region).mkdir(parents=True)
        c = dict(cfg, classes=classes, region=region,
                 input_size=size[region] if isinstance(size, dict) else size)
        save_model(root / region / "convlstm.pt", build_model("convlstm", c), "convlstm", c)
        if region == "face":
            save_model(root / region / "fcn.pt", build_model("fcn", c), "fcn", {**c, "T": None})
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--size", default="640x480", help="frame size WxH (default: %(default)s)")
    ap.add_argument("--input", choices=["real", "synthetic"], default="real")
    ap.add_argument("--methods", default="landmarks,cascade,primary,fcn")
    ap.add_argument("--landmarkers", default="mediapipe,dlib", help="any of mediapipe, dlib")
    ap.add_argument("--detectors", default="hog,haar", help="dlib's: any of hog, cnn, haar (cnn is slow on a CPU)")
    ap.add_argument("--detect-every", type=int, default=None, help="default: predict's")
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, all cores)")
    ap.add_argument("--runtime", default="auto", choices=RUNTIMES,
                    help="where the encoders run (predict's --runtime); untrained models are exported for ONNX "
                         "Runtime unless torch (default: %(default)s)")
    ap.add_argument("--no-video", action="store_true", help="no overlay video (labels and summary only)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--json", metavar="FILE", help="also write every run's summary here")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    load = os.getloadavg()[0]  # other work on the machine: the figures are only as good as it is idle
    extra = {} if args.detect_every is None else {"detect_every": args.detect_every}
    runs = []

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video, warm = tmp / "bench.avi", tmp / "warm.avi"
        make_video(video, args.frames, size, args.input)
        make_video(warm, 3, size, args.input)
        models, weights = Path(args.models), "trained"
        learned = [m for m in args.methods.split(",") if m != "landmarks"]
        if learned:
            try:
                load_cascade(models, "cpu", runtime="torch")
            except PredictError as e:
                print(f"no usable trained models ({e}); timing untrained models of the default config",
                      file=sys.stderr)
                models, weights = tmp / "models", "untrained (same speed)"
                untrained_models(models, yaml.safe_load(open(args.params)))
                if args.runtime != "torch":
                    export_models(models)
        combos = [(lm, det) for lm in args.landmarkers.split(",")
                  for det in (args.detectors.split(",") if lm == "dlib" else ["-"])]
        for method in args.methods.split(","):
            for landmarker, detector in combos:
                kw = dict(models=models, device=args.device, batch=args.batch, threads=args.threads, progress=False,
                          runtime=args.runtime,
                          method=method, landmarker=landmarker, video=not args.no_video, **extra,
                          **({"detector": detector} if landmarker == "dlib" else {}))
                name = f"{method}_{landmarker}_{detector}"
                predict(warm, tmp / f"warm_{name}", **kw)  # dlib's models are read once per process
                s = predict(video, tmp / f"out_{name}", **kw)
                runs.append({"method": method, **s})
                print(f"{method} / {landmarker} / {detector}: {s['frames_per_s']} frames/s with setup", file=sys.stderr)

    n, after = args.frames, os.getloadavg()[0]
    print(f"\n{n} frames of {size[0]}x{size[1]} ({args.input} face), {cpu_name()}, threads "
          f"{runs[0]['threads']}, load average (1 min) before: {load:.2f}, after: {after:.2f}; learned models: "
          f"{weights}; overlay video: {'no' if args.no_video else 'yes'}\n")
    head = ["method", "landmarker", "detector", "runtime", "faces", *(f"{p} ms" for p in PHASES), "setup s",
            "cpu ms/frame", "idle 2-core bound", "frames/s"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in runs:
        t = r["timings_s"]
        work = t["total"] - t["setup"]
        det = r["detector"]
        print("| " + " | ".join([r["method"], r["landmarker"]["name"], f"{det['name']} k={det['detect_every']}" if det else "-",
                                 runtime_name(r), f"{r['faces_found']}/{r['frames']}",
                                 *(f"{1000 * t[p] / r['frames']:.1f}" for p in PHASES), f"{t['setup']:.1f}",
                                 f"{1000 * (r['cpu_s']['total'] - r['cpu_s']['setup']) / r['frames']:.1f}",
                                 f"{idle_bound(r):.0f}",
                                 f"**{r['frames'] / work:.1f}**"]) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_avg_1min_before": load, "load_avg_1min_after": after,
                                               "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

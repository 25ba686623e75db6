"""Stage `fuse`: every method of the paper on the test clips -> data/predictions.

Reads params ``clips.window``, ``clips.zoom`` (the zoom margins), ``train.device``, ``fuse``; the test
clips (``data/clips/index.csv``, ``data/clips/face/test``, the eye and mouth test sub-datasets, read
with `facemask.data.clips.store.load_split`), the original-resolution crops ``data/300VW-Mask/images_orig`` and the models
``models/<region>/{fcn,convlstm}.pt``, and Table 2's VGG-16 baselines that ``models/face/baselines/archs.json``
names (stage train_baselines; none by default). Writes, atomically:

* ``data/predictions/<method>/VVV_FFFFFF.png`` for ``fcn``, ``fcn_smooth``, ``primary``, ``cascade``, the
  temporal methods ``primary_stream``, ``cascade_stream`` (the ConvLSTM state carried across the clip's
  windows) and ``primary_reset`` (the memoryless control), ``tracker`` (the paper's landmark-tracker
  baseline, `facemask.inference.tracker`, run over the raw test videos ``data/raw/300VW``; settings
  ``fuse.tracker``) and ``mesh`` (MediaPipe's face mesh -> 68 landmarks -> masks, `facemask.inference.mesh`,
  run over the same videos in the same way; settings ``fuse.mesh``; left out, with a warning, where mediapipe
  is not installed): label PNGs (class ids, paper palette) at each crop's original size; also ``<arch>`` for
  each baseline (frame by frame, as ``fcn``);
* ``data/predictions/probes/<black|noise>/<method>/VVV_FFFFFF.png``: the memory probes
  (`facemask.inference.probes`), labels on the replaced frames only;
* ``data/predictions/boxes.csv``: the eye and mouth boxes of every window, and the fallback used;
* ``data/predictions/zoomed/<eyes|mouth>/<fcn|convlstm>.npy``: the zoomed models' labels on their
  test sub-datasets (Tables 7, 8), at the packed size;
* ``data/predictions/info.json``: clips, frames, the methods and baselines scored, the probes, how often each
  box fallback was used, and how the tracker and the face mesh found the face in the test frames (or why the
  mesh was left out) (no wall-clock figures, so the output's bytes follow from
  its inputs; the seconds per method go to the log).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from facemask.core import devices
from facemask.core.io import atomic_dir
from facemask.data.clips.build import read_split_clips
from facemask.data.labels import write_label_png
from facemask.data.layout import VIDEOS_DIR
from facemask.data.clips.regions import ZOOM_REGIONS
from facemask.data.clips.store import load_split
from facemask.inference.fusion import CLIP_METHODS, TEMPORAL_METHODS, Cascade, ClipPredictor, predict_packed
from facemask.inference.landmarker import OneEuroFilter
from facemask.inference.mesh import MediaPipeError, MediaPipeLandmarker
from facemask.inference.probes import PROBED, PROBES, probe_clip
from facemask.inference.tracker import predict_test_clips
from facemask.models.registry import load_model
from stages._common import load_params, run_stage, setup_logging, stage_args


def read_crop(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{path}: missing or unreadable face crop")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def mesh_predictions(clips: list[dict], raw_dir: Path, mask_dir: Path, out_dir: Path, settings: dict, log) -> dict:
    """The ``mesh`` method's label PNGs into `out_dir` (made here), as `predict_test_clips` makes the tracker's;
    its summary for info.json, or where mediapipe is missing ``{"skipped": why}`` and nothing written."""
    one_euro = settings["one_euro"]
    try:
        landmarker = MediaPipeLandmarker(refine=settings["refine"],
                                         smoothing=None if one_euro is None else OneEuroFilter(**one_euro))
    except MediaPipeError as e:
        log.warning("fuse: method mesh left out: %s", e)
        return {"skipped": str(e)}
    with landmarker:
        out_dir.mkdir()
        return predict_test_clips(clips, raw_dir, mask_dir, out_dir, landmarker=landmarker, method="mesh")


def landmark_info(stats: dict) -> dict:
    """What info.json keeps of a landmark method's run (no wall-clock figures)."""
    if "skipped" in stats:
        return stats
    return {"source": stats["source"], "status": stats["status"],
            "frames_without_face": len(stats["frames_without_face"])}


def main(argv: list[str] | None = None) -> None:
    args = stage_args("fuse", "clips", "masks", "raw", "models", "out", argv=argv)
    log = setup_logging()
    params = load_params()
    clips_dir, mask_dir, models_dir, out_dir = args.clips, args.masks, args.models, args.out
    baselines_dir = models_dir / "face" / "baselines"
    device = devices.resolve_device(params["train"]["device"], what="train.device")
    T = int(params["clips"]["window"])
    t_start = time.perf_counter()

    clips = read_split_clips(clips_dir, "test")
    packed, _ = load_split(clips_dir / "face" / "test")
    if len(clips) != packed.shape[0]:
        raise ValueError(f"{clips_dir / 'index.csv'} lists {len(clips)} test clips, "
                         f"{clips_dir / 'face/test'} holds {packed.shape[0]}")
    cascade = Cascade.from_dir(models_dir, params["clips"]["zoom"], device)
    if cascade.T != T:
        raise ValueError(f"the face ConvLSTM-FCN was trained on T = {cascade.T}, clips.window is {T}")
    manifest = baselines_dir / "archs.json"
    archs = json.loads(manifest.read_text())["archs"] if manifest.is_file() else []
    baselines = {arch: load_model(baselines_dir / f"{arch}.pt") for arch in archs}
    predictor = ClipPredictor(load_model(models_dir / "face" / "fcn.pt"), cascade, params["fuse"]["smooth_sigma"],
                              baselines)
    methods = (*CLIP_METHODS, *TEMPORAL_METHODS, *baselines)
    log.info("fuse: %d test clips, T = %d, device %s; baselines: %s", len(clips), T, device, archs or "none")

    with atomic_dir(out_dir) as out:
        frames, boxes = write_methods(out, predictor, methods, clips, packed, mask_dir)
        pd.DataFrame(boxes).to_csv(out / "boxes.csv", index=False, float_format="%.5f")
        probed = write_probes(out / "probes", predictor, clips, packed, mask_dir)
        (out / "tracker").mkdir()
        tracker = predict_test_clips(clips, args.raw / VIDEOS_DIR, mask_dir, out / "tracker", **params["fuse"]["tracker"])
        mesh = mesh_predictions(clips, args.raw / VIDEOS_DIR, mask_dir, out / "mesh", params["fuse"]["mesh"], log)

        for region in ZOOM_REGIONS:
            images, _ = load_split(clips_dir / region / "test")
            (out / "zoomed" / region).mkdir(parents=True)
            for arch in ("fcn", "convlstm"):
                model = load_model(models_dir / region / f"{arch}.pt")
                np.save(out / "zoomed" / region / f"{arch}.npy",
                        predict_packed(model, images, T if arch == "convlstm" else None, device))
        fallbacks = pd.DataFrame(boxes)["fallback"].value_counts().to_dict() if boxes else {}
        info = {"clips": len(clips), "frames": frames, "methods": list(methods), "baselines": archs,
                "box_fallbacks": {k or "none": int(v) for k, v in fallbacks.items()},
                "probes": {"kinds": list(PROBES), "methods": list(PROBED), "frames": probed},
                "tracker": landmark_info(tracker), "mesh": landmark_info(mesh)}
        (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("fuse: wrote %s (%d frames x %d methods) in %.1f s on %s; frames/s %s", out_dir, frames, len(methods),
             time.perf_counter() - t_start, device,
             {m: round(frames / s, 1) for m, s in predictor.seconds.items() if s > 0})


def write_methods(out: Path, predictor: ClipPredictor, methods, clips: list[dict], packed, mask_dir: Path):
    """Every method's label PNGs of every test frame in ``out/<method>/``; returns (frames, the cascade's boxes)."""
    T, frames, boxes = predictor.cascade.T, 0, []
    for m in methods:
        (out / m).mkdir()
    for k, clip in enumerate(tqdm(clips, desc="fuse", unit="clip")):
        names = clip["names"]
        crops = [read_crop(mask_dir / "images_orig" / f"{n}.jpg") for n in names]
        labels, windows = predictor(crops, packed[k, :len(names)])
        for m in methods:
            for n, lab in zip(names, labels[m]):
                write_label_png(out / m / f"{n}.png", lab)
        for w, r in enumerate(windows):
            for region in ZOOM_REGIONS:
                boxes.append({"clip": k, "window": w, "first": names[w * T], "region": region,
                              **dict(zip(("x0", "y0", "x1", "y1"), r.boxes[region])),
                              "fallback": r.fallback[region] or ""})
        frames += len(names)
    return frames, boxes


def write_probes(out: Path, predictor: ClipPredictor, clips: list[dict], packed, mask_dir: Path) -> int:
    """The memory probes (`facemask.inference.probes`): ``out/<kind>/<method>/VVV_FFFFFF.png`` for the
    replaced frames of every test clip; returns their number per kind."""
    count = 0
    for kind in PROBES:
        for m in PROBED:
            (out / kind / m).mkdir(parents=True)
    for k, clip in enumerate(tqdm(clips, desc="memory probes", unit="clip")):
        names = clip["names"]
        crops = [read_crop(mask_dir / "images_orig" / f"{n}.jpg") for n in names]
        for kind in PROBES:
            labels = probe_clip(predictor, crops, packed[k, :len(names)], kind, seed=(k,))
            for m in PROBED:
                for i, lab in labels[m].items():
                    write_label_png(out / kind / m / f"{names[i]}.png", lab)
        count += len(labels["fcn"])
    return count


if __name__ == "__main__":
    run_stage(main)

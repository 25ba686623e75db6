#!/usr/bin/env python
"""The face FCN's test mIoU, the hold oracle's, and both per frame condition (`facemask.evaluation.conditions`).

    python scripts/hold_oracle.py                       # the pipeline's outputs in this checkout
    python scripts/hold_oracle.py --json out.json --frames out.csv
    python scripts/hold_oracle.py --threshold 0.1       # another occlusion threshold for "degraded"

Reads the trained face FCN (``models/face/fcn.pt``), the test clips (``data/clips``: index and the packed
face crops the models see), the original-resolution labels and crop boxes (``data/300VW-Mask``) and the
generator's per-frame record (``data/raw/300VW/frames.csv``). The FCN's labels are made as the fuse stage
makes them (`facemask.inference.fusion.fcn_probs` on the packed crop, scores resized to the crop's own size, arg-max)
and scored as the evaluate stage scores them: per-frame confusion matrices summed, IoU per class, mIoU over
the four facial classes. The hold oracle replaces the FCN's labels on every degraded frame by its labels of
the last clean frame earlier in the clip (`facemask.evaluation.conditions.hold_labels`). Prints a summary and writes,
with ``--json``, every report (overall, per condition, per kind of degradation, the headroom) and, with
``--frames``, one row per test frame (condition, kind, occlusion, both methods' per-frame mIoU).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import stages  # noqa: E402,F401  (as the stages run: NumPy off its AVX-512 kernels)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from facemask.core import errors  # noqa: E402
from facemask.core.devices import resolve_device  # noqa: E402
from facemask.core.iou import confusion_matrix, mean_iou  # noqa: E402
from facemask.data.clips.build import read_split_clips  # noqa: E402
from facemask.data.labels import CLASS_NAMES, read_label_png  # noqa: E402
from facemask.data.clips.store import load_split  # noqa: E402
from facemask.evaluation import conditions as K  # noqa: E402
from facemask.evaluation.metrics import reports_by  # noqa: E402
from facemask.inference.fusion import fcn_probs, labels_at  # noqa: E402
from facemask.models.registry import load_model  # noqa: E402
from stages._common import load_params  # noqa: E402

METHODS = ("fcn", "hold")


def crop_boxes(path: Path) -> dict[str, tuple[int, int, int, int]]:
    df = pd.read_csv(path, dtype={"video": str})
    if df[["x0", "y0", "x1", "y1"]].isna().any().any():
        raise errors.BadInputError(f"{path}: crop boxes missing (the authors' release has none; the hold oracle needs them)")
    return {f"{v.zfill(3)}_{int(f):06d}": (int(a), int(b), int(c), int(d))
            for v, f, a, b, c, d in zip(df.video, df.frame, df.x0, df.y0, df.x1, df.y1)}


def kind_of(transient: str, occlusion: float, threshold: float) -> str:
    """One label per frame for the per-kind table: the transient kind, else ``occluded`` or ``clean``."""
    return transient if transient else ("occluded" if occlusion >= threshold else "clean")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/face/fcn.pt"))
    ap.add_argument("--clips", type=Path, default=Path("data/clips"))
    ap.add_argument("--masks", type=Path, default=Path("data/300VW-Mask"))
    ap.add_argument("--record", type=Path, default=Path("data/raw/300VW/frames.csv"))
    ap.add_argument("--window", type=int, default=None, help="frames per window (default: params clips.window)")
    ap.add_argument("--threshold", type=float, default=K.OCCLUSION_THRESHOLD,
                    help=f"occluded share of the face that makes a frame degraded (default {K.OCCLUSION_THRESHOLD})")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="write the reports here")
    ap.add_argument("--frames", type=Path, default=None, help="write one row per test frame here (CSV)")
    args = ap.parse_args(argv)
    window = args.window or int(load_params()["clips"]["window"])
    device = resolve_device(args.device)

    clips = read_split_clips(args.clips, "test")
    packed, _ = load_split(args.clips / "face" / "test")
    model = load_model(args.model).to(device)
    record = K.read_record(args.record)
    boxes = crop_boxes(args.masks / "frames.csv")
    C = len(CLASS_NAMES)

    cms, rows = [], []
    for k, clip in enumerate(tqdm(clips, desc="hold oracle", unit="clip")):
        names = clip["names"]
        rec = K.clip_record(record, names, args.record)
        deg = K.is_degraded(rec["transient"], rec["occlusion"], args.threshold)
        conds = K.frame_conditions(deg, window)
        gts = [read_label_png(args.masks / "labels_orig" / f"{n}.png") for n in names]
        probs = fcn_probs(model, np.asarray(packed[k, :len(names)]), device)
        fcn = [labels_at(probs[i], gt.shape) for i, gt in enumerate(gts)]
        hold = K.hold_labels(fcn, [boxes[n] for n in names], deg)
        src = K.hold_sources(deg)
        for i, n in enumerate(names):
            cm = np.stack([confusion_matrix(gts[i], fcn[i], C), confusion_matrix(gts[i], hold[i], C)])
            cms.append(cm)
            miou = mean_iou(cm)
            rows.append({"name": n, "clip": k, "video": clip["video"], "category": clip["category"], "step": i % window,
                         "transient": rec["transient"].iloc[i], "occlusion": float(rec["occlusion"].iloc[i]),
                         "kind": kind_of(rec["transient"].iloc[i], float(rec["occlusion"].iloc[i]), args.threshold),
                         "degraded": bool(deg[i]), "condition": conds[i], "hold_from": i - src[i],
                         "fcn_miou": float(miou[0]), "hold_miou": float(miou[1])})
    cms = np.stack(cms)
    meta = pd.DataFrame(rows)
    by_condition = K.condition_reports(meta["condition"], cms, METHODS)
    by_kind = reports_by(meta, cms, METHODS, "kind")
    by_category = reports_by(meta, cms, METHODS, "category")
    overall = by_condition["all"]
    headroom = overall["hold"]["miou"] - overall["fcn"]["miou"]
    report = {"model": str(args.model), "window": window, "occlusion_threshold": args.threshold,
              "frames": int(len(meta)), "degraded_frames": int(meta["degraded"].sum()),
              "transient_frames": int((meta["transient"] != "").sum()),
              "headroom": headroom, "conditions": by_condition, "kinds": by_kind, "categories": by_category}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.frames:
        args.frames.parent.mkdir(parents=True, exist_ok=True)
        meta.to_csv(args.frames, index=False, float_format="%.5f")
    _print(report)
    return report


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _print(r: dict) -> None:
    fcn, hold = r["conditions"]["all"]["fcn"], r["conditions"]["all"]["hold"]
    share = 100 * r['degraded_frames'] / r['frames']
    print(f"test frames {r['frames']}, degraded {r['degraded_frames']} ({share:.1f} %; "
          f"transient {r['transient_frames']}, occlusion threshold {r['occlusion_threshold']}), window {r['window']}")
    print("FCN  mIoU " + _pct(fcn["miou"]) + "  (" + ", ".join(f"{c} {_pct(fcn[c])}" for c in CLASS_NAMES[1:]) + ")")
    print("hold mIoU " + _pct(hold["miou"]) + "  (" + ", ".join(f"{c} {_pct(hold[c])}" for c in CLASS_NAMES[1:]) + ")")
    print(f"headroom (hold - FCN): {100 * r['headroom']:+.2f} points")
    print("\n| condition / kind | frames | FCN mIoU | hold mIoU |\n|---|---|---|---|")
    for name, d in [*r["conditions"].items(), *(("kind " + k, v) for k, v in r["kinds"].items())]:
        fcn, hold = (_pct(d[m] and d[m]["miou"]) for m in METHODS)
        print(f"| {name} | {d['frames']} | {fcn} | {hold} |")


if __name__ == "__main__":
    sys.exit(errors.run(lambda: main() and 0))   # bad input: one line naming the file

"""Stage `evaluate`: predictions + ground truth -> metrics/eval.json, metrics/zoomed.json, metrics/eval/.

Reads params ``evaluate`` and ``clips.window``; ``data/predictions`` (the fuse stage), the ground truth
``data/300VW-Mask/labels_orig`` (and ``images_orig`` for the figure), the test clip index and the zoomed
test sub-datasets' labels. IoU is computed at each crop's original resolution and accumulated over the
whole test set (confusion matrices summed). Writes:

* ``metrics/eval.json`` — per method (fcn, fcn_smooth, primary, cascade, tracker, mesh when fuse made it, and
  the Table 2 baselines fuse scored: fcn_vgg16, deeplab_v2, when ``baselines.archs`` names them): IoU of skin, eyes, lips,
  inner_mouth and their mean ``miou`` (background excluded), fractions in [0, 1];
* ``metrics/zoomed.json`` — the eye and mouth models (FCN and ConvLSTM-FCN) on their test sub-datasets;
* ``metrics/eval/``: ``categories.json`` (per 300VW category), ``per_subject.csv`` (Fig. 6),
  ``timestep.csv`` / ``timestep.json`` (Table 4), ``significance.json`` (paired tests against the
  FCN over groups of test sequences), ``stability.json`` (flicker), ``examples.png`` (Fig. 5),
  ``seeds.csv`` / ``seeds.json`` (this run and the runs with other training seeds recorded in
  ``metrics/seeds/seed_<N>.json`` by scripts/seeds.py: mIoU per seed, mean ± std, seed-averaged P),
  ``fuse_info.json`` (box fallbacks) and ``results.md`` (also printed).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from facemask.core.io import atomic_dir, atomic_write_json
from facemask.core.iou import confusion_matrix, finite_or_none, mean_iou
from facemask.data.clips import read_split_clips
from facemask.data.labels import CLASS_NAMES, read_label_png
from facemask.data.store import load_split
from facemask.evaluation.metrics import (comparison_figure, flip_rate, iou_report, reports_by, seeds_summary,
                                         seeds_table, sequence_groups, significance, stability_report, subject_table,
                                         timestep_table)
from facemask.inference.fusion import CLIP_METHODS
from stages._common import load_params, run_stage, setup_logging, stage_args

#: The methods fuse scores on every run: the paper's (`CLIP_METHODS`) and the landmark tracker.
SCORED_METHODS = (*CLIP_METHODS, "tracker")
#: Scored when fuse made them (info.json says so): the face-mesh landmarks (not where mediapipe is missing).
OPTIONAL_METHODS = ("mesh",)
LABELS = {"fcn": "baseline FCN", "fcn_smooth": "FCN + temporal smoothing", "primary": "primary ConvLSTM-FCN",
          "cascade": "primary + zoomed eye/mouth models", "tracker": "landmark tracker (dlib 68 points)",
          "mesh": "face-mesh landmarks (MediaPipe -> 68 points)",
          "fcn_vgg16": "VGG-16 FCN-8s", "deeplab_v2": "DeepLab-V2 (VGG-16, ASPP)"}
#: mIoU (%) the paper reports (Table 9; the tracker: Table 2, row 1); the per-class values were not
#: part of the text we have.
PAPER_MIOU = {"fcn": 54.50, "cascade": 63.76, "tracker": 60.09}
#: Methods without a training seed (the same on every seed's run).
UNTRAINED = ("tracker", "mesh")
ZOOM_CLASSES = {"eyes": ("background", "eye"), "mouth": ("background", "lips", "inner_mouth")}


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.2f}"


def _p(test: dict | None) -> str:
    p = (test or {}).get("p_ttest")
    return "n/a" if p is None else f"{p:.2g}"


def results_markdown(report: dict, sig: dict, stability: dict, categories: dict, seeds: dict, seed: int,
                     methods: tuple[str, ...] = SCORED_METHODS) -> str:
    n = max(v["seeds"] for v in seeds.values())
    seeds_col = f"{n} seed" + ("s" if n != 1 else "")
    head = ["method", *CLASS_NAMES[1:], "mIoU", f"mIoU, {seeds_col}", "paper mIoU", "P vs FCN", f"P, {seeds_col}",
            "flip rate / GT's"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        r, sd = report[m], seeds[m]
        ratio = stability["ratio_to_ground_truth"].get(m)
        if sd["mean"] is None:
            spread = "–"
        elif m in UNTRAINED:  # no training seed: one run is all there is
            spread = f"{_pct(sd['mean'])} (not trained)"
        else:
            spread = (f"{_pct(sd['mean'])} ± {_pct(sd['std'])}" if sd["std"] is not None
                      else f"{_pct(sd['mean'])} (1 seed)")
        lines.append("| " + " | ".join([LABELS[m], *(_pct(r[c]) for c in CLASS_NAMES[1:]), f"**{_pct(r['miou'])}**",
                                        spread, f"{PAPER_MIOU[m]:.2f}" if m in PAPER_MIOU else "–",
                                        "–" if m == "fcn" else _p(sig["tests"].get(m)),
                                        "–" if m == "fcn" else _p(sd["test_vs_fcn"]),
                                        "–" if ratio is None else f"{ratio:.2f}"]) + " |")
    cat = ["", "mIoU (%) per 300VW category:", "",
           "| category | frames | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for c, d in categories.items():
        cat.append(f"| {c} | {d['frames']} | " + " | ".join(_pct(d[m]["miou"]) for m in methods) + " |")
    note = (f"\nIoU (%) on the test set ({sig['sequences']} sequences), at each crop's original resolution, "
            f"training seed {seed}; mIoU over seeds: mean ± standard deviation over the training seeds "
            f"(metrics/eval/seeds.csv). P: paired t-test of the per-group mIoU against the baseline FCN over "
            f"{sig['groups']} groups of sequences (this run; and on the per-group mIoU averaged over the seeds). "
            f"Flip rate: share of pixels whose class changes between consecutive frames, "
            f"relative to the ground truth's ({_pct(stability['flip_rate']['ground_truth'])} %).")
    return "\n".join(lines) + "\n" + note + "\n" + "\n".join(cat) + "\n"


def test_set_id(meta: pd.DataFrame, groups: int) -> dict:
    """What a seed's record must share with this run to be summarised with it: the test frames (their
    number, clips and a hash of their names, in order) and the significance groups."""
    names = "\n".join(meta["name"]).encode()
    return {"clips": int(meta["clip"].nunique()), "frames": int(len(meta)), "groups": int(groups),
            "names_sha256": hashlib.sha256(names).hexdigest()}


def recorded_runs(folder: Path, test_set: dict, log) -> dict[int, dict]:
    """The other seeds' records (``seed_<N>.json``) made on this run's test set. A record that names its test
    set must match it; an older one without must hold per-group mIoUs, this run's number of them. Others
    are left out, each with a warning (a seed run on another benchmark, or the tiny pipelines of the tests)."""
    runs = {}
    for f in sorted(folder.glob("seed_*.json")):
        r = json.loads(f.read_text())
        if "test_set" in r:
            same, why = r["test_set"] == test_set, f"test set {r['test_set']} is not this run's {test_set}"
        else:
            sizes = {len(v) for v in (r.get("group_miou") or {}).values()}
            same, why = sizes == {test_set["groups"]}, f"groups {sorted(sizes)} are not this run's {test_set['groups']}"
        if same:
            runs[int(r["seed"])] = r
        else:
            log.warning("evaluate: %s left out of the seeds' summary: %s", f, why)
    return runs


def main(argv: list[str] | None = None) -> None:
    args = stage_args("evaluate", "predictions", "masks", "clips", "seeds", "out", argv=argv)
    log = setup_logging()
    params = load_params()
    clips_dir, mask_dir, pred_dir, seeds_dir = args.clips, args.masks, args.predictions, args.seeds
    groups, n_examples = int(params["evaluate"]["groups"]), int(params["evaluate"]["examples"])
    T = int(params["clips"]["window"])
    clips = read_split_clips(clips_dir, "test")
    C = len(CLASS_NAMES)
    info = json.loads((pred_dir / "info.json").read_text()) if (pred_dir / "info.json").is_file() else {}
    optional = [m for m in OPTIONAL_METHODS if m in info and "skipped" not in info[m]]
    methods = (*SCORED_METHODS, *optional, *info.get("baselines", []))   # Table 2's baselines, when fuse scored them

    meta, cms, flips = [], [], {k: np.zeros(2, np.int64) for k in ("ground_truth", *methods)}
    for k, clip in enumerate(tqdm(clips, desc="evaluate", unit="clip")):
        seq = {key: [] for key in flips}
        for i, name in enumerate(clip["names"]):
            gt = read_label_png(mask_dir / "labels_orig" / f"{name}.png")
            seq["ground_truth"].append(gt)
            row = []
            for m in methods:
                path = pred_dir / m / f"{name}.png"
                pred = read_label_png(path)
                if pred.shape != gt.shape:
                    raise ValueError(f"{path}: prediction {pred.shape} differs in size from its label {gt.shape}")
                row.append(confusion_matrix(gt, pred, C))
                seq[m].append(pred)
            cms.append(np.stack(row))
            meta.append({"clip": k, "video": clip["video"], "category": clip["category"], "step": i % T,
                         "name": name})
        for key, labels in seq.items():  # within a clip only: clips are not contiguous in time
            flips[key] += flip_rate(labels)
    meta, cms = pd.DataFrame(meta), np.stack(cms)

    report = reports_by(meta, cms, methods)
    categories = reports_by(meta, cms, methods, "category")
    subjects = subject_table(meta, cms, methods)
    steps = timestep_table(meta, cms, methods)
    sig = significance(meta, cms, methods, groups)
    stability = {**stability_report({k: tuple(int(x) for x in v) for k, v in flips.items()}),
                 "counts": {k: {"flips": int(v[0]), "pixels": int(v[1])} for k, v in flips.items()}}

    zoomed, zoomed_groups = {}, {}
    for region, names in ZOOM_CLASSES.items():
        _, gt = load_split(clips_dir / region / "test")
        zoomed[region], zoomed_groups[region] = {}, {}
        for arch in ("fcn", "convlstm"):
            pred = np.load(pred_dir / "zoomed" / region / f"{arch}.npy", mmap_mode="r")
            per_clip = np.stack([confusion_matrix(gt[k], pred[k], len(names)) for k in range(len(gt))])
            zoomed[region][arch] = iou_report(per_clip.sum(0), names)
            zoomed_groups[region][arch] = [finite_or_none(mean_iou(per_clip[g].sum(0)))
                                           for g in sequence_groups(len(gt), groups)]

    # Fig. 5: the middle frame of evenly spaced test clips
    picks = sorted({int(round(x)) for x in np.linspace(0, len(clips) - 1, min(n_examples, len(clips)))})
    rows = []
    for k in picks:
        name = clips[k]["names"][len(clips[k]["names"]) // 2]
        image = cv2.imread(str(mask_dir / "images_orig" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        gt = read_label_png(mask_dir / "labels_orig" / f"{name}.png")
        rows.append((image, gt, {m: read_label_png(pred_dir / m / f"{name}.png") for m in methods}, name))
    figure = comparison_figure(rows, methods)

    seed = int(params["seed"])
    test_set = test_set_id(meta, sig["groups"])
    runs = recorded_runs(seeds_dir, test_set, log)
    runs[seed] = {"seed": seed, "eval": report, "group_miou": sig["group_miou"],   # this run replaces its record
                  "zoomed": zoomed, "zoomed_group_miou": zoomed_groups, "test_set": test_set}
    seeds = seeds_summary(runs, methods)
    md = results_markdown(report, sig, stability, categories, seeds, seed, methods)
    atomic_write_json(args.out / "eval.json", report)
    atomic_write_json(args.out / "zoomed.json", zoomed)
    with atomic_dir(args.out / "eval") as out:
        atomic_write_json(out / "categories.json", categories)
        subjects.to_csv(out / "per_subject.csv", index=False, float_format="%.6f")
        steps.to_csv(out / "timestep.csv", index=False, float_format="%.6f")
        atomic_write_json(out / "timestep.json", {
            f"{m}_minus_fcn": {f"t{int(r['t'])}": finite_or_none(r[f"{m}_minus_fcn"]) for r in steps.to_dict("records")}
            for m in methods if m != "fcn"})
        atomic_write_json(out / "significance.json", sig)
        atomic_write_json(out / "stability.json", stability)
        seeds_table(runs, methods).to_csv(out / "seeds.csv", index=False, float_format="%.6f")
        atomic_write_json(out / "seeds.json", {"seeds": sorted(runs), "methods": seeds})
        atomic_write_json(out / "run.json", runs[seed])  # what scripts/seeds.py records for this seed
        cv2.imwrite(str(out / "examples.png"), figure)
        if (pred_dir / "info.json").is_file():
            shutil.copy(pred_dir / "info.json", out / "fuse_info.json")
        (out / "results.md").write_text(md)
    print(md)
    log.info("evaluate: %d frames of %d clips; cascade mIoU %s %%, FCN %s %%", len(meta), len(clips),
             _pct(report["cascade"]["miou"]), _pct(report["fcn"]["miou"]))


if __name__ == "__main__":
    run_stage(main)

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
  ``metrics/seeds/seed_<N>.json`` by `facemask exp seeds`: mIoU per seed, mean ± std, seed-averaged P),
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
from facemask.data.clips.build import read_split_clips
from facemask.data.labels import CLASS_NAMES, read_label_png
from facemask.data.clips.store import load_split
from facemask.evaluation.metrics import (comparison_figure, flip_rate, iou_report, reports_by, seeds_summary,
                                         seeds_table, sequence_groups, significance, stability_report, subject_table,
                                         timestep_table)
from facemask.data.layout import VIDEOS_DIR, frame_stem
from facemask.evaluation.conditions import (CLEAN, CONDITIONS, OCCLUSION_THRESHOLD, WITH_PAST, carry_label,
                                            clip_record, condition_reports, frame_conditions, hold_labels, is_degraded,
                                            read_record, seeds_by_condition)
from facemask.evaluation.memory import CONTROLS, GAIN, MIN_CHANGED, TO_HOLD, ablation_report, probe_report
from facemask.inference.fusion import CLIP_METHODS, TEMPORAL_METHODS
from facemask.inference.probes import probe_frames
from stages._common import load_params, run_stage, setup_logging, stage_args

#: The methods fuse scores on every run: the paper's (`CLIP_METHODS`), the landmark tracker, and the temporal
#: methods and their memoryless control (`TEMPORAL_METHODS`); Table 2's baselines when it trained them.
SCORED_METHODS = (*CLIP_METHODS, "tracker", *TEMPORAL_METHODS)
#: Scored when fuse made them (info.json says so): the face-mesh landmarks (not where mediapipe is missing).
OPTIONAL_METHODS = ("mesh",)
LABELS = {"fcn": "baseline FCN", "fcn_smooth": "FCN + temporal smoothing", "primary": "primary ConvLSTM-FCN",
          "cascade": "primary + zoomed eye/mouth models", "tracker": "landmark tracker (dlib 68 points)",
          "mesh": "face-mesh landmarks (MediaPipe -> 68 points)",
          "fcn_vgg16": "VGG-16 FCN-8s", "deeplab_v2": "DeepLab-V2 (VGG-16, ASPP)",
          "primary_stream": "primary ConvLSTM-FCN, state carried across windows",
          "cascade_stream": "cascade, primary's state carried across windows",
          "primary_reset": "primary ConvLSTM-FCN, state reset every frame (memoryless control)",
          "hold": "hold oracle (FCN's labels of the last clean frame; a ceiling)"}
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


def test_set_id(meta: pd.DataFrame, groups: int, labels_sha256: str) -> dict:
    """What a seed's record must share with this run to be summarised with it: the test frames (their
    number, clips and a hash of their names, in order), a hash of their labels (the same names on a
    regenerated benchmark are other frames) and the significance groups."""
    names = "\n".join(meta["name"]).encode()
    return {"clips": int(meta["clip"].nunique()), "frames": int(len(meta)), "groups": int(groups),
            "names_sha256": hashlib.sha256(names).hexdigest(), "labels_sha256": labels_sha256}


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
    args = stage_args("evaluate", "predictions", "masks", "clips", "raw", "seeds", "out", argv=argv)
    log = setup_logging()
    params = load_params()
    clips_dir, mask_dir, pred_dir = args.clips, args.masks, args.predictions
    groups, n_examples = int(params["evaluate"]["groups"]), int(params["evaluate"]["examples"])
    T = int(params["clips"]["window"])
    clips = read_split_clips(clips_dir, "test")
    info = json.loads((pred_dir / "info.json").read_text()) if (pred_dir / "info.json").is_file() else {}
    methods = scored_methods(info)
    frames = FrameRecord(args.raw / VIDEOS_DIR / "frames.csv", mask_dir / "frames.csv", T)

    test = score_test_set(clips, methods, mask_dir, pred_dir, frames, T)
    meta, cms = test["meta"], test["cms"]
    report = reports_by(meta, cms, methods)
    categories = reports_by(meta, cms, methods, "category")
    sig = significance(meta, cms, methods, groups)
    flips = test["flips"]
    stability = {**stability_report({k: tuple(int(x) for x in v) for k, v in flips.items()}),
                 "counts": {k: {"flips": int(v[0]), "pixels": int(v[1])} for k, v in flips.items()}}
    zoomed, zoomed_groups = score_zoomed(clips_dir, pred_dir, groups)
    conditions = frames.conditions_report(meta, cms, test["hold"], methods)
    memory = score_memory(clips, mask_dir, pred_dir, frames, info, test) if frames.available else \
        {"available": False, "reason": frames.reason}

    steps = timestep_table(meta, cms, methods)
    timestep = {f"{m}_minus_fcn": {f"t{int(r['t'])}": finite_or_none(r[f"{m}_minus_fcn"]) for r in steps.to_dict("records")}
                for m in methods if m != "fcn"}
    seed = int(params["seed"])
    test_set = test_set_id(meta, sig["groups"], test["labels_sha256"])
    runs = recorded_runs(args.seeds, test_set, log)
    runs[seed] = {"seed": seed, "eval": report, "group_miou": sig["group_miou"],   # this run replaces its record
                  "zoomed": zoomed, "zoomed_group_miou": zoomed_groups, "test_set": test_set, "timestep": timestep,
                  "conditions": conditions.get("by_condition"), "memory": memory}
    seeds = seeds_summary(runs, methods)
    seed_conditions = seeds_by_condition(runs)
    md = results_markdown(report, sig, stability, categories, seeds, seed, methods) + conditions_markdown(conditions) \
        + conditions_seeds_markdown(seed_conditions) + memory_markdown(memory)
    atomic_write_json(args.out / "eval.json", report)
    atomic_write_json(args.out / "zoomed.json", zoomed)
    with atomic_dir(args.out / "eval") as out:
        atomic_write_json(out / "categories.json", categories)
        subject_table(meta, cms, methods).to_csv(out / "per_subject.csv", index=False, float_format="%.6f")
        steps.to_csv(out / "timestep.csv", index=False, float_format="%.6f")
        atomic_write_json(out / "timestep.json", timestep)
        atomic_write_json(out / "significance.json", sig)
        atomic_write_json(out / "stability.json", stability)
        atomic_write_json(out / "conditions.json", conditions)
        atomic_write_json(out / "memory.json", memory)
        seeds_table(runs, methods).to_csv(out / "seeds.csv", index=False, float_format="%.6f")
        atomic_write_json(out / "seeds.json", {"seeds": sorted(runs), "methods": seeds, "conditions": seed_conditions})
        atomic_write_json(out / "run.json", runs[seed])  # what `facemask exp seeds` records for this seed
        cv2.imwrite(str(out / "examples.png"), example_figure(clips, methods, mask_dir, pred_dir, n_examples))
        if (pred_dir / "info.json").is_file():
            shutil.copy(pred_dir / "info.json", out / "fuse_info.json")
        (out / "results.md").write_text(md)
    print(md)
    log.info("evaluate: %d frames of %d clips; cascade mIoU %s %%, FCN %s %%", len(meta), len(clips),
             _pct(report["cascade"]["miou"]), _pct(report["fcn"]["miou"]))


def scored_methods(info: dict) -> tuple[str, ...]:
    """What evaluate scores: the methods fuse wrote (its info.json; the paper's and Table 2's baselines when it
    does not list them), the tracker after the paper's, then the face mesh when fuse made it (`OPTIONAL_METHODS`)."""
    fused = info.get("methods") or [*CLIP_METHODS, *info.get("baselines", [])]
    optional = [m for m in OPTIONAL_METHODS if m in info and "skipped" not in info[m]]
    return (*[m for m in fused if m in CLIP_METHODS], "tracker", *optional,
            *[m for m in fused if m not in CLIP_METHODS])


class FrameRecord:
    """What is known of each test frame beyond its labels: the generator's record (degraded or not, the kind;
    `facemask.evaluation.conditions`) and the crop boxes (the masks stage's frames.csv), which the hold oracle
    and the memory checks need. Unavailable (with the reason) for the real 300VW and the authors' release."""

    def __init__(self, record: Path, mask_frames: Path, window: int):
        self.window, self.available, self.reason = window, False, None
        if not record.is_file():
            self.reason = f"{record}: no per-frame record (the synthetic generator writes it)"
            return
        boxes = pd.read_csv(mask_frames, dtype={"video": str})
        if boxes[["x0", "y0", "x1", "y1"]].isna().any().any():
            self.reason = f"{mask_frames}: no crop boxes (the authors' release holds crops only)"
            return
        self.record = read_record(record)
        self.boxes = {frame_stem(v, f): (int(a), int(b), int(c), int(d)) for v, f, a, b, c, d in
                      zip(boxes.video, boxes.frame, boxes.x0, boxes.y0, boxes.x1, boxes.y1)}
        self.path, self.available = record, True

    def clip(self, names: list[str]) -> tuple[np.ndarray, list[str], list[str]] | None:
        """(degraded, condition, kind) of a clip's frames, or None when unavailable."""
        if not self.available:
            return None
        rec = clip_record(self.record, names, self.path)
        degraded = is_degraded(rec["transient"], rec["occlusion"])
        kinds = [t if t else ("occluded" if d else "clean") for t, d in zip(rec["transient"], degraded)]
        return degraded, frame_conditions(degraded, self.window), kinds

    def conditions_report(self, meta: pd.DataFrame, cms: np.ndarray, hold: np.ndarray | None, methods) -> dict:
        """conditions.json: every method (and the hold oracle, a ceiling) per condition and per kind."""
        if not self.available:
            return {"available": False, "reason": self.reason}
        both = np.concatenate([cms, hold[:, None]], axis=1)
        names = (*methods, "hold")
        return {"available": True, "occlusion_threshold": OCCLUSION_THRESHOLD, "window": self.window,
                "degraded_frames": int((meta["condition"] != CLEAN).sum()),
                "by_condition": condition_reports(meta["condition"], both, names),
                "by_kind": reports_by(meta, both, names, "kind")}


def score_test_set(clips: list[dict], methods, mask_dir: Path, pred_dir: Path, frames: FrameRecord, T: int) -> dict:
    """Every test frame against its label: ``meta`` (a row per frame: clip, video, category, step in its window,
    name, condition, kind), ``cms`` (frames, methods, C, C), the hold oracle's ``hold`` (frames, C, C) when the
    record allows, each method's ``flips``, per temporal method the pixels its memory ``changed`` on the
    degraded frames with a clean past (`facemask.evaluation.memory`), and a hash of the labels."""
    C = len(CLASS_NAMES)
    meta, cms, hold = [], [], []
    flips = {k: np.zeros(2, np.int64) for k in ("ground_truth", *methods)}
    changed = {m: 0 for m in CONTROLS}
    labels_hash = hashlib.sha256()
    for k, clip in enumerate(tqdm(clips, desc="evaluate", unit="clip")):
        names = clip["names"]
        seq = {key: [] for key in flips}
        for name in names:
            seq["ground_truth"].append(read_label_png(mask_dir / "labels_orig" / f"{name}.png"))
            for m in methods:
                seq[m].append(_prediction(pred_dir / m / f"{name}.png", seq["ground_truth"][-1]))
        known = frames.clip(names)
        degraded, conds, kinds = known if known else (None, [None] * len(names), [None] * len(names))
        for i, name in enumerate(names):
            gt = seq["ground_truth"][i]
            labels_hash.update(np.ascontiguousarray(gt).tobytes() + str(gt.shape).encode())
            cms.append(np.stack([confusion_matrix(gt, seq[m][i], C) for m in methods]))
            meta.append({"clip": k, "video": clip["video"], "category": clip["category"], "step": i % T,
                         "name": name, "condition": conds[i], "kind": kinds[i]})
            if known and conds[i] == WITH_PAST:
                for m, control in CONTROLS.items():
                    if m in seq and control in seq:
                        changed[m] += int(np.count_nonzero(seq[m][i] != seq[control][i]))
        if known:
            held = hold_labels(seq["fcn"], [frames.boxes[n] for n in names], degraded)
            hold += [confusion_matrix(g, h, C) for g, h in zip(seq["ground_truth"], held)]
        for key, labels in seq.items():  # within a clip only: clips are not contiguous in time
            flips[key] += flip_rate(labels)
    meta = pd.DataFrame(meta)
    return {"meta": meta, "cms": np.stack(cms), "hold": np.stack(hold) if hold else None, "flips": flips,
            "changed": changed, "methods": tuple(methods), "labels_sha256": labels_hash.hexdigest()}


def _prediction(path: Path, gt: np.ndarray) -> np.ndarray:
    pred = read_label_png(path)
    if pred.shape != gt.shape:
        raise ValueError(f"{path}: prediction {pred.shape} differs in size from its label {gt.shape}")
    return pred


def score_memory(clips: list[dict], mask_dir: Path, pred_dir: Path, frames: FrameRecord, info: dict,
                 test: dict) -> dict:
    """memory.json (`facemask.evaluation.memory`): (a) each probe kind on its replaced frames, beside the FCN
    and the hold; (b) the memoryless ablation on the degraded frames with a clean past."""
    C = len(CLASS_NAMES)
    probes = info.get("probes", {})
    out = {"available": True, "thresholds": {"gain_over_fcn": GAIN, "below_hold": TO_HOLD,
                                             "changed_share": MIN_CHANGED}, "probes": {}}
    for kind in probes.get("kinds", []):
        sums, n = {m: np.zeros((C, C), np.int64) for m in (*probes["methods"], "hold")}, 0
        for clip in clips:
            names = clip["names"]
            for i in probe_frames(len(names), frames.window):
                gt = read_label_png(mask_dir / "labels_orig" / f"{names[i]}.png")
                for m in probes["methods"]:
                    sums[m] += confusion_matrix(gt, _prediction(pred_dir / "probes" / kind / m / f"{names[i]}.png", gt), C)
                before = read_label_png(pred_dir / "fcn" / f"{names[i - 1]}.png")
                held = carry_label(before, frames.boxes[names[i - 1]], frames.boxes[names[i]])
                sums["hold"] += confusion_matrix(gt, held, C)
                n += 1
        out["probes"][kind] = probe_report(sums, n)
    meta, cms, methods = test["meta"], test["cms"], list(test["methods"])
    rows = (meta["condition"] == WITH_PAST).to_numpy()
    pixels = int(cms[rows, 0].sum()) if rows.any() else 0
    out["ablation"] = ablation_report({m: cms[rows, methods.index(m)].sum(0) for m in methods},
                                      test["changed"], pixels, int(rows.sum()))
    return out


def score_zoomed(clips_dir: Path, pred_dir: Path, groups: int) -> tuple[dict, dict]:
    """The eye and mouth models (FCN and ConvLSTM-FCN) on their test sub-datasets, and per group of clips."""
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
    return zoomed, zoomed_groups


def example_figure(clips: list[dict], methods, mask_dir: Path, pred_dir: Path, n_examples: int) -> np.ndarray:
    """Fig. 5: the middle frame of evenly spaced test clips."""
    picks = sorted({int(round(x)) for x in np.linspace(0, len(clips) - 1, min(n_examples, len(clips)))})
    rows = []
    for k in picks:
        name = clips[k]["names"][len(clips[k]["names"]) // 2]
        image = cv2.imread(str(mask_dir / "images_orig" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        gt = read_label_png(mask_dir / "labels_orig" / f"{name}.png")
        rows.append((image, gt, {m: read_label_png(pred_dir / m / f"{name}.png") for m in methods}, name))
    return comparison_figure(rows, methods)


def conditions_markdown(conditions: dict) -> str:
    """results.md: mIoU per frame condition, with the hold oracle as a ceiling row."""
    if not conditions.get("available"):
        return f"\nNo per-condition scores: {conditions.get('reason')}\n"
    by = conditions["by_condition"]
    cols = ["all", *CONDITIONS]
    lines = ["", f"mIoU (%) per frame condition ({conditions['degraded_frames']} degraded test frames: a transient "
                 f"event, or occluders over >= {conditions['occlusion_threshold']} of the face; 'with clean past': a "
                 f"clean frame earlier in the {conditions['window']}-frame window). The hold oracle (the FCN's labels "
                 "of the clip's last clean frame on every degraded frame) is a ceiling, not a method:", "",
             "| method | " + " | ".join(f"{c} ({by[c]['frames']})" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for m in [k for k in by["all"] if k != "frames"]:
        cells = [_pct(by[c][m]["miou"]) if by[c].get(m) else "–" for c in cols]
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def conditions_seeds_markdown(by: dict) -> str:
    """results.md: mIoU per frame condition as mean ± std over the training seeds (when more than one ran)."""
    n = max((r["seeds"] for c in by.values() for r in c.values()), default=0)
    if n < 2:
        return ""
    cols = [c for c in ("all", *CONDITIONS) if c in by]
    cell = lambda r: "–" if r is None else _pct(r["mean"]) + (f" ± {100 * r['std']:.2f}" if r["std"] is not None else "")  # noqa: E731
    lines = ["", f"mIoU (%) per frame condition over the training seeds (mean ± std, {n} seeds; "
                 "metrics/eval/seeds.json → conditions):", "",
             "| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for m in by["all"] if "all" in by else by[cols[0]]:
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cell(by[c].get(m)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def memory_markdown(memory: dict) -> str:
    """results.md: the memory checks."""
    if not memory.get("available"):
        return f"\nNo memory checks: {memory.get('reason')}\n"
    lines = ["", "Memory checks (metrics/eval/memory.json): the last frame of every window replaced by a black or "
                 "a noise frame; mIoU (%) on those frames, pass: >= FCN + 20 and >= hold - 10:", "",
             "| probe | frames | FCN | hold | primary | primary (stream) | memoryless | pass (primary / stream) |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, r in memory["probes"].items():
        mi, ck = r["miou"], r["checks"]
        passed = " / ".join(str(ck[m]["pass"]) if m in ck else "–" for m in ("primary", "primary_stream"))
        lines.append(f"| {kind} | {r['frames']} | {_pct(mi.get('fcn'))} | {_pct(mi.get('hold'))} | "
                     f"{_pct(mi.get('primary'))} | {_pct(mi.get('primary_stream'))} | {_pct(mi.get('primary_reset'))}"
                     f" | {passed} |")
    ab = memory["ablation"]
    for m, r in ab["methods"].items():
        lines.append(f"\nAblation, {m}: on the {ab['frames']} degraded frames with a clean past the memory changes "
                     f"{100 * (r['changed_share'] or 0):.2f} % of the pixels; mIoU {_pct(r['miou'])} with it, "
                     f"{_pct(r['control_miou'])} with the state reset at every frame.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_stage(main)

"""Scoring the test set: every method's label PNGs against the ground truth, per frame, at each crop's original
resolution (the evaluate stage's work; the reports: `facemask.evaluation.report`).

`Predictions` finds each method's labels (the fuse stage's ``learned/``, the landmark stages' ``tracker/`` and
``mesh/``); `FrameRecord` knows what the generator did to each test frame and where its crop is;
`score_test_set` gives per-frame confusion matrices, the hold oracle's, flips and the memory ablation's
counts; `score_memory` and `score_zoomed` the probes and the zoomed models; `recorded_runs` the other training
seeds' records made on the same test set.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from facemask.core.errors import BadInputError
from facemask.core.iou import confusion_matrix
from facemask.core.methods import CLIP_METHODS, CONTROLS, LANDMARK_METHODS, donor_clip, probe_frames
from facemask.data.clips.store import load_split
from facemask.data.labels import CLASS_NAMES, read_label_png
from facemask.evaluation.conditions import (CLEAN, OCCLUSION_THRESHOLD, WITH_PAST, carry_label, clip_record,
                                            condition_reports, crop_boxes, frame_conditions, hold_labels, is_degraded,
                                            read_record)
from facemask.evaluation.evidence import subject_cms
from facemask.evaluation.memory import GAIN, MIN_CHANGED, TO_HOLD, ablation_report, probe_report
from facemask.evaluation.metrics import comparison_figure, flip_rate, iou_report, reports_by

#: What a memory of the last clean view gives, scored beside the methods: the hold baseline (the FCN's labels of
#: the last clean frame, held) and the ceiling (the ground truth of the last clean frame, held; the FCN elsewhere).
REFERENCES = ("hold", "ceiling")
ZOOM_CLASSES = {"eyes": ("background", "eye"), "mouth": ("background", "lips", "inner_mouth")}


class Predictions:
    """The predictions folder: ``learned/`` (the fuse stage: the learned methods, probes, zoomed models,
    ``info.json``), one folder per landmark method (``tracker/``, ``mesh/``: label PNGs and ``info.json``) and
    ``located/`` (the learned methods as `facemask predict` runs them, `facemask.app.located`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.learned = self.root / "learned"
        self.info = _read_json(self.learned / "info.json")
        self.landmarks = {m: _read_json(self.root / m / "info.json") for m in LANDMARK_METHODS}
        self.located = _read_json(self.root / "located" / "info.json")
        self.methods = (*scored_methods(self.info, self.landmarks), *self.located.get("methods", []))

    def dir(self, method: str) -> Path:
        """The folder of `method`'s label PNGs."""
        if method in LANDMARK_METHODS:
            return self.root / method
        return self.root / "located" / method if method in self.located.get("methods", []) else self.learned / method

    def label(self, method: str, name: str, gt: np.ndarray) -> np.ndarray:
        return _prediction(self.dir(method) / f"{name}.png", gt)

    def fuse_info(self) -> dict:
        """Everything the prediction stages record (no wall-clock figures): the learned methods' info with each
        landmark method's beside it."""
        return {**self.info, **self.landmarks, "located": self.located}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def scored_methods(info: dict, landmarks: dict) -> tuple[str, ...]:
    """What evaluate scores: the paper's methods the fuse stage wrote (its info.json; the paper's and Table 2's
    baselines when it does not list them), the landmark tracker, the face mesh when its stage made it, then the
    other learned methods (the temporal ones, Table 2's baselines)."""
    fused = info.get("methods") or [*CLIP_METHODS, *info.get("baselines", [])]
    optional = [m for m in LANDMARK_METHODS[1:] if landmarks.get(m) and "skipped" not in landmarks[m]]
    return (*[m for m in fused if m in CLIP_METHODS], LANDMARK_METHODS[0], *optional,
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
        try:
            self.boxes = crop_boxes(mask_frames)
        except BadInputError as e:
            self.reason = str(e)
            return
        self.record = read_record(record)
        self.path, self.available = record, True

    def clip(self, names: list[str]) -> tuple[np.ndarray, list[str], list[str]] | None:
        """(degraded, condition, kind) of a clip's frames, or None when unavailable."""
        if not self.available:
            return None
        rec = clip_record(self.record, names, self.path)
        degraded = is_degraded(rec["transient"], rec["occlusion"])
        kinds = [t if t else ("occluded" if d else "clean") for t, d in zip(rec["transient"], degraded)]
        return degraded, frame_conditions(degraded, self.window), kinds

    def conditions_report(self, meta: pd.DataFrame, cms: np.ndarray, names: Sequence[str]) -> dict:
        """conditions.json: every method, the hold baseline and the ceiling (`REFERENCES`, among `names`) per
        condition and per kind."""
        if not self.available:
            return {"available": False, "reason": self.reason}
        return {"available": True, "occlusion_threshold": OCCLUSION_THRESHOLD, "window": self.window,
                "degraded_frames": int((meta["condition"] != CLEAN).sum()),
                "by_condition": condition_reports(meta["condition"], cms, names),
                "by_kind": reports_by(meta, cms, names, "kind")}


def score_test_set(clips: list[dict], predictions: Predictions, mask_dir: Path, frames: FrameRecord, T: int) -> dict:
    """Every test frame against its label: ``meta`` (a row per frame: clip, video, category, step in its window,
    name, condition, kind), ``cms`` (frames, methods, C, C), the references' ``refs`` ({"hold", "ceiling"}: (frames,
    C, C) each, when the record allows; `facemask.evaluation.conditions.hold_labels`), each method's ``flips``, per
    temporal method the pixels its memory ``changed`` on the degraded frames with a clean past
    (`facemask.evaluation.memory`), and a hash of the labels."""
    C, methods = len(CLASS_NAMES), predictions.methods
    meta, cms, refs = [], [], {r: [] for r in REFERENCES}
    flips = {k: np.zeros(2, np.int64) for k in ("ground_truth", *methods)}
    changed = {m: 0 for m in CONTROLS}
    labels_hash = hashlib.sha256()
    for k, clip in enumerate(tqdm(clips, desc="evaluate", unit="clip")):
        names = clip["names"]
        seq = {key: [] for key in flips}
        for name in names:
            seq["ground_truth"].append(read_label_png(mask_dir / "labels_orig" / f"{name}.png"))
            for m in methods:
                seq[m].append(predictions.label(m, name, seq["ground_truth"][-1]))
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
            boxes = [frames.boxes[n] for n in names]
            for ref, source in (("hold", seq["fcn"]), ("ceiling", seq["ground_truth"])):
                held = hold_labels(seq["fcn"], boxes, degraded, held=source)
                refs[ref] += [confusion_matrix(g, h, C) for g, h in zip(seq["ground_truth"], held)]
        for key, labels in seq.items():  # within a clip only: clips are not contiguous in time
            flips[key] += flip_rate(labels)
    meta = pd.DataFrame(meta)
    refs = {r: np.stack(v) for r, v in refs.items() if v}
    return {"meta": meta, "cms": np.stack(cms), "refs": refs, "flips": flips,
            "changed": changed, "methods": tuple(methods), "labels_sha256": labels_hash.hexdigest()}


def _prediction(path: Path, gt: np.ndarray) -> np.ndarray:
    pred = read_label_png(path)
    if pred.shape != gt.shape:
        raise ValueError(f"{path}: prediction {pred.shape} differs in size from its label {gt.shape}")
    return pred


def score_memory(clips: list[dict], mask_dir: Path, predictions: Predictions, frames: FrameRecord, test: dict) -> dict:
    """memory.json (`facemask.evaluation.memory`): (a) each probe kind on its replaced frames, beside the FCN, the
    hold baseline and the ceiling (the FCN's labels, or the ground truth, of the frame before, carried to this
    frame's crop); (b) the memoryless ablation on the degraded frames with a clean past. Also ``cms``: per probe
    kind, every name's per-subject confusion matrices (`facemask.evaluation.evidence.subject_cms`)."""
    probes, probe_dir = predictions.info.get("probes", {}), predictions.learned / "probes"
    out = {"available": True, "thresholds": {"gain_over_fcn": GAIN, "below_hold": TO_HOLD,
                                             "changed_share": MIN_CHANGED}, "probes": {}, "cms": {}}
    for kind in probes.get("kinds", []):
        names = (*probes["methods"], *REFERENCES)
        videos, cms = _probe_cms(clips, mask_dir, predictions, probe_dir / kind, probes["methods"], frames, kind)
        out["probes"][kind] = probe_report(dict(zip(names, cms.sum(0))), len(cms), kind)
        out["cms"][kind] = subject_cms(videos, cms, names)[1]
    meta, cms, methods = test["meta"], test["cms"], list(test["methods"])
    rows = (meta["condition"] == WITH_PAST).to_numpy()
    pixels = int(cms[rows, 0].sum()) if rows.any() else 0
    out["ablation"] = ablation_report({m: cms[rows, methods.index(m)].sum(0) for m in methods},
                                      test["changed"], pixels, int(rows.sum()))
    return out


def _probe_cms(clips: list[dict], mask_dir: Path, predictions: Predictions, kind_dir: Path, methods: Sequence[str],
               frames: FrameRecord, kind: str) -> tuple[list[str], np.ndarray]:
    """The replaced frames of one probe kind: their videos and confusion matrices (frames, methods + REFERENCES,
    C, C) against the frame's ground truth (the cut: the donor frame's, resized to this crop); the references
    carry the FCN's labels, or the ground truth, of the frame before."""
    C = len(CLASS_NAMES)
    videos, cms = [], []
    subjects = [clip["video"] for clip in clips]
    for k, clip in enumerate(clips):
        names = clip["names"]
        for i in probe_frames(len(names), frames.window):
            gt = read_label_png(mask_dir / "labels_orig" / f"{names[i]}.png")
            if kind == "cut":  # the donor's frame, as the models saw it: its crop resized to this one's
                donor = read_label_png(mask_dir / "labels_orig" / f"{clips[donor_clip(subjects, k)]['names'][i]}.png")
                gt = cv2.resize(donor, gt.shape[::-1], interpolation=cv2.INTER_NEAREST)
            before = {"hold": read_label_png(predictions.dir("fcn") / f"{names[i - 1]}.png"),
                      "ceiling": read_label_png(mask_dir / "labels_orig" / f"{names[i - 1]}.png")}
            src, dst = frames.boxes[names[i - 1]], frames.boxes[names[i]]
            row = [confusion_matrix(gt, _prediction(kind_dir / m / f"{names[i]}.png", gt), C) for m in methods]
            row += [confusion_matrix(gt, carry_label(before[r], src, dst), C) for r in REFERENCES]
            videos.append(clip["video"])
            cms.append(np.stack(row))
    return videos, np.stack(cms) if cms else np.zeros((0, len(methods) + len(REFERENCES), C, C), np.int64)


def score_zoomed(clips_dir: Path, predictions: Predictions, videos: Sequence[str]) -> tuple[dict, dict]:
    """The eye and mouth models (FCN and ConvLSTM-FCN) on their test sub-datasets (`videos`: each clip's subject),
    and per region and model the per-subject confusion matrices."""
    zoomed, per_subject = {}, {}
    for region, names in ZOOM_CLASSES.items():
        _, gt = load_split(clips_dir / region / "test")
        zoomed[region], per_subject[region] = {}, {}
        for arch in ("fcn", "convlstm"):
            pred = np.load(predictions.learned / "zoomed" / region / f"{arch}.npy", mmap_mode="r")
            per_clip = np.stack([confusion_matrix(gt[k], pred[k], len(names)) for k in range(len(gt))])
            zoomed[region][arch] = iou_report(per_clip.sum(0), names)
            per_subject[region][arch] = subject_cms(videos, per_clip[:, None], (arch,))[1][arch]
    return zoomed, per_subject


def test_set_id(meta: pd.DataFrame, labels_sha256: str) -> dict:
    """What a seed's record must share with this run to be summarised with it: the test frames (their number,
    clips and a hash of their names, in order) and a hash of their labels (the same names on a regenerated
    benchmark are other frames)."""
    names = "\n".join(meta["name"]).encode()
    return {"clips": int(meta["clip"].nunique()), "frames": int(len(meta)),
            "names_sha256": hashlib.sha256(names).hexdigest(), "labels_sha256": labels_sha256}


def recorded_runs(folder: Path, test_set: dict, log) -> dict[int, dict]:
    """The other seeds' records (``seed_<N>.json``) made on this run's test set, with the per-subject confusion
    matrices the statistics need (``cms``). Others are left out, each with a warning (a seed run on another
    benchmark, an older record, or the tiny pipelines of the tests)."""
    runs = {}
    for f in sorted(folder.glob("seed_*.json")):
        r = json.loads(f.read_text())
        if r.get("test_set") != test_set:
            why = f"test set {r.get('test_set')} is not this run's {test_set}"
        elif "cms" not in r:
            why = "no per-subject confusion matrices (a record older than the statistics over seeds and subjects)"
        else:
            runs[int(r["seed"])] = r
            continue
        log.warning("evaluate: %s left out of the seeds' summary: %s", f, why)
    return runs


def example_rows(clips: list[dict], predictions: Predictions, mask_dir: Path, n_examples: int) -> list[tuple]:
    """Fig. 5's rows: the middle frame of evenly spaced test clips (crop, ground truth, every method's labels)."""
    picks = sorted({int(round(x)) for x in np.linspace(0, len(clips) - 1, min(n_examples, len(clips)))})
    rows = []
    for k in picks:
        name = clips[k]["names"][len(clips[k]["names"]) // 2]
        image = cv2.imread(str(mask_dir / "images_orig" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        gt = read_label_png(mask_dir / "labels_orig" / f"{name}.png")
        rows.append((image, gt, {m: read_label_png(predictions.dir(m) / f"{name}.png") for m in predictions.methods},
                     name))
    return rows


def example_figure(clips: list[dict], predictions: Predictions, mask_dir: Path, n_examples: int) -> np.ndarray:
    """The paper's Fig. 5 for the test set (`example_rows`, `facemask.evaluation.metrics.comparison_figure`)."""
    return comparison_figure(example_rows(clips, predictions, mask_dir, n_examples), predictions.methods)

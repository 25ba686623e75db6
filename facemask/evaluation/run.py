"""One evaluation of the test set, as the evaluate stage writes it: `evaluate` computes every report from the
predictions and the ground truth (`facemask.evaluation.scoring`), `write_results` writes them.

What is written (``metrics/``): ``eval.json`` (per method: IoU of skin, eyes, lips, inner mouth and their mean
``miou``, fractions in [0, 1]), ``zoomed.json`` (the eye and mouth models on their test sub-datasets) and
``eval/``: ``categories.json`` (per 300VW category), ``per_subject.csv`` (Fig. 6), ``timestep.csv`` /
``timestep.json`` (Table 4), ``significance.json`` (this run against the FCN, test subjects resampled),
``stability.json`` (flicker), ``conditions.json`` and ``memory.json`` (per frame condition, the memory checks),
``seeds.csv`` / ``seeds.json`` (this run and the other training seeds' records: mean ± std, and the statistics
over seeds and subjects, `facemask.evaluation.evidence`), ``run.json`` (this seed's record: every report above,
the per-subject confusion matrices, the models' validation scores), ``examples.png`` (Fig. 5),
``fuse_info.json`` (what the prediction stages recorded) and ``results.md``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facemask.core.io import atomic_dir, atomic_write_json
from facemask.core.iou import finite_or_none
from facemask.data.clips.build import read_split_clips
from facemask.data.layout import VIDEOS_DIR
from facemask.evaluation.conditions import CONDITIONS, seeds_by_condition
from facemask.evaluation.evidence import compare_runs, record_cms
from facemask.evaluation.metrics import (reports_by, seeds_summary, seeds_table, stability_report, subject_table,
                                         timestep_table)
from facemask.evaluation.report import results_markdown
from facemask.evaluation.scoring import (FrameRecord, Predictions, example_figure, recorded_runs, score_memory,
                                         score_test_set, score_zoomed, test_set_id)

log = logging.getLogger(__name__)


def evaluate(clips_dir: Path, mask_dir: Path, raw_dir: Path, predictions_dir: Path, seeds_dir: Path,
             curves_dir: Path, seed: int, examples: int, window: int, draws: int, stats_seed: int) -> dict:
    """Every report of one run (training seed `seed`): ``{"eval.json", "zoomed.json", "eval": {file: content}}``.

    `curves_dir` (``metrics/train``): the training stages' best-epoch validation scores, recorded with the run;
    `draws`, `stats_seed`: the bootstrap's (`facemask.evaluation.stats`)."""
    clips = read_split_clips(clips_dir, "test")
    predictions = Predictions(predictions_dir)
    methods = predictions.methods
    frames = FrameRecord(raw_dir / VIDEOS_DIR / "frames.csv", mask_dir / "frames.csv", window)
    test = score_test_set(clips, predictions, mask_dir, frames, window)
    meta, cms = test["meta"], test["cms"]
    names = (*methods, *test["refs"])
    every = np.concatenate([cms, *(r[:, None] for r in test["refs"].values())], axis=1)
    report = reports_by(meta, cms, methods)
    zoomed, zoomed_cms = score_zoomed(clips_dir, predictions, [c["video"] for c in clips])
    conditions = frames.conditions_report(meta, every, names)
    memory = score_memory(clips, mask_dir, predictions, frames, test) if frames.available else \
        {"available": False, "reason": frames.reason}
    steps = timestep_table(meta, cms, methods)
    parts = {"timestep": {f"t{t + 1}": (meta["step"] == t).to_numpy() for t in sorted(meta["step"].unique())}}
    if frames.available:
        parts["conditions"] = {c: (meta["condition"] == c).to_numpy() for c in CONDITIONS}
    record = {"seed": seed, "test_set": test_set_id(meta, test["labels_sha256"]), "eval": report, "zoomed": zoomed,
              "timestep": _timestep(steps, methods), "conditions": conditions.get("by_condition"),
              "memory": {k: v for k, v in memory.items() if k != "cms"}, "val": validation(curves_dir),
              "cms": {**record_cms(meta, every, names, parts), "probes": memory.get("cms", {}), "zoomed": zoomed_cms}}
    runs = {**recorded_runs(seeds_dir, record["test_set"], log), seed: record}  # this run replaces its record
    stats = dict(draws=draws, seed=stats_seed)
    statistics = {"all": compare_runs(runs, methods, **stats),
                  "conditions": {c: compare_runs(runs, names, where=("conditions", c), **stats)
                                 for c in parts.get("conditions", {})}}
    significance = compare_runs({seed: record}, methods, **stats)
    seeds = {"seeds": sorted(runs), "methods": seeds_summary(runs, methods), "statistics": statistics,
             "conditions": seeds_by_condition(runs)}
    categories = reports_by(meta, cms, methods, "category")
    flips = test["flips"]
    stability = {**stability_report({k: tuple(int(x) for x in v) for k, v in flips.items()}),
                 "counts": {k: {"flips": int(v[0]), "pixels": int(v[1])} for k, v in flips.items()}}
    md = results_markdown(report, significance, stability, categories, seeds, seed, methods, conditions, memory)
    files = {"categories.json": categories, "per_subject.csv": subject_table(meta, cms, methods),
             "timestep.csv": steps, "timestep.json": record["timestep"], "significance.json": significance,
             "stability.json": stability, "conditions.json": conditions, "memory.json": record["memory"],
             "seeds.csv": seeds_table(runs, methods), "seeds.json": seeds, "run.json": record,
             "examples.png": example_figure(clips, predictions, mask_dir, examples),
             "fuse_info.json": predictions.fuse_info(), "results.md": md}
    log.info("evaluate: %d frames of %d clips; cascade mIoU %.2f %%, FCN %.2f %%", len(meta), len(clips),
             100 * report["cascade"]["miou"], 100 * report["fcn"]["miou"])
    return {"eval.json": report, "zoomed.json": zoomed, "eval": files}


def _timestep(steps: pd.DataFrame, methods) -> dict:
    """Table 4 of one run: every method's mIoU minus the FCN's at each time step t1..tT of the window."""
    return {f"{m}_minus_fcn": {f"t{int(r['t'])}": finite_or_none(r[f"{m}_minus_fcn"]) for r in steps.to_dict("records")}
            for m in methods if m != "fcn"}


def validation(curves_dir: Path) -> dict:
    """Each trained model's validation scores as its training stage recorded them
    (``<curves_dir>/<region>/<phase>/metrics.json``: the best epoch's, the converted start's, the head phase's),
    so that a record shows what any choice made on validation was made on."""
    out = {}
    for path in sorted(Path(curves_dir).glob("*/*/metrics.json")):
        out.setdefault(path.parent.parent.name, {})[path.parent.name] = json.loads(path.read_text())
    return out


def write_results(results: dict, out: Path) -> None:
    """`evaluate`'s reports into `out` (``metrics/``), each file atomically, ``eval/`` as one folder."""
    atomic_write_json(out / "eval.json", results["eval.json"])
    atomic_write_json(out / "zoomed.json", results["zoomed.json"])
    with atomic_dir(out / "eval") as folder:
        for name, content in results["eval"].items():
            path = folder / name
            if isinstance(content, pd.DataFrame):
                content.to_csv(path, index=False, float_format="%.6f")
            elif name.endswith(".png"):
                cv2.imwrite(str(path), content)
            elif name == "fuse_info.json":  # as the prediction stages write their info.json
                path.write_text(json.dumps(content, indent=2) + "\n")
            elif name.endswith(".json"):
                atomic_write_json(path, content)
            else:
                path.write_text(content)

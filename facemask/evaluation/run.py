"""One evaluation of the test set, as the evaluate stage writes it: `evaluate` computes every report from the
predictions and the ground truth (`facemask.evaluation.scoring`), `write_results` writes them.

What is written (``metrics/``): ``eval.json`` (per method: IoU of skin, eyes, lips, inner mouth and their mean
``miou``, fractions in [0, 1]), ``zoomed.json`` (the eye and mouth models on their test sub-datasets) and
``eval/``: ``categories.json`` (per 300VW category), ``per_subject.csv`` (Fig. 6), ``timestep.csv`` /
``timestep.json`` (Table 4), ``significance.json`` (paired tests against the FCN over groups of test sequences),
``stability.json`` (flicker), ``conditions.json`` and ``memory.json`` (per frame condition, the memory checks),
``seeds.csv`` / ``seeds.json`` (this run and the other training seeds' records: mean ± std, seed-averaged P),
``run.json`` (this seed's record), ``examples.png`` (Fig. 5), ``fuse_info.json`` (what the prediction stages
recorded) and ``results.md``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import pandas as pd

from facemask.core.io import atomic_dir, atomic_write_json
from facemask.core.iou import finite_or_none
from facemask.data.clips.build import read_split_clips
from facemask.data.layout import VIDEOS_DIR
from facemask.evaluation.conditions import seeds_by_condition
from facemask.evaluation.metrics import (
    reports_by,
    seeds_summary,
    seeds_table,
    significance,
    stability_report,
    subject_table,
    timestep_table,
)
from facemask.evaluation.report import conditions_markdown, conditions_seeds_markdown, memory_markdown, results_markdown
from facemask.evaluation.scoring import (
    FrameRecord,
    Predictions,
    example_figure,
    recorded_runs,
    score_memory,
    score_test_set,
    score_zoomed,
    test_set_id,
)

log = logging.getLogger(__name__)


def evaluate(clips_dir: Path, mask_dir: Path, raw_dir: Path, predictions_dir: Path, seeds_dir: Path, seed: int,
             groups: int, examples: int, window: int) -> dict:
    """Every report of one run (training seed `seed`): ``{"eval.json", "zoomed.json", "eval": {file: content}}``."""
    clips = read_split_clips(clips_dir, "test")
    predictions = Predictions(predictions_dir)
    methods = predictions.methods
    frames = FrameRecord(raw_dir / VIDEOS_DIR / "frames.csv", mask_dir / "frames.csv", window)
    test = score_test_set(clips, predictions, mask_dir, frames, window)
    meta, cms = test["meta"], test["cms"]
    report = reports_by(meta, cms, methods)
    sig = significance(meta, cms, methods, groups)
    flips = test["flips"]
    stability = {**stability_report({k: tuple(int(x) for x in v) for k, v in flips.items()}),
                 "counts": {k: {"flips": int(v[0]), "pixels": int(v[1])} for k, v in flips.items()}}
    zoomed, zoomed_groups = score_zoomed(clips_dir, predictions, groups)
    conditions = frames.conditions_report(meta, cms, test["hold"], methods)
    memory = score_memory(clips, mask_dir, predictions, frames, test) if frames.available else \
        {"available": False, "reason": frames.reason}
    steps = timestep_table(meta, cms, methods)
    timestep = {f"{m}_minus_fcn": {f"t{int(r['t'])}": finite_or_none(r[f"{m}_minus_fcn"]) for r in steps.to_dict("records")}
                for m in methods if m != "fcn"}
    test_set = test_set_id(meta, sig["groups"], test["labels_sha256"])
    runs = recorded_runs(seeds_dir, test_set, log)
    runs[seed] = {"seed": seed, "eval": report, "group_miou": sig["group_miou"],   # this run replaces its record
                  "zoomed": zoomed, "zoomed_group_miou": zoomed_groups, "test_set": test_set, "timestep": timestep,
                  "conditions": conditions.get("by_condition"), "memory": memory}
    seeds, seed_conditions = seeds_summary(runs, methods), seeds_by_condition(runs)
    categories = reports_by(meta, cms, methods, "category")
    md = results_markdown(report, sig, stability, categories, seeds, seed, methods) + conditions_markdown(conditions) \
        + conditions_seeds_markdown(seed_conditions) + memory_markdown(memory)
    files = {"categories.json": categories, "per_subject.csv": subject_table(meta, cms, methods),
             "timestep.csv": steps, "timestep.json": timestep, "significance.json": sig, "stability.json": stability,
             "conditions.json": conditions, "memory.json": memory, "seeds.csv": seeds_table(runs, methods),
             "seeds.json": {"seeds": sorted(runs), "methods": seeds, "conditions": seed_conditions},
             "run.json": runs[seed], "examples.png": example_figure(clips, predictions, mask_dir, examples),
             "fuse_info.json": predictions.fuse_info(), "results.md": md}
    log.info("evaluate: %d frames of %d clips; cascade mIoU %.2f %%, FCN %.2f %%", len(meta), len(clips),
             100 * report["cascade"]["miou"], 100 * report["fcn"]["miou"])
    return {"eval.json": report, "zoomed.json": zoomed, "eval": files}


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

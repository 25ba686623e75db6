"""The evaluate stage's reports in markdown (``metrics/eval/results.md``): the methods' IoUs with the seeds' spread
and the significance tests, per 300VW category, per frame condition, and the memory checks."""
from __future__ import annotations

import numpy as np

from facemask.core.methods import CLIP_METHODS, LANDMARK_METHODS, TEMPORAL_METHODS
from facemask.data.labels import CLASS_NAMES
from facemask.evaluation.conditions import CONDITIONS

#: The methods every run scores, in the table's order (Table 2's baselines and the face mesh when present).
SCORED_METHODS = (*CLIP_METHODS, LANDMARK_METHODS[0], *TEMPORAL_METHODS)
#: Each method's name in the tables.
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
UNTRAINED = LANDMARK_METHODS


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

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
          "predict_cascade": "cascade as `facemask predict` runs it (crops from the landmarks, state streamed)",
          "predict_primary": "primary as `facemask predict` runs it (crops from the landmarks, state streamed)",
          "predict_primary_window": "primary as `facemask predict --state window` runs it (crops from the landmarks)",
          "predict_fcn": "FCN as `facemask predict` runs it (crops from the landmarks)",
          "hold": "hold baseline (the FCN's labels of the last clean frame, held)",
          "ceiling": "ceiling (the ground truth of the last clean frame, held; the FCN elsewhere)"}
#: mIoU (%) the paper reports (Table 9; the tracker: Table 2, row 1); the per-class values were not
#: part of the text we have.
PAPER_MIOU = {"fcn": 54.50, "cascade": 63.76, "tracker": 60.09}
#: Methods without a training seed (the same on every seed's run).
UNTRAINED = LANDMARK_METHODS


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.2f}"


def _interval(r: dict | None) -> str:
    """``mean [low, high]`` of a bootstrap result (`facemask.evaluation.stats`), in points of mIoU."""
    if r is None:
        return "–"
    return f"{_pct(r['estimate'])} [{_pct(r['low'])}, {_pct(r['high'])}]"


def _pvalue(d: dict | None) -> str:
    return "–" if d is None else f"{d['p']:.2g} ({d['p_holm']:.2g})"


def results_markdown(report: dict, significance: dict | None, stability: dict, categories: dict, seeds: dict,
                     seed: int, methods: tuple[str, ...] = SCORED_METHODS, conditions: dict | None = None,
                     memory: dict | None = None) -> str:
    """results.md: the methods' IoUs (this run), their mean over the training seeds with the statistics over seeds
    and subjects, per 300VW category, per frame condition and the memory checks."""
    stats = seeds["statistics"]["all"] or {"scores": {}, "differences": {}, "comparisons": 0}
    n = len(seeds["seeds"])
    head = ["method", *CLASS_NAMES[1:], f"mIoU, seed {seed}", f"mIoU over {n} seed{'s' * (n != 1)}: mean ± std",
            "[95 % interval]", "paper", "− FCN [95 % interval]", "P (Holm)", "flip rate / GT's"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        r, sd = report[m], seeds["methods"][m]
        ratio = stability["ratio_to_ground_truth"].get(m)
        if sd["mean"] is None:
            spread = "–"
        elif m in UNTRAINED:  # no training seed: one run is all there is
            spread = f"{_pct(sd['mean'])} (not trained)"
        else:
            spread = f"{_pct(sd['mean'])} ± {_pct(sd['std'])}" if sd["std"] is not None else f"{_pct(sd['mean'])} (1 seed)"
        score, diff = stats["scores"].get(m), stats["differences"].get(m)
        interval = "–" if score is None else f"[{_pct(score['low'])}, {_pct(score['high'])}]"
        lines.append("| " + " | ".join([LABELS[m], *(_pct(r[c]) for c in CLASS_NAMES[1:]), f"**{_pct(r['miou'])}**",
                                        spread, interval, f"{PAPER_MIOU[m]:.2f}" if m in PAPER_MIOU else "–",
                                        _interval(diff), _pvalue(diff),
                                        "–" if ratio is None else f"{ratio:.2f}"]) + " |")
    note = (f"\nIoU (%) on the test set, at each crop's original resolution, training seed {seed}; over the seeds: "
            f"mean ± standard deviation of the {n} training seeds' mIoU (metrics/eval/seeds.csv). Intervals and P: "
            f"{STATS_NOTE} ({stats['comparisons']} comparisons with the FCN, P Holm-adjusted in brackets). "
            f"Flip rate: share of pixels whose class changes between consecutive frames, relative to the ground "
            f"truth's ({_pct(stability['flip_rate']['ground_truth'])} %).")
    cat = ["", "mIoU (%) per 300VW category (this run):", "",
           "| category | frames | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for c, d in categories.items():
        cat.append(f"| {c} | {d['frames']} | " + " | ".join(_pct(d[m]["miou"]) for m in methods) + " |")
    return ("\n".join(lines) + "\n" + note + "\n" + "\n".join(cat) + "\n" + conditions_markdown(conditions or {}, seeds)
            + memory_markdown(memory or {}))


#: How every interval and P value of the reports is made (`facemask.evaluation.stats`).
STATS_NOTE = ("two-way bootstrap over training seeds and test subjects (videos), 95 % percentile intervals, "
              "two-sided P of the difference (facemask/evaluation/stats.py)")


def conditions_markdown(conditions: dict, seeds: dict) -> str:
    """results.md: mIoU per frame condition over the training seeds (mean and interval), the hold baseline and
    the ceiling among the rows."""
    if not conditions.get("available"):
        return f"\nNo per-condition scores: {conditions.get('reason')}\n"
    by, stats = conditions["by_condition"], seeds["statistics"].get("conditions", {})
    cols = [c for c in CONDITIONS if stats.get(c)]
    n = len(seeds["seeds"])
    lines = ["", f"mIoU (%) per frame condition, mean over {n} training seed{'s' * (n != 1)} [95 % interval] "
                 f"({conditions['degraded_frames']} degraded test frames of this run: a transient event, or occluders "
                 f"over >= {conditions['occlusion_threshold']} of the face; 'with clean past': a clean frame earlier "
                 f"in the {conditions['window']}-frame window). The hold baseline shows the FCN's labels of the "
                 "clip's last clean frame on every degraded frame (a per-frame model with a memory of its own last "
                 "clean view); the ceiling shows the ground truth of that frame (the most such a memory could add "
                 "to the FCN):", "",
             "| method | " + " | ".join(f"{c} ({by[c]['frames']})" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for m in [k for k in by["all"] if k != "frames"]:
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(_interval(stats[c]["scores"].get(m)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def memory_markdown(memory: dict) -> str:
    """results.md: the memory checks (every probe with its rule, the ablation)."""
    if not memory.get("available"):
        return f"\nNo memory checks: {memory.get('reason')}\n"
    lines = ["", "Memory checks (metrics/eval/memory.json): the last frame of every window replaced (black, noise: the "
                 "training corruptions; bars, checker: never trained on; cut: another subject's frame, scored against "
                 "its labels); mIoU (%) on those frames, this run, and each probe's pass rule:", "",
             "| probe | frames | FCN | hold | ceiling | primary | primary (stream) | memoryless | rule | pass (primary / "
             "stream) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, r in memory["probes"].items():
        mi, ck = r["miou"], r["checks"]
        passed = " / ".join(str(ck[m]["pass"]) if m in ck else "–" for m in ("primary", "primary_stream"))
        lines.append(f"| {kind} | {r['frames']} | {_pct(mi.get('fcn'))} | {_pct(mi.get('hold'))} | "
                     f"{_pct(mi.get('ceiling'))} | {_pct(mi.get('primary'))} | {_pct(mi.get('primary_stream'))} | "
                     f"{_pct(mi.get('primary_reset'))} | {r.get('rule', '')} | {passed} |")
    ab = memory["ablation"]
    for m, r in ab["methods"].items():
        lines.append(f"\nAblation, {m}: on the {ab['frames']} degraded frames with a clean past the memory changes "
                     f"{100 * (r['changed_share'] or 0):.2f} % of the pixels; mIoU {_pct(r['miou'])} with it, "
                     f"{_pct(r['control_miou'])} with the state reset at every frame.")
    return "\n".join(lines) + "\n"

"""The memory checks, scored: does a temporal model use its past? (Not in the paper; the evidence its
temporal claim needs: a ConvLSTM whose state does nothing scores like a per-frame model.)

(a) **Probes** (`facemask.inference.probes`: the last frame of every window replaced, in the input). On the
    replaced frames, against their ground truth: each probed method's mIoU, the FCN's (a per-frame model:
    nothing to go on), the **hold**'s (the FCN's labels of the frame before, carried to this frame's crop: what a
    memory of the last frame gives) and the **ceiling**'s (the ground truth of the frame before, carried).
    The pass rules, written down before the ``bars``, ``checker`` and ``cut`` probes were first run:

    * a probe the memory should hold the face through (`facemask.core.methods.HELD_PROBES`: black, noise — the
      training corruptions —, bars, checker — never trained on): at least `GAIN` above the FCN and no more than
      `TO_HOLD` below the hold;
    * the ``cut`` (another subject's frame, scored against that frame's ground truth): the memory must follow
      it, not hold the old face: no more than `FOLLOW` below the FCN, which sees only the new frame.
(b) **Ablation**: the same weights with the state reset at every frame (``primary_reset``), on the degraded
    frames that have a clean frame earlier in their window (`facemask.evaluation.conditions.WITH_PAST`). The
    memory is used when it changes at least `MIN_CHANGED` of those frames' pixels; the mIoU with and without
    it say whether it helps.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from facemask.core.iou import finite_or_none, mean_iou
from facemask.core.methods import CONTROLS, HELD_PROBES

#: (a): at least this much mIoU above the FCN on the replaced frames, ...
GAIN = 0.20
#: ... and at most this much below the hold.
TO_HOLD = 0.10
#: ... and on a cut, at most this much below the FCN.
FOLLOW = 0.05
#: (b): the memory must change at least this share of the pixels of the degraded frames with a clean past.
MIN_CHANGED = 0.01


def probe_report(cms: Mapping[str, np.ndarray], frames: int, kind: str = "black") -> dict:
    """One probe kind: ``{"frames", "rule", "miou": {method: ...}, "checks": {temporal method: {...}}}`` from the
    summed confusion matrices of the replaced frames per method (``fcn`` and ``hold`` among them); the rule of
    `kind` (held, or the cut: followed)."""
    miou = {m: finite_or_none(mean_iou(cm)) for m, cm in cms.items()}
    fcn, hold = miou.get("fcn"), miou.get("hold")
    held = kind in HELD_PROBES
    checks = {}
    for m in CONTROLS:
        if m not in miou or None in (miou[m], fcn, hold):
            continue
        gain, to_hold = miou[m] - fcn, hold - miou[m]
        ok = gain >= GAIN - 1e-9 and to_hold <= TO_HOLD + 1e-9 if held else gain >= -FOLLOW - 1e-9
        checks[m] = {"gain_over_fcn": gain, "below_hold": to_hold, "pass": bool(ok)}  # 1e-9: mIoUs are ratios
    rule = f">= FCN + {GAIN:g} and >= hold - {TO_HOLD:g}" if held else f">= FCN - {FOLLOW:g} (follows the cut)"
    return {"frames": int(frames), "rule": rule, "miou": miou, "checks": checks}


def ablation_report(cms: Mapping[str, np.ndarray], changed: Mapping[str, int], pixels: int, frames: int) -> dict:
    """(b): per temporal method, its mIoU and its control's on the degraded frames with a clean past, and the
    share of their pixels the memory changes (`changed`: per temporal method, the pixels whose label differs
    from the control's)."""
    out = {"frames": int(frames), "pixels": int(pixels), "methods": {}}
    for m, control in CONTROLS.items():
        if m not in cms or control not in cms:
            continue
        share = changed.get(m, 0) / pixels if pixels else None
        out["methods"][m] = {"control": control, "miou": finite_or_none(mean_iou(cms[m])),
                             "control_miou": finite_or_none(mean_iou(cms[control])), "changed_share": share,
                             "uses_memory": bool(share is not None and share >= MIN_CHANGED)}
    return out

"""The memory checks, scored: does a temporal model use its past? (Not in the paper; the evidence its
temporal claim needs: a ConvLSTM whose state does nothing scores like a per-frame model.)

(a) **Probes** (`facemask.inference.probes`: the last frame of every window replaced, in the input, by a
    black or a noise frame). On the replaced frames, against their ground truth: each probed method's mIoU,
    the FCN's (a per-frame model: nothing to go on) and the **hold**'s (the FCN's labels of the frame
    before, carried to this frame's crop: what a memory of the last frame gives). A temporal method passes
    when it scores at least `GAIN` above the FCN and no more than `TO_HOLD` below the hold.
(b) **Ablation**: the same weights with the state reset at every frame (``primary_reset``), on the degraded
    frames that have a clean frame earlier in their window (`facemask.evaluation.conditions.WITH_PAST`). The
    memory is used when it changes at least `MIN_CHANGED` of those frames' pixels; the mIoU with and without
    it say whether it helps.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from facemask.core.iou import finite_or_none, mean_iou
from facemask.core.methods import CONTROLS

#: (a): at least this much mIoU above the FCN on the replaced frames, ...
GAIN = 0.20
#: ... and at most this much below the hold.
TO_HOLD = 0.10
#: (b): the memory must change at least this share of the pixels of the degraded frames with a clean past.
MIN_CHANGED = 0.01


def probe_report(cms: Mapping[str, np.ndarray], frames: int) -> dict:
    """One probe kind: ``{"frames", "miou": {method: ...}, "checks": {temporal method: {...}}}`` from the summed
    confusion matrices of the replaced frames per method (``fcn`` and ``hold`` among them)."""
    miou = {m: finite_or_none(mean_iou(cm)) for m, cm in cms.items()}
    fcn, hold = miou.get("fcn"), miou.get("hold")
    checks = {}
    for m in CONTROLS:
        if m not in miou or None in (miou[m], fcn, hold):
            continue
        gain, to_hold = miou[m] - fcn, hold - miou[m]
        checks[m] = {"gain_over_fcn": gain, "below_hold": to_hold,  # compared to 1e-9 (mIoUs are ratios)
                     "pass": bool(gain >= GAIN - 1e-9 and to_hold <= TO_HOLD + 1e-9)}
    return {"frames": int(frames), "miou": miou, "checks": checks}


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

"""No silent collapse: a training phase is kept only when its validation scores stay near its start's.

A ConvLSTM-FCN starts as its FCN converted (`facemask.models.nets.ConvLSTMFCN.from_fcn`), scored on the
validation split before any step. Each later phase — the head-only phase (`facemask.training.head`), each
end-to-end epoch — is compared with that start (`Guard.check`): it falls far below when

* its val mIoU is more than `Guard.drop` below the start's (default 0.05: 5 points), or
* any class's val IoU is below `Guard.share` of the start's (default 0.5: less than half; a class the start
  does not find, IoU 0, cannot fall; one absent from the split, NaN, is not compared).

The engine (`facemask.training.engine`) does not keep such a phase: it logs one warning line naming the region,
the class and the numbers, records the reasons in the model's ``metrics.json`` (``guard``), and returns to the
best state kept so far (the start when nothing trained has passed), which the next phase continues from.
Without the guard, a phase that drove a small class to 0 was written as the model; the IoU loss (Eq. 3) cannot
bring such a class back, since its gradient on a class's scores vanishes with the class's softmax probability.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: The key of a record's val mIoU, and the prefix of its per-class val IoUs (`facemask.training.engine`).
MIOU = "val/mIoU"
CLASS_IOU = "val/IoU/"


@dataclass(frozen=True)
class Guard:
    """How far below its start a phase may fall and still be kept.

    Args:
        drop: the most the val mIoU may fall below the start's (absolute; 1 or more: never rejects on it).
        share: the least share of the start's val IoU every class must keep (0: never rejects on it).
    """

    drop: float = 0.05
    share: float = 0.5

    def __post_init__(self):
        if not self.drop >= 0:
            raise ValueError(f"guard drop must be at least 0, got {self.drop}")
        if not 0 <= self.share <= 1:
            raise ValueError(f"guard share must lie in [0, 1], got {self.share}")

    def check(self, record: dict, start: dict) -> list[str]:
        """Why the phase scored in `record` falls far below `start` (both flat records of ``val/mIoU`` and
        ``val/IoU/<class>``), every class first, then the mIoU; empty when it is kept."""
        reasons = []
        for key, before in start.items():
            after = record.get(key)
            if not key.startswith(CLASS_IOU) or not _finite(before) or not _finite(after):
                continue
            floor = self.share * before
            if after < floor:
                reasons.append(f"{key[len(CLASS_IOU):]} val IoU {after:.3f} against {before:.3f} at the start "
                               f"(floor {floor:.3f})")
        before, after = start.get(MIOU), record.get(MIOU)
        if _finite(before) and _finite(after) and after < before - self.drop:
            reasons.append(f"val mIoU {after:.3f} against {before:.3f} at the start (floor {before - self.drop:.3f})")
        return reasons


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)

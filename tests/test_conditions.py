"""Per-condition scores and the hold oracle (`facemask.evaluation.conditions`), on values worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facemask.core.errors import BadInputError, MissingInputError
from facemask.core.iou import confusion_matrix
from facemask.evaluation import conditions as K


def test_degraded_is_a_transient_or_enough_occlusion():
    got = K.is_degraded(["", "blur", "", "", "dropout", ""], [0.0, 0.0, 0.19, 0.2, 0.5, 0.9], threshold=0.2)
    assert got.tolist() == [False, True, False, True, True, True]
    # the record's empty kinds may come back as NaN from a CSV reader
    assert K.is_degraded([np.nan, "flash"], [0.0, 0.0]).tolist() == [False, True]
    with pytest.raises(ValueError, match="differ in length"):
        K.is_degraded(["", ""], [0.0])


def test_conditions_look_back_within_the_window_only():
    d = [True, False, True, True, False,   # window 0: frame 0 opens it; frames 2, 3 have frame 1 before them
         True, True, False, False, True,   # window 1: frames 5, 6 have no clean frame before them in it
         True]                             # window 2 (short): opens it
    C, W, N = K.CLEAN, K.WITH_PAST, K.WITHOUT_PAST
    assert K.frame_conditions(d, 5) == [N, C, W, W, C, N, N, C, C, W, N]
    assert K.frame_conditions(d, 1) == [N, C, N, N, C, N, N, C, C, N, N]  # a 1-frame window remembers nothing
    with pytest.raises(ValueError):
        K.frame_conditions(d, 0)


def test_hold_sources_take_the_last_clean_frame_of_the_clip():
    # across windows: frame 5 (degraded, no clean frame in its window) holds frame 4
    assert K.hold_sources([True, False, True, True, False, True, True, False]) == [0, 1, 1, 1, 4, 4, 4, 7]
    assert K.hold_sources([True, True]) == [0, 1]     # no clean frame yet: its own labels
    assert K.hold_sources([]) == []


def test_carry_label_pastes_at_one_box_and_cuts_at_the_other():
    lab = np.array([[1, 2, 3],
                    [4, 4, 4]], np.uint8)           # crop (x0, y0, x1, y1) = (10, 20, 13, 22)
    # the same box: unchanged
    assert (K.carry_label(lab, (10, 20, 13, 22), (10, 20, 13, 22)) == lab).all()
    # the next crop one pixel right and one down, 3 x 3: column 0 / row 0 come from frame pixels (11, 21)...
    got = K.carry_label(lab, (10, 20, 13, 22), (11, 21, 14, 24))
    assert got.tolist() == [[4, 4, 0],
                            [0, 0, 0],
                            [0, 0, 0]]
    # a bigger crop that contains the source: the label sits at offset (1, 1), background around
    got = K.carry_label(lab, (10, 20, 13, 22), (9, 19, 14, 23))
    assert got.tolist() == [[0, 0, 0, 0, 0],
                            [0, 1, 2, 3, 0],
                            [0, 4, 4, 4, 0],
                            [0, 0, 0, 0, 0]]
    assert (K.carry_label(lab, (10, 20, 13, 22), (50, 50, 52, 52)) == 0).all()   # no overlap
    with pytest.raises(ValueError, match="does not fit"):
        K.carry_label(lab, (10, 20, 12, 22), (10, 20, 13, 22))


def test_hold_labels_replace_degraded_frames_by_the_carried_clean_labels():
    a = np.array([[1, 1], [2, 2]], np.uint8)
    b = np.array([[3, 3], [3, 3]], np.uint8)
    c = np.array([[4, 4], [4, 4]], np.uint8)
    boxes = [(0, 0, 2, 2), (1, 0, 3, 2), (0, 0, 2, 2)]
    out = K.hold_labels([a, b, c], boxes, [False, True, False])
    assert out[0] is a and out[2] is c
    # frame 0's labels pasted at x 0..1, cut at x 1..2: column 0 <- frame column 1 (a[:, 1]), column 1 outside
    assert out[1].tolist() == [[1, 0], [2, 0]]
    # nothing clean before: the frame keeps its own labels
    assert K.hold_labels([a, b], boxes[:2], [True, True])[0] is a


def test_condition_reports_sum_the_frames_of_each_condition():
    # two classes present besides background; frames of 1 x 4 pixels
    gt = [np.array([[0, 1, 1, 2]]), np.array([[0, 1, 2, 2]]), np.array([[1, 1, 1, 1]])]
    fcn = [np.array([[0, 1, 1, 2]]), np.array([[1, 1, 1, 1]]), np.array([[1, 1, 0, 0]])]
    hold = [fcn[0], fcn[0], fcn[2]]
    cms = np.stack([[confusion_matrix(g, p, 5) for p in (f, h)] for g, f, h in zip(gt, fcn, hold)])
    rep = K.condition_reports([K.CLEAN, K.WITH_PAST, K.CLEAN], cms, ("fcn", "hold"))
    assert list(rep) == ["all", *K.CONDITIONS]
    assert [rep[c]["frames"] for c in rep] == [3, 2, 1, 0]
    # clean (frames 0 and 2), FCN: skin TP 2+2 = 4, FP 0, FN 0+2 -> 4/6; class 2: TP 1, FN 0, FP 0 -> 1
    assert rep[K.CLEAN]["fcn"]["skin"] == pytest.approx(4 / 6)
    assert rep[K.CLEAN]["fcn"]["eyes"] == pytest.approx(1.0)
    assert rep[K.CLEAN]["fcn"]["miou"] == pytest.approx((4 / 6 + 1) / 2)   # absent classes left out
    # frame 1: FCN skin TP 1, FP 3 (bg and both eyes -> skin) -> 1/4; eyes 0/2 -> 0
    assert rep[K.WITH_PAST]["fcn"]["miou"] == pytest.approx((1 / 4 + 0) / 2)
    # hold on frame 1 predicts [0, 1, 1, 2] against [0, 1, 2, 2]: skin 1/2, eyes 1/2
    assert rep[K.WITH_PAST]["hold"]["miou"] == pytest.approx(0.5)
    assert rep[K.WITHOUT_PAST] == {"frames": 0, "fcn": None, "hold": None}
    # all: FCN skin TP 5, FP 3, FN 2 -> 5/10; eyes TP 1, FN 2 -> 1/3
    assert rep["all"]["fcn"]["miou"] == pytest.approx((5 / 10 + 1 / 3) / 2)
    with pytest.raises(ValueError, match="unknown conditions"):
        K.condition_reports(["dirty", K.CLEAN, K.CLEAN], cms, ("fcn", "hold"))


def test_seeds_by_condition_averages_each_method_over_the_seeds():
    runs = {0: {"conditions": {"all": {"frames": 10, "fcn": {"miou": 0.50}, "hold": {"miou": 0.60}},
                               K.WITH_PAST: {"frames": 2, "fcn": {"miou": 0.20}, "hold": {"miou": 0.40}},
                               K.WITHOUT_PAST: {"frames": 0, "fcn": None, "hold": None}}},
            1: {"conditions": {"all": {"frames": 10, "fcn": {"miou": 0.54}, "hold": {"miou": 0.60}},
                               K.WITH_PAST: {"frames": 2, "fcn": {"miou": 0.30}, "hold": {"miou": 0.40}}}},
            2: {"eval": {}}}  # a run recorded before per-condition scores existed
    out = K.seeds_by_condition(runs)
    # by hand: mean of 0.50 and 0.54 = 0.52, sample std = |0.54 - 0.50| / sqrt(2) = 0.028284...
    assert out["all"]["fcn"]["seeds"] == 2 and out["all"]["fcn"]["mean"] == pytest.approx(0.52)
    assert out["all"]["fcn"]["std"] == pytest.approx(0.04 / np.sqrt(2))
    assert out[K.WITH_PAST]["fcn"]["mean"] == pytest.approx(0.25) and out[K.WITH_PAST]["hold"]["std"] == 0
    assert K.WITHOUT_PAST not in out  # no frames in any seed: no entry, not a zero
    one = K.seeds_by_condition({0: runs[0]})
    assert one["all"]["fcn"] == {"seeds": 1, "mean": 0.5, "std": None}


def test_read_record_indexes_by_frame_name(tmp_path):
    p = tmp_path / "frames.csv"
    pd.DataFrame({"video": ["001", "001", "012"], "frame": [1, 2, 30], "category": [1, 1, 3],
                  "transient": ["", "flash", ""], "occlusion": [0.0, 0.25, 0.5]}).to_csv(p, index=False)
    rec = K.read_record(p)
    assert rec.loc["001_000002", "transient"] == "flash" and rec.loc["001_000001", "transient"] == ""
    assert rec.loc["012_000030", "occlusion"] == 0.5
    assert K.clip_record(rec, ["012_000030", "001_000001"], p)["occlusion"].tolist() == [0.5, 0.0]
    with pytest.raises(BadInputError, match="no row for frame 001_000003"):
        K.clip_record(rec, ["001_000003"], p)
    with pytest.raises(MissingInputError, match="frames.csv"):
        K.read_record(tmp_path / "none" / "frames.csv")
    pd.DataFrame({"video": ["001"], "frame": [1]}).to_csv(p, index=False)
    with pytest.raises(BadInputError, match=r"columns \['transient', 'occlusion'\] missing"):
        K.read_record(p)

"""facemask.evaluation.metrics against numbers worked out by hand."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from _stages import stage_args

from facemask.core.iou import confusion_matrix, iou_per_class, mean_iou
from facemask.evaluation.metrics import (flip_rate, flips, iou_report, reports_by, stability_report, subject_table,
                                         timestep_table)
from facemask.inference.smoothing import gaussian_weights, temporal_smooth


def test_confusion_matrix_and_iou_by_hand():
    gt = np.array([[0, 0, 1], [1, 2, 2], [2, 1, 0]])
    pred = np.array([[0, 1, 1], [1, 2, 0], [2, 1, 0]])
    cm = confusion_matrix(gt, pred, 3)
    # rows: truth, columns: prediction
    np.testing.assert_array_equal(cm, [[2, 1, 0],
                                       [0, 3, 0],
                                       [1, 0, 2]])
    # IoU = TP / (row + column - TP): 2/(3+3-2), 3/(3+4-3), 2/(3+2-2)
    np.testing.assert_allclose(iou_per_class(cm), [0.5, 0.75, 2 / 3])
    assert mean_iou(cm) == pytest.approx((0.75 + 2 / 3) / 2)  # background excluded


def test_iou_report_names_and_absent_classes():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 5)
    rep = iou_report(cm)
    assert list(rep) == ["skin", "eyes", "lips", "inner_mouth", "miou"]
    assert rep["skin"] == pytest.approx(0.5) and rep["eyes"] == pytest.approx(0.5)
    # lips and inner mouth appear in neither map: undefined, and left out of the mean
    assert rep["lips"] is None and rep["inner_mouth"] is None
    assert rep["miou"] == pytest.approx(0.5)


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 3)
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_gaussian_weights_sigma_06():
    w = gaussian_weights(5, 0.6)
    g = [math.exp(-d * d / (2 * 0.6 ** 2)) for d in (-2, -1, 0, 1, 2)]
    np.testing.assert_allclose(w, np.array(g) / sum(g))
    # the centre frame carries most of the weight at sigma 0.6: 1 / (1 + 2 e^(-1/0.72) + 2 e^(-4/0.72))
    assert w[2] == pytest.approx(1 / (1 + 2 * math.exp(-1 / 0.72) + 2 * math.exp(-4 / 0.72)))
    with pytest.raises(ValueError):
        gaussian_weights(4, 0.6)


def test_temporal_smooth_renormalises_at_the_ends():
    g = {d: math.exp(-d * d / (2 * 0.6 ** 2)) for d in range(-2, 3)}
    x = np.array([1.0, 0, 0, 0, 0, 0])  # a pulse at frame 0
    y = temporal_smooth(x, 0.6, 5)
    # frame 0 sees frames 0, 1, 2 (offsets 0, +1, +2)
    assert y[0] == pytest.approx(g[0] / (g[0] + g[1] + g[2]))
    # frame 1 sees frames 0..3 (offsets -1..+2)
    assert y[1] == pytest.approx(g[-1] / (g[-1] + g[0] + g[1] + g[2]))
    # frame 2 sees the full window
    assert y[2] == pytest.approx(g[-2] / sum(g.values()))
    assert y[3] == 0 and y[5] == 0
    # probabilities stay probabilities, per pixel
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=(7, 4, 4)).transpose(0, 3, 1, 2)  # (L, C, H, W)
    s = temporal_smooth(p, 0.6, 5)
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-12)


def test_flip_counts_on_a_tiny_sequence():
    f0 = np.array([[0, 1], [1, 1]])
    f1 = np.array([[0, 1], [1, 2]])  # one pixel changes
    f2 = np.array([[1, 1], [1, 2]])  # one more
    assert flip_rate([f0, f1, f2]) == (2, 8)
    assert flip_rate([f0]) == (0, 0)
    # a bigger next crop is compared in the previous crop's pixels (nearest neighbour)
    big = np.kron(f1, np.ones((2, 2), int))
    assert flips(f0, big) == (1, 4)


def test_stability_report():
    rep = stability_report({"ground_truth": (1, 100), "fcn": (4, 100)})
    assert rep["flip_rate"] == {"ground_truth": 0.01, "fcn": 0.04}
    assert rep["ratio_to_ground_truth"]["fcn"] == pytest.approx(4.0)


# ---------------------------------------------------------------------------------------------------
# Aggregation over a hand-made test set: 2 clips x 2 frames, methods fcn and primary, 3 classes


def _tiny_set():
    import pandas as pd

    cms = np.array([
        # fcn                                   primary
        [[[4, 0, 0], [0, 2, 2], [0, 0, 0]], [[4, 0, 0], [0, 4, 0], [0, 0, 0]]],   # clip 0, t 1
        [[[2, 0, 0], [0, 2, 0], [0, 0, 4]], [[2, 0, 0], [0, 2, 0], [0, 1, 3]]],   # clip 0, t 2
        [[[8, 0, 0], [0, 0, 0], [0, 0, 0]], [[8, 0, 0], [0, 0, 0], [0, 0, 0]]],   # clip 1, t 1: background only
        [[[0, 0, 0], [0, 1, 1], [0, 1, 1]], [[0, 0, 0], [0, 2, 0], [0, 0, 2]]],   # clip 1, t 2
    ])
    meta = pd.DataFrame({"clip": [0, 0, 1, 1], "video": ["v1", "v1", "v2", "v2"], "category": [1, 1, 2, 2],
                         "step": [0, 1, 0, 1]})
    return meta, cms, ("fcn", "primary")


def test_per_frame_miou_is_vectorised():
    _, cms, _ = _tiny_set()
    m = mean_iou(cms)
    # fcn: (0.5 + 0) / 2; (1 + 1) / 2; no facial class; (1/3 + 1/3) / 2
    np.testing.assert_allclose(m[:, 0], [0.25, 1.0, np.nan, 1 / 3])
    # primary: class 2 absent in frame 1 -> mean over class 1 only; (2/3 + 3/4) / 2; -; 1
    np.testing.assert_allclose(m[:, 1], [1.0, (2 / 3 + 3 / 4) / 2, np.nan, 1.0])
    assert isinstance(mean_iou(cms[0, 0]), float)


def test_reports_by_total_and_category():
    meta, cms, methods = _tiny_set()
    total = reports_by(meta, cms, methods)
    # fcn summed: [[14,0,0],[0,5,3],[0,1,5]]: IoU 5/(8+6-5) for both classes
    assert total["fcn"]["miou"] == pytest.approx(5 / 9)
    by_cat = reports_by(meta, cms, methods, "category")
    assert set(by_cat) == {"1", "2"} and by_cat["2"]["frames"] == 2
    # category 2, primary: [[8,0,0],[0,2,0],[0,0,2]] -> 1
    assert by_cat["2"]["primary"]["miou"] == pytest.approx(1.0)


def test_subject_table():
    meta, cms, methods = _tiny_set()
    t = subject_table(meta, cms, methods).set_index("subject")
    assert t.loc["v1", "fcn_mean"] == pytest.approx(0.625) and t.loc["v1", "fcn_std"] == pytest.approx(0.375)
    p = [1.0, (2 / 3 + 3 / 4) / 2]
    assert t.loc["v1", "primary_mean"] == pytest.approx(np.mean(p))
    assert t.loc["v1", "primary_std"] == pytest.approx(np.std(p))
    # v2's first frame has no facial class: left out of the mean
    assert t.loc["v2", "fcn_mean"] == pytest.approx(1 / 3) and t.loc["v2", "frames"] == 2


def test_timestep_table():
    meta, cms, methods = _tiny_set()
    t = timestep_table(meta, cms, methods).set_index("t")
    # t = 1: fcn [[12,0,0],[0,2,2],[0,0,0]] -> (0.5 + 0) / 2; primary [[12,0,0],[0,4,0],[0,0,0]] -> 1
    assert t.loc[1, "primary_minus_fcn"] == pytest.approx(0.75)
    # t = 2: fcn [[2,0,0],[0,3,1],[0,1,5]] -> (3/5 + 5/7) / 2; primary [[2,0,0],[0,4,0],[0,1,5]] -> (4/5 + 5/6) / 2
    assert t.loc[2, "fcn"] == pytest.approx((3 / 5 + 5 / 7) / 2)
    assert t.loc[2, "primary_minus_fcn"] == pytest.approx((4 / 5 + 5 / 6) / 2 - (3 / 5 + 5 / 7) / 2)


def _write_eval_layout(root, baselines: dict | None = None):
    """The contract layout; `baselines` ({arch: "fcn" | ...}): Table 2 baselines whose predictions copy
    those of the named method, listed in data/predictions/learned/info.json as the fuse stage does. The learned
    methods' predictions are in data/predictions/learned/, the landmark methods' in data/predictions/<method>/."""
    import cv2
    from _params import write_params

    from facemask.data.labels import write_label_png

    write_params(root, **{"seed": 0, "clips.window": 5, "evaluate.draws": 2000, "evaluate.examples": 2})
    clips = root / "data" / "clips"
    clips.mkdir(parents=True)
    (clips / "index.csv").write_text("clip,split,row,video,first_frame,length,category\n"
                                     "0,train,0,003,1,5,1\n1,test,0,001,1,5,1\n2,test,1,002,6,5,2\n")
    gt = np.zeros((20, 24), np.uint8)
    gt[2:18, 2:22] = 1     # skin: 320 - 24 - 16 - 6 = 274 px
    gt[5:7, 4:10] = 2      # eyes: 12 + 12 px
    gt[5:7, 14:20] = 2
    gt[12:14, 8:16] = 3    # lips: 16 px
    gt[14, 9:15] = 4       # inner mouth: 6 px
    no_eyes = np.where(gt == 2, 1, gt).astype(np.uint8)
    preds = {"cascade": gt, "primary": gt, "fcn": no_eyes, "fcn_smooth": no_eyes, "tracker": np.zeros_like(gt)}
    preds.update({arch: preds[like] for arch, like in (baselines or {}).items()})
    masks = root / "data" / "300VW-Mask"
    names = [f"001_{f:06d}" for f in range(1, 6)] + [f"002_{f:06d}" for f in range(6, 11)]
    pred = root / "data" / "predictions"
    where = {m: pred / m if m in ("tracker", "mesh") else pred / "learned" / m for m in preds}
    for d in ("images_orig", "labels_orig"):
        (masks / d).mkdir(parents=True)
    for d in where.values():
        d.mkdir(parents=True)
    for n in names:
        write_label_png(masks / "labels_orig" / f"{n}.png", gt)
        cv2.imwrite(str(masks / "images_orig" / f"{n}.jpg"), np.full((20, 24, 3), 128, np.uint8))
        for m, lab in preds.items():
            write_label_png(where[m] / f"{n}.png", lab)
    for region, classes in (("eyes", 2), ("mouth", 3)):
        lab = np.zeros((2, 5, 8, 8), np.uint8)
        lab[..., 2:4, 2:6] = classes - 1
        (clips / region / "test").mkdir(parents=True)
        np.save(clips / region / "test" / "labels.npy", lab)
        np.save(clips / region / "test" / "images.npy", np.zeros(lab.shape + (3,), np.uint8))  # not read here
        (pred / "learned" / "zoomed" / region).mkdir(parents=True)
        np.save(pred / "learned" / "zoomed" / region / "convlstm.npy", lab)
        np.save(pred / "learned" / "zoomed" / region / "fcn.npy", np.zeros_like(lab))
    if baselines:
        (pred / "learned" / "info.json").write_text(json.dumps({"baselines": list(baselines)}))


def test_evaluate_stage(tmp_path, monkeypatch, capsys):
    import json

    import pandas as pd

    from stages import evaluate

    _write_eval_layout(tmp_path)
    seeds_dir = tmp_path / "metrics" / "seeds"
    seeds_dir.mkdir(parents=True)
    other = {m: {"skin": 0.5, "eyes": 0.5, "lips": 0.5, "inner_mouth": 0.5, "miou": 0.5}
             for m in ("fcn", "fcn_smooth", "primary", "cascade")}
    names = [f"001_{f:06d}" for f in range(1, 6)] + [f"002_{f:06d}" for f in range(6, 11)]
    from facemask.data.labels import read_label_png
    gt = read_label_png(tmp_path / "data" / "300VW-Mask" / "labels_orig" / f"{names[0]}.png")
    labels = hashlib.sha256((gt.tobytes() + str(gt.shape).encode()) * 10).hexdigest()   # the same label, 10 frames
    ours = {"clips": 2, "frames": 10, "names_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
            "labels_sha256": labels}
    # records left out: older ones without per-subject matrices, another test set, the same names on a
    # regenerated benchmark (other labels)
    (seeds_dir / "seed_3.json").write_text(json.dumps({"seed": 3, "eval": other, "test_set": ours}))
    (seeds_dir / "seed_4.json").write_text(json.dumps(
        {"seed": 4, "eval": other, "cms": {}, "test_set": {**ours, "frames": 9}}))
    (seeds_dir / "seed_5.json").write_text(json.dumps(
        {"seed": 5, "eval": other, "cms": {}, "test_set": {**ours, "labels_sha256": "0" * 64}}))
    monkeypatch.chdir(tmp_path)
    evaluate.main(stage_args("evaluate"))
    ev = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert list(ev) == ["fcn", "fcn_smooth", "primary", "cascade", "tracker"]
    assert ev["tracker"]["miou"] == 0.0  # all background: no face found
    assert all(list(v) == ["skin", "eyes", "lips", "inner_mouth", "miou"] for v in ev.values())
    assert ev["cascade"]["miou"] == pytest.approx(1.0)
    # the FCN calls the 24 eye pixels skin: skin IoU 274 / 298, eyes 0, lips and inner mouth 1
    fcn0 = (274 / 298 + 0 + 1 + 1) / 4
    assert ev["fcn"]["skin"] == pytest.approx(274 / 298) and ev["fcn"]["eyes"] == 0.0
    assert ev["fcn"]["miou"] == pytest.approx(fcn0)
    zoomed = json.loads((tmp_path / "metrics" / "zoomed.json").read_text())
    assert zoomed["eyes"]["convlstm"]["eye"] == pytest.approx(1.0) and zoomed["eyes"]["fcn"]["eye"] == 0.0
    assert set(zoomed["mouth"]["convlstm"]) == {"lips", "inner_mouth", "miou"}
    out = tmp_path / "metrics" / "eval"
    assert {p.name for p in out.iterdir()} >= {"categories.json", "per_subject.csv", "timestep.csv", "timestep.json",
                                               "significance.json", "stability.json", "examples.png", "results.md"}
    subj = pd.read_csv(out / "per_subject.csv", dtype={"subject": str})
    assert subj["subject"].tolist() == ["001", "002"] and (subj["frames"] == 5).all()
    steps = json.loads((out / "timestep.json").read_text())
    assert steps["primary_minus_fcn"]["t5"] == pytest.approx(1.0 - fcn0)
    stab = json.loads((out / "stability.json").read_text())
    assert stab["flip_rate"]["ground_truth"] == 0.0 and stab["counts"]["fcn"]["pixels"] == 2 * 4 * 480
    sig = json.loads((out / "significance.json").read_text())  # this run: the 2 test subjects resampled
    assert sig["comparisons"] == 4 and sig["differences"]["primary"]["estimate"] == pytest.approx(1.0 - fcn0)
    assert sig["differences"]["primary"]["resampled"] == "subjects"
    assert json.loads((out / "categories.json").read_text()).keys() == {"1", "2"}
    assert "| primary + zoomed eye/mouth models |" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["eval"]["cascade"]["miou"] == pytest.approx(1.0) and run["test_set"] == ours
    # per subject: each of the 2 subjects' 5 frames summed; the FCN's 24 eye pixels a frame are skin
    assert run["cms"]["subjects"] == ["001", "002"]
    assert np.array(run["cms"]["all"]["fcn"])[:, 2, 1].tolist() == [5 * 24, 5 * 24]
    assert np.array(run["cms"]["timestep"]["t1"]["fcn"])[:, 2, 1].tolist() == [24, 24]
    # seed 1, recorded earlier: as seed 0 but its cascade no better than the FCN
    seed1 = {**run, "seed": 1, "eval": {**run["eval"], "cascade": run["eval"]["fcn"]},
             "cms": {**run["cms"], "all": {**run["cms"]["all"], "cascade": run["cms"]["all"]["fcn"]}}}
    (seeds_dir / "seed_1.json").write_text(json.dumps(seed1))
    (seeds_dir / "seed_0.json").write_text(json.dumps({**seed1, "seed": 0}))  # stale: this run replaces it
    evaluate.main(stage_args("evaluate"))
    seeds = pd.read_csv(out / "seeds.csv")
    assert sorted(seeds["seed"].unique()) == [0, 1] and len(seeds) == 2 * 5
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1]
    cascade = summary["methods"]["cascade"]
    assert cascade["mean"] == pytest.approx((1 + fcn0) / 2) and cascade["std"] == pytest.approx((1 - fcn0) / 2 ** 0.5)
    assert summary["methods"]["tracker"]["seeds"] == 2 and summary["methods"]["tracker"]["mean"] == 0.0
    # the statistics over seeds and subjects: the mean over seeds of cascade - FCN, (1 - fcn0 + 0) / 2
    diff = summary["statistics"]["all"]["differences"]["cascade"]
    assert diff["estimate"] == pytest.approx((1 - fcn0) / 2) and diff["resampled"] == "seeds and subjects"
    assert diff["seeds"] == [0, 1] and 0 <= diff["low"] <= diff["estimate"] <= diff["high"] <= 1 - fcn0 + 1e-12
    assert summary["statistics"]["all"]["scores"]["tracker"]["seeds"] == []  # untrained: the same in every seed


def test_evaluate_scores_the_table2_baselines_fuse_lists(tmp_path, monkeypatch, capsys):
    import json

    from stages import evaluate

    _write_eval_layout(tmp_path, baselines={"fcn_vgg16": "fcn", "deeplab_v2": "cascade", "mesh": "fcn_smooth"})
    (tmp_path / "data" / "predictions" / "learned" / "info.json").write_text(json.dumps(
        {"baselines": ["fcn_vgg16", "deeplab_v2"]}))
    info = tmp_path / "data" / "predictions" / "mesh" / "info.json"  # the face mesh: a stage of its own
    info.write_text(json.dumps({"status": {}}))
    monkeypatch.chdir(tmp_path)
    evaluate.main(stage_args("evaluate"))
    ev = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert list(ev) == ["fcn", "fcn_smooth", "primary", "cascade", "tracker", "mesh", "fcn_vgg16", "deeplab_v2"]
    assert ev["mesh"] == ev["fcn_smooth"]
    assert json.loads((tmp_path / "metrics" / "eval" / "seeds.json").read_text())["methods"]["mesh"]["seeds"] == 1
    md = capsys.readouterr().out
    line = next(ln for ln in md.splitlines() if ln.startswith("| face-mesh landmarks (MediaPipe -> 68 points) |"))
    assert "(not trained)" in line
    # where mediapipe was missing, the mesh stage made no predictions and says so: not scored
    info.write_text(json.dumps({"skipped": "no mediapipe"}))
    evaluate.main(stage_args("evaluate"))
    ev = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert list(ev) == ["fcn", "fcn_smooth", "primary", "cascade", "tracker", "fcn_vgg16", "deeplab_v2"]
    assert ev["fcn_vgg16"] == ev["fcn"] and ev["deeplab_v2"]["miou"] == pytest.approx(1.0)
    out = tmp_path / "metrics" / "eval"
    sig = json.loads((out / "significance.json").read_text())
    assert sig["differences"]["deeplab_v2"]["estimate"] == pytest.approx(1.0 - (274 / 298 + 2) / 4)
    md = capsys.readouterr().out
    assert "| VGG-16 FCN-8s |" in md and "| DeepLab-V2 (VGG-16, ASPP) |" in md and "(1 seed)" in md


def test_evaluate_writes_the_conditions_the_hold_oracle_and_the_memory_checks(tmp_path, monkeypatch, capsys):
    """With the generator's per-frame record and crop boxes: 001_000003 (a blur burst, a clean frame before
    it in its window) and 002_000006 (a flash opening its window) are degraded. The FCN misses the eyes
    everywhere; the primary is right everywhere; its memoryless control is the FCN. On the probe frames (the
    last of each window) the FCN says background, the primary holds the face, the hold shows the FCN's labels
    of the frame before. Every number below is worked out from `_write_eval_layout`'s masks."""
    import pandas as pd

    from facemask.data.labels import read_label_png, write_label_png
    from stages import evaluate

    _write_eval_layout(tmp_path)
    pred = tmp_path / "data" / "predictions" / "learned"
    masks = tmp_path / "data" / "300VW-Mask"
    names = [f"001_{f:06d}" for f in range(1, 6)] + [f"002_{f:06d}" for f in range(6, 11)]
    gt = read_label_png(masks / "labels_orig" / f"{names[0]}.png")
    no_eyes = read_label_png(pred / "fcn" / f"{names[0]}.png")
    for m, lab in (("primary_reset", no_eyes), ("primary_stream", gt), ("cascade_stream", gt)):
        (pred / m).mkdir()
        for n in names:
            write_label_png(pred / m / f"{n}.png", lab)
    for m, lab in (("fcn", np.zeros_like(gt)), ("primary", gt)):
        (pred / "probes" / "black" / m).mkdir(parents=True)
        for n in (names[4], names[9]):
            write_label_png(pred / "probes" / "black" / m / f"{n}.png", lab)
    (pred / "info.json").write_text(json.dumps({
        "methods": ["fcn", "fcn_smooth", "primary", "cascade", "primary_stream", "cascade_stream", "primary_reset"],
        "baselines": [], "probes": {"kinds": ["black"], "methods": ["fcn", "primary"], "frames": 2}}))
    raw = tmp_path / "data" / "raw" / "300VW"
    raw.mkdir(parents=True)
    kinds = {"001_000003": "blur", "002_000006": "flash"}
    pd.DataFrame([{"video": n[:3], "frame": int(n[4:]), "transient": kinds.get(n, ""), "occlusion": 0.0}
                  for n in names]).to_csv(raw / "frames.csv", index=False)
    pd.DataFrame([{"video": n[:3], "frame": int(n[4:]), "category": 1, "x0": 10, "y0": 5, "x1": 34, "y1": 25,
                   "w": 24, "h": 20} for n in names]).to_csv(masks / "frames.csv", index=False)
    monkeypatch.chdir(tmp_path)
    evaluate.main(stage_args("evaluate"))

    no_eyes_miou = (274 / 298 + 0 + 1 + 1) / 4          # skin takes the eyes' 24 px; eyes 0; lips, inner mouth 1
    cond = json.loads((tmp_path / "metrics" / "eval" / "conditions.json").read_text())
    by = cond["by_condition"]
    assert (by["all"]["frames"], by["clean"]["frames"], by["degraded_with_clean_past"]["frames"],
            by["degraded_without_clean_past"]["frames"]) == (10, 8, 1, 1) and cond["degraded_frames"] == 2
    assert by["degraded_with_clean_past"]["primary"]["miou"] == pytest.approx(1.0)
    assert by["degraded_with_clean_past"]["fcn"]["miou"] == pytest.approx(no_eyes_miou)
    assert by["all"]["hold"]["miou"] == pytest.approx(no_eyes_miou)   # the FCN's own labels, held
    # the ceiling: the FCN's labels, but on 001_000003 (degraded, 001_000002 clean before it) the ground truth of
    # 001_000002 carried over (the same box): 9 frames with the eyes as skin, 1 perfect; on 002_000006 (no clean
    # frame before it in its clip) the FCN's own
    assert by["degraded_with_clean_past"]["ceiling"]["miou"] == pytest.approx(1.0)
    assert by["degraded_without_clean_past"]["ceiling"]["miou"] == pytest.approx(no_eyes_miou)
    assert by["all"]["ceiling"]["miou"] == pytest.approx((10 * 274 / (9 * 298 + 274) + 24 / 240 + 2) / 4)
    assert cond["by_kind"]["blur"]["frames"] == 1 and cond["by_kind"]["clean"]["frames"] == 8
    memory = json.loads((tmp_path / "metrics" / "eval" / "memory.json").read_text())
    black = memory["probes"]["black"]
    assert black["frames"] == 2 and black["miou"]["fcn"] == 0.0 and black["miou"]["primary"] == pytest.approx(1.0)
    assert black["miou"]["hold"] == pytest.approx(no_eyes_miou) and black["miou"]["ceiling"] == pytest.approx(1.0)
    assert black["checks"]["primary"] == {"gain_over_fcn": pytest.approx(1.0),
                                          "below_hold": pytest.approx(no_eyes_miou - 1.0), "pass": True}
    ab = memory["ablation"]["methods"]["primary"]
    assert memory["ablation"]["frames"] == 1 and memory["ablation"]["pixels"] == 480
    assert ab["changed_share"] == pytest.approx(24 / 480) and ab["uses_memory"]
    assert ab["miou"] == pytest.approx(1.0) and ab["control_miou"] == pytest.approx(no_eyes_miou)
    assert memory["ablation"]["methods"]["primary_stream"]["changed_share"] == pytest.approx(24 / 480)
    results = (tmp_path / "metrics" / "eval" / "results.md").read_text()
    assert "hold baseline" in results and "ceiling" in results and "Memory checks" in results

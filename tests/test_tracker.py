"""The landmark tracker and `facemask predict --method landmarks|auto` on a real face, nothing downloaded.

The video is made here (`facemask.data.realface`): scikit-image's astronaut photograph moved through the
frames by known similarity transforms, with a brightness drift, noise and a few frames where a board
covers the whole face. The truth is known without annotation: the photograph's landmarks (dlib's
predictor on the photograph itself) carried into each frame by that frame's transform.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("skimage")
pytest.importorskip("dlib")

from facemask.app.cli import main
from facemask.app.segmenters import choose_method
from facemask.core.iou import confusion_matrix, iou_per_class
from facemask.data.labels import read_label_png
from facemask.data.masks.draw import landmarks_to_mask, square_crop_box
from facemask.data.realface import moving_face, reference_landmarks, write_video  # noqa: E402
from facemask.inference.detect import DetectorError, dlib_model, make_detector
from facemask.inference.tracker import (  # noqa: E402
    LANDMARKS_TO_RECT,
    LandmarkTracker,
    ShapePredictor,
    fit_crop,
    landmark_box,
    map_box,
    predict_test_clips,
)

N, SIZE, FACE = 36, (320, 240), 80.0
OCCLUDED = range(18, 24)


@pytest.fixture(scope="module")
def face():
    mf = moving_face(N, SIZE, FACE, seed=0, occluded=OCCLUDED)
    ref = reference_landmarks(ShapePredictor())
    truth = [mf.map_points(ref, k) for k in range(N)]
    return mf, truth


@pytest.fixture(scope="module")
def tracked(face):
    mf, _ = face
    tracker = LandmarkTracker("hog")
    return [tracker(f) for f in mf.frames]


@pytest.fixture(scope="module")
def video(face, tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "face.avi"
    write_video(face[0].frames, path)
    return path


def _err(points, truth):
    """Mean point distance as a share of the true landmark box's side."""
    return float(np.mean(np.hypot(*(points - truth).T)) / landmark_box(truth)[2])


def _corners(box):
    """(cx, cy, side) -> (x0, y0, x1, y1)."""
    cx, cy, s = box
    return [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy)


# ---------------------------------------------------------------------------------------------------
# The tracker


def test_tracker_stays_on_the_face_without_jumps(face, tracked):
    _, truth = face
    visible = [k for k in range(N) if k not in OCCLUDED]
    assert all(tracked[k].points is not None for k in visible)
    assert tracked[0].status == "detected"
    assert sum(tracked[k].status == "tracked" for k in visible) >= len(visible) - 3
    errors = [_err(tracked[k].points, truth[k]) for k in visible]
    assert max(errors) < 0.05, errors  # measured: ~0.01 of the face's side
    # no jumps: frame to frame the tracked box moves as the true one does, within 3 % of the side
    for a, b in zip(visible[:-1], visible[1:]):
        if b == a + 1:
            tx, ty, _ = landmark_box(truth[b]) - landmark_box(truth[a])
            ux, uy, _ = landmark_box(tracked[b].points) - landmark_box(tracked[a].points)
            assert np.hypot(ux - tx, uy - ty) < 0.03 * landmark_box(truth[a])[2], (a, b)


def test_tracked_box_agrees_with_the_detector_frame_by_frame(face, tracked):
    """An independent route: dlib's HOG detector run on each frame alone, against the box the tracked
    landmarks give (mapped to the detector's box by `LANDMARKS_TO_RECT`)."""
    mf, _ = face
    det = make_detector("hog")
    ious = []
    for k in range(0, N, 3):
        found = det(mf.frames[k])
        if k in OCCLUDED:
            assert found is None
            continue
        assert found is not None
        ious.append(_iou(_corners(map_box(landmark_box(tracked[k].points), LANDMARKS_TO_RECT)), _corners(found)))
    assert min(ious) > 0.7, ious


def test_occluded_face_is_reported_lost_not_guessed(face, tracked):
    _, truth = face
    first = OCCLUDED[0]
    assert tracked[first].status == "lost" and tracked[first].reason == "score"
    assert all(tracked[k].points is None and tracked[k].status == "no_face" for k in OCCLUDED[1:])
    after = OCCLUDED[-1] + 1
    assert tracked[after].status == "detected" and _err(tracked[after].points, truth[after]) < 0.05


def test_a_cut_to_another_place_is_caught_and_the_face_picked_up_again(face):
    """A shot cut: the tracker's start from the old place fails the test and the detector finds the
    face at its new place within the same frame."""
    mf, truth = face
    tracker = LandmarkTracker("hog")
    for k in range(3):
        tracker(mf.frames[k])
    shifted = np.roll(mf.frames[3], 110, axis=1)
    fit = tracker(shifted)
    assert fit.status == "detected"
    assert _err(fit.points, truth[3] + (110, 0)) < 0.05


@pytest.mark.parametrize("name", ["hog", "haar", "cnn"])
def test_every_detector_starts_the_predictor_on_the_face(face, name):
    """`to_rect` maps each detector's box to the box the predictor was trained with."""
    mf, truth = face
    fit = LandmarkTracker(make_detector(name), min_score=None)(mf.frames[0])
    assert fit.status == "detected" and _err(fit.points, truth[0]) < 0.05


def test_redetection_every_k_frames_reanchors(face):
    mf, truth = face
    tracker = LandmarkTracker("hog", detect_every=4)
    fits = [tracker(f) for f in mf.frames[:13]]
    assert [k for k, f in enumerate(fits) if f.status == "detected"] == [0, 4, 8, 12]
    assert max(_err(f.points, t) for f, t in zip(fits, truth)) < 0.05


def test_no_face_at_all():
    rng = np.random.default_rng(0)
    tracker = LandmarkTracker("hog")
    frames = [np.full((240, 320, 3), 90, np.uint8), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)]
    assert [tracker(f).status for f in frames] == ["no_face", "no_face"]


def test_unknown_detector_and_missing_model_are_named():
    with pytest.raises(ValueError, match="valid: hog, cnn, haar"):
        make_detector("yolo")
    with pytest.raises(DetectorError, match="nothing.dat"):
        dlib_model("nothing.dat")


def test_fit_crop_finds_the_landmarks_of_a_training_style_crop(face):
    mf, truth = face
    x0, y0, x1, y1 = square_crop_box(truth[5], 240, 320)
    pts = fit_crop(LandmarkTracker("hog").predictor, mf.frames[5][y0:y1, x0:x1])
    assert _err(pts + (x0, y0), truth[5]) < 0.05


# ---------------------------------------------------------------------------------------------------
# Masks: `facemask predict --method landmarks` and the pipeline's tracker predictions


def _mean_iou(gts, preds):
    cm = sum(confusion_matrix(g, p, 5) for g, p in zip(gts, preds))
    return iou_per_class(cm)


def test_predict_landmarks_on_a_real_face(face, video, tmp_path, capsys):
    mf, truth = face
    out = tmp_path / "out"
    assert main(["predict", str(video), "--out", str(out), "--method", "landmarks", "--landmarker", "dlib",
                 "--models", str(tmp_path / "none")]) == 0
    err = capsys.readouterr().err
    assert "method landmarks (--method), landmarker dlib" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "landmarks" and "iBUG 300-W" in summary["landmarks"]
    assert summary["frames_without_face"] == [f"{k + 1:06d}" for k in OCCLUDED]
    assert summary["frames_lost"] == 1 and summary["faces_found"] == N - len(OCCLUDED)
    with open(out / "boxes.csv") as f:
        rows = {r["frame"]: r for r in csv.DictReader(f)}
    gts, preds = [], []
    for k in range(N):
        name = f"{k + 1:06d}"
        label = read_label_png(out / "labels" / f"{name}.png")
        assert label.shape == (240, 320)
        if k in OCCLUDED:
            assert not label.any() and rows[name]["status"] in ("lost", "no_face")
            continue
        box = [int(rows[name][c]) for c in ("x0", "y0", "x1", "y1")]
        true_box = square_crop_box(truth[k], 240, 320)
        assert _iou(box, true_box) > 0.8
        ys, xs = np.nonzero(label)
        # the mask lies inside the crop box, and inside the true face (its crop) up to 2 pixels
        assert xs.min() >= box[0] and xs.max() < box[2] and ys.min() >= box[1] and ys.max() < box[3]
        assert xs.min() >= true_box[0] - 2 and xs.max() < true_box[2] + 2
        assert set(np.unique(label)) == {0, 1, 2, 3, 4}
        gts.append(landmarks_to_mask(truth[k], 240, 320))
        preds.append(label)
    iou = _mean_iou(gts, preds)
    assert iou[1] > 0.85 and np.mean(iou[1:]) > 0.6, iou  # skin; measured mIoU ~0.8


@pytest.mark.parametrize("landmarker", ["dlib", "mediapipe"])
def test_predict_landmarks_on_face_crops(face, tmp_path, landmarker):
    if landmarker == "mediapipe":
        pytest.importorskip("mediapipe")
    import cv2

    mf, truth = face
    crops = tmp_path / "crops"
    crops.mkdir()
    for k in (2, 9):
        x0, y0, x1, y1 = square_crop_box(truth[k], 240, 320)
        cv2.imwrite(str(crops / f"c{k}.png"), mf.frames[k][y0:y1, x0:x1])
    out = tmp_path / "out"
    assert main(["predict", str(crops), "--cropped", "--method", "landmarks", "--landmarker", landmarker,
                 "--out", str(out), "-q"]) == 0
    for k in (2, 9):
        x0, y0, x1, y1 = square_crop_box(truth[k], 240, 320)
        gt = landmarks_to_mask(truth[k] - (x0, y0), y1 - y0, x1 - x0)
        assert np.mean(_mean_iou([gt], [read_label_png(out / "labels" / f"c{k}.png")])[1:]) > 0.6


def test_predict_without_any_face(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "empty.avi"
    write_video(rng.integers(60, 200, (6, 240, 320, 3), dtype=np.uint8), path)
    out = tmp_path / "out"
    assert main(["predict", str(path), "--out", str(out), "--method", "landmarks", "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faces_found"] == 0 and len(summary["frames_without_face"]) == 6
    assert not any(read_label_png(p).any() for p in (out / "labels").iterdir())


def test_tracker_predictions_for_the_pipeline(face, tmp_path):
    """`predict_test_clips` on a 300VW-layout video: one label per test frame, at that frame's crop."""
    import pandas as pd

    mf, truth = face
    raw, masks, out = tmp_path / "raw", tmp_path / "mask", tmp_path / "pred"
    (raw / "001").mkdir(parents=True)
    masks.mkdir()
    out.mkdir()
    write_video(mf.frames, raw / "001" / "vid.avi")
    boxes = [square_crop_box(t, 240, 320) for t in truth]
    rows = [{"video": "001", "frame": k + 1, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3],
             "w": b[2] - b[0], "h": b[3] - b[1]} for k, b in enumerate(boxes)]
    pd.DataFrame(rows).to_csv(masks / "frames.csv", index=False)
    test = list(range(10, 20)) + list(range(28, 33))  # 0-based: two clips, one through the occlusion
    clips = [{"video": "001", "names": [f"001_{k + 1:06d}" for k in test[:10]]},
             {"video": "001", "names": [f"001_{k + 1:06d}" for k in test[10:]]}]
    stats = predict_test_clips(clips, raw, masks, out, progress=False)
    assert stats["source"] == "video" and stats["frames"] == 15
    assert stats["frames_without_face"] == [f"001_{k + 1:06d}" for k in test if k in OCCLUDED]
    gts, preds = [], []
    for k in test:
        x0, y0, x1, y1 = boxes[k]
        pred = read_label_png(out / f"001_{k + 1:06d}.png")
        assert pred.shape == (y1 - y0, x1 - x0)
        if k in OCCLUDED:
            assert not pred.any()
        else:
            gts.append(landmarks_to_mask(truth[k] - (x0, y0), y1 - y0, x1 - x0))
            preds.append(pred)
    assert np.mean(_mean_iou(gts, preds)[1:]) > 0.6


# ---------------------------------------------------------------------------------------------------
# --method auto


def _models(root, data):
    """Tiny face/eyes/mouth ConvLSTM-FCNs whose config records `data` (None: nothing recorded)."""
    from facemask.models.registry import build_model, save_model

    for region, classes in (("face", 5), ("eyes", 2), ("mouth", 3)):
        cfg = {"encoder": "resnet18", "classes": classes, "input_size": 32, "T": 5, "region": region,
               **({} if data is None else {"data": data})}
        (root / region).mkdir(parents=True)
        save_model(root / region / "convlstm.pt", build_model("convlstm", cfg), "convlstm", cfg)
    return root


def test_auto_picks_the_method_from_what_the_models_were_trained_on(tmp_path):
    synthetic = _models(tmp_path / "syn", {"source": "synthetic", "videos": 25})
    real = _models(tmp_path / "real", {"source": "300vw", "videos": 50})
    old = _models(tmp_path / "old", None)
    assert choose_method(synthetic)[0] == "landmarks" and "synthetic" in choose_method(synthetic)[1]
    assert choose_method(real)[:1] == ("cascade",) and "300vw, 50 videos" in choose_method(real)[1]
    assert choose_method(old)[0] == "cascade" and "do not record" in choose_method(old)[1]
    assert choose_method(tmp_path / "none")[0] == "landmarks"


def test_auto_with_synthetic_models_uses_landmarks_and_cascade_warns(face, video, tmp_path, capsys, one_thread):
    models = _models(tmp_path / "syn", {"source": "synthetic", "videos": 25})
    out = tmp_path / "auto"
    assert main(["predict", str(video), "--out", str(out), "--models", str(models), "--no-video",
                 "--landmarker", "dlib"]) == 0  # (the default landmarker warns where mediapipe is missing)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "landmarks" and summary["method_reason"].startswith("auto: ")
    assert summary["models_data"] == {"source": "synthetic", "videos": 25} and summary["warnings"] == []
    assert "method landmarks (auto: the models were trained on synthetic data" in capsys.readouterr().err
    out = tmp_path / "cascade"
    assert main(["predict", str(video), "--out", str(out), "--models", str(models), "--method", "cascade",
                 "--no-video", "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "cascade" and summary["faces_found"] == N - len(OCCLUDED)
    assert any("synthetic" in w and "--method landmarks" in w for w in summary["warnings"])
    assert "warning: the models were trained on synthetic data" in capsys.readouterr().err

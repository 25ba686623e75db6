"""`facemask predict`: detection, geometry, streaming windows, outputs and bad input.

The video is made here: frames of the synthetic generator (whose landmarks are known) pasted into a
larger grey frame at a known offset, with a stretch of frames where the face is blanked out. The
models are tiny ConvLSTM-FCNs saved with `facemask.models.nets`; their ConvLSTM is set by hand so that the
face model calls every pixel skin and the zoomed models call every pixel background: the cascade's
output is then exactly "skin on the crop box", which makes the geometry checkable pixel by pixel.
"""
from __future__ import annotations

import csv
import json
import shutil
import threading

import cv2
import numpy as np
import pytest
import torch

from facemask.app.cli import main
from facemask.app.outputs import FrameItem, paste_label
from facemask.app.segmenters import WindowQueue
from facemask.data.labels import read_label_png
from facemask.data.ibug68 import read_pts
from facemask.data.masks.draw import square_crop_box
from facemask.data.synth.generate import generate as synth_generate
from facemask.inference.detect import BoxSmoother, HaarFaceDetector, crop_box
from facemask.models.registry import build_model, save_model

W, H = 400, 300          # the big frame
OFFSET = (60, 40)        # where the 320 x 240 synthetic frame is pasted (x, y)
N_FRAMES = 24
BLANK = range(12, 20)    # 0-based frames with the face blanked out: 8 > max_gap (5)
T = 5


pytestmark = pytest.mark.usefixtures("one_thread")  # the models here are tiny: one thread (conftest)


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The pasted video (MJPG .avi), its frames, and the training-style crop box of every face frame."""
    root = tmp_path_factory.mktemp("scene")
    blur_only = {"blur": 1.0, "noise": 0.0, "flash": 0.0, "flicker": 0.0, "drop": 0.0, "corrupt": 0.0, "glitch": 0.0,
                 "occluder": 0.0}                   # one motion-blur burst (frames 5-8), not the default's many events
    synth_generate(root / "syn", {"videos": 1, "frames": N_FRAMES, "fps": 30, "width": 320, "height": 240,
                                  "categories": [1, 0, 0], "workers": 1, "transient_rate": 0.8,
                                  "transient_strength": 1.0, "transient_mix": blur_only}, 5)
    cap = cv2.VideoCapture(str(root / "syn" / "001" / "vid.avi"))
    frames, truth = [], []
    for k in range(N_FRAMES):
        ok, small = cap.read()
        assert ok
        big = np.full((H, W, 3), 100, np.uint8)
        if k not in BLANK:
            big[OFFSET[1]:OFFSET[1] + 240, OFFSET[0]:OFFSET[0] + 320] = small
        pts = read_pts(root / "syn" / "001" / "annot" / f"{k + 1:06d}.pts") + OFFSET
        frames.append(big)
        truth.append(None if k in BLANK else square_crop_box(pts, H, W, 1.3))
    cap.release()
    video = root / "video.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    for f in frames:
        vw.write(f)
    vw.release()
    return {"video": video, "frames": frames, "truth": truth, "root": root}


def _constant_convlstm(classes: int, winner: int) -> torch.nn.Module:
    """A tiny ConvLSTM-FCN whose scores are the same everywhere, highest for class `winner`.

    The ConvLSTM's kernels are zeroed and its biases set: input gate and output gate open
    (sigmoid(10) ~ 1), cell input tanh(+-5) = +-1 (+ for `winner`), so h = tanh(+-1) for every pixel.
    """
    cfg = {"encoder": "resnet18", "classes": classes, "output_stride": 16, "input_size": 32, "T": T}
    model = build_model("convlstm", cfg)
    lstm = model.convlstm
    with torch.no_grad():
        lstm.conv_x.weight.zero_()
        lstm.conv_h.weight.zero_()
        b = torch.zeros(4, classes)
        b[0], b[3] = 10.0, 10.0            # i, o
        b[2] = -5.0
        b[2, winner] = 5.0                 # c
        lstm.conv_x.bias.copy_(b.flatten())
    return model, cfg


def _save_models(root, classes={"face": 5, "eyes": 2, "mouth": 3}, winners={"face": 1, "eyes": 0, "mouth": 0}):
    for region, c in classes.items():
        model, cfg = _constant_convlstm(c, winners.get(region, 0))
        (root / region).mkdir(parents=True, exist_ok=True)
        save_model(root / region / "convlstm.pt", model, "convlstm", dict(cfg, region=region))
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return _save_models(tmp_path_factory.mktemp("models"))


def _boxes(out):
    with open(out / "boxes.csv") as f:
        return {r["frame"]: (None if r["x0"] == "" else tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1")))
                for r in csv.DictReader(f)}


# ---------------------------------------------------------------------------------------------------
# Geometry and detection


def test_paste_label_puts_crop_pixels_at_frame_coordinates():
    label = np.zeros((4, 3), np.uint8)
    label[0, 0], label[3, 2], label[1, 1] = 1, 4, 2
    full = paste_label(label, (10, 20, 13, 24), (30, 40))
    assert full.shape == (30, 40)
    assert sorted(zip(*np.nonzero(full))) == [(20, 10), (21, 11), (23, 12)]
    assert (full[20, 10], full[21, 11], full[23, 12]) == (1, 2, 4)
    with pytest.raises(ValueError):
        paste_label(label, (10, 20, 14, 24), (30, 40))


def test_overlay_blend_draws_what_the_data_layers_overlay_draws():
    """The overlay video's uint8 OpenCV blend against `facemask.data.labels.overlay` (float NumPy): the same
    pixels, up to one grey level of rounding, on a label map with every class and ragged outlines."""
    from facemask.app.outputs import blend_labels
    from facemask.data.labels import overlay

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    label = np.zeros((61, 47), np.uint8)
    label[5:55, 4:40] = 1
    label[10:20, 8:30] = 2
    label[30:40, 10:35] = rng.integers(3, 5, (10, 25))
    label[0, :] = 2  # regions on the border: the outline stops at the frame's edge in both
    a, b = blend_labels(image, label), overlay(image, label)
    assert a.dtype == np.uint8 and a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert (a == b).mean() > 0.99
    assert (a[label == 0] == image[label == 0]).all()


def test_detector_finds_the_pasted_face_near_its_known_crop(scene):
    """Raw per-frame detections: most frames give the face's crop; misses and false detections
    (seed 5 blurs frames 5-8 and fires once on the background) are left to `BoxSmoother`."""
    det = HaarFaceDetector()
    ious = []
    for frame, truth in zip(scene["frames"], scene["truth"]):
        face = det(frame)
        if truth is None:
            assert face is None  # a grey frame holds no face
        else:
            ious.append(0.0 if face is None else _iou(crop_box(face, (H, W)), truth))
    assert np.mean(np.array(ious) > 0.7) >= 0.75, ious
    assert np.median(ious) > 0.85, ious


# ---------------------------------------------------------------------------------------------------
# Temporal smoothing


def _run_smoother(boxes, **kw):
    sm = BoxSmoother(**kw)
    out = [r for b in boxes for r in sm.push(None if b is None else np.array(b, float))]
    out += sm.flush()
    assert [i for i, _ in out] == list(range(len(boxes)))
    return [b for _, b in out]


def test_smoother_bridges_short_gaps_linearly_and_keeps_long_ones_empty():
    # detections at 0 and 4 (gap of 3 <= max_gap) then a gap of 6 (> max_gap) then one at 11
    boxes = [(0, 0, 10), None, None, None, (8, 4, 14), None, None, None, None, None, None, (50, 50, 50)]
    out = _run_smoother(boxes, radius=0, max_gap=3)
    np.testing.assert_allclose(out[1], (2, 1, 11))
    np.testing.assert_allclose(out[3], (6, 3, 13))
    assert all(out[k] is None for k in range(5, 11))
    np.testing.assert_allclose(out[11], (50, 50, 50))
    # a gap at the start or the end has no detection on one side: not bridged
    out = _run_smoother([None, (1, 1, 1), None], radius=0, max_gap=5)
    assert out[0] is None and out[2] is None


def test_smoother_drops_a_false_detection_and_smooths_within_a_segment_only():
    boxes = [(10, 10, 20)] * 3 + [(100, 100, 90)] + [(12, 10, 20)] * 3 + [None] * 9 + [(70, 70, 30)]
    out = _run_smoother(boxes, radius=2, max_gap=5)
    # frame 3 is far from its neighbours' median (10..12, 10, 20): dropped, then bridged to (11, 10, 20);
    # the median over frames 1..5 is then 10, 10, 11, 12, 12 -> 11
    np.testing.assert_allclose(out[3], (11, 10, 20))
    np.testing.assert_allclose(out[0], (10, 10, 20))   # frames 0..2: 10, 10, 10
    np.testing.assert_allclose(out[6], (12, 10, 20))   # frames 4..6 (7 and 8 have no face)
    assert all(b is None for b in out[7:16])
    np.testing.assert_allclose(out[-1], (70, 70, 30))  # alone in its segment: nothing to mix in
    # without the outlier check the false box would drag the median: 10, 10, 12, 12, 100 -> 12
    out = _run_smoother(boxes, radius=2, max_gap=5, outlier=1e9)
    np.testing.assert_allclose(out[3], (12, 10, 20))


def test_smoother_holds_a_bounded_number_of_boxes():
    sm = BoxSmoother(radius=3, max_gap=5)
    peak = 0
    for k in range(500):
        sm.push(None if k % 17 < 4 else np.array([k, k, 10.0]))
        peak = max(peak, len(sm._raw))
    assert peak <= 3 * sm.context + 2


# ---------------------------------------------------------------------------------------------------
# Streaming windows


class _Recorder:
    """A stand-in for the cascade and the writer: records windows and what is written when."""

    T = T

    def __init__(self):
        self.calls, self.written = [], []

    def __call__(self, windows):
        assert all(len(w) == T for w in windows)
        self.calls.append([len({id(c) for c in w}) for w in windows])  # padding repeats the last crop
        return [[np.full(c.shape[:2], 1, np.uint8) for c in w] for w in windows]

    def write(self, item):
        self.written.append(item.name)


class _Bar:
    def update(self, n):
        pass


def test_windows_stream_in_order_with_bounded_memory():
    rec = _Recorder()
    win = WindowQueue(rec, batch=2, writer=rec, timings={"network": 0.0, "writing": 0.0}, bar=_Bar())
    frame = np.zeros((8, 8, 3), np.uint8)
    has_face = [k < 7 or 12 <= k < 300 or k >= 420 for k in range(450)]  # a long stretch without a face
    peak = 0
    for k, f in enumerate(has_face):
        win.add(FrameItem(f"{k:06d}", frame), (0, 0, 8, 8) if f else None)
        peak = max(peak, len(win.queue))
    win.finish()
    assert rec.written == [f"{k:06d}" for k in range(450)]
    assert peak <= 2 * 2 * T + T
    # windows: 7 face frames -> 5 + 2; 288 -> 57 x 5 + 3; 30 -> 6 x 5; at most `batch` per call
    sizes = [s for c in rec.calls for s in c]
    assert sorted(sizes) == sorted([5, 2] + [5] * 57 + [3] + [5] * 6)
    assert max(len(c) for c in rec.calls) <= 2
    assert len(win.no_face) == 450 - sum(has_face)


class _SegmentRecorder(_Recorder):
    """Records, in order, each reset and each window as the frame numbers its crops carry (a frame k is
    filled with grey level k)."""

    def __init__(self):
        super().__init__()
        self.events = []

    def reset(self):
        self.events.append("reset")

    def __call__(self, windows):
        self.events += [tuple(int(c[0, 0, 0]) for c in w) for w in windows]
        return super().__call__(windows)


def test_windows_never_span_two_face_segments_and_each_segment_starts_with_a_reset():
    """Frames 0-6 one face; 7-13 a box that does not overlap it (another face); 14 none; 15-22 a face.
    Each segment is cut into windows of its own (the last filled up with its last crop), and the
    segmenter is reset before the first window of each: the state of a streaming ConvLSTM (and the
    cascade's last boxes) never carries from one face to another."""
    rec = _SegmentRecorder()
    win = WindowQueue(rec, batch=2, writer=rec, timings={"network": 0.0}, bar=_Bar())
    for k in range(23):
        box = (0, 0, 8, 8) if k < 7 or k >= 15 else (20, 20, 28, 28) if k < 14 else None
        win.add(FrameItem(f"{k:06d}", np.full((30, 30, 3), k, np.uint8)), box)
    win.finish()
    assert rec.events == ["reset", (0, 1, 2, 3, 4), (5, 6, 6, 6, 6),
                          "reset", (7, 8, 9, 10, 11), (12, 13, 13, 13, 13),
                          "reset", (15, 16, 17, 18, 19), (20, 21, 22, 22, 22)]
    assert rec.written == [f"{k:06d}" for k in range(23)] and win.no_face == ["000014"]


class _Failing(_Recorder):
    """A segmenter that fails on its second call, as a model could midway through a video."""

    def __call__(self, windows):
        if self.calls:
            raise RuntimeError("out of memory")
        return super().__call__(windows)


def test_an_error_in_the_network_thread_reaches_the_caller():
    """The network runs in a thread of its own: its error is raised to the caller (the next frame added or
    `finish`), the frames it did not label are never written, and `close` ends the thread."""
    rec = _Failing()
    win = WindowQueue(rec, batch=1, writer=rec, timings={"network": 0.0}, bar=_Bar())
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(RuntimeError, match="out of memory"):
        for k in range(40):
            win.add(FrameItem(f"{k:06d}", frame), (0, 0, 8, 8))
        win.finish()
    win.close()
    assert rec.written == [f"{k:06d}" for k in range(T)] and len(rec.calls) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("facemask-network")]


def _remembering_convlstm(seed: int = 0):
    """A tiny random ConvLSTM-FCN whose state matters: strong recurrent kernels, forget gates open."""
    torch.manual_seed(seed)
    cfg = {"encoder": "resnet18", "classes": 5, "output_stride": 16, "input_size": 32, "T": T, "encoder_depth": 3}
    model = build_model("convlstm", cfg)
    with torch.no_grad():
        model.convlstm.conv_h.weight.mul_(20.0)
        c = model.convlstm.conv_x.bias.numel() // 4
        model.convlstm.conv_x.bias[c:2 * c] = 3.0  # gate order i, f, c, o: f = σ(3)
    return model.eval(), cfg


def test_predict_state_stream_scores_a_face_segment_as_one_sequence(tmp_path, capsys):
    """--state stream: the labels of 12 face crops (one segment) are the model's on the 12 frames as one
    sequence from the zero state (as with no --state: the default); --state window: on each 5-frame window
    from the zero state. Computed here by calling the model directly; the two must differ (the model uses
    its past)."""
    model, cfg = _remembering_convlstm()
    models = tmp_path / "models"
    (models / "face").mkdir(parents=True)
    save_model(models / "face" / "convlstm.pt", model, "convlstm", dict(cfg, region="face"))
    rng = np.random.default_rng(3)
    crops = tmp_path / "crops"
    crops.mkdir()
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    for k, im in enumerate(images):
        cv2.imwrite(str(crops / f"f{k:02d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)[None]  # (1, 12, 3, 32, 32)
    with torch.no_grad():
        whole = model(x)[0].argmax(1).numpy()
        windowed = np.concatenate([model(x[:, s:s + T])[0].argmax(1).numpy() for s in range(0, 12, T)])
    assert (whole != windowed).mean() > 0.01
    for state, want in (("stream", whole), ("window", windowed), (None, whole)):
        out = tmp_path / str(state)
        rc = main(["predict", str(crops), "--cropped", "--models", str(models), "--method", "primary",
                   *(["--state", state] if state else []),
                   "--out", str(out), "--no-video", "--device", "cpu", "--batch", "2", "-q"])
        assert rc == 0, capsys.readouterr().err
        got = np.stack([read_label_png(out / "labels" / f"f{k:02d}.png") for k in range(12)])
        assert (got == want).mean() > 0.999, state
        assert json.loads((out / "summary.json").read_text())["state"] == (state or "stream")


# ---------------------------------------------------------------------------------------------------
# End to end


def test_predict_video(scene, models, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", str(scene["video"]), "--out", str(out), "--models", str(models), "--batch", "2",
               "--device", "cpu", "-q"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    names = [f"{k + 1:06d}" for k in range(N_FRAMES)]
    assert sorted(p.stem for p in (out / "labels").iterdir()) == names
    assert summary["frames"] == N_FRAMES and summary["window"] == T
    assert set(f"{k + 1:06d}" for k in BLANK) <= set(summary["frames_without_face"])
    assert summary["faces_found"] == N_FRAMES - len(summary["frames_without_face"]) >= N_FRAMES - len(BLANK) - 2
    assert set(summary["timings_s"]) >= {"decode", "detection", "network", "writing", "total"}
    cpu = summary["cpu_s"]  # the process's CPU, and within it each of our threads' own
    assert 0 < cpu["setup"] < cpu["total"] and min(cpu["main"], cpu["decode"], cpu["network"], cpu["writing"]) > 0
    assert cpu["main"] + cpu["decode"] + cpu["network"] + cpu["writing"] <= cpu["total"] - cpu["setup"] + 0.01
    boxes = _boxes(out)
    for k, name in enumerate(names):
        label = read_label_png(out / "labels" / f"{name}.png")
        assert label.shape == (H, W)
        box = boxes[name]
        if box is None:
            assert name in summary["frames_without_face"] and not label.any()
            continue
        # the constant models paint skin on exactly the crop box, and the box is where the face is
        x0, y0, x1, y1 = box
        assert (label[y0:y1, x0:x1] == 1).all() and label.sum() == (x1 - x0) * (y1 - y0)
        assert _iou(box, scene["truth"][k]) > 0.7
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (W, H)
    cap.release()


def test_predict_frames_folder_in_natural_order(scene, models, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(11):
        cv2.imwrite(str(folder / f"f_{k + 1}.png"), scene["frames"][k])
    (folder / "notes.txt").write_text("not an image: ignored")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out), "--models", str(models), "--no-video",
                 "--max-gap", "0", "--smooth", "0", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["boxes.csv", "labels", "summary.json"]
    assert list(_boxes(out)) == [f"f_{k + 1}" for k in range(11)]  # f_2 before f_10
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "frames" and summary["frames"] == 11 and summary["outputs"]["overlay"] is None
    assert summary["frames_bridged"] == 0  # --max-gap 0
    for name in _boxes(out):
        assert read_label_png(out / "labels" / f"{name}.png").shape == (H, W)


def test_predict_cropped_folder(scene, models, tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    sizes = {}
    for k, (frame, truth) in enumerate(zip(scene["frames"], scene["truth"])):
        if truth is not None and k < 8:
            x0, y0, x1, y1 = truth
            cv2.imwrite(str(crops / f"face{k}.png"), frame[y0:y1, x0:x1])
            sizes[f"face{k}"] = (y1 - y0, x1 - x0)
    out = tmp_path / "crops_masks"  # the default: next to the input, named after it
    assert main(["predict", str(crops), "--cropped", "--models", str(models), "--video-format", "avi", "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == summary["faces_found"] == len(sizes) and summary["frames_without_face"] == []
    for name, hw in sizes.items():
        label = read_label_png(out / "labels" / f"{name}.png")
        assert label.shape == hw and (label == 1).all()
    assert (out / "overlay.avi").stat().st_size > 0


# ---------------------------------------------------------------------------------------------------
# Bad input: a message naming the problem, exit != 0, nothing left behind


def _fails(capsys, args, out, *needles):
    rc = main(["predict", *map(str, args), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "error" in err and all(n in err for n in needles), err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary output left behind"
    return err


def test_bad_input_files(tmp_path, models, capsys):
    out = tmp_path / "out"
    m = ["--models", models]
    _fails(capsys, [tmp_path / "nope.mp4", *m], out, "nope.mp4", "no such file")
    (tmp_path / "empty.mp4").write_bytes(b"")
    _fails(capsys, [tmp_path / "empty.mp4", *m], out, "empty.mp4", "empty")
    (tmp_path / "junk.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    _fails(capsys, [tmp_path / "junk.avi", *m], out, "junk.avi", "not a readable video")
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    _fails(capsys, [tmp_path / "notes.mp4", *m], out, "notes.mp4", "not a readable video")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no images here")
    _fails(capsys, [tmp_path / "nothing", *m], out, "nothing", "no images")
    _fails(capsys, [tmp_path / "junk.avi", "--cropped", *m], out, "--cropped")


def test_corrupt_frame_midway_leaves_no_output(scene, tmp_path, models, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(12):
        cv2.imwrite(str(folder / f"{k:04d}.jpg"), scene["frames"][k])
    (folder / "0009.jpg").write_bytes(b"\xff\xd8 truncated")
    _fails(capsys, [folder, "--models", models], tmp_path / "out", "0009.jpg", "cannot read")


def test_bad_models(scene, models, tmp_path, capsys):
    out = tmp_path / "out"
    video = scene["video"]
    # (--method auto without models takes the landmark method: tests/test_tracker.py)
    _fails(capsys, [video, "--models", tmp_path / "no-models", "--method", "cascade"], out, "no-models",
           "models folder not found")
    partial = shutil.copytree(models, tmp_path / "partial")
    (partial / "mouth" / "convlstm.pt").unlink()
    _fails(capsys, [video, "--models", partial], out, "mouth", "missing")
    wrong = shutil.copytree(models, tmp_path / "wrong")
    _save_models(wrong, classes={"eyes": 3})
    _fails(capsys, [video, "--models", wrong], out, "eyes", "3 classes", "needs 2")
    if not torch.cuda.is_available():
        _fails(capsys, [video, "--models", models, "--device", "cuda"], out, "--device cuda", "CUDA")
    (wrong / "eyes" / "convlstm.pt").write_bytes(b"not a checkpoint")
    _fails(capsys, [video, "--models", wrong], out, "eyes", "not a facemask model file (or corrupted)")


def test_existing_output_is_not_replaced_without_overwrite(scene, models, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc = main(["predict", str(scene["video"]), "--out", str(out), "--models", str(models), "-q"])
    assert rc != 0 and "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    # not even with --overwrite may the output replace the input or the models
    for target in (scene["video"].parent, models):
        rc = main(["predict", str(scene["video"]), "--out", str(target), "--models", str(models),
                   "--overwrite", "-q"])
        assert rc != 0 and "would replace" in capsys.readouterr().err
    assert scene["video"].is_file() and (models / "face" / "convlstm.pt").is_file()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--models", "--cropped", "--device", "--batch", "--no-video", "--video-format",
                "--fps", "--max-gap", "--smooth", "--threads", "--overwrite", "--quiet", "--state"):
        assert opt in text


def test_method_fcn_and_primary_need_only_the_face_model(scene, models, tmp_path, capsys):
    """--method fcn runs face/fcn.pt frame by frame, --method primary face/convlstm.pt alone: with
    the zoomed models gone both still work, and each paints its own constant class on the face box."""
    face_only = tmp_path / "face_only"
    shutil.copytree(models / "face", face_only / "face")
    cfg = {"encoder": "resnet18", "classes": 5, "output_stride": 16, "input_size": 32}
    fcn = build_model("fcn", cfg)
    with torch.no_grad():  # scores = conv6's bias everywhere: lips (3) wins
        fcn.conv6.weight.zero_()
        fcn.conv6.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))
    save_model(face_only / "face" / "fcn.pt", fcn, "fcn", dict(cfg, region="face"))
    for method, cls in (("fcn", 3), ("primary", 1)):
        out = tmp_path / method
        rc = main(["predict", str(scene["video"]), "--out", str(out), "--models", str(face_only), "--method",
                   method, "--no-video", "--device", "cpu", "-q"])
        assert rc == 0, capsys.readouterr().err
        for name, box in _boxes(out).items():
            label = read_label_png(out / "labels" / f"{name}.png")
            if box is not None:
                x0, y0, x1, y1 = box
                assert (label[y0:y1, x0:x1] == cls).all() and (label > 0).sum() == (x1 - x0) * (y1 - y0)
    # the cascade needs the zoomed models
    _fails(capsys, [scene["video"], "--models", face_only], tmp_path / "c", "eyes", "missing")
    (face_only / "face" / "fcn.pt").unlink()
    _fails(capsys, [scene["video"], "--models", face_only, "--method", "fcn"], tmp_path / "f", "fcn.pt", "missing")

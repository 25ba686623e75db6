"""The cascade: replacement rule, box geometry, fallbacks, and every method on a clip."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _stages import stage_args
from torch import nn

from facemask.core.methods import CLIP_METHODS, PROBED, PROBES, TEMPORAL_METHODS
from facemask.inference.fusion import (Cascade, ClipPredictor, labels_at, merge_region, per_frame, predict_packed,
                                       to_input, windows_of)

# ---------------------------------------------------------------------------------------------------
# The replacement rule on hand-made masks

PRIMARY = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 1, 0],
    [0, 1, 2, 2, 1, 0],
    [0, 1, 2, 1, 1, 0],
    [0, 1, 3, 3, 1, 0],
    [0, 0, 0, 0, 0, 0],
], np.uint8)


def test_eye_model_replaces_the_primary_inside_its_box():
    zoom = np.array([
        [0, 0, 0, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 0],
    ], np.uint8)
    out = merge_region(PRIMARY, zoom, (1, 1, 5, 4), "eyes")
    expected = PRIMARY.copy()
    # row 2, x 1..4: skin stays skin; primary eye + zoom background -> skin; zoom eye -> eye (twice)
    expected[2, 1:5] = [1, 1, 2, 2]
    # row 3, x 1..4: zoom eye over primary skin -> eye; primary eye + zoom background -> skin
    expected[3, 1:5] = [2, 1, 1, 1]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(PRIMARY[2], [0, 1, 2, 2, 1, 0])  # the input is not changed


def test_mouth_model_maps_its_classes_and_leaves_the_eyes():
    zoom = np.array([
        [0, 0, 0, 0],  # row 2: primary 1 2 2 1 -> eyes are not the mouth model's: kept
        [0, 2, 0, 0],  # row 3: inner mouth (2) -> 4
        [0, 1, 0, 0],  # row 4: primary 1 3 3 1; lips (1) -> 3 at x 2; primary lips + zoom bg at x 3 -> skin
    ], np.uint8)
    out = merge_region(PRIMARY, zoom, (1, 2, 5, 5), "mouth")
    expected = PRIMARY.copy()
    expected[3, 1:5] = [1, 4, 1, 1]
    expected[4, 1:5] = [1, 3, 1, 1]
    np.testing.assert_array_equal(out, expected)


def test_box_reaching_outside_the_crop_is_clipped():
    zoom = np.ones((3, 4), np.uint8)
    out = merge_region(PRIMARY, zoom, (-2, -1, 2, 2), "eyes")  # covers x 0..1, y 0..1 of the crop
    expected = PRIMARY.copy()
    expected[0:2, 0:2] = 2
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="do not fit"):
        merge_region(PRIMARY, zoom, (0, 0, 3, 3), "eyes")
    with pytest.raises(ValueError, match="classes"):
        merge_region(PRIMARY, np.full((3, 4), 2, np.uint8), (-2, -1, 2, 2), "eyes")


def test_windows_of():
    assert windows_of(10, 5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert windows_of(7, 5) == [[0, 1, 2, 3, 4], [5, 6, 6, 6, 6]]


# ---------------------------------------------------------------------------------------------------
# The cascade with stand-in models whose outputs are known


class Stub(nn.Module):
    """A 'model' whose labels are `paint(image)` for each frame; scores are one-hot x 10."""

    def __init__(self, classes, paint, size=32, T=None):
        super().__init__()
        self.classes = classes
        self.config = {"input_size": size, "T": T}
        self.paint = paint
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        lab = torch.stack([self.paint(im) for im in flat])
        s = F.one_hot(lab, self.classes).permute(0, 3, 1, 2).float() * 10 + self.w
        return s.reshape(*lead, *s.shape[1:])


S = 32


def paint_face(im):
    """Skin everywhere, lips at rows 24..27; eyes at x 8..23, y 8..11, but only on bright frames."""
    lab = torch.ones(S, S, dtype=torch.long)
    if im.mean() > 0.5:
        lab[8:12, 8:24] = 2
    lab[24:28, 12:20] = 3
    return lab


def all_part(im):
    return torch.ones(S, S, dtype=torch.long)


def nothing(im):
    return torch.zeros(S, S, dtype=torch.long)


def make_cascade(eyes=all_part, mouth=nothing, margin=0.0):
    return Cascade(Stub(5, paint_face, T=5), Stub(2, eyes), Stub(3, mouth),
                          zoom={"eyes": {"margin": margin}, "mouth": {"margin": margin}}, device="cpu")


def crops(value, sizes):
    return [np.full((h, w, 3), value, np.uint8) for h, w in sizes]


def test_cascade_places_the_zoomed_labels_in_the_eye_box():
    res = make_cascade().run([crops(255, [(S, S)] * 5)])[0]
    assert res.fallback == {"eyes": None, "mouth": None}
    # eyes x 8..23, y 8..11: 16 x 4 px, centre (16, 10); the eye box's aspect 2 makes it 16 x 8 about
    # the same centre: x 8..23, y 6..13
    assert res.boxes["eyes"] == (8, 6, 24, 14)
    # the stub eye model calls all of the box eye; nothing else is eye
    expected = paint_face(torch.ones(3, S, S)).numpy().astype(np.uint8)
    expected[6:14, 8:24] = 2
    expected[24:28, 12:20] = 1  # the stub mouth model sees no mouth: the primary's lips become skin
    for lab in res.cascade:
        np.testing.assert_array_equal(lab, expected)
    assert (res.primary[0] == 3).any()


def test_margin_grows_the_box():
    res = make_cascade(margin=0.5).run([crops(255, [(S, S)] * 5)])[0]
    # 16 x 4 grown by half its size on each side: 32 x 8, aspect 2 -> 32 x 16 about (16, 10)
    assert res.boxes["eyes"] == (0, 2, 32, 18)


def test_cascade_labels_come_back_at_each_crops_size():
    sizes = [(64, 64), (64, 66), (62, 64), (64, 64), (70, 72)]
    cascade = make_cascade()
    res = cascade.run([crops(255, sizes)])[0]
    assert [lab.shape for lab in res.cascade] == sizes and [lab.shape for lab in res.primary] == sizes
    assert all(lab.dtype == np.uint8 and lab.max() <= 4 for lab in res.cascade)
    x0, y0, x1, y1 = res.boxes["eyes"]
    for lab in res.cascade:
        assert (lab[y0:y1, x0:x1] == 2).all() and (lab == 2).sum() == (x1 - x0) * (y1 - y0)
    # predict_window and __call__ give the same fused labels
    cascade.reset()
    np.testing.assert_array_equal(cascade.predict_window(crops(255, sizes))[4], res.cascade[4])
    cascade.reset()
    np.testing.assert_array_equal(cascade([crops(255, sizes)])[0][2], res.cascade[2])


def test_fallback_previous_window_then_typical_place():
    cascade = make_cascade()
    sizes = [(S, S)] * 5
    dark = cascade.run([crops(0, sizes)])[0]        # no eyes predicted, nothing before: typical place
    assert dark.fallback["eyes"] == "typical"
    from facemask.data.clips.regions import zoom_box
    assert dark.boxes["eyes"] == zoom_box(dark.primary, "eyes", 0.0)
    bright, dark2 = cascade.run([crops(255, sizes), crops(0, sizes)])
    assert bright.fallback["eyes"] is None
    assert dark2.fallback["eyes"] == "previous" and dark2.boxes["eyes"] == bright.boxes["eyes"]
    cascade.reset()
    assert cascade.run([crops(0, sizes)])[0].fallback["eyes"] == "typical"


def test_cascade_rejects_bad_windows_and_models():
    cascade = make_cascade()
    with pytest.raises(ValueError, match="T = 5"):
        cascade.run([crops(255, [(64, 64)] * 4)])
    with pytest.raises(ValueError, match="classes"):
        Cascade(Stub(5, paint_face, T=5), Stub(3, all_part), Stub(3, nothing))


# ---------------------------------------------------------------------------------------------------
# Real (tiny) networks


@pytest.fixture(scope="module")
def tiny_models():
    from facemask.models.nets import FCN, ConvLSTMFCN

    torch.manual_seed(0)
    fcn = FCN("resnet18", classes=5)
    fcn.config = {"input_size": 32}
    nets = {"face": ConvLSTMFCN.from_fcn(fcn), "eyes": ConvLSTMFCN("resnet18", classes=2),
            "mouth": ConvLSTMFCN("resnet18", classes=3)}
    for m in nets.values():
        m.config = {"input_size": 32, "T": 5}
    return fcn.eval(), nets


def test_clip_predictor_gives_every_method(tiny_models):
    fcn, nets = tiny_models
    cascade = Cascade(nets["face"], nets["eyes"], nets["mouth"], device="cpu")
    rng = np.random.default_rng(0)
    sizes = [(40 + i % 3, 41 + i % 2) for i in range(12)]   # 12 frames: windows of 5, 5 and 2 (+3 repeated)
    clip = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    predictor = ClipPredictor(fcn, cascade, sigma=0.6)
    out, windows = predictor(clip)
    assert set(out) == {*CLIP_METHODS, *TEMPORAL_METHODS} and len(windows) == 3
    for m in CLIP_METHODS:
        assert [lab.shape for lab in out[m]] == sizes, m
        assert all(lab.max() < 5 for lab in out[m])
    # with a vanishing sigma the smoothing is the identity
    out0, _ = ClipPredictor(fcn, cascade, sigma=1e-3)(clip)
    for a, b in zip(out0["fcn_smooth"], out0["fcn"]):
        np.testing.assert_array_equal(a, b)
    # the primary labels of a window do not depend on frames after it (causal ConvLSTM): padding is harmless
    first, _ = predictor(clip[:10])
    for a, b in zip(first["primary"], out["primary"][:10]):
        np.testing.assert_array_equal(a, b)
    assert set(predictor.seconds) == {"fcn", "fcn_smooth", "cascade", "cascade_stream", "primary_reset"}
    # the first window: no past either way; later windows: the carried state is the whole clip's sequence
    for a, b in zip(out["primary_stream"][:5], out["primary"][:5]):
        np.testing.assert_array_equal(a, b)
    face = cascade.models["face"]
    with torch.no_grad():
        whole = face(to_input(np.stack([cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA) for c in clip]), 32)[None])
    for t in range(12):
        np.testing.assert_array_equal(out["primary_stream"][t], labels_at(whole[0, t], sizes[t]))
    # a baseline: a per-frame model of its own, scored frame by frame like the FCN (here the FCN itself)
    both, _ = ClipPredictor(fcn, cascade, sigma=0.6, baselines={"fcn_vgg16": fcn})(clip)
    assert set(both) == {*CLIP_METHODS, *TEMPORAL_METHODS, "fcn_vgg16"}
    for a, b in zip(both["fcn_vgg16"], out["fcn"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="clash"):
        ClipPredictor(fcn, cascade, sigma=0.6, baselines={"primary": fcn})


def test_predict_packed(tiny_models):
    fcn, nets = tiny_models
    images = np.random.default_rng(1).integers(0, 256, (2, 7, 32, 32, 3), dtype=np.uint8)
    lab = predict_packed(nets["eyes"], images, 5, "cpu")
    assert lab.shape == (2, 7, 32, 32) and lab.max() <= 1
    # the first window equals the model run on it alone
    x = to_input(images[1, :5], 32)[None]
    with torch.no_grad():
        ref = nets["eyes"](x)[0].argmax(1).numpy()
    np.testing.assert_array_equal(lab[1, :5], ref)
    lab_fcn = predict_packed(fcn, images, None, "cpu")
    assert lab_fcn.shape == (2, 7, 32, 32) and lab_fcn.max() <= 4


# ---------------------------------------------------------------------------------------------------
# The fuse stage on tiny saved models and test clips in the contract layout


def test_fuse_and_landmark_stages_write_every_method(tmp_path, monkeypatch, tiny_models):
    import json

    import cv2
    import pandas as pd
    from _params import write_params

    from facemask.models.registry import save_model
    from stages import fuse, mesh, tracker

    fcn, nets = tiny_models
    write_params(tmp_path, **{"train.device": "cpu"})  # params.yaml's clips.window 5, zoom, fuse
    clips = tmp_path / "data" / "clips"
    clips.mkdir(parents=True)
    (clips / "index.csv").write_text("clip,split,row,video,first_frame,length,category\n"
                                     "0,test,0,001,1,5,1\n1,test,1,002,11,5,3\n")
    rng = np.random.default_rng(0)
    for region in ("face", "eyes", "mouth"):
        (clips / region / "test").mkdir(parents=True)
        np.save(clips / region / "test" / "images.npy", rng.integers(0, 256, (2, 5, 32, 32, 3), dtype=np.uint8))
        np.save(clips / region / "test" / "labels.npy", np.zeros((2, 5, 32, 32), np.uint8))  # not read by fuse
    orig = tmp_path / "data" / "300VW-Mask" / "images_orig"
    orig.mkdir(parents=True)
    names = [f"001_{f:06d}" for f in range(1, 6)] + [f"002_{f:06d}" for f in range(11, 16)]
    sizes = {n: (40 + i, 44 + i) for i, n in enumerate(names)}
    for n, (h, w) in sizes.items():
        cv2.imwrite(str(orig / f"{n}.jpg"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    # crops without raw videos (like the authors' release): the tracker runs over the crops of each clip
    pd.DataFrame([{"video": n[:3], "frame": int(n[4:]), "w": w, "h": h} for n, (h, w) in sizes.items()]).to_csv(
        orig.parent / "frames.csv", index=False)
    for region, model in nets.items():
        cfg = {"encoder": "resnet18", "classes": model.classes, "input_size": 32, "T": 5}
        save_model(tmp_path / "models" / region / "convlstm.pt", model, "convlstm", cfg)
        save_model(tmp_path / "models" / region / "fcn.pt", fcn if region == "face" else
                   type(fcn)("resnet18", classes=model.classes), "fcn", {**cfg, "T": None})
    # a Table 2 baseline (stage train_baselines): here the face FCN's own weights under another name, so
    # its labels must be the fcn method's, frame for frame
    save_model(tmp_path / "models" / "face" / "baselines" / "fcn_vgg16.pt", fcn, "fcn",
               {"encoder": "resnet18", "classes": 5, "input_size": 32, "T": None})
    (tmp_path / "models" / "face" / "baselines" / "archs.json").write_text('{"archs": ["fcn_vgg16"]}')

    monkeypatch.chdir(tmp_path)
    for stage in (fuse, tracker, mesh):
        stage.main(stage_args(stage.__name__.rsplit(".", 1)[-1]))
    root = tmp_path / "data" / "predictions"
    pred = root / "learned"
    from facemask.data.labels import read_label_png
    assert sorted(p.stem for p in (root / "tracker").glob("*.png")) == names
    for m in (*CLIP_METHODS, *TEMPORAL_METHODS, "fcn_vgg16"):
        assert sorted(p.stem for p in (pred / m).iterdir()) == names
        for n in (names[0], names[-1]):
            lab = read_label_png(pred / m / f"{n}.png")
            assert lab.shape == sizes[n] and lab.max() <= 4
    boxes = pd.read_csv(pred / "boxes.csv")
    assert len(boxes) == 2 * 1 * 2 and set(boxes["region"]) == {"eyes", "mouth"}  # 2 clips x 1 window x 2 regions
    for region, classes in (("eyes", 2), ("mouth", 3)):
        for arch in ("fcn", "convlstm"):
            z = np.load(pred / "zoomed" / region / f"{arch}.npy")
            assert z.shape == (2, 5, 32, 32) and z.max() < classes
    for n in names:
        np.testing.assert_array_equal(read_label_png(pred / "fcn_vgg16" / f"{n}.png"),
                                      read_label_png(pred / "fcn" / f"{n}.png"))
    # one window per clip: carrying the state across windows changes nothing, resetting it every frame does
    for n in names:
        for stream, windowed in (("primary_stream", "primary"), ("cascade_stream", "cascade")):
            np.testing.assert_array_equal(read_label_png(pred / stream / f"{n}.png"),
                                          read_label_png(pred / windowed / f"{n}.png"))
    assert sorted(p.stem for p in (pred / "primary_reset").iterdir()) == names
    for kind in PROBES:   # the memory probes: the last frame of each (full) window replaced
        for m in PROBED:
            assert sorted(p.stem for p in (pred / "probes" / kind / m).iterdir()) == [names[4], names[9]]
    info = json.loads((pred / "info.json").read_text())
    assert info["frames"] == 10 and info["clips"] == 2 and info["baselines"] == ["fcn_vgg16"]
    assert info["methods"] == [*CLIP_METHODS, *TEMPORAL_METHODS, "fcn_vgg16"]
    assert info["probes"] == {"kinds": list(PROBES), "methods": list(PROBED), "frames": 2}
    assert sum(info["box_fallbacks"].values()) == len(boxes)  # one entry per window and region
    assert not any("second" in k or "per_s" in k for k in info)  # no wall-clock figures in a DVC output
    # noise holds no face: the tracker reports every frame as such and paints nothing
    assert "tracker" not in info and "mesh" not in info  # the landmark methods are stages of their own
    info = {m: json.loads((root / m / "info.json").read_text()) for m in ("tracker", "mesh")}
    assert info["tracker"] == {"source": "crops", "status": {"detected": 0, "tracked": 0, "lost": 0, "no_face": 10},
                               "frames_without_face": 10}
    assert not any(read_label_png(root / "tracker" / f"{n}.png").any() for n in names)
    # the face mesh likewise, run the same way; where mediapipe is missing, left out with the reason
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        assert "pip install --no-deps mediapipe==0.10.14" in info["mesh"]["skipped"]
        assert sorted(p.name for p in (root / "mesh").iterdir()) == ["info.json"]
    else:
        assert info["mesh"] == {"source": "crops", "status": {"detected": 0, "tracked": 0, "lost": 0, "no_face": 10},
                                "frames_without_face": 10}
        assert sorted(p.stem for p in (root / "mesh").glob("*.png")) == names
        assert not any(read_label_png(root / "mesh" / f"{n}.png").any() for n in names)


def test_per_frame_keeps_the_first_occurrence():
    idx = windows_of(7, 5)                    # [[0..4], [5, 6, 6, 6, 6]]
    outs = [["a0", "a1", "a2", "a3", "a4"], ["b5", "b6", "pad", "pad", "pad"]]
    assert per_frame(idx, outs, 7) == ["a0", "a1", "a2", "a3", "a4", "b5", "b6"]

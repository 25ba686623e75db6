"""`facemask export` and `facemask predict --runtime`: the encoders in ONNX Runtime give the reference path's masks.

The models are tiny random ConvLSTM-FCNs (32-pixel input, ResNet-18 cut after its second stage, as the
default configuration), with strong recurrent kernels so that the stream's state matters, and the crops are
smooth random images of several sizes: the labels then hold every class, change from frame to frame and
depend on each frame's past. The reference is the cascade in torch, eager, one window per call, in the
order of the frames (`facemask.inference.fusion.Cascade`), on the same crops.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from facemask.app import runtime
from facemask.app.cli import main
from facemask.data.labels import read_label_png
from facemask.inference.fusion import Cascade
from facemask.models.registry import build_model, load_model, save_model
from stages import export as export_stage

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.usefixtures("one_thread")

T, N = 5, 13  # 13 crops: two whole windows and a short one, filled up with its last crop
CLASSES = {"face": 5, "eyes": 2, "mouth": 3}


def _random_convlstm(classes: int, seed: int):
    torch.manual_seed(seed)
    cfg = {"encoder": "resnet18", "classes": classes, "output_stride": 8, "encoder_depth": 3, "input_size": 32,
           "T": T}
    model = build_model("convlstm", cfg)
    with torch.no_grad():
        model.convlstm.conv_h.weight.mul_(20.0)
        c = model.convlstm.conv_x.bias.numel() // 4
        model.convlstm.conv_x.bias[c:2 * c] = 3.0  # gate order i, f, c, o: f = σ(3), a long memory
    return model.eval(), cfg


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A models folder with random models for the three regions and their exports."""
    root = tmp_path_factory.mktemp("models")
    for k, (region, classes) in enumerate(CLASSES.items()):
        model, cfg = _random_convlstm(classes, seed=k)
        (root / region).mkdir()
        save_model(root / region / "convlstm.pt", model, "convlstm", dict(cfg, region=region))
    assert main(["export", "--models", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """`N` smooth random RGB crops of 40 to 56 pixels, written as a folder of BGR PNGs."""
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("crops")
    images = []
    for k in range(N):
        side = int(rng.integers(40, 57))
        im = cv2.GaussianBlur(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), (0, 0), 3)
        im = cv2.normalize(im, None, 0, 255, cv2.NORM_MINMAX)
        cv2.imwrite(str(folder / f"c{k:02d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        images.append(im)
    return folder, images


def _reference(models, images) -> list[np.ndarray]:
    """The torch cascade, eager, one window per call, the primary's state carried across the windows."""
    m = {r: load_model(models / r / "convlstm.pt") for r in CLASSES}
    cascade = Cascade(m["face"], m["eyes"], m["mouth"], device="cpu", batch=1, stream=True)
    out = []
    for s in range(0, N, T):
        w = images[s:s + T]
        out += cascade([w + [w[-1]] * (T - len(w))])[0][:len(w)]
    return out


def _predict(crops, models, out, *args):
    rc = main(["predict", str(crops), "--cropped", "--models", str(models), "--method", "cascade", "--batch", "2",
               "--device", "cpu", "--no-video", "--out", str(out), "-q", *args])
    assert rc == 0
    labels = [read_label_png(out / "labels" / f"c{k:02d}.png") for k in range(N)]
    return labels, json.loads((out / "summary.json").read_text())


def test_export_writes_the_encoder_and_its_source(exported):
    """Each export holds the checkpoint's SHA-256 and gives the encoder's features within 1e-4 of torch's on
    frames it was not checked on at export (another size of batch too)."""
    x = torch.rand(7, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    for region in CLASSES:
        pt = exported / region / "convlstm.pt"
        encoder = runtime.OnnxEncoder(runtime.export_path(pt), 1)
        assert encoder.source == runtime.file_sha256(pt)
        with torch.no_grad():
            want = load_model(pt).eval().features(x)
        assert torch.allclose(encoder(x), want, atol=1e-4, rtol=0)


def test_predict_masks_match_the_reference_path(exported, crops, tmp_path):
    """Threaded, batched, encoders in ONNX Runtime (the default where exports are there) or in torch: the
    masks are the reference path's, but for a share of pixels where two classes tie to float precision
    (none was seen; at most 1 in 10,000 allowed)."""
    folder, images = crops
    want = _reference(exported, images)
    assert len(np.unique(np.concatenate([w.ravel() for w in want]))) == 5  # every class: a real comparison
    for args, name in (((), "onnxruntime"), (("--runtime", "torch"), "torch")):
        labels, summary = _predict(folder, exported, tmp_path / name, *args)
        assert {v.split()[0] for v in summary["runtime"].values()} == {name}
        differ = sum(int((g != w).sum()) for g, w in zip(labels, want))
        assert differ <= 1e-4 * sum(w.size for w in want), (name, differ)


def test_a_stale_missing_or_damaged_export(exported, crops, tmp_path, capsys):
    """A retrained model (another checkpoint) makes its export stale: --runtime auto runs that encoder in torch
    and warns; --runtime onnx refuses, naming the file and `facemask export`; so does a missing export; a
    damaged one is an error either way."""
    folder, images = crops
    models = shutil.copytree(exported, tmp_path / "models")
    model, cfg = _random_convlstm(2, seed=9)
    save_model(models / "eyes" / "convlstm.pt", model, "convlstm", dict(cfg, region="eyes"))
    _, summary = _predict(folder, models, tmp_path / "auto")
    assert summary["runtime"]["eyes"] == "torch" and summary["runtime"]["face"].startswith("onnxruntime")
    stale = [w for w in summary["warnings"] if "encoder in torch" in w]
    assert len(stale) == 1 and stale[0].startswith("eyes encoder in torch") and "facemask export" in stale[0]
    capsys.readouterr()
    for label in ("stale", "missing"):
        out = tmp_path / f"onnx_{label}"
        rc = main(["predict", str(folder), "--cropped", "--models", str(models), "--runtime", "onnx",
                   "--no-video", "--out", str(out), "-q"])
        err = capsys.readouterr().err
        assert rc == 1 and "onnx/eyes/convlstm.onnx" in err and "facemask export" in err, err
        assert not out.exists()
        (models / "onnx" / "eyes" / "convlstm.onnx").unlink(missing_ok=True)
    (models / "onnx" / "eyes" / "convlstm.onnx").write_bytes(b"not an onnx file")
    rc = main(["predict", str(folder), "--cropped", "--models", str(models), "--no-video", "--out",
               str(tmp_path / "damaged"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "onnx/eyes/convlstm.onnx: not a readable ONNX export" in err and "facemask export" in err, err


def test_the_export_stage_writes_what_predict_runs(exported, tmp_path):
    """`dvc repro`'s export stage writes each encoder where `predict --runtime auto` looks for it
    (``models/onnx/<region>/convlstm.onnx``), the same bytes as `facemask export` (the export is deterministic)."""
    models = shutil.copytree(exported, tmp_path / "models", ignore=shutil.ignore_patterns("onnx"))
    assert not (models / "onnx").exists()
    export_stage.main(["--models", str(models)])
    for region in CLASSES:
        made = models / "onnx" / region / "convlstm.onnx"
        assert runtime.export_path(models / region / "convlstm.pt") == made
        assert made.read_bytes() == (exported / "onnx" / region / "convlstm.onnx").read_bytes()
    # what the stage and `facemask export` say: the export's path, or, for a network left to torch, the checkpoint's
    pt = models / "face" / "convlstm.pt"
    assert runtime.export_line(pt, 1e-6) == f"wrote {models / 'onnx' / 'face' / 'convlstm.onnx'} (largest feature " \
                                            "difference from torch 1.0e-06)"
    assert runtime.export_line(pt, None).startswith(f"skipped {pt}: ")

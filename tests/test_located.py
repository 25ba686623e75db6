"""The protocol users run (`facemask.app.located`, stage `located`): `facemask predict` over a test video, its
full-frame labels cut at each test frame's ground-truth crop."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage")

from facemask.app.cli import main  # noqa: E402
from facemask.app.located import LOCATED, predict_test_videos  # noqa: E402
from facemask.data.labels import read_label_png  # noqa: E402
from facemask.data.masks.draw import square_crop_box  # noqa: E402
from facemask.data.realface import moving_face, reference_landmarks, write_video  # noqa: E402
from facemask.inference.tracker import ShapePredictor  # noqa: E402
from facemask.models.registry import build_model, save_model  # noqa: E402

N, SIZE, FACE = 15, (320, 240), 80.0


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """A 300VW-layout test video of a real face, its ground-truth crops (frames.csv), two test clips and tiny
    untrained models."""
    root = tmp_path_factory.mktemp("located")
    mf = moving_face(N, SIZE, FACE, seed=0, occluded=range(6, 8))
    ref = reference_landmarks(ShapePredictor())
    truth = [mf.map_points(ref, k) for k in range(N)]
    (root / "raw" / "001").mkdir(parents=True)
    write_video(mf.frames, root / "raw" / "001" / "vid.avi")
    boxes = [square_crop_box(t, SIZE[1], SIZE[0]) for t in truth]
    (root / "masks").mkdir()
    pd.DataFrame([{"video": "001", "frame": k + 1, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3]}
                  for k, b in enumerate(boxes)]).to_csv(root / "masks" / "frames.csv", index=False)
    for region, classes in (("face", 5), ("eyes", 2), ("mouth", 3)):
        cfg = {"encoder": "resnet18", "classes": classes, "input_size": 32, "T": 5, "region": region}
        (root / "models" / region).mkdir(parents=True)
        save_model(root / "models" / region / "convlstm.pt", build_model("convlstm", cfg), "convlstm", cfg)
        if region == "face":
            save_model(root / "models" / region / "fcn.pt", build_model("fcn", cfg), "fcn", {**cfg, "T": None})
    clips = [{"video": "001", "names": [f"001_{k:06d}" for k in range(1, 11)]},
             {"video": "001", "names": [f"001_{k:06d}" for k in range(11, 16)]}]
    return root, clips, boxes


def test_every_method_cut_at_the_ground_truth_crops(test_set, one_thread):
    root, clips, boxes = test_set
    out = root / "out"
    info = predict_test_videos(clips, root / "raw", root / "masks", root / "models", out, device="cpu",
                               progress=False)
    assert info["methods"] == list(LOCATED) and set(info["frames_with_face"]) == set(LOCATED)
    for method in LOCATED:
        names = sorted(p.stem for p in (out / method).iterdir())
        assert names == [f"001_{k:06d}" for k in range(1, N + 1)]
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            assert read_label_png(out / method / f"001_{k + 1:06d}.png").shape == (y1 - y0, x1 - x0)
    # the same as `facemask predict --method fcn` run by hand and cut at the ground-truth crops
    by_hand = root / "by_hand"
    assert main(["predict", str(root / "raw" / "001" / "vid.avi"), "--out", str(by_hand), "--models",
                 str(root / "models"), "--method", "fcn", "--no-video", "--device", "cpu", "-q"]) == 0
    found = 0
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        full = read_label_png(by_hand / "labels" / f"{k + 1:06d}.png")
        cut = read_label_png(out / "predict_fcn" / f"001_{k + 1:06d}.png")
        np.testing.assert_array_equal(cut, full[y0:y1, x0:x1])
        found += int(cut.any())
    assert info["frames_with_face"]["predict_fcn"] == found
    assert json.loads((by_hand / "summary.json").read_text())["frames"] == N

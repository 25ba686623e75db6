"""Masks from landmarks, the authors' crop, label colours, frame reconciliation and the masks stage.

Expected values are worked out by hand (in the comments) or by an independent route (a point-in-
polygon test on pixel centres, the area of a circle, a cubic a spline must reproduce).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.interpolate import CubicSpline

from facemask.data.labels import (EYES, INNER_MOUTH, LIPS, PALETTE, SKIN, classes_to_rgb, read_label_png,
                                  rgb_to_classes, write_label_png)
from facemask.data.ibug68 import write_pts
from facemask.data.masks.build import build_masks
from facemask.data.masks.draw import fill_polygon, landmarks_to_mask, spline_piece, square_crop_box
from facemask.data.sheets import contact_sheet
from facemask.data.frames import Reconciliation, iter_frames, reconcile

# ---------------------------------------------------------------------------------------------------
# A face made of circles (shared with test_clips.py)


def _arc(cx, cy, r, degrees):
    """Points at the given angles on a circle; angles counter-clockwise as seen (y points down)."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([cx + r * np.cos(a), cy - r * np.sin(a)], axis=1)


def circle_face(cx: float = 50.0, cy: float = 50.0, s: float = 1.0) -> np.ndarray:
    """68 landmarks whose contours are circles: skin radius 40 s about (cx, cy); eyes radius 5 s
    at (cx -+ 15 s, cy - 10 s); lips radius 12 s and inner mouth radius 6 s at (cx, cy + 20 s).
    The nose points (27-35), which no contour uses, sit at the centre."""
    p = np.zeros((68, 2))
    # skin: jaw 0..16 then brow 26..22 then brow 21..17, 27 points going round the circle once
    order = list(range(0, 17)) + list(range(26, 21, -1)) + list(range(21, 16, -1))
    p[order] = _arc(cx, cy, 40 * s, 180 + np.arange(27) * 360 / 27)
    for corner_l, ex in ((36, cx - 15 * s), (42, cx + 15 * s)):
        idx = [corner_l + i for i in range(6)]  # 36 left corner, 37-38 upper lid, 39 right corner, 40-41 lower lid
        p[idx] = _arc(ex, cy - 10 * s, 5 * s, [180, 120, 60, 0, -60, -120])
    p[48:60] = _arc(cx, cy + 20 * s, 12 * s, 180 + np.arange(12) * 30.0)  # 48 left corner, upper lip first
    p[60:68] = _arc(cx, cy + 20 * s, 6 * s, 180 + np.arange(8) * 45.0)
    p[27:36] = (cx, cy)
    return p


def render(points: np.ndarray, h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR frame showing the face (its mask in the paper's colours, darkened) on noise."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    lab = landmarks_to_mask(points, h, w)
    col = classes_to_rgb(lab)[..., ::-1]
    img[lab > 0] = (0.7 * col[lab > 0]).astype(np.uint8) + 20
    return img


def write_video_folder(folder: Path, points: list[np.ndarray], size=(96, 80), pts_frames=None) -> Path:
    """``folder/vid.avi`` (MJPG) showing the faces and ``folder/annot/NNNNNN.pts`` for each frame
    (or only for the frame numbers in `pts_frames`)."""
    w, h = size
    folder.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(folder / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    assert vw.isOpened()
    for i, p in enumerate(points):
        vw.write(render(p, h, w, seed=i))
    vw.release()
    for f in (pts_frames if pts_frames is not None else range(1, len(points) + 1)):
        write_pts(folder / "annot" / f"{f:06d}.pts", points[min(f, len(points)) - 1])
    return folder


def moving_faces(n: int, size=(96, 80), s: float = 0.8, seed: int = 0) -> list[np.ndarray]:
    """n frames of `circle_face` drifting a little inside a frame of `size`."""
    rng = np.random.default_rng(seed)
    w, h = size
    c = np.array([w / 2, h / 2 - 2])
    out = []
    for _ in range(n):
        c = np.clip(c + rng.uniform(-1.5, 1.5, 2), [40 * s + 2, 40 * s + 2], [w - 40 * s - 3, h - 40 * s - 3])
        out.append(circle_face(c[0], c[1], s))
    return out


def corrupt_frame(avi: Path, frame: int) -> None:
    """Overwrite the JPEG data of `frame` (1-based) of an MJPG .avi with zeros."""
    data = bytearray(avi.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    s = starts[frame - 1]
    data[s:s + 300] = bytes(300)
    avi.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------------
# Splines and filling


def test_spline_reproduces_a_cubic():
    # a not-a-knot cubic spline through samples of a cubic polynomial is that polynomial
    t = np.arange(6.0)
    pts = np.stack([3 * t + 1, 0.5 * t**3 - 2 * t**2 + t + 4], axis=1)
    out = spline_piece(pts)
    s = np.linspace(0, 5, len(out))
    np.testing.assert_allclose(out[:, 0], 3 * s + 1, atol=1e-9)
    np.testing.assert_allclose(out[:, 1], 0.5 * s**3 - 2 * s**2 + s + 4, atol=1e-9)
    np.testing.assert_allclose(out[[0, -1]], pts[[0, -1]])


def test_spline_is_scipys_not_a_knot():
    pts = np.random.default_rng(1).uniform(0, 50, (7, 2))
    out = spline_piece(pts)
    ref = CubicSpline(np.arange(7), pts, bc_type="not-a-knot", axis=0)(np.linspace(0, 6, len(out)))
    np.testing.assert_allclose(out, ref, atol=1e-9)
    # about two samples per pixel of the longest interval
    longest = np.linalg.norm(np.diff(pts, axis=0), axis=1).max()
    assert (len(out) - 1) / 6 >= 2 * longest


def test_fill_right_triangle_by_hand():
    # vertices (0,0), (20,0), (0,20): row i holds the centres j with 0 <= j < 20 - i -> 20 + 19 + ... + 1
    m = fill_polygon(np.zeros((30, 30), np.uint8), np.array([[0, 0], [20, 0], [0, 20.0]]), 1)
    assert m.sum() == 210
    assert m[0, 19] == 1 and m[0, 20] == 0 and m[19, 0] == 1 and m[20, 0] == 0


def test_fill_rectangles_tile_without_overlap():
    # [10, 30) x [5, 15) holds 20 x 10 centres; its neighbour [30, 40) x [5, 15) 10 x 10; none shared
    a = fill_polygon(np.zeros((20, 50), np.uint8), np.array([[10, 5], [30, 5], [30, 15], [10, 15.0]]), 1)
    b = fill_polygon(np.zeros((20, 50), np.uint8), np.array([[30, 5], [40, 5], [40, 15], [30, 15.0]]), 1)
    assert a.sum() == 200 and b.sum() == 100 and not (a & b).any()
    # half-pixel corners: centres 10..29 x 5..14, the same 200
    c = fill_polygon(np.zeros((20, 50), np.uint8), np.array([[9.5, 4.5], [29.5, 4.5], [29.5, 14.5], [9.5, 14.5]]), 1)
    assert c.sum() == 200


def test_fill_clips_at_the_border():
    m = fill_polygon(np.zeros((10, 10), np.uint8), np.array([[-5, -5], [5, -5], [5, 5], [-5, 5.0]]), 1)
    assert m.sum() == 25 and m[:5, :5].all()


def _triangle_face(a, b, c) -> np.ndarray:
    """Landmarks whose skin contour is the triangle a, b, c (collinear, evenly spaced points on each
    side, so every spline piece is a straight segment); eyes and mouth collapse to one point."""
    p = np.tile(np.mean([a, b, c], axis=0), (68, 1))
    p[0:17] = np.linspace(a, b, 17)
    p[list(range(26, 21, -1))] = np.linspace(b, c, 5)
    p[list(range(21, 16, -1))] = np.linspace(c, a, 5)
    return p


def test_skin_of_a_triangle_matches_point_in_triangle():
    a, b, c = np.array([20.3, 80.2]), np.array([100.6, 77.9]), np.array([57.1, 20.4])
    m = landmarks_to_mask(_triangle_face(a, b, c), 100, 120)
    # independent route: the sign of the three edge cross products at every pixel centre
    yy, xx = np.mgrid[:100, :120].astype(np.float64)

    def side(p, q):
        return (q[0] - p[0]) * (yy - p[1]) - (q[1] - p[1]) * (xx - p[0])

    s1, s2, s3 = side(a, b), side(b, c), side(c, a)
    inside = ((s1 > 0) & (s2 > 0) & (s3 > 0)) | ((s1 < 0) & (s2 < 0) & (s3 < 0))
    assert set(np.unique(m)) == {0, SKIN}
    assert ((m == SKIN) == inside).all()


def test_circle_area():
    """Skin, eyes, lips, inner mouth of `circle_face` against pi r^2.

    Tolerance: the splines follow the circles to within 0.5 % of the radius (checked below), and
    counting pixel centres inside a circle of radius r differs from pi r^2 by far less than r
    (Gauss's circle problem: the error grows like r^(2/3)). A fill that also took every pixel the
    outline touches (cv2.fillPoly) would be ~0.7 x perimeter too large: 176 px for r = 40, which
    the bound 0.25 x perimeter (63 px) rejects.
    """
    s = 2.0
    p = circle_face(100, 100, s)
    m = landmarks_to_mask(p, 200, 200)
    counts = np.bincount(m.ravel(), minlength=5)

    def close(count, r, name):
        assert abs(count - math.pi * r * r) <= 0.25 * 2 * math.pi * r, (name, count, math.pi * r * r)

    # skin covers the big disc less what the eyes and the mouth took
    close(counts[SKIN] + counts[EYES] + counts[LIPS] + counts[INNER_MOUTH], 40 * s, "face")
    close(counts[INNER_MOUTH], 6 * s, "inner mouth")
    close(counts[LIPS] + counts[INNER_MOUTH], 12 * s, "outer lips")
    # each eye is two cubics through 4 points on a half circle (C0 at the corners): within 4 % of pi r^2
    assert abs(counts[EYES] / 2 - math.pi * (5 * s) ** 2) <= 0.04 * math.pi * (5 * s) ** 2
    # the skin contour (27 knots on the circle) stays within 0.5 % of the radius
    from facemask.data.masks.draw import CONTOURS, contour

    outline = contour(p, CONTOURS[0][1][0])
    radius = np.linalg.norm(outline - (100, 100), axis=1)
    assert np.abs(radius - 40 * s).max() <= 0.005 * 40 * s


def test_fill_order():
    s = 2.0
    p = circle_face(100, 100, s)
    m = landmarks_to_mask(p, 200, 200)
    assert m[0, 0] == 0
    assert m[100, 100] == SKIN                          # face centre (nose: inside skin)
    assert m[int(100 - 10 * s), int(100 - 15 * s)] == EYES
    assert m[int(100 + 20 * s), 100] == INNER_MOUTH     # inner mouth drawn over the lips
    assert m[int(100 + 20 * s + 9 * s), 100] == LIPS    # the ring between inner and outer lip
    # eyes over skin even where an eye leaves the face: move the left eye onto the skin's edge
    q = p.copy()
    q[36:42] += (-15 * s - 20, 0)
    m2 = landmarks_to_mask(q, 200, 200)
    ex = int(round(q[36:42, 0].mean()))
    assert m2[int(100 - 10 * s), ex] == EYES
    # inner mouth over lips even where it pokes out of the outer lips
    q = p.copy()
    q[60:68] = _arc(100, 100 + 20 * s, 16 * s, 180 + np.arange(8) * 45.0)
    m3 = landmarks_to_mask(q, 200, 200)
    assert (m3 == LIPS).sum() == 0 and m3[int(100 + 20 * s + 14 * s), 100] == INNER_MOUTH


def test_mask_rejects_bad_points():
    p = circle_face()
    p[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        landmarks_to_mask(p, 100, 100)
    with pytest.raises(ValueError, match="68"):
        landmarks_to_mask(np.zeros((10, 2)), 100, 100)


# ---------------------------------------------------------------------------------------------------
# Crop


def test_square_crop_by_hand():
    # box x 100..200, y 50..130: w 100, h 80 -> side round(1.3 * 90) = 117, centre (150, 90)
    # x0 = floor(150 - 58 + 0.5) = 92, y0 = floor(90 - 58 + 0.5) = 32
    pts = np.array([[100, 50], [200, 130], [150, 90.0]])
    assert square_crop_box(pts, 480, 640, 1.3) == (92, 32, 209, 149)
    # pixel-centre middle of the square: 92 + (117 - 1) / 2 = 150
    # clipped at the right and bottom border of a 180 x 100 frame
    assert square_crop_box(pts, 100, 180, 1.3) == (92, 32, 180, 100)
    # clipped at the left: x box -20..80 -> x0 = floor(30 - 58 + 0.5) = -28 -> 0, x1 = -28 + 117 = 89
    assert square_crop_box(pts - (120, 0), 480, 640, 1.3) == (0, 32, 89, 149)
    # an even side: box 0..10, scale 1 -> side 10, centre 5 -> x0 = floor(5 - 4.5 + 0.5) = 1
    # (an even square has no middle pixel: its centre 1 + 4.5 = 5.5 lies half a pixel past 5)
    assert square_crop_box(np.array([[0, 0], [10, 10.0]]), 100, 100, 1.0) == (1, 1, 11, 11)


def test_crop_then_mask_equals_mask_then_crop():
    p = circle_face(60, 45, 1.0)  # the face reaches past the top border of a 120 x 80 frame
    x0, y0, x1, y1 = square_crop_box(p, 80, 120)
    assert y0 == 0  # clipped
    full = landmarks_to_mask(p, 80, 120)[y0:y1, x0:x1]
    crop = landmarks_to_mask(p - (x0, y0), y1 - y0, x1 - x0)
    assert (full == crop).all()


def test_crop_outside_frame_raises():
    with pytest.raises(ValueError, match="outside"):
        square_crop_box(np.array([[500, 500], [600, 600.0]]), 100, 100)


# ---------------------------------------------------------------------------------------------------
# Label files and colours


def test_label_png_roundtrip_and_palette(tmp_path):
    lab = np.arange(5, dtype=np.uint8).repeat(4).reshape(4, 5)
    write_label_png(tmp_path / "l.png", lab)
    with Image.open(tmp_path / "l.png") as im:
        assert im.mode == "P"
        assert im.getpalette()[:15] == [c for rgb in PALETTE for c in rgb]
        np.testing.assert_array_equal(np.asarray(im), lab)
    np.testing.assert_array_equal(read_label_png(tmp_path / "l.png"), lab)


def test_rgb_labels_to_classes():
    # the authors' colours: black, red (skin), green (eyes), cyan (lips), blue (inner mouth)
    rgb = np.array([[[0, 0, 0], [255, 0, 0], [0, 255, 0]],
                    [[0, 255, 255], [0, 0, 255], [250, 6, 3]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_classes(rgb), [[0, 1, 2], [3, 4, 1]])
    # MATLAB [0, 1] colours saved as they are
    np.testing.assert_array_equal(rgb_to_classes((rgb[:1] > 127).astype(np.uint8)), [[0, 1, 2]])
    with pytest.raises(ValueError, match="yellow|no class"):
        rgb_to_classes(np.array([[[255, 255, 0]]], np.uint8))  # yellow: 255 from red, green and cyan


def test_read_rgb_label_png_as_the_release_stores_it(tmp_path):
    lab = np.array([[0, 1, 2, 3, 4]], np.uint8)
    rgb = np.asarray(PALETTE, np.uint8)[lab]
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[..., ::-1])  # an RGB PNG (cv2 takes BGR)
    np.testing.assert_array_equal(read_label_png(tmp_path / "rgb.png"), lab)


def test_contact_sheet_shape():
    p = circle_face(50, 50)
    img, lab = render(p, 100, 100), landmarks_to_mask(p, 100, 100)
    sheet = contact_sheet([(img, lab, "a")] * 3, tile=64, columns=2)
    # 2 columns x (64 + 2) wide; 2 bands of 3 tiles x (64 + 2) tall
    assert sheet.shape == (2 * (3 * 64 + 2), 2 * (64 + 2), 3)


# ---------------------------------------------------------------------------------------------------
# Reconciliation and the stage


def _messy_video(folder: Path) -> Path:
    """8 frames; .pts for 1-6 and 10; frame 2 undecodable, 3 NaN, 4 outside, 5 malformed.
    Expected: kept 1, 6; unreadable 2; nan 3; outside 4; bad 5; no annotation 7, 8; no frame 10."""
    faces = moving_faces(8)
    write_video_folder(folder, faces, pts_frames=[1, 2, 3, 4, 5, 6, 10])
    corrupt_frame(folder / "vid.avi", 2)
    nan = faces[2].copy()
    nan[10] = np.nan
    write_pts(folder / "annot" / "000003.pts", nan)
    write_pts(folder / "annot" / "000004.pts", faces[3] + (200, 0))
    (folder / "annot" / "000005.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    return folder


EXPECTED_DROPS = {"no_annotation": 2, "no_frame": 1, "unreadable_frame": 1, "bad_annotation": 1,
                  "landmarks_nan": 1, "landmarks_outside": 1}


def test_iter_frames_marks_an_undecodable_frame(tmp_path):
    v = write_video_folder(tmp_path / "001", moving_faces(5))
    corrupt_frame(v / "vid.avi", 3)
    assert [(n, f is None) for n, f in iter_frames(v / "vid.avi")] == [
        (1, False), (2, False), (3, True), (4, False), (5, False)]


def test_reconcile_counts_every_drop(tmp_path):
    v = _messy_video(tmp_path / "007")
    rep = Reconciliation("007")
    kept = [n for n, _, _ in reconcile(v, report=rep)]
    assert kept == [1, 6]
    assert rep.kept == 2 and rep.frames == 8 and rep.annotations == 7
    assert dict(rep.dropped) == EXPECTED_DROPS
    assert rep.examples["no_annotation"] == [7, 8] and rep.examples["no_frame"] == [10]
    # every frame number of the video or of its annotations is kept or dropped exactly once
    assert rep.kept + sum(rep.dropped.values()) == len(set(range(1, 9)) | {10})


@pytest.mark.parametrize("workers", [1, 2])
def test_build_masks_writes_the_authors_layout(tmp_path, workers):
    raw = tmp_path / "raw"
    faces = moving_faces(6, seed=3)
    write_video_folder(raw / "300VW" / "001", faces)
    _messy_video(raw / "300VW" / "002")
    pd.DataFrame({"video": ["001", "002"], "category": [1, 3]}).to_csv(raw / "300VW" / "metadata.csv", index=False)
    out = tmp_path / "300VW-Mask"
    summary = build_masks(raw, out, "synthetic", crop_scale=1.3, jpeg_quality=95, workers=workers,
                                progress=False)
    assert summary["kept"] == 6 + 2 and summary["videos"] == 2
    assert summary["dropped"] == {**{k: 0 for k in EXPECTED_DROPS}, **EXPECTED_DROPS}
    assert json.loads((out / "summary.json").read_text())["dropped_total"] == 7
    df = pd.read_csv(out / "frames.csv", dtype={"video": str})
    assert list(df.video) == ["001"] * 6 + ["002"] * 2 and list(df.frame) == [1, 2, 3, 4, 5, 6, 1, 6]
    assert list(df.category) == [1] * 6 + [3] * 2
    assert (out / "contact_sheet.png").is_file()
    # frame 4 of video 001: the crop of its frame and the mask of its landmarks, as the stage made them
    r = df.iloc[3]
    x0, y0, x1, y1 = square_crop_box(faces[3], 80, 96, 1.3)
    assert (r.x0, r.y0, r.x1, r.y1, r.w, r.h, r.frame_w, r.frame_h) == (x0, y0, x1, y1, x1 - x0, y1 - y0, 96, 80)
    lab = read_label_png(out / "labels_orig" / "001_000004.png")
    np.testing.assert_array_equal(lab, landmarks_to_mask(faces[3] - (x0, y0), y1 - y0, x1 - x0))
    img = cv2.imread(str(out / "images_orig" / "001_000004.jpg"))
    assert img.shape == (y1 - y0, x1 - x0, 3)
    assert sorted(p.name for p in (out / "images_orig").iterdir())[:2] == ["001_000001.jpg", "001_000002.jpg"]


def test_build_masks_from_the_release(tmp_path):
    root = tmp_path / "raw" / "300VW-Mask-Dataset"
    (root / "images_orig").mkdir(parents=True)
    (root / "labels_orig").mkdir()
    lab = landmarks_to_mask(circle_face(30, 30, 0.6), 60, 60)
    for v, f in (("114", 1), ("114", 2), ("410", 7)):
        cv2.imwrite(str(root / "images_orig" / f"{v}_{f:06d}.jpg"), render(circle_face(30, 30, 0.6), 60, 60))
        rgb = np.asarray(PALETTE, np.uint8)[lab]
        cv2.imwrite(str(root / "labels_orig" / f"{v}_{f:06d}.png"), rgb[..., ::-1])
    (root / "labels_orig" / "410_000007.png").write_bytes(b"not a png")
    split = root / "data_splits" / "split_1"
    split.mkdir(parents=True)
    for s in ("train", "val", "test"):
        (split / f"{s}_per10.txt").write_text("/images_orig/114_000001.jpg /labels_orig/114_000001.png\n")
    out = tmp_path / "out"
    summary = build_masks(tmp_path / "raw", out, "300vw-mask", workers=1, progress=False)
    assert summary["kept"] == 2 and summary["dropped"] == {"bad_label": 1, "size_mismatch": 0}
    np.testing.assert_array_equal(read_label_png(out / "labels_orig" / "114_000002.png"), lab)
    with Image.open(out / "labels_orig" / "114_000002.png") as im:
        assert im.mode == "P"
    assert (out / "data_splits" / "split_1" / "test_per10.txt").read_text() == \
        "/images_orig/114_000001.jpg /labels_orig/114_000001.png\n"
    df = pd.read_csv(out / "frames.csv", dtype={"video": str})
    assert df.x0.isna().all() and list(df.w) == [60, 60] and list(df.category) == [1, 1]  # 114: category 1

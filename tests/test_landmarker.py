"""The landmarkers (`facemask.inference.landmarker`, `facemask.inference.mesh`), the 468 -> 68 correspondence
(`facemask.inference.mp68`), the One-Euro filter, and the hard cases on real-photo video, also through
`facemask predict`.

The videos are made here from scikit-image's photographs (`facemask.data.realface.photo_video`: the
photograph's face moved, lit and noised through 640 x 480 frames, its border replicated so that a video
holds exactly the faces of the photograph, its landmarks known in every frame): the astronaut's 68 points
are dlib's fit of the photograph (`facemask.data.realface.reference_landmarks`), good enough to say where
the face is (errors are asserted loosely, as a share of the inter-ocular distance). The MediaPipe tests
need mediapipe (skipped without it: Python 3.13, or not installed).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from _params import config_dict

from facemask.app.cli import main
from facemask.core.params import OneEuro
from facemask.data.labels import read_label_png
from facemask.inference import landmarker as landmarker_module
from facemask.inference import mesh as mesh_module
from facemask.inference import mp68
from facemask.inference.landmarker import ONE_EURO, Landmarker, Landmarks, OneEuroFilter, box_iou, pick_face
from facemask.inference.tracker import pick_box

ROOT = Path(__file__).resolve().parent.parent
W, H = 640, 480


# ---------------------------------------------------------------------------------------------------
# The correspondence


def test_published_table_is_peizhi_yans():
    """A few rows checked against mp2dlib.py by hand: jaw 4 = mean(132, 58), chin 9 = 152, nose 28 =
    mean(168, 6), eye corner 37 = 33, inner lips 61 = 78 (1-based iBUG numbers)."""
    assert len(mp68.PUBLISHED) == 68
    assert mp68.PUBLISHED[3] == ((132, 58), (0.5, 0.5))
    assert mp68.PUBLISHED[8] == ((152,), (1.0,))
    assert mp68.PUBLISHED[27] == ((168, 6), (0.5, 0.5))
    assert mp68.PUBLISHED[36] == ((33,), (1.0,))
    assert mp68.PUBLISHED[60] == ((78,), (1.0,))
    assert sum(len(idx) == 2 for idx, _ in mp68.PUBLISHED) == 5  # rows 4, 5, 13, 28, 29


@pytest.mark.parametrize("refine", [False, True])
def test_fitted_tables_are_affine_blends(refine):
    """Rows sum to 1, so a blend moves with the face: mapping a moved mesh = moving the mapped points."""
    w = mp68.weight_matrix(mp68.table(refine), mp68.N_MESH_IRIS if refine else mp68.N_MESH)
    assert np.allclose(w.sum(1), 1)
    rng = np.random.default_rng(0)
    mesh = rng.uniform(0, 200, (w.shape[1], 2))
    a, b = np.array([[1.3, -0.4], [0.4, 1.3]]), np.array([17.0, -5.0])
    lhs = mp68.to_ibug68(mesh @ a.T + b, mp68.table(refine))
    rhs = mp68.to_ibug68(mesh, mp68.table(refine)) @ a.T + b
    assert np.allclose(lhs, rhs)
    assert np.allclose(w @ mesh, mp68.to_ibug68(mesh, mp68.table(refine)))
    # the groups the held-out people did not vote for keep the published rows, the others differ from them
    groups = mp68.read_fitted()["provenance"]["refine" if refine else "plain"]["groups"]
    for name, kind in groups.items():
        same = [mp68.table(refine)[i] == mp68.PUBLISHED[i] for i in mp68.GROUPS[name]]
        assert all(same) if kind == "published" else not all(same)


def test_the_fitted_file_says_where_it_came_from():
    """Provenance: the command, every real face used (name, person, source) and one fold per person."""
    prov = mp68.read_fitted()["provenance"]
    assert prov["command"].startswith("facemask fit-mp68")
    people = {f["person"] for f in prov["faces"]}
    assert len(people) == len(prov["faces"]) >= 4 and all(f["source"] for f in prov["faces"])
    for kind in ("plain", "refine"):
        assert {f["held_out"] for f in prov[kind]["folds"]} == {f["name"] for f in prov["faces"]}
        assert set(prov[kind]["groups"]) == set(mp68.GROUPS)


def test_fit_point_recovers_a_blend():
    """A truth that is exactly 0.7 m_a + 0.3 m_b of random meshes is found again (tiny ridge), and the
    weights always sum to 1."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(200, 6, 2))
    g = 0.7 * m[:, 2] + 0.3 * m[:, 4]
    w = mp68.fit_point(m, g, [2, 4, 0], 1e-9)
    assert np.allclose(w, [0.7, 0.3, 0.0], atol=1e-6)
    assert mp68.fit_point(m, g, [2], 0.0).tolist() == [1.0]
    assert sum(mp68.rounded(np.array([0.33333, 0.33333, 0.33334]))) == pytest.approx(1.0, abs=1e-12)


def test_choose_groups_needs_the_mean_and_most_folds():
    """jaw: lower in 3 of 4 folds and in the mean -> fitted; brows: lower in the mean only (one big win) ->
    published; every other group: a tie -> published."""
    folds = []
    for jaw, brows in ((0.9, 0.1), (0.9, 1.1), (0.9, 1.1), (1.2, 1.1)):
        folds.append({"fitted": {**dict.fromkeys(mp68.GROUPS, 1.0), "jaw": jaw, "brows": brows},
                      "published": dict.fromkeys(mp68.GROUPS, 1.0)})
    use = mp68.choose_groups(folds)
    assert use == {**dict.fromkeys(mp68.GROUPS, False), "jaw": True}
    rows = mp68.mixed(tuple(((1,), (1.0,)) for _ in range(68)), use)
    assert all(rows[i] == ((1,), (1.0,)) for i in range(17)) and rows[17:] == mp68.PUBLISHED[17:]


def test_to_ibug68_averages_the_pairs():
    mesh = np.zeros((468, 2))
    mesh[132], mesh[58] = (10.0, 20.0), (30.0, 40.0)
    assert np.allclose(mp68.to_ibug68(mesh)[3], (20.0, 30.0))


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="68 rows"):
        mp68.weight_matrix(mp68.PUBLISHED[:67])
    with pytest.raises(ValueError, match="sum to 1"):
        mp68.weight_matrix((((0,), (0.5,)),) * 68)
    with pytest.raises(ValueError, match="valid: fitted, published"):
        mp68.table(kind="best")


# ---------------------------------------------------------------------------------------------------
# One-Euro filter


def test_one_euro_first_step_is_the_exponential_smoother():
    """beta 0: a low-pass at min_cutoff. 1 Hz at 30 frames/s: tau = 1 / (2 pi), alpha = 1 / (1 + 30 tau)
    = 0.17317; a unit step moves the output by alpha, then by alpha of the rest."""
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, fps=30.0)
    zero, one = np.zeros((3, 2)), np.ones((3, 2))
    assert np.array_equal(f(zero), zero)  # the first frame passes as it is
    alpha = 1 / (1 + 30 / (2 * math.pi))
    assert abs(alpha - 0.17317) < 1e-5
    assert np.allclose(f(one), alpha)
    assert np.allclose(f(one), alpha + alpha * (1 - alpha))


def test_one_euro_steadies_a_still_point_and_follows_a_moving_one():
    """White noise on a still point: an exponential smoother keeps alpha / (2 - alpha) of its variance.
    A point moving at 2 face sizes/s: with beta the cutoff rises and the lag shrinks."""
    rng = np.random.default_rng(0)
    base = np.array([[0.0, 0.0], [100.0, 100.0]])  # two points: the box side is 100 px
    noise = rng.normal(0, 1.0, (4000, 2, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, fps=30.0)
    out = np.array([f(base + n) for n in noise])[100:]
    alpha = 1 / (1 + 30 / (2 * math.pi))
    assert (out - base).var() == pytest.approx(alpha / (2 - alpha), rel=0.1)
    lags = []
    for beta in (0.0, 10.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta, fps=30.0)
        for t in range(60):
            p = f(base + (200.0 / 30 * t, 0.0))
        lags.append(200.0 / 30 * 59 - p[0, 0])
    assert lags[1] < lags[0] / 3


def test_one_euro_refuses_bad_parameters():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroFilter(beta=-1.0)


@pytest.mark.parametrize("name", ["params.yaml", "configs/paper.yaml"])
def test_the_pipeline_smooths_as_predict_does(name):
    """``fuse.mesh.one_euro`` is off (null), as `facemask predict`'s default; ``--landmark-smoothing`` and a
    ``fuse.mesh.one_euro`` section use the schema's values (`ONE_EURO`): one setting."""
    p = config_dict(name)
    assert p["fuse"]["mesh"]["one_euro"] is None and ONE_EURO == OneEuro().model_dump()
    assert p["fuse"]["mesh"]["refine"] is True


class _Replay(Landmarker):
    """A landmarker that reports given points (None: no face), to test what the base class does."""

    name = "mediapipe"

    def __init__(self, points, smoothing):
        super().__init__(smoothing)
        self.points, self.k = points, 0

    def _reset(self):
        self.k = 0

    def _step(self, frame):
        p = self.points[self.k]
        self.k += 1
        return Landmarks(p, 1.0 if p is not None else None, "detected" if self.k % 3 == 0 else "tracked",
                         int(p is not None))


def test_smoothing_restarts_with_a_new_track_only():
    """The filter restarts when a track starts (no face before, or a face that does not overlap the
    previous one), not when a tracker re-anchors the same face (dlib's ``detected`` every k frames)."""
    square = np.array([[0.0, 0.0], [100.0, 100.0]])
    pts = [square, square + 10, square + 20, None, square + 30, square + 300, square + 310]
    lm = _Replay(pts, OneEuroFilter(min_cutoff=1.0, beta=0.0, fps=30.0))
    frame = np.zeros((4, 4, 3), np.uint8)
    out = [lm(frame).points for _ in pts]
    alpha = 1 / (1 + 30 / (2 * math.pi))
    assert np.allclose(out[0], square)                       # a track starts: passed as it is
    assert np.allclose(out[1], square + 10 * alpha)          # filtered
    assert np.allclose(out[2], out[1] + alpha * (square + 20 - out[1]))  # frame 3 is "detected": still filtered
    assert out[3] is None
    assert np.allclose(out[4], square + 30)                  # after a frame without a face: a new track
    assert np.allclose(out[5], square + 300)                 # another face (no overlap): a new track
    assert np.allclose(out[6], square + 300 + 10 * alpha)
    lm.reset()
    assert np.allclose(lm(frame).points, square)             # a new video


# ---------------------------------------------------------------------------------------------------
# Which face


def _square(x, y, s):
    return np.array([[x, y], [x + s, y + s]], np.float64)


def test_pick_face_nth_from_left_and_followed():
    faces = [_square(400, 100, 50), _square(50, 100, 120), _square(250, 100, 80)]
    assert pick_face(faces) == 1                     # without the frame's size: the largest
    assert pick_face(faces, face=0) == 1             # left to right: x 50, 250, 400
    assert pick_face(faces, face=1) == 2
    assert pick_face(faces, face=2) == 0
    assert pick_face(faces, face=3) is None          # not that many faces
    assert pick_face(faces, previous=_square(405, 102, 50)) == 0   # the followed face, though smallest
    assert pick_face(faces, previous=_square(600, 300, 50)) is None  # gone
    assert pick_face([]) is None
    assert box_iou(np.array([0, 0, 10, 10.0]), np.array([5, 0, 15, 10.0])) == pytest.approx(1 / 3)


HW = (H, W)


def test_visible_fraction_and_prominence_by_hand():
    """A 160-px face from x 560 to 720 in a 640-px frame: its box grown by 16 px a side spans x 544..736 (192
    px), of which 544..639.5 (95.5 px) is in the frame. Prominence: side x visible x (1 - d / 2) x score."""
    cut = _square(560, 150, 160)
    assert landmarker_module.visible_fraction(cut, HW) == pytest.approx(95.5 / 192)
    assert landmarker_module.visible_fraction(_square(260, 180, 100), HW) == 1.0
    corner = _square(20, 20, 120)  # centre (80, 80): d = |(239.5, 159.5)| / 400
    d = math.hypot(239.5, 159.5) / 400
    assert landmarker_module.prominence(corner, HW, 0.9) == pytest.approx(120 * (1 - d / 2) * 0.9)
    assert landmarker_module.prominence(corner, HW) == pytest.approx(120 * (1 - d / 2) * 0.5)  # unscored


def test_pick_face_a_whole_face_before_a_larger_cut_one():
    """The case of a two-person photo: a larger face cut in half by the right edge, the meant one whole."""
    whole, cut = _square(260, 180, 100), _square(560, 150, 160)
    assert pick_face([cut, whole], frame_hw=HW) == 1
    assert pick_face([cut], frame_hw=HW) == 0                     # cut, but the only face
    assert pick_face([cut, whole], previous=whole + 3, frame_hw=HW) == 1   # an edge face never takes the track
    assert pick_face([cut, whole], previous=cut + 3, frame_hw=HW) == 1     # a cut followed face gives way
    assert pick_face([cut, whole], face=1, previous=cut + 3, frame_hw=HW) == 0  # --face N: followed as it is


def test_pick_face_by_size_centrality_and_score():
    """Two whole faces: 100 px at the centre (centrality ~1) against 120 px near a corner (0.640): the central
    one, 100 x 0.999 = 99.9 against 76.8; with BlazeFace's scores 0.55 and 0.99 the corner one, 54.95 < 76.1."""
    centre, corner = _square(270, 190, 100), _square(20, 20, 120)
    assert pick_face([corner, centre], frame_hw=HW) == 1
    assert pick_face([corner, centre], frame_hw=HW, scores=[0.99, 0.55]) == 0
    assert pick_face([corner, centre], frame_hw=HW, scores=[float("nan"), 0.55]) == 1  # unscored: 0.5


def test_pick_box_largest_or_nth_from_left():
    """dlib's detections (x, y, w, h) -> (cx, cy, side)."""
    boxes = np.array([[400, 100, 50, 50], [50, 100, 120, 120], [250, 100, 80, 80]], np.float64)
    assert np.allclose(pick_box(boxes), (110, 160, 120))
    assert np.allclose(pick_box(boxes, 1), (290, 140, 80))
    assert np.allclose(pick_box(boxes, 2), (425, 125, 50))
    assert pick_box(boxes, 3) is None and pick_box(np.zeros((0, 4))) is None


# ---------------------------------------------------------------------------------------------------
# Real-photo video: the hard cases, landmarker by landmarker


@pytest.fixture(scope="module")
def astro():
    pytest.importorskip("skimage")
    pytest.importorskip("dlib")
    from facemask.data.realface import astronaut, reference_landmarks
    from facemask.inference.tracker import ShapePredictor

    return astronaut(), reference_landmarks(ShapePredictor())


def _nme(points, truth):
    return float(np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45]))


def _run(landmarker, frames) -> list[Landmarks]:
    landmarker.reset()
    return [landmarker(f) for f in frames]


def _counts(results) -> dict[str, int]:
    out = {"found": 0, "detected": 0, "tracked": 0, "lost": 0, "no_face": 0}
    for r in results:
        out[r.status] += 1
        out["found"] += r.points is not None
    return out


@pytest.fixture(scope="module")
def mediapipe_lm():
    pytest.importorskip("mediapipe")
    lm = mesh_module.MediaPipeLandmarker()
    yield lm
    lm.close()


def test_mediapipe_follows_a_face_with_a_confidence(mediapipe_lm, astro):
    from facemask.data.realface import photo_video

    v = photo_video(*astro, n=40, size=(W, H), face_px=130, seed=0)
    res = _run(mediapipe_lm, v.frames)
    c = _counts(res)
    assert c == {"found": 40, "detected": 1, "tracked": 39, "lost": 0, "no_face": 0}
    assert all(0.5 <= r.confidence <= 1.0 for r in res)       # BlazeFace's score, min_detection 0.5
    assert all(r.faces == 1 for r in res)
    assert np.mean([_nme(r.points, t) for r, t in zip(res, v.points)]) < 0.06
    assert mediapipe_lm.licence.startswith("MediaPipe face mesh")


def test_small_face_is_found_by_the_tile_search(astro):
    """A face of 40 px in 640 x 480 (a sixteenth of the width): the face mesh graph's own detector,
    which sees the frame at 128 x 128, never finds it; the tile search finds it and zooms on it."""
    pytest.importorskip("mediapipe")
    from facemask.data.realface import photo_video

    v = photo_video(*astro, n=30, size=(W, H), face_px=40, seed=1)
    with mesh_module.MediaPipeLandmarker(search_every=0) as plain, mesh_module.MediaPipeLandmarker() as zoom:
        assert _counts(_run(plain, v.frames))["found"] == 0
        res = _run(zoom, v.frames)
    c = _counts(res)
    assert c["found"] >= 29 and c["detected"] <= 5  # (re-)detections on the zoomed crop count
    assert np.mean([_nme(r.points, t) for r, t in zip(res, v.points) if r.points is not None]) < 0.10


def test_large_yaw(mediapipe_lm, astro):
    """A turned face, approximated: the photograph squeezed to 60 % of its width about the face and its
    right side shrunk to 85 % of its height (a perspective warp)."""
    from facemask.data.realface import perspective, photo_video

    photo, pts = perspective(*astro, squeeze=0.6, side="right")
    v = photo_video(photo, pts, n=30, size=(W, H), face_px=130, seed=2)
    res = _run(mediapipe_lm, v.frames)
    assert _counts(res)["found"] == 30
    # the truth is dlib's fit; the published jaw rows (kept: held-out people did not vote for the fitted ones)
    # sit inside dlib's jaw line, ~0.2 inter-ocular distances on 17 of the 68 points
    assert np.mean([_nme(r.points, t) for r, t in zip(res, v.points)]) < 0.12


@pytest.fixture(scope="module")
def two_faces(astro):
    """The astronaut twice: a large face (150 px) on the right, a small one (90 px) on the left."""
    from facemask.data.realface import paste, photo_video

    n = 30
    big = photo_video(*astro, n=n, size=(W, H), face_px=150, seed=3, shift=0.0,
                      centres=np.tile([470.0, 240.0], (n, 1)))
    small = photo_video(*astro, n=n, size=(W, H), face_px=90, seed=4, shift=0.0,
                        centres=np.tile([160.0, 240.0], (n, 1)))
    return paste(big.frames, small), big.points, small.points


@pytest.mark.parametrize("face, which", [(None, "big"), (0, "small"), (1, "big")])
def test_several_faces_the_most_prominent_or_the_nth_from_the_left(two_faces, face, which):
    pytest.importorskip("mediapipe")
    frames, big, small = two_faces
    truth = big if which == "big" else small
    with mesh_module.MediaPipeLandmarker(face=face) as lm:
        res = _run(lm, frames)
    assert _counts(res)["found"] == 30
    assert sum(r.faces == 2 for r in res) >= 28
    assert all(_nme(r.points, t) < 0.10 for r, t in zip(res, truth))


def _composite(astro, main_x, other_x, other_px, n=30):
    """The astronaut whole (110 px, centred at `main_x`) and a second astronaut (`other_px`, its centre along
    `other_x`, per frame) pasted over: (frames, the whole face's truth)."""
    from facemask.data.realface import paste, photo_video

    main = photo_video(*astro, n=n, size=(W, H), face_px=110, seed=7, shift=0.0,
                       centres=np.tile([main_x, 240.0], (n, 1)))
    other = photo_video(*astro, n=n, size=(W, H), face_px=other_px, seed=8, shift=0.0, rotation=3.0,
                        centres=np.stack([np.broadcast_to(other_x, (n,)), np.full(n, 230.0)], 1))
    return paste(main.frames, other), main.points


def test_a_whole_face_before_a_larger_one_cut_by_the_edge(astro):
    """Real photographs: the meant face whole near the centre, a larger one (170 px, centred 60 px from the
    right edge) cut by the edge; both are found (the largest box, the rule before, took the cut one).
    Followed: the whole one, in every frame."""
    pytest.importorskip("mediapipe")
    frames, truth = _composite(astro, 280.0, np.full(30, W - 60.0), 170.0)
    with mesh_module.MediaPipeLandmarker() as lm:
        res = _run(lm, frames)
    assert _counts(res)["found"] == 30 and max(r.faces for r in res) == 2
    assert all(_nme(r.points, t) < 0.12 for r, t in zip(res, truth))


def test_a_face_entering_at_the_edge_does_not_take_the_track(astro):
    """A larger face (150 px) slides in from beyond the right edge until it is whole: the followed face
    keeps the track in every frame."""
    pytest.importorskip("mediapipe")
    frames, truth = _composite(astro, 200.0, np.linspace(W + 60.0, 480.0, 30), 150.0)
    with mesh_module.MediaPipeLandmarker() as lm:
        res = _run(lm, frames)
    assert _counts(res)["found"] == 30 and _counts(res)["detected"] == 1
    assert all(_nme(r.points, t) < 0.12 for r, t in zip(res, truth))
    assert max(r.faces for r in res) == 2


def test_dlib_landmarker_picks_the_nth_face_too(two_faces):
    from facemask.inference.landmarker import DlibLandmarker

    frames, big, small = two_faces
    for face, truth in ((None, big), (0, small), (1, big)):
        res = _run(DlibLandmarker(face=face), frames)
        assert _counts(res)["found"] == 30
        assert all(_nme(r.points, t) < 0.10 for r, t in zip(res, truth))
        assert all(r.confidence is not None for r in res)
        assert res[0].faces == 2 and res[1].faces == 1  # counted where the detector searched the frame


def _leaving(astro, n=60):
    """The face slides right until it is wholly outside the frame, stays out, then comes back."""
    from facemask.data.realface import photo_video

    x = np.concatenate([np.linspace(320, 900, 20), np.full(15, 900.0), np.linspace(900, 320, 25)])
    return photo_video(*astro, n=n, size=(W, H), face_px=120, seed=5, centres=np.stack([x, np.full(n, 240.0)], 1))


def test_a_face_leaving_and_coming_back(mediapipe_lm, astro):
    """Expected: landmarks whenever the face is whole in the frame, none while it is mostly out; lost once,
    found twice (the frame graph runs BlazeFace on every frame while it follows fewer than `max_faces`)."""
    v = _leaving(astro)
    res = _run(mediapipe_lm, v.frames)
    inside = np.array([(t[:, 0] < W).mean() for t in v.points])  # share of the true points in the frame
    assert (inside == 0).sum() >= 20
    found = np.array([r.points is not None for r in res])
    assert found[inside == 1].all()        # whole: always found (also after coming back)
    assert not found[inside < 0.3].any()   # mostly or wholly out: never
    c = _counts(res)
    assert c["detected"] == 2 and c["lost"] == 1  # once at the start, once on the way back


@pytest.mark.parametrize("name", ["coffee", "hubble_deep_field"])
def test_no_face(mediapipe_lm, name):
    pytest.importorskip("skimage")
    from skimage import data

    from facemask.data.realface import photo_video

    img = np.ascontiguousarray(getattr(data, name)()[:, :, ::-1])
    h, w = img.shape[:2]
    v = photo_video(img, np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h]]), n=20, size=(W, H), face_px=300, seed=6)
    res = _run(mediapipe_lm, v.frames)
    assert _counts(res) == {"found": 0, "detected": 0, "tracked": 0, "lost": 0, "no_face": 20}
    assert all(r.confidence is None and r.faces == 0 for r in res)


def test_bad_frames_are_refused(mediapipe_lm):
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        mediapipe_lm(np.zeros((48, 64), np.uint8))


# ---------------------------------------------------------------------------------------------------
# Through `facemask predict`: summary.json counts


def _video(tmp_path, frames, name="in.avi"):
    from facemask.data.realface import write_video

    path = tmp_path / name
    write_video(frames, path)
    return path


def _predict(tmp_path, video, *args, out="out"):
    rc = main(["predict", str(video), "--out", str(tmp_path / out), "--method", "landmarks", "--no-video", "-q",
               *map(str, args)])
    assert rc == 0
    return json.loads((tmp_path / out / "summary.json").read_text())


def _boxes(out):
    with open(out / "boxes.csv") as f:
        return [None if r["x0"] == "" else tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1"))
                for r in csv.DictReader(f)]


def test_predict_no_face(tmp_path):
    """scikit-image's coffee cup moving through the frames: no face in any frame, every label background."""
    pytest.importorskip("mediapipe")
    from skimage import data

    from facemask.data.realface import photo_video

    img = np.ascontiguousarray(data.coffee()[:, :, ::-1])
    h, w = img.shape[:2]
    v = photo_video(img, np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h]]), n=12, size=(W, H), face_px=300)
    s = _predict(tmp_path, _video(tmp_path, v.frames))
    assert s["landmarker"]["name"] == "mediapipe" and s["warnings"] == []
    assert s["faces_found"] == 0 and len(s["frames_without_face"]) == 12
    assert s["landmarker"]["frames_by_faces_seen"] == {"0": 12, "1": 0, "2+": 0}
    assert (s["frames_detected"], s["frames_tracked"], s["frames_lost"]) == (0, 0, 0)
    assert not any(read_label_png(p).any() for p in (tmp_path / "out" / "labels").iterdir())


def _centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


@pytest.mark.parametrize("landmarker", ["mediapipe", "dlib"])
def test_predict_two_faces_the_largest_or_face_n(tmp_path, two_faces, landmarker):
    """Default: the larger face (right, centred at x 470); ``--face 0``: the leftmost (x 160)."""
    if landmarker == "mediapipe":
        pytest.importorskip("mediapipe")
    frames, big, small = two_faces
    video = _video(tmp_path, frames)
    for face, truth, out in ((None, big, "largest"), (0, small, "face0")):
        s = _predict(tmp_path, video, "--landmarker", landmarker, *(() if face is None else ("--face", face)), out=out)
        assert s["faces_found"] == 30
        assert s["landmarker"]["face"] == (("most prominent whole" if landmarker == "mediapipe" else "largest")
                                           if face is None else 0)
        seen = s["landmarker"]["frames_by_faces_seen"]
        # mediapipe follows both faces in every frame; dlib counts where its detector searched the frame
        assert seen["2+"] >= (28 if landmarker == "mediapipe" else 1)
        for box, t in zip(_boxes(tmp_path / out), truth):
            cx, cy = _centre(box)
            assert abs(cx - t[:, 0].mean()) < 15 and abs(cy - t[:, 1].mean()) < 25


def test_predict_a_face_leaving_and_coming_back(tmp_path, astro):
    """The face leaves the frame and comes back: found twice, lost once; frames where it is mostly out are
    frames without a face (all background)."""
    pytest.importorskip("mediapipe")
    v = _leaving(astro)
    s = _predict(tmp_path, _video(tmp_path, v.frames))
    inside = np.array([(t[:, 0] < W).mean() for t in v.points])
    missing = {int(n) - 1 for n in s["frames_without_face"]}
    assert not missing & set(np.flatnonzero(inside == 1))
    assert set(np.flatnonzero(inside < 0.3)) <= missing
    assert s["frames_detected"] == 2 and s["frames_lost"] >= 1
    assert s["frames_detected"] + s["frames_tracked"] == s["faces_found"] == 60 - len(missing)
    assert s["landmarker"]["frames_by_faces_seen"]["0"] >= (inside == 0).sum()
    for k in missing:
        assert not read_label_png(tmp_path / "out" / "labels" / f"{k + 1:06d}.png").any()


def test_predict_records_the_landmarker_and_its_smoothing(tmp_path, astro):
    pytest.importorskip("mediapipe")
    from facemask.data.realface import photo_video

    video = _video(tmp_path, photo_video(*astro, n=10, size=(320, 240), face_px=80).frames)
    s = _predict(tmp_path, video)
    lm = s["landmarker"]
    assert lm["name"] == "mediapipe" and "Apache-2.0" in lm["licence"] and s["detector"] is None
    assert lm["smoothing"] is None and lm["face"] == "most prominent whole"
    assert lm["frames_by_faces_seen"] == {"0": 0, "1": 10, "2+": 0} and s["faces_found"] == 10
    assert lm["most_faces_seen"] == 1 and s["warnings"] == []
    s = _predict(tmp_path, video, "--landmark-smoothing", "--landmarker", "dlib", out="euro")
    assert s["landmarker"]["smoothing"] == {"filter": "one-euro", "min_cutoff_hz": 4.0, "beta": 16.0,
                                            "d_cutoff_hz": 4.0, "fps": 30.0}
    assert s["detector"]["name"] == "hog"


def test_predict_face_n_with_fewer_faces_warns(tmp_path, astro, capsys):
    """``--face 1`` on a one-face video: one warning line (stderr and summary.json), no mask."""
    pytest.importorskip("mediapipe")
    from facemask.data.realface import photo_video

    video = _video(tmp_path, photo_video(*astro, n=8, size=(320, 240), face_px=80).frames)
    rc = main(["predict", str(video), "--out", str(tmp_path / "out"), "--method", "landmarks", "--no-video", "-q",
               "--face", "1"])
    assert rc == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["faces_found"] == 0 and s["landmarker"]["most_faces_seen"] == 1
    assert s["warnings"] == ["--face 1: at most 1 face in any frame, so there is no face 1 (0-based, from the left) "
                             "and no frame has a mask"]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert lines == ["facemask predict: warning: " + s["warnings"][0]]


def test_predict_landmark_masks_are_the_reference_paths(tmp_path, astro):
    """The landmark method's masks, drawn in the writer's thread, are the reference path's pixel for pixel: a
    fresh landmarker run over the decoded frames in order, each mask drawn at once from its points (the
    training crop `square_crop_box`, `crop_mask`) and pasted into an empty frame. The face leaves the frame and
    comes back, so frames without a face are compared too."""
    pytest.importorskip("mediapipe")
    import cv2

    from facemask.data.masks.draw import square_crop_box
    from facemask.inference.tracker import crop_mask

    video = _video(tmp_path, _leaving(astro).frames)
    _predict(tmp_path, video)
    cap, frames = cv2.VideoCapture(str(video)), []
    while (read := cap.read())[0]:
        frames.append(read[1])
    cap.release()
    lm = mesh_module.MediaPipeLandmarker()
    faces = 0
    for k, frame in enumerate(frames):
        want = np.zeros((H, W), np.uint8)
        points = lm(frame).points
        if points is not None:
            x0, y0, x1, y1 = box = square_crop_box(points, H, W)
            want[y0:y1, x0:x1] = crop_mask(points, box)
            faces += 1
        assert (read_label_png(tmp_path / "out" / "labels" / f"{k + 1:06d}.png") == want).all(), k
    lm.close()
    assert len(frames) == 60 and 10 < faces < 60

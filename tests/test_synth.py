"""The synthetic 300VW generator: layout, round trips, determinism, geometry, degradations."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from facemask.data.ibug68 import read_pts
from facemask.data.synth import contours as C
from facemask.data.synth.face import Expression, Identity, Pose, identity_shape, landmarks_2d
from facemask.data.synth.generate import assign_categories, generate, plan_video, render_frame

TINY = dict(videos=3, frames=10, fps=30, width=160, height=120, categories=[1, 1, 1], workers=1)
# one video per category for the per-frame checks (no disk)
FRAMES = dict(videos=1, frames=40, fps=30, width=320, height=240, categories=[1, 1, 1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, TINY, seed=11)
    return out


def _decode(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_layout_and_metadata(tiny):
    vids = sorted(p.name for p in tiny.iterdir() if p.is_dir())
    assert vids == ["001", "002", "003"]
    for v in vids:
        names = sorted(p.name for p in (tiny / v / "annot").iterdir())
        assert names == [f"{i:06d}.pts" for i in range(1, 11)]
        assert (tiny / v / "vid.avi").is_file()
        text = (tiny / v / "annot" / "000001.pts").read_text()
        assert text.startswith("version: 1\nn_points:  68\n{\n") and text.endswith("}\n")
    meta = pd.read_csv(tiny / "metadata.csv", dtype={"video": str})
    assert list(meta.video) == vids
    assert sorted(meta.category) == [1, 2, 3]
    assert {"identity_seed", "frames", "hair_style", "light"} <= set(meta.columns)
    frames = pd.read_csv(tiny / "frames.csv", dtype={"video": str})
    assert len(frames) == 30 and frames.frame.max() == 10
    sheet = cv2.imread(str(tiny / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 120 * 3


def test_video_has_exactly_the_annotated_frames(tiny):
    for v in ("001", "002", "003"):
        frames = _decode(tiny / v / "vid.avi")
        assert len(frames) == 10 == len(list((tiny / v / "annot").glob("*.pts")))
        assert frames[0].shape == (120, 160, 3)


def test_pts_round_trip_equals_generator_landmarks(tiny):
    meta = pd.read_csv(tiny / "metadata.csv", dtype={"video": str})
    for i, row in meta.iterrows():
        plan = plan_video(TINY, 11, i, int(row.category))
        assert plan.identity_seed == row.identity_seed
        for t in range(10):
            pts = read_pts(tiny / row.video / "annot" / f"{t + 1:06d}.pts")
            np.testing.assert_allclose(pts, plan.landmarks[t], atol=5.1e-4)


def test_deterministic_across_workers_and_seed_sensitive(tiny, tmp_path):
    again = tmp_path / "again"
    generate(again, dict(TINY, workers=2), seed=11)           # same seed, a process pool
    for v in ("001", "002", "003"):
        for t in (1, 10):
            name = f"annot/{t:06d}.pts"
            assert (tiny / v / name).read_bytes() == (again / v / name).read_bytes()
        a, b = _decode(tiny / v / "vid.avi"), _decode(again / v / "vid.avi")
        assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    other = plan_video(TINY, 12, 0, 1)
    assert not np.allclose(other.landmarks[0], plan_video(TINY, 11, 0, 1).landmarks[0])


def test_categories_follow_the_shares():
    cats = assign_categories(30, [0.4, 0.3, 0.3], seed=0)
    assert np.bincount(cats, minlength=4)[1:].tolist() == [12, 9, 9]
    assert assign_categories(30, [0.4, 0.3, 0.3], seed=0) == cats
    with pytest.raises(ValueError):
        assign_categories(3, [1, -1, 1], seed=0)


def test_splines_pass_through_the_landmarks():
    lm = np.random.default_rng(0).uniform(0, 100, (68, 2))
    eye = C.curve(lm, "eye_r")
    d = C.DENSITY
    np.testing.assert_allclose(eye[[0, 3 * d, 6 * d]], lm[[36, 39, 36]], atol=1e-9)
    np.testing.assert_allclose(eye[4 * d], lm[40], atol=1e-9)
    skin = C.curve(lm, "skin")
    np.testing.assert_allclose(skin[[0, 16 * d, 16 * d + 1]], lm[[0, 16, 26]], atol=1e-9)


def _inside(poly, p, tol=0.5):
    return cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (float(p[0]), float(p[1])), True) >= -tol


@pytest.mark.parametrize("category", [1, 2, 3])
def test_landmarks_are_geometrically_sane(category):
    for index in range(3):
        plan = plan_video(FRAMES, 5, index, category)
        for lm in plan.landmarks:
            assert (lm >= 0).all() and (lm[:, 0] <= 319).all() and (lm[:, 1] <= 239).all()
            skin = C.curve(lm, "skin")
            outer = C.curve(lm, "lips")
            for i in (36, 39, 42, 45):                                  # eye corners within jaw + brows
                assert _inside(skin, lm[i])
            for i in range(60, 68):                                     # inner lips within outer lips
                assert _inside(outer, lm[i])
            down = lm[8] - lm[17:27].mean(0)
            down /= np.linalg.norm(down)
            for eye, brow in ((range(36, 42), range(17, 22)), (range(42, 48), range(22, 27))):
                assert ((lm[list(eye)] - lm[list(brow)].mean(0)) @ down > 0).all()  # eyes below their brows
            assert (np.diff(lm[0:9, 1]) > -1.0).all()                   # jaw runs down to the chin


def _eye_width(lm, a, b):
    return np.linalg.norm(lm[b] - lm[a])


def test_yaw_foreshortens_the_far_eye():
    shape = identity_shape(Identity())
    widths = {}
    for yaw in (-35, 0, 35):
        lm = landmarks_2d(shape, Expression(), Pose(yaw=yaw, tx=160, ty=120, scale=50))
        widths[yaw] = (_eye_width(lm, 36, 39), _eye_width(lm, 42, 45))
    r0, l0 = widths[0]
    assert abs(r0 - l0) < 1e-6                                          # symmetric when frontal
    assert widths[35][1] < 0.6 * widths[35][0]                          # +yaw: image-right eye turns away
    assert widths[-35][0] < 0.6 * widths[-35][1]
    # the same in generated video: the log width ratio follows the yaw
    plan = plan_video(FRAMES, 2, 0, 3)
    ratio = [np.log(_eye_width(lm, 42, 45) / _eye_width(lm, 36, 39)) for lm in plan.landmarks]
    assert np.corrcoef(plan.tracks.yaw, ratio)[0, 1] < -0.9


def _area(pts):
    return abs(cv2.contourArea(pts.astype(np.float32)))


def test_expressions_open_the_mouth_and_close_the_eyes():
    shape = identity_shape(Identity())
    pose = Pose(tx=160, ty=120, scale=50)
    rest = landmarks_2d(shape, Expression(), pose)
    talk = landmarks_2d(shape, Expression(jaw_open=0.6), pose)
    blink = landmarks_2d(shape, Expression(blink_r=1.0), pose)
    smile = landmarks_2d(shape, Expression(smile=1.0, teeth=1.0), pose)
    brow = landmarks_2d(shape, Expression(brow=1.0), pose)
    mouth = lambda lm: _area(C.curve(lm, "inner_mouth"))
    outer = lambda lm: _area(C.curve(lm, "lips"))
    assert mouth(rest) < 0.05 * outer(rest)
    assert mouth(talk) > 0.25 * outer(talk)
    assert mouth(smile) > 5 * mouth(rest)
    assert smile[48, 1] < rest[48, 1] - 3 and smile[54, 0] - smile[48, 0] > rest[54, 0] - rest[48, 0]
    eye = lambda lm, n: _area(C.curve(lm, n))
    assert eye(blink, "eye_r") < 0.1 * eye(rest, "eye_r") and eye(blink, "eye_l") == pytest.approx(eye(rest, "eye_l"))
    assert (brow[17:27, 1] < rest[17:27, 1] - 2).all()
    # identities differ in shape
    other = landmarks_2d(identity_shape(Identity.sample(np.random.default_rng(3))), Expression(), pose)
    assert np.abs(other - rest).max() > 2


def test_category3_occluders_cover_the_face():
    cfg = dict(FRAMES, occluder_rate=2.0, transient_rate=0.0)
    plan = plan_video(cfg, 1, 0, 3)
    covered = [t for t in range(plan.frames) if any(o.covers(t) for o in plan.occluders)]
    assert covered
    shares = []
    for t in covered[:: max(1, len(covered) // 6)]:
        info = {}
        with_occ = render_frame(plan, t, degrade=False, info=info)
        without = render_frame(plan, t, occluders=False, degrade=False)
        face = np.zeros(with_occ.shape[:2], np.uint8)
        cv2.fillPoly(face, [C.curve(plan.landmarks[t], "skin").astype(np.int32)], 255)
        changed = np.abs(with_occ.astype(int) - without.astype(int)).max(2) > 30
        shares.append((changed & (face > 0)).sum() / (face > 0).sum())
        assert info["occlusion"] == pytest.approx(shares[-1], abs=0.1)
    assert max(shares) > 0.1
    # the landmarks do not change under occlusion
    assert np.isfinite(plan.landmarks).all()


def test_transients_hit_a_few_frames_and_spare_their_neighbours():
    from dataclasses import replace

    from facemask.data.synth.degrade import LENGTHS, TRANSIENTS
    cfg = dict(FRAMES, transient_rate=6.0, occluder_rate=0.0)
    seen, occluded = set(), []
    for index in range(12):
        plan = plan_video(cfg, 4, index, 1 + index % 3)
        calm = replace(plan, events=[], occluders=[])     # the same video without its events
        for e in plan.events:
            lo, hi = LENGTHS[e.kind]
            assert lo <= e.length <= hi or e.start + e.length == plan.frames, e
            if e.start < 2 or e.start + e.length >= plan.frames:
                continue
            assert plan.event(e.start - 1) is None and plan.event(e.start + e.length) is None
            # the frames around an event are the event-free video's
            for k in (e.start - 1, e.start + e.length):
                assert np.array_equal(render_frame(plan, k), render_frame(calm, k)), (e, k)
            t = e.start + e.length // 2
            info = {}
            hit = render_frame(plan, t, info=info)
            variant = e.params["variant"]
            if e.kind == "drop" and variant == "freeze":
                assert np.array_equal(hit, render_frame(plan, e.start - 1)), e   # the last frame again
            elif e.kind == "drop":
                assert hit.astype(np.float32).std(axis=(0, 1)).max() < 4, e      # a flat frame
            elif e.kind == "occluder":                    # in front of the face in every frame of the event
                occluded += [_occ(plan, k) for k in range(e.start, e.start + e.length)]
            else:
                d = np.abs(hit.astype(np.float32) - render_frame(calm, t)).mean()
                assert d > 3, (e, d)
            seen.add((e.kind, variant))
    assert {k for k, _ in seen} == set(TRANSIENTS)
    assert min(occluded) > 0.1 and np.mean(occluded) > 0.4, occluded


def test_transient_mix_weights_the_kinds():
    from facemask.data.synth.degrade import MIX, TRANSIENTS, transient_mix
    only = {k: 0.0 for k in TRANSIENTS} | {"drop": 1.0, "flash": 3.0}
    cfg = dict(FRAMES, transient_rate=8.0, transient_mix=only)
    kinds = [e.kind for i in range(6) for e in plan_video(cfg, 2, i, 2).events]
    assert set(kinds) == {"drop", "flash"} and kinds.count("flash") > 1.5 * kinds.count("drop")
    shares = transient_mix({"transient_mix": {"noise": 2.0}})      # the others keep their default weight
    assert shares["noise"] == pytest.approx(2.0 / (sum(MIX.values()) - MIX["noise"] + 2.0))
    with pytest.raises(ValueError, match="unknown kinds"):
        transient_mix({"transient_mix": {"dropout": 1.0}})
    with pytest.raises(ValueError, match="weights"):
        transient_mix({"transient_mix": {k: 0.0 for k in TRANSIENTS}})


def test_knob_defaults_are_the_params_schemas():
    from facemask.core.params import Synthetic, TransientMix
    from facemask.data.synth.degrade import KNOBS, MIX
    assert TransientMix().model_dump() == MIX
    assert {k: Synthetic.model_fields[k].default for k in KNOBS} == KNOBS


def _occ(plan, t):
    info = {}
    render_frame(plan, t, degrade=False, info=info)
    return info["occlusion"]


def test_categories_differ_in_image_statistics():
    cfg = dict(FRAMES, transient_rate=0.0)
    stats = {c: {"psnr": [], "contrast": [], "sharp": [], "occl": [], "yaw": []} for c in (1, 2, 3)}
    gray = lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32)
    sharp = lambda f: cv2.Laplacian(cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (0, 0), 1.0), cv2.CV_32F).var()
    for c in (1, 2, 3):
        for index in range(8):
            plan = plan_video(cfg, 9, index, c)
            stats[c]["yaw"].append(np.abs(plan.tracks.yaw).max())
            for t in (5, 20, 35):
                info = {}
                clean = render_frame(plan, t, degrade=False, info=info)
                cam = render_frame(plan, t)
                mse = np.mean((clean.astype(np.float32) - cam) ** 2)
                stats[c]["psnr"].append(10 * np.log10(255 ** 2 / max(mse, 1e-3)))
                stats[c]["contrast"].append(abs(np.log(gray(cam).std() / gray(clean).std())))
                stats[c]["sharp"].append(sharp(cam) / max(sharp(clean), 1e-3))
                stats[c]["occl"].append(info["occlusion"])
    m = {c: {k: float(np.mean(v)) for k, v in s.items()} for c, s in stats.items()}
    assert m[1]["psnr"] > m[2]["psnr"] + 3 and m[1]["psnr"] > m[3]["psnr"] + 3      # light, noise, casts
    assert m[2]["contrast"] > 2 * m[1]["contrast"]                                   # dark / over-exposed
    assert m[3]["sharp"] < m[1]["sharp"]                                             # blur, low resolution
    assert m[3]["occl"] > m[1]["occl"] + 0.01                                        # occluders
    assert m[3]["yaw"] > m[1]["yaw"] + 5                                             # larger poses

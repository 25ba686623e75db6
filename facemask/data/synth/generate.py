"""The generator: plan a video (person, motion, camera, events), render it, write it as 300VW.

Every video is a pure function of (seed, video index): its random streams are spawned
from `numpy.random.SeedSequence([seed, index])`, and each frame's own draws (noise
windows, beard texture) from the frame number, so the output is the same whatever the
number of worker processes, and any single frame can be re-rendered (e.g. without its
occluders) for inspection and tests.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

from facemask.data.ibug68 import write_pts
from facemask.core.pool import process_pool
from facemask.data.synth import contours as C
from facemask.data.synth import occluders as O
from facemask.data.synth.degrade import KNOBS, Camera, Event, Pipeline, category_style, plan_transients, transient_mix
from facemask.data.synth.face import Identity, Pose, Projector, face_points, identity_shape
from facemask.data.synth.motion import Tracks, make_tracks
from facemask.data.synth.render import Appearance, Background, PersonRenderer

log = logging.getLogger("facemask.data.synth")

#: margin (pixels) that keeps every landmark inside the frame
MARGIN = 2.0


def video_id(index: int) -> str:
    """300VW-style folder name of the index-th video (0-based): 001, 002, ..."""
    return f"{index + 1:03d}"


def assign_categories(n: int, shares, seed: int) -> list[int]:
    """Categories 1/2/3 for n videos in the given proportions (largest remainder), shuffled by seed."""
    p = np.asarray(shares, dtype=np.float64)
    if p.shape != (3,) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"data.synthetic.categories must be three non-negative shares, got {shares!r}")
    p = p / p.sum()
    counts = np.floor(p * n).astype(int)
    rest = p * n - counts
    for i in np.argsort(-rest, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    cats = np.repeat([1, 2, 3], counts)
    np.random.default_rng([seed, 7919]).shuffle(cats)
    return [int(c) for c in cats]


@dataclass
class VideoPlan:
    """Everything random about one video, drawn before any frame is rendered."""

    index: int
    vid: str
    category: int
    identity_seed: int
    frame_seed: int
    width: int
    height: int
    fps: float
    identity: Identity
    shape: np.ndarray
    app: Appearance
    tracks: Tracks
    camera: Camera
    background: Background
    occluders: list
    events: list
    points3d: list = field(repr=False)           # per frame (68, 3), head frame
    landmarks: np.ndarray = field(repr=False)    # (T, 68, 2) 0-based pixels

    @property
    def frames(self) -> int:
        return len(self.landmarks)

    @cached_property
    def pipeline(self) -> Pipeline:
        """The camera effects of this video (built on first use: it holds a bank of noise fields)."""
        return Pipeline(self.camera, self.width, self.height, np.random.default_rng([self.frame_seed, 1 << 20]))

    def event(self, t: int) -> Event | None:
        for e in self.events:
            if e.covers(t):
                return e
        return None


def plan_video(cfg: dict, seed: int, index: int, category: int) -> VideoPlan:
    """Draw one video's person, motion, camera, occluders and transient events."""
    n, fps = int(cfg["frames"]), float(cfg["fps"])
    W, H = int(cfg["width"]), int(cfg["height"])
    knob = {k: float(cfg.get(k, v)) for k, v in KNOBS.items()}
    style = category_style(category, cfg)
    ss = np.random.SeedSequence([int(seed), int(index)])
    identity_seed = int(ss.generate_state(1)[0])
    s_motion, s_cam, s_bg, s_occ, s_ev, s_frame = ss.spawn(6)
    rid = np.random.default_rng(identity_seed)
    identity = Identity.sample(rid)
    app = Appearance.sample(rid, style)
    shape = identity_shape(identity)
    tracks = make_tracks(np.random.default_rng(s_motion), n, fps, style, W, H)
    pts3, lm = _fit_in_frame(shape, tracks, W, H)
    # Geometry on a fixed grid before anything is drawn (the .pts files hold 3 decimals): a last-bit
    # difference of a CPU's sin/cos/BLAS kernels then never moves a landmark (`facemask.core.exact`).
    lm, pts3 = np.round(lm, 3), [np.round(p, 6) for p in pts3]
    camera = Camera.sample(np.random.default_rng(s_cam), style, n, fps, knob["degrade_strength"])
    background = Background(np.random.default_rng(s_bg), W, H, n, fps, style["move"])
    r_occ = np.random.default_rng(s_occ)
    occluders = O.plan_occluders(r_occ, n, fps, knob["occluder_rate"] * style["occluders"], app.skin)
    r_ev = np.random.default_rng(s_ev)
    events = plan_transients(r_ev, n, fps, knob["transient_rate"] * style["transients"], knob["transient_strength"],
                             transient_mix(cfg))
    for e in events:
        if e.kind == "occluder":
            occluders.append(O.make_passing(r_ev, e.start, e.length, app.skin, e.strength))
    return VideoPlan(index=index, vid=video_id(index), category=category, identity_seed=identity_seed,
                     frame_seed=int(s_frame.generate_state(1)[0]), width=W, height=H, fps=fps,
                     identity=identity, shape=shape, app=app, tracks=tracks, camera=camera, background=background,
                     occluders=occluders, events=events, points3d=pts3, landmarks=lm)


def _project_all(shape, tracks: Tracks):
    pts3, lm = [], []
    for t in range(len(tracks.yaw)):
        p = face_points(shape, tracks.expression(t), float(tracks.yaw[t]))
        pts3.append(p)
        lm.append(Projector(tracks.pose(t))(p))
    return pts3, np.array(lm)


def _fit_in_frame(shape, tracks: Tracks, W: int, H: int):
    """Shrink and shift the head (smoothly where possible) so every landmark stays in the frame."""
    pts3, lm = _project_all(shape, tracks)
    size = np.maximum((lm[..., 0].max(1) - lm[..., 0].min(1)) / (W - 4 * MARGIN),
                      (lm[..., 1].max(1) - lm[..., 1].min(1)) / (H - 4 * MARGIN))
    if (size > 1).any():
        tracks.scale = tracks.scale / np.maximum(size, 1.0)
        pts3, lm = _project_all(shape, tracks)
    for axis, limit, track in ((0, W, tracks.tx), (1, H, tracks.ty)):
        lo = MARGIN - lm[..., axis].min(1)
        hi = (limit - 1 - MARGIN) - lm[..., axis].max(1)
        need = np.clip(0, lo, hi)                  # smallest shift that brings each frame inside
        smooth = gaussian_filter1d(need, 3.0, mode="nearest")
        shift = np.clip(smooth, lo, hi)            # still inside after smoothing
        track += shift
        lm[..., axis] += shift[:, None]
    return pts3, lm


def _face_centre(lm: np.ndarray) -> np.ndarray:
    return 0.5 * (lm.min(0) + lm.max(0))


def render_frame(plan: VideoPlan, t: int, occluders: bool = True, degrade: bool = True,
                 info: dict | None = None) -> np.ndarray:
    """Render frame t of a planned video: uint8 **BGR** (OpenCV order), exactly what goes into vid.avi.

    `occluders=False` leaves out everything crossing the face, `degrade=False` the camera (light,
    blur, noise, resolution, JPEG, transient events); `info` receives ``occlusion``, the share of
    the skin outline (jaw + brows) covered by occluders.
    """
    ev = plan.event(t) if degrade else None
    if ev is not None and ev.kind == "drop" and ev.params["variant"] == "freeze":
        # a frozen frame: the frame before the event again (never in an event: they are 3 frames apart)
        if info is not None:
            render_frame(plan, t, occluders, degrade=False, info=info)
        return render_frame(plan, ev.start - 1, occluders)
    tr = plan.tracks
    pose = tr.pose(t)
    body = Pose(yaw=pose.yaw * 0.3, pitch=0.0, roll=pose.roll * 0.3, tx=pose.tx, ty=pose.ty, scale=pose.scale)
    rng = np.random.default_rng([plan.frame_seed, t])
    img = plan.background.frame(t)
    lm = plan.landmarks[t]
    PersonRenderer(plan.app, plan.shape).draw(img, pose, body, lm, plan.points3d[t],
                                              (float(tr.gaze_x[t]), float(tr.gaze_y[t])), rng)
    active = [o for o in plan.occluders if o.covers(t)] if occluders else []
    if active or info is not None:
        omask = np.zeros(img.shape[:2], np.uint8)
        centre, s = _face_centre(lm), pose.scale
        for occ in active:
            O.draw(img, omask, occ, centre, s, t)
        if info is not None:
            face = np.zeros_like(omask)
            cv2.fillPoly(face, [C.to_cv(C.curve(lm, "skin"))], 255, cv2.LINE_8, 4)
            area = max(int(np.count_nonzero(face)), 1)
            info["occlusion"] = float(np.count_nonzero((face > 0) & (omask > 127))) / area
    if not degrade:
        return img
    prev = plan.landmarks[max(t - 1, 0)]
    velocity = _face_centre(lm) - _face_centre(prev)
    return plan.pipeline(img, t, velocity, ev, rng)


def make_video(job: tuple) -> dict:
    """Worker: plan, render and write one video; returns its metadata and a few frames."""
    out_dir, cfg, seed, index, category, quality, sheet_frames = job
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)                 # one video per core; restored for an in-process caller
    try:
        return _make_video(out_dir, cfg, seed, index, category, quality, sheet_frames)
    finally:
        cv2.setNumThreads(threads)


def _make_video(out_dir, cfg, seed, index, category, quality, sheet_frames) -> dict:
    plan = plan_video(cfg, seed, index, category)
    vdir = Path(out_dir) / plan.vid
    (vdir / "annot").mkdir(parents=True, exist_ok=True)
    W, H = plan.width, plan.height
    path = vdir / "vid.avi"
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), plan.fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: cv2.VideoWriter (MJPG) could not be opened")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    rows, shots = [], {}
    tr = plan.tracks
    for t in range(plan.frames):
        info: dict = {}
        frame = render_frame(plan, t, info=info)
        writer.write(frame)
        write_pts(vdir / "annot" / f"{t + 1:06d}.pts", plan.landmarks[t])
        ev = plan.event(t)
        lm = plan.landmarks[t]
        rows.append(dict(video=plan.vid, frame=t + 1, category=plan.category,
                         yaw=round(float(tr.yaw[t]), 2), pitch=round(float(tr.pitch[t]), 2), roll=round(float(tr.roll[t]), 2),
                         face_px=round(float(lm[:, 0].max() - lm[:, 0].min()), 1),
                         jaw_open=round(float(tr.jaw_open[t]), 3), smile=round(float(tr.smile[t]), 3),
                         blink=round(float(max(tr.blink_r[t], tr.blink_l[t])), 3), brow=round(float(tr.brow[t]), 3),
                         transient=ev.kind if ev else "", transient_variant=ev.params.get("variant", "") if ev else "",
                         occlusion=round(info.get("occlusion", 0.0), 4)))
        if t in sheet_frames:
            shots[t] = frame
    writer.release()
    fr = pd.DataFrame(rows)
    meta = dict(video=plan.vid, category=plan.category, identity_seed=plan.identity_seed, frames=plan.frames,
                fps=plan.fps, width=W, height=H, hair_style=plan.app.hair_style, beard=plan.app.beard,
                glasses=plan.app.glasses, **plan.app.names, **plan.camera.as_dict(),
                yaw_min=round(float(tr.yaw.min()), 1), yaw_max=round(float(tr.yaw.max()), 1),
                face_px=round(float(fr.face_px.mean()), 1), occluders=len(plan.occluders),
                transients=len(plan.events), transient_frames=int((fr.transient != "").sum()),
                occluded_frames=int((fr.occlusion > 0.05).sum()),
                **{f"id_{k}": v for k, v in plan.identity.as_dict().items()})
    return dict(meta=meta, frames=rows, shots=shots, landmarks=plan.landmarks[list(shots)])


def _sheet_frames(n: int) -> list[int]:
    return sorted({0, n // 3, (2 * n) // 3, n - 1})


def landmark_sheet(results: list[dict], max_videos: int = 9) -> np.ndarray:
    """A grid: rows = videos (categories interleaved), columns = frames across the video, landmarks drawn."""
    by_cat = {c: [r for r in results if r["meta"]["category"] == c] for c in (1, 2, 3)}
    chosen = []
    while len(chosen) < max_videos and any(by_cat.values()):
        for c in (1, 2, 3):
            if by_cat[c] and len(chosen) < max_videos:
                chosen.append(by_cat[c].pop(0))
    colors = [(0, 255, 255), (0, 200, 0), (255, 160, 0), (255, 0, 255), (0, 0, 255)]
    groups = [range(0, 17), range(17, 27), range(27, 36), range(36, 48), range(48, 68)]
    rows = []
    for r in chosen:
        tiles = []
        for (t, img), lm in zip(sorted(r["shots"].items()), r["landmarks"]):
            tile = img.copy()
            for g, col in zip(groups, colors):
                for x, y in lm[list(g)]:
                    cv2.circle(tile, (int(round(x * 4)), int(round(y * 4))), 4, col, -1, cv2.LINE_AA, 2)
            m = r["meta"]
            label = f"{m['video']} cat{m['category']} f{t + 1} {r['frames'][t]['transient']}"
            cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)


def generate(out_dir, cfg: dict, seed: int) -> None:
    """Write a synthetic 300VW-layout data set into out_dir.

    Args:
        out_dir: target directory (created if missing): ``NNN/vid.avi``, ``NNN/annot/000001.pts ...``,
            ``metadata.csv`` (one row per video), ``frames.csv`` (one row per frame: pose, expression,
            transient event (kind and form, `facemask.data.synth.degrade.TRANSIENTS`), occluded share of the face)
            and ``contact_sheet.png``.
        cfg: the ``data.synthetic`` params: videos, frames, fps, width, height, categories (three
            shares), and optional knobs: degrade_strength, pose_scale, occluder_rate, transient_rate,
            transient_strength, transient_mix, quality (MJPG quality), workers (process pool size).
        seed: the run's seed; the same seed gives the same files.
    """
    out = Path(out_dir)
    n_videos, n_frames = int(cfg["videos"]), int(cfg["frames"])
    if not 1 <= n_videos <= 999:
        raise ValueError(f"data.synthetic.videos must be 1..999 (3-digit ids), got {n_videos}")
    if n_frames < 1 or int(cfg["width"]) < 64 or int(cfg["height"]) < 48:
        raise ValueError(f"data.synthetic: need frames >= 1 and a frame of at least 64x48, got {cfg!r}")
    out.mkdir(parents=True, exist_ok=True)
    cats = assign_categories(n_videos, cfg["categories"], seed)
    quality = int(cfg.get("quality", 90))
    workers = int(cfg.get("workers") or min(2, os.cpu_count() or 1))
    sheet = _sheet_frames(n_frames)
    jobs = [(str(out), dict(cfg), int(seed), i, c, quality, sheet) for i, c in enumerate(cats)]
    log.info("synthetic 300VW: %d videos x %d frames at %dx%d, categories %s, %d worker(s)",
             n_videos, n_frames, cfg["width"], cfg["height"], np.bincount(cats, minlength=4)[1:].tolist(), workers)
    if workers > 1 and n_videos > 1:
        with process_pool(min(workers, n_videos)) as ex:
            results = list(tqdm(ex.map(make_video, jobs), total=len(jobs), desc="synth videos", unit="video"))
    else:
        results = [make_video(j) for j in tqdm(jobs, desc="synth videos", unit="video")]
    pd.DataFrame([r["meta"] for r in results]).to_csv(out / "metadata.csv", index=False)
    pd.DataFrame([row for r in results for row in r["frames"]]).to_csv(out / "frames.csv", index=False)
    cv2.imwrite(str(out / "contact_sheet.png"), landmark_sheet(results))
    log.info("wrote %d videos (%d frames) to %s", n_videos, n_videos * n_frames, out)

"""The masks stage: the 300VW-Mask dataset (the authors' layout) from the raw videos and landmarks.
"""
from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import as_completed
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from facemask.core.errors import BadInputError, MissingInputError, ParamsError
from facemask.core.io import atomic_dir, atomic_write_json
from facemask.core.pool import process_pool
from facemask.data.labels import read_label_png, write_label_png
from facemask.data.layout import (FRAME_COLUMNS, MASK_DATASET_DIR, SAMPLED_CLIPS, VIDEOS_DIR, category_of, frame_stem,
                                  parse_stem)
from facemask.data.masks.draw import landmarks_to_mask, square_crop_box
from facemask.data.clips.sampling import sample_video
from facemask.data.sheets import contact_sheet
from facemask.data.frames import DROP_REASONS, Reconciliation, frame_count, reconcile

log = logging.getLogger(__name__)


#: Drop reasons of the authors' release (300vw-mask source), next to `facemask.data.frames.DROP_REASONS`.
RELEASE_DROP_REASONS = ("bad_label", "size_mismatch")


#: Sheet tiles: at most this many videos, one frame each.
SHEET_VIDEOS = 24


def _sheet_frame(n_frames: int) -> int:
    """The frame (1-based) a video shows in the contact sheet: the middle one."""
    return max(1, n_frames // 2 + 1)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def masks_for_video(job: tuple) -> dict:
    """Worker: reconcile one 300VW video, write its crops and masks; return rows and counts.

    job: (video folder, output folder, category, crop scale, JPEG quality, outside tolerance, sampling).
    With `sampling` (``{"length", "fraction", "seed"}``) a first pass finds the usable frames, the video's
    clips are sampled from them (`facemask.data.clips.sampling.sample_video`, as the clips stage would) and a second pass
    writes only those clips' frames; the result then has ``clips`` (their first frames) and ``available``.
    """

    vdir, out, category, scale, quality, outside_tol, sampling = job
    vdir, out = Path(vdir), Path(out)
    video = vdir.name
    report = Reconciliation(video)
    rows, shot, extra = [], None, {}
    want = _sheet_frame(frame_count(vdir / "vid.avi"))
    wanted, last = None, None
    if sampling is not None:

        usable = [n for n, _, _ in reconcile(vdir, outside_tol, report)]
        firsts, available = sample_video(video, usable, sampling["length"], sampling["fraction"], sampling["seed"])
        wanted = sorted(f + i for f in firsts for i in range(sampling["length"]))
        want, last = (wanted[len(wanted) // 2], wanted[-1]) if wanted else (None, 0)
        extra = {"clips": firsts, "available": available}
        wanted = set(wanted)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for n, frame, points in reconcile(vdir, outside_tol, report if wanted is None else None):
        if wanted is not None:  # the second pass: the sampled clips' frames only
            if n > last:
                break
            if n not in wanted:
                continue
        fh, fw = frame.shape[:2]
        x0, y0, x1, y1 = square_crop_box(points, fh, fw, scale)
        crop = frame[y0:y1, x0:x1]
        label = landmarks_to_mask(points - (x0, y0), y1 - y0, x1 - x0)
        name = frame_stem(video, n)
        if not cv2.imwrite(str(out / "images_orig" / f"{name}.jpg"), crop, params):
            raise OSError(f"{out / 'images_orig' / name}.jpg: cv2.imwrite failed")
        write_label_png(out / "labels_orig" / f"{name}.png", label)
        rows.append((video, n, category, x0, y0, x1, y1, x1 - x0, y1 - y0,
                     f"images_orig/{name}.jpg", f"labels_orig/{name}.png", fw, fh))
        if shot is None and n >= want:
            shot = (crop.copy(), label, f"{video} f{n} c{category}", category)
    return {"video": video, "rows": rows, "report": report.as_dict(), "shot": shot, **extra}


def release_video(job: tuple) -> dict:
    """Worker: convert one video of the authors' release (RGB labels -> class ids, images copied)."""
    src, out, video, frames, category = job
    src, out = Path(src), Path(out)
    report = Reconciliation(video)
    report.frames = report.annotations = len(frames)
    rows, shot = [], None
    want = frames[len(frames) // 2] if frames else None
    for n in frames:
        name = frame_stem(video, n)
        img_src, lab_src = src / "images_orig" / f"{name}.jpg", src / "labels_orig" / f"{name}.png"
        try:
            label = read_label_png(lab_src)
        except ValueError as e:
            report.drop("bad_label", n, f"{lab_src}: {e}")
            continue
        with Image.open(img_src) as im:
            size = im.size
        if size != (label.shape[1], label.shape[0]):
            report.drop("size_mismatch", n, f"{img_src}: image {size[0]}x{size[1]}, label "
                                            f"{label.shape[1]}x{label.shape[0]}")
            continue
        shutil.copyfile(img_src, out / "images_orig" / f"{name}.jpg")
        write_label_png(out / "labels_orig" / f"{name}.png", label)
        report.kept += 1
        h, w = label.shape
        rows.append((video, n, category, None, None, None, None, w, h,
                     f"images_orig/{name}.jpg", f"labels_orig/{name}.png", None, None))
        if shot is None and n >= want:
            shot = (cv2.imread(str(img_src)), label, f"{video} f{n} c{category}", category)
    return {"video": video, "rows": rows, "report": report.as_dict(), "shot": shot}


def _categories(root: Path, videos) -> dict[str, int]:
    """Video -> category from ``root/metadata.csv`` (written by the download stage), else the
    official 300VW category of the name, else -1."""

    known = {}
    meta = root / "metadata.csv"
    if meta.is_file():
        df = pd.read_csv(meta, dtype={"video": str})
        if {"video", "category"} <= set(df.columns):
            known = {str(v).zfill(3): int(c) for v, c in zip(df["video"], df["category"])}
    out = {}
    for v in videos:
        if v in known:
            out[v] = known[v]
        else:
            try:
                out[v] = category_of(v)
            except ValueError:
                out[v] = -1
    return out


def _split_frames(split_dir: Path) -> set[tuple[str, int]]:
    """(video, frame) of every line of the authors' split files (``/images_orig/VVV_FFFFFF.jpg ...``)."""
    out = set()
    for path in sorted(split_dir.glob("*.txt")):
        for line in path.read_text().splitlines():
            if line.strip():
                v, _, f = Path(line.split()[0]).stem.partition("_")
                if f.isdigit():
                    out.add((v, int(f)))
    return out


def _run_pool(fn, jobs: list, workers: int, desc: str, weights: list[int], progress: bool) -> list[dict]:
    """Run `fn` over `jobs` (in a process pool when workers > 1), with a frame-weighted tqdm bar."""


    results = []
    with tqdm(total=sum(weights), desc=desc, unit="frame", disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            _worker_init()
            for job, w in zip(jobs, weights):
                results.append(fn(job))
                bar.update(w)
        else:
            with process_pool(min(workers, len(jobs)), _worker_init) as ex:
                futures = {ex.submit(fn, job): w for job, w in zip(jobs, weights)}
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update(futures[fut])
    return sorted(results, key=lambda r: r["video"])


def _sheet(results: list[dict]) -> np.ndarray:
    """Fig. 3: one frame per video, categories taken in turn, at most `SHEET_VIDEOS`."""
    shots = [r["shot"] for r in results if r["shot"] is not None]
    by_cat: dict[int, list] = {}
    for s in shots:
        by_cat.setdefault(s[3], []).append(s)
    chosen = []
    while len(chosen) < SHEET_VIDEOS and any(by_cat.values()):
        for c in sorted(by_cat):
            if by_cat[c] and len(chosen) < SHEET_VIDEOS:
                chosen.append(by_cat[c].pop(0))
    return contact_sheet([(img, lab, text) for img, lab, text, _ in chosen], tile=128, columns=8)


def _summary(results: list[dict], reasons: tuple[str, ...], **extra) -> dict:
    reports = [r["report"] for r in results]
    dropped = {k: sum(r["dropped"].get(k, 0) for r in reports) for k in reasons}
    return {
        **extra,
        "videos": len(reports),
        "frames": sum(r["frames"] for r in reports),
        "annotations": sum(r["annotations"] for r in reports),
        "kept": sum(r["kept"] for r in reports),
        "dropped_total": sum(dropped.values()),
        "dropped": dropped,
        "per_video": reports,
    }


#: Where a dropped frame's problem lies, per drop reason: (video folder or release root, video, frame) -> text.
_DROP_WHERE = {
    "no_annotation": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} missing",
    "no_frame": lambda root, v, n: f"{root / v / 'vid.avi'} has no frame {n}",
    "unreadable_frame": lambda root, v, n: f"{root / v / 'vid.avi'} frame {n} does not decode",
    "bad_annotation": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} unreadable",
    "landmarks_nan": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} holds NaN",
    "landmarks_outside": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} has points outside the frame",
    "bad_label": lambda root, v, n: f"{root / 'labels_orig' / f'{frame_stem(v, n)}.png'} unreadable",
    "size_mismatch": lambda root, v, n: (f"{root / 'images_orig' / f'{frame_stem(v, n)}.jpg'} and its label differ "
                                         "in size"),
}


def check_drops(summary: dict, root: Path, max_drop_share: float, top: int = 3) -> None:
    """Fail when no frame is kept, or when more than `max_drop_share` of them are dropped.

    Raises:
        BadInputError: one line naming `root`, the counts, the `top` drop reasons and an example
            file for each.
    """
    kept, dropped = summary["kept"], summary["dropped_total"]
    total = kept + dropped
    if total == 0:
        raise BadInputError(f"{root}: no frame found in {summary['videos']} video(s)")
    share = dropped / total
    if kept > 0 and share <= max_drop_share:
        return
    reasons = sorted(((n, r) for r, n in summary["dropped"].items() if n), reverse=True)[:top]
    parts = []
    for n, reason in reasons:
        example = next(((r["video"], r["examples"][reason][0]) for r in summary["per_video"]
                        if r["examples"].get(reason)), None)
        where = _DROP_WHERE.get(reason)
        parts.append(f"{reason} {n}" + (f" (e.g. {where(root, *example)})" if example and where else ""))
    why = "no frame kept" if kept == 0 else f"{share:.0%} dropped, more than masks.max_drop_share {max_drop_share:g}"
    raise BadInputError(f"{root}: {dropped} of {total} frames dropped ({why}): {'; '.join(parts)}")


def build_masks(raw_dir: str | Path, out_dir: str | Path, source: str = "synthetic", crop_scale: float = 1.3,
                jpeg_quality: int = 95, workers: int = 2, outside_tol: float = 0.0, max_drop_share: float = 0.5,
                progress: bool = True, sampling: dict | None = None) -> dict:
    """Write the 300VW-Mask dataset (the authors' layout) from ``data/raw``; all or nothing.

    With ``source`` ``synthetic`` or ``300vw``, every video of ``raw_dir/300VW`` is reconciled
    (`facemask.data.frames.reconcile`), each kept frame is cropped (`square_crop_box`) and its mask made
    (`landmarks_to_mask`). With ``300vw-mask`` the authors' release in ``raw_dir/300VW-Mask-Dataset``
    is converted: RGB labels to class ids, images copied, ``data_splits/split_1`` copied.

    `sampling` (``masks.frames: sampled``; None: every usable frame): ``{"length", "fraction", "seed",
    "official_split"}``, the clips stage's sampling. Only the frames of the sampled 1-s clips are written
    (the paper's 10 % of 218,595): the clips are drawn per video from its usable frames exactly as the
    clips stage would (`facemask.data.clips.sampling.sample_video`) and listed in ``clips.csv`` (video, first_frame,
    category), which the clips stage then takes as they are (`facemask.data.clips.sampling.read_sampled`). With
    ``300vw-mask`` and ``official_split`` the frames the split files list are converted; without, the
    whole release.

    Writes into `out_dir` (replaced only on success): ``images_orig/VVV_FFFFFF.jpg``,
    ``labels_orig/VVV_FFFFFF.png`` (palette PNG of class ids), ``frames.csv`` (`FRAME_COLUMNS`; the
    frames written), ``summary.json`` (counts, drops by reason, per video, the sampling),
    ``contact_sheet.png`` (Fig. 3), ``clips.csv`` when sampled, and, for the release,
    ``data_splits/split_1/*.txt``.

    Returns:
        The summary (also in ``summary.json``).

    Raises:
        ParamsError: unknown source.
        MissingInputError: the raw folder for the source is missing (a FileNotFoundError).
        BadInputError: no frame kept, or more than `max_drop_share` of the frames dropped
            (`check_drops`); nothing is written then.
    """

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    t0 = time.perf_counter()
    if source in ("synthetic", "300vw"):
        root, run = _from_videos(raw_dir, source, crop_scale, jpeg_quality, outside_tol, sampling)
    elif source == "300vw-mask":
        root, run = _from_release(raw_dir, sampling)
    else:
        raise ParamsError(f"unknown data.source {source!r}; valid: synthetic, 300vw, 300vw-mask")
    with atomic_dir(out_dir) as work:
        (work / "images_orig").mkdir()
        (work / "labels_orig").mkdir()
        results, reasons, extra = run(work, workers, progress)
        check_drops(_summary(results, reasons), root, max_drop_share)
        rows = [row for r in results for row in r["rows"]]
        if sampling is not None:  # every frame kept is written otherwise (and the summary stays as it was)
            extra["written"] = len(rows)
        df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        for c in ("x0", "y0", "x1", "y1", "frame_w", "frame_h"):
            df[c] = df[c].astype("Int64")
        df.to_csv(work / "frames.csv", index=False)
        cv2.imwrite(str(work / "contact_sheet.png"), _sheet(results))
        # No wall-clock figures or pool size in the output: its bytes depend on the data and params alone.
        summary = _summary(results, reasons, source=source, crop_scale=crop_scale, jpeg_quality=jpeg_quality,
                           outside_tol=outside_tol, max_drop_share=max_drop_share, **extra)
        atomic_write_json(work / "summary.json", summary)
    seconds = time.perf_counter() - t0
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v) or "none"
    log.info(
        "%s: %d videos, %d frames kept, %d dropped (%s), %d written; %.1f frames/s", out_dir, summary["videos"],
        summary["kept"], summary["dropped_total"], dropped, len(rows), summary["frames"] / max(seconds, 1e-9))
    return summary


def _from_videos(raw_dir: Path, source: str, crop_scale: float, jpeg_quality: int, outside_tol: float,
                 sampling: dict | None):
    """The 300VW videos of ``raw_dir`` (synthetic or downloaded): (their folder, a function that writes their
    crops and masks into a work folder and returns (per-video results, drop reasons, summary extras))."""
    root = raw_dir / VIDEOS_DIR
    if not root.is_dir():
        raise MissingInputError(f"{root}: no 300VW folder (run the download stage with data.source={source})")
    vdirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not vdirs:
        raise MissingInputError(f"{root}: no video folders (NNN/)")
    cats = _categories(root, [p.name for p in vdirs])
    weights = [max(1, frame_count(p / "vid.avi")) for p in vdirs]
    plan = None if sampling is None else {k: sampling[k] for k in ("length", "fraction", "seed")}

    def run(work: Path, workers: int, progress: bool):
        jobs = [(str(p), str(work), cats[p.name], crop_scale, jpeg_quality, outside_tol, plan) for p in vdirs]
        results = _run_pool(masks_for_video, jobs, workers, "masks", weights, progress)
        extra = {}
        if plan is not None:
            clips = pd.DataFrame([(r["video"], f, cats[r["video"]]) for r in results for f in r["clips"]],
                                 columns=["video", "first_frame", "category"])
            clips.to_csv(work / SAMPLED_CLIPS, index=False)
            extra["sampling"] = {**plan, "clips": len(clips),
                                 "clips_available": sum(r["available"] for r in results),
                                 "videos_without_clips": [r["video"] for r in results if not r["available"]]}
        return results, DROP_REASONS, extra
    return root, run


def _from_release(raw_dir: Path, sampling: dict | None):
    """The authors' 300VW-Mask release in ``raw_dir``: (its folder, a function that converts it into a work
    folder, as `_from_videos`); with the official split, only the frames its split files list."""
    root = raw_dir / MASK_DATASET_DIR
    if not (root / "images_orig").is_dir():
        raise MissingInputError(f"{root}: no images_orig/ (run the download stage with data.source=300vw-mask)")
    by_video: dict[str, list[int]] = {}
    for p in (root / "images_orig").glob("*.jpg"):
        v, f = parse_stem(p.stem)
        by_video.setdefault(v, []).append(f)
    cats = _categories(root, list(by_video))
    videos = sorted(by_video)
    weights = [len(by_video[v]) for v in videos]
    if sampling is not None and sampling.get("official_split"):
        listed = _split_frames(root / "data_splits" / "split_1")
        by_video = {v: [f for f in by_video[v] if (v, f) in listed] for v in videos}

    def run(work: Path, workers: int, progress: bool):
        jobs = [(str(root), str(work), v, sorted(by_video[v]), cats[v]) for v in videos]
        results = _run_pool(release_video, jobs, workers, "300VW-Mask labels", weights, progress)
        split_src = root / "data_splits" / "split_1"
        if split_src.is_dir():
            shutil.copytree(split_src, work / "data_splits" / "split_1")
        return results, RELEASE_DROP_REASONS, {}
    return root, run


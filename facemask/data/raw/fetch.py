"""The download stage: the raw 300VW layout from one of three sources, validated (`fetch_raw`).

* ``synthetic``  -- generated video written in the 300VW layout (``facemask.data.synth``);
* ``300vw``      -- the official archive ``300VW_Dataset_2015_12_14.zip`` (Shen et al., 2015),
  unpacked to ``300VW/NNN/{vid.avi, annot/000001.pts, ...}``;
* ``300vw-mask`` -- the authors' derived release ``300VW-Mask-Dataset.zip``
  (``images_orig/``, ``labels_orig/``, ``data_splits/``).

The archives come through `facemask.data.raw.download` (resume, SHA-256, safe extraction).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlparse

import cv2
import pandas as pd
from tqdm import tqdm

from facemask.core.errors import ParamsError
from facemask.core.io import atomic_dir, atomic_write_json
from facemask.data.ibug68 import PtsError, read_pts
from facemask.data.layout import DATASET_DIR, MASK_DATASET_DIR, VIDEOS_DIR, category_of
from facemask.data.raw.download import LayoutError, RawDataError, download, safe_extract, sha256sum, verify_sha256
from facemask.data.synth.generate import generate

log = logging.getLogger(__name__)

_MASK_NAME = re.compile(r"^(\d{3})_(\d{6})\.(jpg|png)$")
_SPLIT_FILES = ("train_per10.txt", "val_per10.txt", "test_per10.txt")

# ------------------------------------------------------------------------------------- validation


def _video_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def _check_video(vdir: Path) -> tuple[dict, list[str]]:
    """Frame and annotation counts of one video folder, and the errors found in it.

    A video whose first frame decodes but whose last announced one does not (found by seeking to
    it, which costs one frame) is marked ``truncated``: usable, with a warning.
    """
    errors = []
    avi, annot = vdir / "vid.avi", vdir / "annot"
    frames, truncated = None, False
    if not avi.is_file():
        errors.append(f"{avi}: missing video file")
    else:
        cap = cv2.VideoCapture(str(avi))
        try:
            frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            if frames <= 0 or not cap.read()[0]:
                errors.append(f"{avi}: unreadable video (OpenCV cannot open it or read its frames)")
                frames = None
            elif frames > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
                truncated = not cap.read()[0]
        finally:
            cap.release()
    annotations = None
    if not annot.is_dir():
        errors.append(f"{annot}: missing annotation folder")
    else:
        pts = sorted(annot.glob("*.pts"))
        if not pts:
            errors.append(f"{annot}: no .pts files")
        for p in pts:
            try:
                read_pts(p)
            except PtsError as e:
                errors.append(str(e))
        annotations = len(pts)
    mismatch = frames is not None and annotations is not None and frames != annotations
    return {"frames": frames, "annotations": annotations, "mismatch": mismatch, "truncated": truncated}, errors


def _raise_errors(root: Path, errors: list[str], limit: int = 50) -> None:
    """One LayoutError: the problem itself when there is one, else a count and one line per problem."""
    if len(errors) == 1:
        raise LayoutError(errors[0])
    if errors:
        more = f"\n... and {len(errors) - limit} more" if len(errors) > limit else ""
        raise LayoutError(f"{root}: {len(errors)} problem(s) in the dataset:\n" + "\n".join(errors[:limit]) + more)


def validate_300vw(root: str | Path) -> dict:
    """Check a ``300VW/`` folder: every ``NNN/`` has a readable ``vid.avi`` and 68-point ``annot/*.pts``.

    Frame/annotation count mismatches are reported (and logged as warnings), not fatal:
    the masks stage reconciles them. So are truncated videos (the last announced frame does not
    decode): listed in ``warnings``, each naming its file, for the caller to log.

    Returns:
        ``{"videos": {NNN: {"frames", "annotations", "mismatch", "truncated"}}, "mismatched": [...],
        "warnings": [...], "totals": {...}}``.

    Raises:
        LayoutError: no video folder, a missing ``vid.avi`` or ``annot/``, an unreadable
            video or a bad ``.pts``; lists every problem, each naming its file.
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: dataset folder not found")
    vdirs = _video_dirs(root)
    if not vdirs:
        raise LayoutError(f"{root}: no video folders (NNN/) found")
    videos, errors = {}, []
    for vdir in tqdm(vdirs, desc="validate 300VW", unit="video"):
        videos[vdir.name], errs = _check_video(vdir)
        errors += errs
    _raise_errors(root, errors)
    mismatched = [v for v, r in videos.items() if r["mismatch"]]
    warnings = [f"{root / v / 'vid.avi'}: the header announces {r['frames']} frames but the last one cannot be "
                "decoded (truncated or damaged file; the masks stage drops the frames it cannot read)"
                for v, r in videos.items() if r["truncated"]]
    for v in mismatched:
        log.warning("video %s: %d frames but %d annotations (reconciled by the masks stage)",
                    v, videos[v]["frames"], videos[v]["annotations"])
    totals = {
        "videos": len(videos),
        "frames": sum(r["frames"] for r in videos.values()),
        "annotations": sum(r["annotations"] for r in videos.values()),
    }
    log.info("%s: %d videos, %d frames, %d annotations, %d with mismatched counts",
             root, totals["videos"], totals["frames"], totals["annotations"], len(mismatched))
    return {"videos": videos, "mismatched": mismatched, "warnings": warnings, "totals": totals}


def validate_300vw_mask(root: str | Path) -> dict:
    """Check the authors' ``300VW-Mask-Dataset/`` layout.

    Every ``images_orig/VVV_FFFFFF.jpg`` has its ``labels_orig/VVV_FFFFFF.png`` and vice versa, and
    ``data_splits/split_1/{train,val,test}_per10.txt`` exist with lines
    ``/images_orig/X.jpg /labels_orig/X.png`` naming files that exist.

    Returns:
        ``{"videos": {VVV: {"frames"}}, "splits": {train/val/test: lines}, "totals": {...}}``.

    Raises:
        LayoutError: a missing folder or split file, an unpaired or misnamed file, or a bad
            split line; lists every problem, each naming its file.
    """
    root = Path(root)
    errors: list[str] = []
    stems: dict[str, set[str]] = {}
    for sub, ext in (("images_orig", "jpg"), ("labels_orig", "png")):
        folder, stems[ext] = root / sub, set()
        if not folder.is_dir():
            errors.append(f"{folder}: missing folder")
            continue
        for p in folder.iterdir():
            m = _MASK_NAME.match(p.name)
            if not m or m.group(3) != ext:
                errors.append(f"{p}: unexpected file (expected VVV_FFFFFF.{ext})")
            else:
                stems[ext].add(p.stem)
    for stem in sorted(stems["jpg"] - stems["png"]):
        errors.append(f"{root / 'labels_orig' / stem}.png: missing label for images_orig/{stem}.jpg")
    for stem in sorted(stems["png"] - stems["jpg"]):
        errors.append(f"{root / 'images_orig' / stem}.jpg: missing image for labels_orig/{stem}.png")
    splits = {}
    for fname in _SPLIT_FILES:
        path = root / "data_splits" / "split_1" / fname
        if not path.is_file():
            errors.append(f"{path}: missing split file")
            continue
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        for i, parts in enumerate(lines, 1):
            names = [PurePosixPath(p) for p in parts]
            ok = (
                len(names) == 2
                and [n.parent.name for n in names] == ["images_orig", "labels_orig"]
                and names[0].stem == names[1].stem
                and names[0].stem in stems["jpg"]
            )
            if not ok:
                errors.append(f"{path}:{i}: bad line {' '.join(parts)!r} (expected an existing image/label pair)")
        splits[fname.split("_")[0]] = len(lines)
    if not errors and not stems["jpg"]:
        errors.append(f"{root / 'images_orig'}: no images")
    _raise_errors(root, errors)
    videos: dict[str, dict] = {}
    for stem in sorted(stems["jpg"]):
        videos.setdefault(stem[:3], {"frames": 0})["frames"] += 1
    totals = {"videos": len(videos), "frames": len(stems["jpg"])}
    log.info("%s: %d videos, %d frames; split_1 %s", root, totals["videos"], totals["frames"], splits)
    return {"videos": videos, "splits": splits, "totals": totals}


def write_metadata(root: str | Path, videos) -> Path:
    """Write ``root/metadata.csv`` with one row per video: ``video, category`` (0 = training set)."""
    videos = sorted(videos)
    path = Path(root) / "metadata.csv"
    pd.DataFrame({"video": videos, "category": [category_of(v) for v in videos]}).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------- the stage


def _find_dataset_dir(extracted: Path, name: str, archive: Path) -> Path:
    found = [p for p in [extracted / name, *extracted.glob(f"*/{name}")] if p.is_dir()]
    if not found:
        raise LayoutError(f"{archive}: no {name}/ folder in the archive")
    return found[0]


def _obtain_archive(data: dict, prefix: str, cache_dir: Path) -> tuple[Path, str]:
    """The archive named by ``data[<prefix>archive]`` or downloaded from ``data[<prefix>url]``, verified."""
    local, url, sha = data.get(f"{prefix}archive"), data.get(f"{prefix}url"), data.get(f"{prefix}sha256")
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise RawDataError(f"{path}: data.{prefix}archive not found")
        digest = verify_sha256(path, sha) if sha else sha256sum(path)
    elif url:
        name = Path(urlparse(url).path).name or "archive.zip"
        path = download(url, cache_dir / name, sha256=sha)
        digest = sha.strip().lower() if sha else sha256sum(path)
    else:
        raise RawDataError(f"data.source needs data.{prefix}archive (a local file) or data.{prefix}url")
    if not sha:
        log.info("%s: SHA-256 %s (set data.%ssha256 to pin it)", path, digest, prefix)
    return path, digest


def _unpack(data: dict, prefix: str, cache_dir: Path, work: Path, name: str, root: str, validate) -> dict:
    """Obtain and extract an archive, move its `name`/ folder to ``work/root``, validate it, write metadata.csv."""
    archive, digest = _obtain_archive(data, prefix, cache_dir)
    extracted, dest = work / ".extract", work / root
    safe_extract(archive, extracted)
    os.replace(_find_dataset_dir(extracted, name, archive), dest)
    shutil.rmtree(extracted)
    try:
        report = validate(dest)
    except LayoutError as e:  # name the files as they are in the archive, not in the temporary folder
        raise LayoutError(str(e).replace(str(dest), f"{archive}: {name}")) from None
    write_metadata(dest, report["videos"])
    return {"root": root, "archive": str(archive), "url": data.get(f"{prefix}url"), "sha256": digest, **report}


def _fetch_synthetic(data: dict, work: Path, seed: int, cache_dir: Path) -> dict:

    generate(work / VIDEOS_DIR, cfg=data["synthetic"], seed=seed)
    return {"root": VIDEOS_DIR, **validate_300vw(work / VIDEOS_DIR)}


def _fetch_300vw(data: dict, work: Path, seed: int, cache_dir: Path) -> dict:
    return _unpack(data, "", cache_dir, work, DATASET_DIR, VIDEOS_DIR, validate_300vw)


def _fetch_300vw_mask(data: dict, work: Path, seed: int, cache_dir: Path) -> dict:
    return _unpack(data, "mask_", cache_dir, work, MASK_DATASET_DIR, MASK_DATASET_DIR, validate_300vw_mask)


SOURCES: dict[str, Callable[[dict, Path, int, Path], dict]] = {
    "synthetic": _fetch_synthetic,
    "300vw": _fetch_300vw,
    "300vw-mask": _fetch_300vw_mask,
}


def fetch_raw(data: dict, out_dir: str | Path, seed: int, cache_dir: str | Path | None = None) -> dict:
    """Fill `out_dir` (``data/raw``) from ``params["data"]``; all or nothing.

    ``synthetic`` writes ``out_dir/300VW/``; ``300vw`` downloads (or takes) the official archive
    and unpacks it to ``out_dir/300VW/``; ``300vw-mask`` unpacks the authors' release to
    ``out_dir/300VW-Mask-Dataset/``. Each gets a ``metadata.csv`` (video, category), and
    ``out_dir/report.json`` records what was found, with ``warnings`` (truncated videos, each
    named; also logged). `out_dir` is replaced only on success.

    Args:
        data: the ``data`` section of params.yaml.
        out_dir: the stage output, e.g. ``data/raw``.
        seed: seed of the synthetic generator.
        cache_dir: where downloads (and their ``.part`` files) persist between runs;
            default ``out_dir/../downloads``, outside the stage output so a run that fails
            midway resumes on the next one.

    Raises:
        ParamsError: an unknown ``data.source`` (the message lists the valid ones; a ValueError).
        RawDataError: anything wrong with the download, the archive or its layout.
    """
    out_dir = Path(out_dir)
    source = data.get("source")
    if source not in SOURCES:
        raise ParamsError(f"unknown data.source {source!r}; valid: {', '.join(SOURCES)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir.parent / "downloads"
    with atomic_dir(out_dir) as work:
        report = {"source": source, **SOURCES[source](data, work, seed, cache_dir)}
        # name the files where they will be, not in the temporary folder
        report["warnings"] = [w.replace(str(work), str(out_dir)) for w in report.get("warnings", [])]
        for w in report["warnings"]:
            log.warning("%s", w)
        atomic_write_json(work / "report.json", report)
    log.info("wrote %s (%s, %d videos)", out_dir, source, report["totals"]["videos"])
    return report

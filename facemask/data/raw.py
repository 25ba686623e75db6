"""The raw side of 300VW: official categories, download, safe extraction, layout validation.

Three sources feed the pipeline through one layout (see ``fetch_raw``):

* ``synthetic``  -- generated video written in the 300VW layout (``facemask.data.synth``);
* ``300vw``      -- the official archive ``300VW_Dataset_2015_12_14.zip`` (Shen et al., 2015),
  unpacked to ``300VW/NNN/{vid.avi, annot/000001.pts, ...}``;
* ``300vw-mask`` -- the authors' derived release ``300VW-Mask-Dataset.zip``
  (``images_orig/``, ``labels_orig/``, ``data_splits/``).

Downloads stream through urllib with a progress bar, resume an interrupted transfer with
HTTP Range (``<name>.part`` in the download cache) and verify a SHA-256 when one is given.
Extraction refuses any entry that could write outside its target.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Iterator
from urllib.parse import urlparse

import cv2
import pandas as pd
from tqdm import tqdm

from facemask.core.errors import InputError, ParamsError
from facemask.core.io import atomic_dir, atomic_write_json
from facemask.data.layout import DATASET_DIR, MASK_DATASET_DIR, VIDEOS_DIR, category_of
from facemask.data.landmarks import PtsError, read_pts
from facemask.data.synth.video import generate

log = logging.getLogger(__name__)


_MASK_NAME = re.compile(r"^(\d{3})_(\d{6})\.(jpg|png)$")
_SPLIT_FILES = ("train_per10.txt", "val_per10.txt", "test_per10.txt")


class RawDataError(InputError, RuntimeError):
    """Raw data that cannot be fetched or used; the message names the file and the reason."""


class DownloadError(RawDataError):
    """A download that failed for good (after its retries, or at once for a client error)."""


class ChecksumError(RawDataError):
    """A file whose SHA-256 is not the expected one."""


class ArchiveError(RawDataError):
    """A truncated, corrupt or unsafe archive."""


class LayoutError(RawDataError):
    """An extracted dataset whose folders or files are not in the expected layout."""


# --------------------------------------------------------------------------------------- download


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> str:
    """Check `path` against a hex SHA-256; returns the digest, raises ChecksumError on mismatch."""
    actual = sha256sum(path)
    if actual != expected.strip().lower():
        raise ChecksumError(f"{path}: SHA-256 mismatch: expected {expected.strip().lower()}, got {actual}")
    return actual


class _Retry(Exception):
    """A transfer that ended early or failed in a way worth another attempt."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/total`` (or ``bytes */total``)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    first, total = m.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _transfer(url: str, part: Path, chunk: int, timeout: float, desc: str) -> None:
    """One request: append to `part` from its current size (Range), or restart it from 0.

    Returns when `part` holds the whole resource; raises _Retry when the transfer stopped early.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "facemask-download/1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the range starts at or past the end: complete already, or a stale part
            _, total = _content_range(e.headers.get("Content-Range"))
            if total is not None and total == have:
                return
            part.unlink()
            raise _Retry(f"HTTP 416 for a {have}-byte partial file; restarting") from None
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None else None
        first, total = _content_range(resp.headers.get("Content-Range"))
        if resp.status == 206:
            if first != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"asked for bytes from {have}, got Content-Range {resp.headers.get('Content-Range')!r}")
            mode = "ab"
        else:  # 200: the whole file (a server that ignores Range sends it again)
            if have:
                log.warning("%s: server ignored the Range request; restarting from byte 0", url)
            have, mode, total = 0, "wb", length
        if total is None and length is not None:
            total = have + length
        with open(part, mode) as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=desc
        ) as bar:
            try:
                while block := resp.read(chunk):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:
                raise _Retry(f"connection lost after {bar.n} bytes ({e!r})") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Retry(f"connection closed after {size} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 5,
    chunk: int = 1 << 20,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Download `url` to `dest`, resuming an interrupted transfer and verifying its SHA-256.

    The bytes go to ``<dest>.part`` and are renamed to `dest` only once complete and verified.
    An interrupted transfer (here or in an earlier run) continues with an HTTP Range request;
    a server that ignores Range sends the whole file again. An existing `dest` is reused when
    it verifies (or when no checksum is given).

    Args:
        url: http(s) address.
        dest: final path of the file.
        sha256: expected hex digest; on mismatch the downloaded file is deleted.
        retries: attempts allowed in a row without progress (a dropped connection that
            delivered bytes does not count), with exponential backoff between them.
        chunk: read size in bytes.
        timeout: socket timeout in seconds.
        backoff: wait in seconds after a first attempt without progress; doubles after each
            further one (at most 60 s). A transfer that delivered bytes resumes at once.

    Raises:
        DownloadError: a client error (4xx) or no progress after `retries` attempts.
        ChecksumError: the complete file does not match `sha256`.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        if sha256 is None:
            log.info("using the downloaded %s", dest)
            return dest
        try:
            verify_sha256(dest, sha256)
            log.info("using the downloaded %s (SHA-256 verified)", dest)
            return dest
        except ChecksumError as e:
            log.warning("%s; downloading it again", e)
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _transfer(url, part, chunk, timeout, desc=dest.name)
            break
        except (_Retry, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            now = part.stat().st_size if part.exists() else 0
            failures = 0 if now > before else failures + 1
            if failures > retries:
                raise DownloadError(f"{url}: giving up after {retries + 1} attempts without progress: {e}") from None
            wait = min(backoff * 2 ** (failures - 1), 60.0) if failures else 0.0  # resume at once after progress
            log.warning("%s: %s; retrying in %.0f s (partial file: %d bytes)", url, e, wait, now)
            time.sleep(wait)
    if sha256 is not None:
        try:
            verify_sha256(part, sha256)
        except ChecksumError as e:
            part.unlink()
            raise ChecksumError(f"{url}: {e}; the downloaded file was deleted") from None
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes)", dest, dest.stat().st_size)
    return dest


# ------------------------------------------------------------------------------------- extraction

# (entry name, kind: "file" | "dir" | "link" | "special", opener of the entry's bytes)
_Member = tuple[str, str, Callable]


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        ftype = stat.S_IFMT(info.external_attr >> 16)  # Unix file type where the archiver stored one
        if info.is_dir() or ftype == stat.S_IFDIR:
            kind = "dir"
        elif ftype == stat.S_IFLNK:
            kind = "link"
        elif ftype not in (0, stat.S_IFREG):
            kind = "special"
        else:
            kind = "file"
        yield info.filename, kind, (lambda info=info: zf.open(info))


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for m in tf.getmembers():
        kind = "dir" if m.isdir() else "file" if m.isreg() else "link" if (m.issym() or m.islnk()) else "special"
        yield m.name, kind, (lambda m=m: tf.extractfile(m))


def _unsafe(name: str) -> str | None:
    """Why an entry name could write outside the target, or None."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or PureWindowsPath(name).drive:
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "'..' in path"
    return None


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a zip (or tar) archive into `target`, refusing anything that could escape it.

    Every entry is checked before anything is written: absolute paths, ``..`` components,
    symbolic and hard links and device/FIFO entries are refused. Zip CRCs are checked while
    extracting, so a corrupt entry is found in the same pass.

    Raises:
        ArchiveError: not a readable archive (truncated or corrupt), a bad CRC, or an unsafe
            entry; names the archive and the entry.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: archive not found")
    if zipfile.is_zipfile(archive):
        opener, members = zipfile.ZipFile, _zip_members
    elif tarfile.is_tarfile(archive):
        opener, members = tarfile.open, _tar_members
    else:
        raise ArchiveError(f"{archive}: not a readable zip or tar archive (truncated or corrupt?)")
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        with opener(archive) as af:
            entries = list(members(af))
            for name, kind, _ in entries:
                why = _unsafe(name) or {"link": "link entry", "special": "device or special file"}.get(kind)
                resolved = (root / name).resolve()
                if why is None and resolved != root and root not in resolved.parents:
                    why = "resolves outside the target"
                if why:
                    raise ArchiveError(f"{archive}: refusing entry {name!r}: {why}")
            for name, kind, open_entry in tqdm(entries, desc=f"extract {archive.name}", unit="file"):
                out = target / name
                if kind == "dir":
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with open_entry() as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as e:
                    raise ArchiveError(f"{archive}: corrupt entry {name!r} ({e})") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"{archive}: truncated or corrupt archive ({e})") from None
    return target


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

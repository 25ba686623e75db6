"""Getting an archive onto the disk safely: resumable, verified downloads and extraction that cannot escape.

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

from tqdm import tqdm

from facemask.core.errors import InputError

log = logging.getLogger(__name__)


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



"""The raw-data stage against a local HTTP server: download, resume, checksum, safe extraction, layout."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _archive import TINY_300VW, make_tar, make_zip, points, write_300vw, write_300vw_mask, zip_with_mode
from _stages import stage_command

from facemask.data.raw import fetch as raw
from facemask.data.ibug68 import format_pts
from facemask.data.layout import CATEGORIES, DATASET_DIR, MASK_DATASET_DIR, category_of
from facemask.data.raw.download import (ArchiveError, ChecksumError, DownloadError, LayoutError, RawDataError,
                                        download, safe_extract)
from facemask.data.raw.fetch import fetch_raw, validate_300vw, validate_300vw_mask

ROOT = Path(__file__).resolve().parent.parent


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------ HTTP server


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours ``Range: bytes=N-`` unless `server.ignore_range`.

    `server.statuses` are answered first, one per request (e.g. 503); `server.drops` cut the
    next responses' bodies after that many bytes (the connection closes: HTTP/1.0).
    """

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append(rng)
        if srv.statuses:
            self.send_error(srv.statuses.pop(0))
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1)) if rng and not srv.ignore_range else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        self.wfile.write(body[: srv.drops.pop(0)] if srv.drops else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.statuses, srv.drops, srv.ignore_range = {}, [], [], [], False
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes


@pytest.fixture
def payload(server):
    server.files["/a.zip"] = PAYLOAD
    return server.url("/a.zip")


# -------------------------------------------------------------------------------------- download


def test_download_verifies_and_leaves_no_part(server, payload, tmp_path):
    dest = download(payload, tmp_path / "dl" / "a.zip", sha256=sha(PAYLOAD).upper(), chunk=4096)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(os.listdir(tmp_path / "dl")) == ["a.zip"]
    assert server.requests == [None]


def test_dropped_connection_resumes_with_range(server, payload, tmp_path):
    server.drops = [70_000, 50_000]
    dest = download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD), chunk=4096, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=70000-", "bytes=120000-"]


def test_part_from_an_earlier_run_is_resumed(server, payload, tmp_path):
    (tmp_path / "a.zip.part").write_bytes(PAYLOAD[:50_000])
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD))
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=50000-"]


def test_complete_part_answered_416_is_finished(server, payload, tmp_path):
    (tmp_path / "a.zip.part").write_bytes(PAYLOAD)
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD))
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD
    assert server.requests == [f"bytes={len(PAYLOAD)}-"]


def test_server_ignoring_range_restarts_from_zero(server, payload, tmp_path):
    server.ignore_range, server.drops = True, [70_000]
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD), backoff=0)
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=70000-"]


def test_server_errors_are_retried(server, payload, tmp_path):
    server.statuses = [503, 500]
    download(payload, tmp_path / "a.zip", backoff=0)
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_gives_up_after_retries_without_progress(server, payload, tmp_path):
    server.statuses = [503] * 10
    with pytest.raises(DownloadError, match="giving up after 3 attempts.*503"):
        download(payload, tmp_path / "a.zip", retries=2, backoff=0)
    assert len(server.requests) == 3 and not (tmp_path / "a.zip").exists()


def test_client_error_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing.zip: HTTP 404"):
        download(server.url("/missing.zip"), tmp_path / "a.zip", backoff=0)
    assert len(server.requests) == 1


def test_wrong_sha256_deletes_the_download(server, payload, tmp_path):
    with pytest.raises(ChecksumError, match=f"SHA-256 mismatch: expected {'0' * 64}, got {sha(PAYLOAD)}"):
        download(payload, tmp_path / "a.zip", sha256="0" * 64)
    assert os.listdir(tmp_path) == []


def test_finished_download_is_reused(server, payload, tmp_path):
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD))
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD))
    download(payload, tmp_path / "a.zip")
    assert server.requests == [None]


def test_corrupted_cached_download_is_fetched_again(server, payload, tmp_path):
    (tmp_path / "a.zip").write_bytes(b"stale")
    download(payload, tmp_path / "a.zip", sha256=sha(PAYLOAD))
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD and server.requests == [None]


# ------------------------------------------------------------------------------------ extraction


def test_safe_extract_zip(tiny_300vw_zip, tmp_path):
    out = safe_extract(tiny_300vw_zip, tmp_path / "x")
    assert (out / DATASET_DIR / "410" / "annot" / "000004.pts").read_text() == format_pts(points(4))
    assert sorted(p.name for p in (out / DATASET_DIR).iterdir()) == ["001", "410", "ReadMe.txt"]


@pytest.mark.parametrize(
    "entry, why",
    [
        ("../evil.txt", "'..' in path"),
        (f"{DATASET_DIR}/../../evil.txt", "'..' in path"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:\\evil.txt", "absolute path"),
    ],
)
def test_escaping_zip_entries_are_refused(tiny_300vw, tmp_path, entry, why):
    archive = make_zip(tiny_300vw, tmp_path / "evil.zip", extra={entry: b"pwned"})
    assert entry in zipfile.ZipFile(archive).namelist()  # the name really is in the archive
    target = tmp_path / "a" / "b"
    with pytest.raises(ArchiveError, match=re.escape(f"{archive}: refusing entry {entry!r}: {why}")):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []  # checked before anything is written
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.parametrize("mode, why", [(0o120777, "link entry"), (0o020666, "device or special file")])
def test_zip_links_and_devices_are_refused(tmp_path, mode, why):
    archive = zip_with_mode(tmp_path / "x.zip", f"{DATASET_DIR}/001/vid.avi", mode)
    with pytest.raises(ArchiveError, match=f"refusing entry '{DATASET_DIR}/001/vid.avi': {why}"):
        safe_extract(archive, tmp_path / "x")


def _tar_entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_safe_extract_tar(tmp_path):
    archive = make_tar(tmp_path / "a.tar", [(_tar_entry("d", tarfile.DIRTYPE), None), (_tar_entry("d/f.txt"), b"hi")])
    assert (safe_extract(archive, tmp_path / "x") / "d" / "f.txt").read_bytes() == b"hi"


@pytest.mark.parametrize(
    "member, why",
    [
        (_tar_entry("d/l", tarfile.SYMTYPE, "/etc/passwd"), "link entry"),
        (_tar_entry("d/h", tarfile.LNKTYPE, "../../etc/passwd"), "link entry"),
        (_tar_entry("d/null", tarfile.CHRTYPE), "device or special file"),
        (_tar_entry("d/fifo", tarfile.FIFOTYPE), "device or special file"),
        (_tar_entry("../evil.txt"), "'..' in path"),
        (_tar_entry("/evil.txt"), "absolute path"),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path, member, why):
    data = b"x" if member.isreg() else None
    archive = make_tar(tmp_path / "a.tar", [(_tar_entry("d/ok.txt"), b"ok"), (member, data)])
    with pytest.raises(ArchiveError, match=re.escape(f"refusing entry {member.name!r}: {why}")):
        safe_extract(archive, tmp_path / "x")
    assert not (tmp_path / "x" / "d").exists()


def test_truncated_archive(tiny_300vw_zip, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(tiny_300vw_zip.read_bytes()[: tiny_300vw_zip.stat().st_size // 2])
    why = "not a readable zip or tar archive (truncated or corrupt?)"
    with pytest.raises(ArchiveError, match=re.escape(f"{cut}: {why}")):
        safe_extract(cut, tmp_path / "x")


def test_corrupt_central_directory(tiny_300vw_zip, tmp_path):
    raw = tiny_300vw_zip.read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(raw.replace(b"PK\x01\x02", b"XX\x01\x02", 1))  # the first central-directory record
    with pytest.raises(ArchiveError, match=r"bad.zip: truncated or corrupt archive \(Bad magic number"):
        safe_extract(bad, tmp_path / "x")


def test_bad_crc_names_the_entry(tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a/ok.txt", b"fine")
        zf.writestr("a/bad.txt", b"A" * 1000)
    raw = bytearray(archive.read_bytes())
    raw[raw.find(b"A" * 1000) + 500] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r"crc.zip: corrupt entry 'a/bad.txt' \(Bad CRC-32"):
        safe_extract(archive, tmp_path / "x")


# ------------------------------------------------------------------------------------ validation


def test_validate_reports_counts(tiny_300vw):
    report = validate_300vw(tiny_300vw)
    assert report["videos"] == {
        "001": {"frames": 3, "annotations": 3, "mismatch": False, "truncated": False},
        "410": {"frames": 4, "annotations": 4, "mismatch": False, "truncated": False},
    }
    assert report["totals"] == {"videos": 2, "frames": 7, "annotations": 7} and report["mismatched"] == []
    assert report["warnings"] == []


def test_count_mismatch_is_reported_not_fatal(tmp_path, caplog):
    ds = write_300vw(tmp_path / DATASET_DIR, {"001": 3, "410": 4}, annotations={"410": 2})
    report = validate_300vw(ds)
    assert report["videos"]["410"] == {"frames": 4, "annotations": 2, "mismatch": True, "truncated": False}
    assert report["mismatched"] == ["410"]
    assert "video 410: 4 frames but 2 annotations" in caplog.text


def _no_video(ds):
    (ds / "410" / "vid.avi").unlink()


def _no_annot(ds):
    shutil.rmtree(ds / "001" / "annot")


def _bad_pts(ds):
    (ds / "410" / "annot" / "000002.pts").write_text(format_pts(points(2)[:67]))


def _garbage_video(ds):
    (ds / "001" / "vid.avi").write_bytes(b"not a video" * 100)


def _empty_annot(ds):
    for p in (ds / "001" / "annot").iterdir():
        p.unlink()


@pytest.mark.parametrize(
    "damage, file, reason",
    [
        (_no_video, "410/vid.avi", "missing video file"),
        (_no_annot, "001/annot", "missing annotation folder"),
        (_bad_pts, "410/annot/000002.pts", "expected 68 points, found 67"),
        (_garbage_video, "001/vid.avi", "unreadable video"),
        (_empty_annot, "001/annot", "no .pts files"),
    ],
)
def test_layout_errors_name_file_and_reason(tiny_300vw, damage, file, reason):
    damage(tiny_300vw)
    with pytest.raises(LayoutError, match=re.escape(f"{tiny_300vw / file}: {reason}")):
        validate_300vw(tiny_300vw)


def test_all_problems_are_listed_at_once(tiny_300vw):
    _no_video(tiny_300vw)
    _bad_pts(tiny_300vw)
    with pytest.raises(LayoutError, match="2 problem") as e:
        validate_300vw(tiny_300vw)
    assert "410/vid.avi" in str(e.value) and "000002.pts" in str(e.value)


def test_no_video_folders(tmp_path):
    with pytest.raises(LayoutError, match="no video folders"):
        validate_300vw(tmp_path)


def test_mask_layout_errors(tmp_path):
    ds = write_300vw_mask(tmp_path / MASK_DATASET_DIR, {"001": 3})
    (ds / "labels_orig" / "001_000002.png").unlink()
    (ds / "images_orig" / "001_x.jpg").write_bytes(b"")
    split = ds / "data_splits" / "split_1"
    (split / "val_per10.txt").write_text("/images_orig/001_000009.jpg /labels_orig/001_000009.png")
    (split / "test_per10.txt").unlink()
    with pytest.raises(LayoutError) as e:
        validate_300vw_mask(ds)
    msg = str(e.value)
    assert f"{ds}/labels_orig/001_000002.png: missing label" in msg
    assert f"{ds}/images_orig/001_x.jpg: unexpected file" in msg
    assert f"{ds}/data_splits/split_1/val_per10.txt:1: bad line" in msg
    assert f"{ds}/data_splits/split_1/test_per10.txt: missing split file" in msg


# ------------------------------------------------------------------------------------ categories


def test_official_categories():
    assert [len(CATEGORIES[c]) for c in range(4)] == [50, 31, 19, 14]
    assert len({v for videos in CATEGORIES.values() for v in videos}) == 114
    assert [category_of(v) for v in ("001", 1, "114", "203", "562")] == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="'999' is not one of the 114"):
        category_of("999")


# ------------------------------------------------------------------------------------ fetch_raw


def _read_metadata(root: Path) -> list[tuple[str, int]]:
    df = pd.read_csv(root / "metadata.csv", dtype={"video": str})
    assert list(df.columns) == ["video", "category"]
    return list(df.itertuples(index=False, name=None))


def test_fetch_300vw_from_url_with_a_dropped_connection(server, tiny_300vw, tiny_300vw_zip, tmp_path):
    blob = tiny_300vw_zip.read_bytes()
    server.files["/dl/300VW_Dataset_2015_12_14.zip"] = blob
    server.drops = [len(blob) // 3]
    out = tmp_path / "data" / "raw"
    url = server.url("/dl/300VW_Dataset_2015_12_14.zip")
    report = fetch_raw({"source": "300vw", "url": url, "archive": None, "sha256": sha(blob)}, out, seed=0)

    assert server.requests == [None, f"bytes={len(blob) // 3}-"]
    raw = out / "300VW"
    assert sorted(p.name for p in raw.iterdir()) == ["001", "410", "ReadMe.txt", "metadata.csv"]
    assert sorted(p.name for p in (raw / "410" / "annot").iterdir()) == [f"{i:06d}.pts" for i in range(1, 5)]
    assert (raw / "001" / "vid.avi").read_bytes() == (tiny_300vw / "001" / "vid.avi").read_bytes()
    assert _read_metadata(raw) == [("001", 0), ("410", 3)]
    assert json.loads((out / "report.json").read_text()) == report
    assert report["source"] == "300vw" and report["sha256"] == sha(blob)
    assert {v: (r["frames"], r["annotations"]) for v, r in report["videos"].items()} == {
        v: (n, n) for v, n in TINY_300VW.items()
    }
    # only the output and the download cache remain: no temporary folders, no .part
    assert sorted(os.listdir(tmp_path / "data")) == ["downloads", "raw"]
    assert os.listdir(tmp_path / "data" / "downloads") == ["300VW_Dataset_2015_12_14.zip"]


def test_fetch_wrong_sha256_leaves_no_output(server, tiny_300vw_zip, tmp_path):
    server.files["/a.zip"] = tiny_300vw_zip.read_bytes()
    out = tmp_path / "data" / "raw"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        fetch_raw({"source": "300vw", "url": server.url("/a.zip"), "sha256": "ab" * 32}, out, seed=0)
    assert sorted(os.listdir(tmp_path / "data")) == ["downloads"]
    assert os.listdir(tmp_path / "data" / "downloads") == []


def test_failed_fetch_keeps_the_previous_output(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "previous.txt").write_text("kept")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        fetch_raw({"source": "300vw", "archive": str(cut)}, out, seed=0)
    assert os.listdir(out) == ["previous.txt"]
    assert sorted(os.listdir(tmp_path)) == ["cut.zip", "raw"]


def test_fetch_local_archive_with_a_bad_layout(tiny_300vw, tmp_path):
    _no_annot(tiny_300vw)
    archive = make_zip(tiny_300vw, tmp_path / "a.zip")
    out = tmp_path / "raw"
    with pytest.raises(LayoutError, match=re.escape(f"{archive}: {DATASET_DIR}/001/annot: missing annotation folder")):
        fetch_raw({"source": "300vw", "archive": str(archive)}, out, seed=0)
    assert not out.exists()


def test_fetch_archive_without_the_dataset_folder(tmp_path):
    ds = write_300vw(tmp_path / "other", {"001": 2})
    archive = make_zip(ds, tmp_path / "a.zip")
    with pytest.raises(LayoutError, match=f"a.zip: no {DATASET_DIR}/ folder in the archive"):
        fetch_raw({"source": "300vw", "archive": str(archive)}, tmp_path / "raw", seed=0)


def test_fetch_local_archive_checks_its_sha256(tiny_300vw_zip, tmp_path):
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        fetch_raw({"source": "300vw", "archive": str(tiny_300vw_zip), "sha256": "0" * 64}, tmp_path / "raw", seed=0)
    assert tiny_300vw_zip.exists()  # the user's own file is never deleted


def test_fetch_300vw_mask_from_url(server, tmp_path):
    ds = write_300vw_mask(tmp_path / "src" / MASK_DATASET_DIR, {"001": 3, "203": 3})
    blob = make_zip(ds, tmp_path / "m.zip").read_bytes()
    server.files["/300VW-Mask-Dataset.zip"] = blob
    out = tmp_path / "raw"
    data = {"source": "300vw-mask", "mask_url": server.url("/300VW-Mask-Dataset.zip"), "mask_sha256": sha(blob)}
    report = fetch_raw(data, out, seed=0)
    root = out / MASK_DATASET_DIR
    assert (root / "images_orig" / "203_000003.jpg").is_file() and (root / "labels_orig" / "001_000001.png").is_file()
    assert _read_metadata(root) == [("001", 0), ("203", 2)]
    assert report["splits"] == {"train": 2, "val": 2, "test": 2}
    assert report["videos"] == {"001": {"frames": 3}, "203": {"frames": 3}}
    assert (tmp_path / "downloads" / "300VW-Mask-Dataset.zip").is_file()


def test_fetch_synthetic_calls_the_generator(tmp_path, monkeypatch):
    calls = []

    def generate(out_dir, cfg, seed):
        calls.append((Path(out_dir).name, cfg, seed))
        write_300vw(Path(out_dir), {"001": 2})

    monkeypatch.setattr(raw, "generate", generate)
    cfg = {"videos": 1, "frames": 2}
    report = fetch_raw({"source": "synthetic", "synthetic": cfg}, tmp_path / "raw", seed=7)
    assert calls == [("300VW", cfg, 7)]
    assert report["totals"] == {"videos": 1, "frames": 2, "annotations": 2}
    assert (tmp_path / "raw" / "report.json").is_file()


def test_unknown_source_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown data.source 'celeba'; valid: synthetic, 300vw, 300vw-mask"):
        fetch_raw({"source": "celeba"}, tmp_path / "raw", seed=0)
    with pytest.raises(RawDataError, match="needs data.archive .* or data.url"):
        fetch_raw({"source": "300vw", "url": None, "archive": None}, tmp_path / "raw", seed=0)
    assert not (tmp_path / "raw").exists()


def test_stage_script(tiny_300vw_zip, tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="300vw", archive=str(tiny_300vw_zip))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, *stage_command("download")], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert _read_metadata(tmp_path / "data" / "raw" / "300VW") == [("001", 0), ("410", 3)]
    assert json.loads((tmp_path / "data" / "raw" / "report.json").read_text())["totals"]["frames"] == 7

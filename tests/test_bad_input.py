"""Bad input at every door: the catalogue of the README's "Bad input" section, case by case.

Each case runs the real entry point (the stage's ``main`` under `facemask.core.errors.run`, which is what
``python -m stages.<name>`` calls, the ``facemask`` command's ``main``, or the command itself in a
subprocess) on a tiny input and checks the exit status, that stderr holds one ``error:`` line naming
the key or file and no traceback, and that nothing was written (no output, no ``.tmp-*``) and
nothing lost (an earlier output is still there).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from _archive import SIZE, make_zip, points, write_300vw, write_video
from _params import DELETE, params, write_params
from _stages import stage_args, stage_command

from facemask.app import outputs
from facemask.app.cli import main as facemask
from facemask.core import errors
from facemask.core.io import atomic_dir
from facemask.data.ibug68 import format_pts
from facemask.models.registry import build_model, save_model

ROOT = Path(__file__).resolve().parent.parent


def _one_error(err: str, *needles: str) -> str:
    """The single ``error:`` line of `err`, which must name every needle; no traceback."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), err
    assert "Traceback" not in err, err
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or ".old-" in p.name)


def _stage(name: str, folder: Path, monkeypatch, capsys) -> tuple[int, str]:
    """Run stage `name` in `folder` as ``python -m stages.<name>`` would (`stages._common.run_stage`)."""
    import importlib

    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", [f"stages/{name}.py", *stage_args(name)])  # dvc.yaml's command line
    rc = errors.run(importlib.import_module(f"stages.{name}").main)
    return rc, capsys.readouterr().err


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FACEMASK_DEBUG"}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------------------------------
# params.yaml: one schema, checked by `facemask check-params` and by every stage

BAD_PARAMS = [
    ("masks.crop_scale", -1, "masks.crop_scale: must be > 0, got -1"),
    ("masks.jpeg_quality", 500, "masks.jpeg_quality: must be <= 100, got 500"),
    ("train.fcn.lr", -0.001, "train.fcn.lr: must be > 0, got -0.001"),
    ("train.fcn.batch_size", 0, "train.fcn.batch_size: must be >= 1, got 0"),
    ("train.convlstm.accum", 0, "train.convlstm.accum: must be >= 1, got 0"),
    ("train.convlstm.T", 0, "train.convlstm.T: must be >= 1, got 0"),
    ("train.convlstm.loss", "dice", "train.convlstm.loss: must be ce, iou or segloss, got 'dice'"),
    ("train.fcn.max_steps_per_epoch", -5, "train.fcn.max_steps_per_epoch: must be >= 1, got -5"),
    ("masks.workers", "two", "masks.workers: must be a whole number, got 'two'"),
    ("train.fcn.batch_size", "16", "train.fcn.batch_size: must be a whole number, got '16'"),
    ("evaluate.draws", 0, "evaluate.draws: must be >= 100, got 0"),
    ("clips.window", 4, "clips.window: must equal train.convlstm.T (5), the ConvLSTM's window, got 4"),
    ("clips.input_size", {"face": 16, "eyes": 64, "mouth": 64}, "clips.input_size.face: must be >= 32, got 16"),
    ("masks.max_drop_share", 1.5, "masks.max_drop_share: must be <= 1, got 1.5"),
    ("model.output_scale", "autox", "model.output_scale: must be a number > 0 or auto, got 'autox'"),
    ("model.output_scale", 0, "model.output_scale: must be a number > 0 or auto, got 0"),
    ("masks", DELETE, "masks: missing (required)"),
    ("baselines.archs", ["fcn"], "baselines.archs[0]: must be fcn_vgg16 or deeplab_v2, got 'fcn'"),
    ("baselines.archs", ["fcn_vgg16", "fcn_vgg16"],
     "baselines.archs: must not name an arch twice, got [\"fcn_vgg16\", \"fcn_vgg16\"]"),
]


@pytest.mark.parametrize("key, value, line", BAD_PARAMS, ids=[f"{k}={v}" for k, v, _ in BAD_PARAMS])
def test_check_params_names_the_key(tmp_path, capsys, key, value, line):
    path = write_params(tmp_path, **{key: value})
    assert facemask(["check-params", str(path)]) == 1
    assert _one_error(capsys.readouterr().err) == f"error: {path}: {line}"


def test_a_misspelled_key_is_an_error_not_ignored(tmp_path, capsys):
    p = params()
    p["clips"]["lenght"] = p["clips"].pop("length")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    assert facemask(["check-params", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {path}: clips.length: missing (required)",
                                f"error: {path}: clips.lenght: unknown key (did you mean 'length'?)"]


@pytest.mark.parametrize("name", ["params.yaml", "configs/paper.yaml"])
def test_the_shipped_params_files_pass(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert facemask(["check-params", name]) == 0
    assert capsys.readouterr().out == f"{name}: valid\n"


def test_yaml_1_2_floats_and_duplicate_keys(tmp_path, capsys):
    path = write_params(tmp_path)
    text = path.read_text().replace("lr: 0.001", "lr: 1e-3", 1)
    path.write_text(text)
    assert facemask(["check-params", str(path)]) == 0  # PyYAML alone reads 1e-3 as the text '1e-3'
    path.write_text(text + "seed: 1\n")
    assert facemask(["check-params", str(path)]) == 1
    _one_error(capsys.readouterr().err, str(path), "duplicate key 'seed'")


def test_a_stage_command_stops_on_bad_params_before_writing(tmp_path):
    """The real command: one line on stderr, exit 1, data/raw untouched and no data/300VW-Mask."""
    write_300vw(tmp_path / "data" / "raw" / "300VW", {"001": 2})
    write_params(tmp_path, **{"masks.crop_scale": -1})
    before = sorted(str(p) for p in (tmp_path / "data").rglob("*"))
    res = subprocess.run([sys.executable, *stage_command("masks")], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["error: params.yaml: masks.crop_scale: must be > 0, got -1"]
    assert sorted(str(p) for p in (tmp_path / "data").rglob("*")) == before


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    write_params(tmp_path, **{"masks.crop_scale": -1})
    monkeypatch.setenv("FACEMASK_DEBUG", "1")
    rc, err = _stage("masks", tmp_path, monkeypatch, capsys)
    assert rc == 1 and "Traceback" in err and "ParamsError" in err
    assert err.rstrip().endswith("error: params.yaml: masks.crop_scale: must be > 0, got -1")


# ---------------------------------------------------------------------------------------------------
# download: the archive and what is in it (a failed run keeps the previous data/raw)


def _zip_with(tmp_path: Path, extra: dict[str, bytes] | None = None, pts: dict[str, str] | None = None) -> Path:
    ds = write_300vw(tmp_path / "src" / "300VW_Dataset_2015_12_14", {"001": 3, "410": 4})
    for rel, text in (pts or {}).items():
        (ds / rel).write_text(text)
    return make_zip(ds, tmp_path / "300VW.zip", extra)


def _bad_crc(tmp_path: Path) -> Path:
    archive = _zip_with(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("300VW_Dataset_2015_12_14/410/annot/000002.pts")
    raw = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    return archive


def _not_a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "a.zip"
    path.write_bytes(b"hello")
    return path


PTS_67 = format_pts(points(2)[:67])
PTS_NAN = format_pts(points(2)).replace("\n3.000 3.000\n", "\nnan 3.000\n", 1)  # the second point

DOWNLOAD_CASES = {
    "missing archive": (lambda t: t / "nope.zip", {}, ["nope.zip", "data.archive not found"]),
    "unsafe entry": (lambda t: _zip_with(t, extra={"../evil.txt": b"x"}), {}, ["refusing entry '../evil.txt'"]),
    "absolute entry": (lambda t: _zip_with(t, extra={"/tmp/evil.txt": b"x"}), {}, ["absolute path"]),
    "bad CRC": (_bad_crc, {}, ["corrupt entry '300VW_Dataset_2015_12_14/410/annot/000002.pts'"]),
    "not an archive": (_not_a_zip, {}, ["a.zip: not a readable zip or tar archive"]),
    "wrong checksum": (_zip_with, {"data.sha256": "0" * 64}, ["SHA-256 mismatch"]),
    "67-point .pts": (lambda t: _zip_with(t, pts={"410/annot/000002.pts": PTS_67}), {},
                      ["410/annot/000002.pts", "expected 68 points, found 67"]),
    "NaN in .pts": (lambda t: _zip_with(t, pts={"001/annot/000003.pts": PTS_NAN}), {},
                    ["001/annot/000003.pts", "not finite"]),
}


@pytest.mark.parametrize("case", list(DOWNLOAD_CASES))
def test_download_fails_in_one_line_and_keeps_the_previous_data(tmp_path, monkeypatch, capsys, case):
    make, changes, needles = DOWNLOAD_CASES[case]
    archive = make(tmp_path)
    write_params(tmp_path, **{"data.source": "300vw", "data.archive": str(archive), **changes})
    previous = tmp_path / "data" / "raw" / "300VW" / "001"
    previous.mkdir(parents=True)
    (previous / "vid.avi").write_bytes(b"the last good data")
    rc, err = _stage("download", tmp_path, monkeypatch, capsys)
    assert rc == 1
    _one_error(err, *needles)
    assert (previous / "vid.avi").read_bytes() == b"the last good data"
    assert set(os.listdir(tmp_path / "data")) <= {"downloads", "raw"} and _leftovers(tmp_path / "data") == []


def test_a_truncated_video_is_a_warning_in_the_report(tmp_path, monkeypatch, capsys, caplog):
    ds = write_300vw(tmp_path / "src" / "300VW_Dataset_2015_12_14", {"001": 3, "410": 30})
    avi = ds / "410" / "vid.avi"
    avi.write_bytes(avi.read_bytes()[: int(avi.stat().st_size * 0.6)])
    write_params(tmp_path, **{"data.source": "300vw", "data.archive": str(make_zip(ds, tmp_path / "a.zip"))})
    rc, err = _stage("download", tmp_path, monkeypatch, capsys)
    assert rc == 0, err
    report = json.loads((tmp_path / "data" / "raw" / "report.json").read_text())
    assert len(report["warnings"]) == 1 and report["warnings"][0].startswith(
        "data/raw/300VW/410/vid.avi: the header announces 30 frames but the last one cannot be decoded")
    assert report["videos"]["410"]["truncated"] and not report["videos"]["001"]["truncated"]
    assert report["warnings"][0] in caplog.text


# ---------------------------------------------------------------------------------------------------
# masks: empty or mostly-dropped results fail where they happen


def _raw(folder: Path, videos: dict[str, int], annotations: dict[str, int]) -> None:
    write_300vw(folder / "data" / "raw" / "300VW", videos, annotations)


def test_masks_fails_when_no_frame_is_kept(tmp_path, monkeypatch, capsys):
    _raw(tmp_path, {"001": 3, "410": 4}, {"001": 0, "410": 0})
    write_params(tmp_path, **{"masks.workers": 1})
    rc, err = _stage("masks", tmp_path, monkeypatch, capsys)
    assert rc == 1
    _one_error(err, "data/raw/300VW: 7 of 7 frames dropped (no frame kept): no_annotation 7 "
                    "(e.g. data/raw/300VW/001/annot/000001.pts missing)")
    assert sorted(os.listdir(tmp_path / "data")) == ["raw"]


def test_masks_fails_when_most_frames_are_dropped_and_the_share_is_a_param(tmp_path, monkeypatch, capsys):
    _raw(tmp_path, {"001": 4, "410": 4}, {"001": 1, "410": 2})  # 5 of 8 frames have no annotation
    write_params(tmp_path, **{"masks.workers": 1})
    rc, err = _stage("masks", tmp_path, monkeypatch, capsys)
    assert rc == 1
    _one_error(err, "data/raw/300VW: 5 of 8 frames dropped (62% dropped, more than masks.max_drop_share 0.5): "
                    "no_annotation 5 (e.g. data/raw/300VW/001/annot/000002.pts missing)")
    assert sorted(os.listdir(tmp_path / "data")) == ["raw"]
    write_params(tmp_path, **{"masks.workers": 1, "masks.max_drop_share": 0.7})
    rc, err = _stage("masks", tmp_path, monkeypatch, capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "data" / "300VW-Mask" / "summary.json").read_text())
    assert (summary["kept"], summary["dropped_total"]) == (3, 5)


def test_masks_without_raw_data(tmp_path, monkeypatch, capsys):
    write_params(tmp_path)
    rc, err = _stage("masks", tmp_path, monkeypatch, capsys)
    assert rc == 1
    _one_error(err, "data/raw/300VW: no 300VW folder (run the download stage")


# ---------------------------------------------------------------------------------------------------
# facemask predict: input, models, and --out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``face/fcn.pt`` only, a tiny untrained FCN: what ``--method fcn`` loads (one model loads fastest)."""
    root = tmp_path_factory.mktemp("models")
    cfg = {"encoder": "resnet18", "classes": 5, "output_stride": 16, "input_size": 32}
    (root / "face").mkdir()
    save_model(root / "face" / "fcn.pt", build_model("fcn", cfg), "fcn", dict(cfg, region="face"))
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 6-frame grey video: no face is found, so a run is quick and writes every output."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", 6, (64, 48))


def _predict(capsys, *args) -> tuple[int, str]:
    rc = facemask(["predict", *map(str, args), "--method", "fcn", "-q", "--device", "cpu"])
    return rc, capsys.readouterr().err


def _frames(folder: Path, sizes) -> Path:
    import cv2

    folder.mkdir()
    for k, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{k:03d}.png"), np.full((h, w, 3), 90, np.uint8))
    return folder


PREDICT_INPUTS = {
    "missing file": (lambda t: t / "nope.mp4", ["nope.mp4", "no such file"]),
    "empty file": (lambda t: (t / "e.mp4").write_bytes(b"") or t / "e.mp4", ["e.mp4", "file is empty"]),
    "not a video": (lambda t: (t / "n.mp4").write_text("notes\n" * 99) and t / "n.mp4", ["n.mp4", "not a readable video"]),
    "empty folder": (lambda t: (t / "d").mkdir() or t / "d", ["d: folder holds no images"]),
    "mixed frame sizes": (lambda t: _frames(t / "f", [(64, 48), (64, 48), (40, 30)]),
                          ["002.png: frame is 40x30, the first frame is 64x48"]),
}


@pytest.mark.parametrize("case", list(PREDICT_INPUTS))
def test_predict_bad_input(tmp_path, models, capsys, case):
    make, needles = PREDICT_INPUTS[case]
    rc, err = _predict(capsys, make(tmp_path), "--out", tmp_path / "out", "--models", models)
    assert rc == 1
    _one_error(err, *needles)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_predict_truncated_video_is_a_warning(tmp_path, models, capsys):
    video = write_video(tmp_path / "t.avi", 30, SIZE)
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.6)])
    rc, err = _predict(capsys, video, "--out", tmp_path / "out", "--models", models, "--no-video")
    assert rc == 0
    assert "warning: " in err and "t.avi: the header announces 30 frames, 9 could be decoded" in err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames"] == 9


def test_predict_garbage_model_file(tmp_path, models, clip, capsys):
    import shutil

    bad = shutil.copytree(models, tmp_path / "m")
    (bad / "face" / "fcn.pt").write_bytes(b"\x80\x04garbage")
    rc, err = _predict(capsys, clip, "--out", tmp_path / "out", "--models", bad)
    assert rc == 1
    assert err == f"error: not a facemask model file (or corrupted): {bad / 'face' / 'fcn.pt'}\n"


def test_predict_without_mediapipe(tmp_path, clip, capsys, monkeypatch):
    """Where mediapipe is missing (Python 3.13): ``--landmarker mediapipe`` fails with one line naming the
    install command, nothing at --out; the default falls back to dlib, with a warning in summary.json."""
    from facemask.inference import mesh

    def missing():
        raise mesh.MediaPipeError(f"mediapipe is not installed (No module named 'mediapipe'): `{mesh.INSTALL}`")

    monkeypatch.setattr(mesh, "import_mediapipe", missing)
    out = tmp_path / "out"
    rc = facemask(["predict", str(clip), "--out", str(out), "--method", "landmarks", "--landmarker", "mediapipe",
                   "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists() and not _leftovers(tmp_path)
    line = _one_error(err, "--landmarker mediapipe: mediapipe is not installed",
                      "pip install --no-deps mediapipe==0.10.14")
    assert err == line + "\n"
    assert facemask(["predict", str(clip), "--out", str(out), "--method", "landmarks", "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["landmarker"]["name"] == "dlib" and "iBUG 300-W" in summary["landmarks"]
    assert len(summary["warnings"]) == 1 and "pip install --no-deps mediapipe==0.10.14" in summary["warnings"][0]
    assert "warning: the default landmarker, mediapipe, is not available" in capsys.readouterr().err


def test_predict_out_refuses_the_current_home_and_root_folders(tmp_path, models, clip, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("mine")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))
    for out, why in ((".", "would replace the current folder"), ("/", "would replace a folder that holds the "
                                                                       "current folder")):
        rc, err = _predict(capsys, clip, "--out", out, "--models", models, "--overwrite")
        assert rc == 1
        _one_error(err, f"--out {out}: {why}")
    monkeypatch.chdir(tmp_path)
    rc, err = _predict(capsys, clip, "--out", work, "--models", models, "--overwrite")
    assert rc == 1
    _one_error(err, "would replace your home folder")
    assert sorted(os.listdir(work)) == ["thesis.tex"] and _leftovers(tmp_path) == []


def test_overwrite_replaces_only_what_predict_wrote(tmp_path, models, clip, capsys):
    mine = tmp_path / "mine"
    (mine / "figures").mkdir(parents=True)
    (mine / "paper.tex").write_text("mine")
    rc, err = _predict(capsys, clip, "--out", mine, "--models", models, "--overwrite")
    assert rc == 1
    _one_error(err, f"--out {mine}: --overwrite only replaces a folder written by facemask predict",
               "no summary.json of facemask predict")
    assert sorted(os.listdir(mine)) == ["figures", "paper.tex"]
    out = tmp_path / "out"
    assert _predict(capsys, clip, "--out", out, "--models", models)[0] == 0
    (out / "labels" / "000001.png").unlink()
    assert _predict(capsys, clip, "--out", out, "--models", models, "--overwrite")[0] == 0
    assert len(os.listdir(out / "labels")) == 6  # replaced: a fresh run's labels
    (out / "notes.txt").write_text("mine")  # a predict folder the user has added to
    rc, err = _predict(capsys, clip, "--out", out, "--models", models, "--overwrite")
    assert rc == 1
    _one_error(err, "this one holds notes.txt")
    assert (out / "notes.txt").read_text() == "mine" and _leftovers(tmp_path) == []


def test_predict_out_unwritable_or_full(tmp_path, models, clip, capsys, monkeypatch):
    if os.geteuid() == 0:  # root writes through permissions: take a place no one can write in
        place = Path("/proc")
    else:
        place = tmp_path / "ro"
        place.mkdir(mode=0o555)
    rc, err = _predict(capsys, clip, "--out", place / "sub" / "out", "--models", models)
    assert rc == 1
    _one_error(err, f"--out {place / 'sub' / 'out'}: cannot write in {place}")
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: type("U", (), {"free": 100 << 10}))
    rc, err = _predict(capsys, clip, "--out", tmp_path / "out", "--models", models)
    assert rc == 1
    _one_error(err, f"--out {tmp_path / 'out'}: 0 MiB free in {tmp_path}, this run needs about 1 MiB")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_stale_temporaries_of_a_killed_run_are_removed_at_the_next_start(tmp_path, models, clip, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a process id that has just ended
    stale = [tmp_path / f".out.tmp-{dead}-k1ll3d00", tmp_path / ".out.tmp-x8y7z6w5", tmp_path / f".out.old-{dead}"]
    for p in stale:
        (p / "labels").mkdir(parents=True)
    alive = tmp_path / f".out.tmp-{os.getppid()}-running"  # another run still writing: kept
    alive.mkdir()
    assert _predict(capsys, clip, "--out", tmp_path / "out", "--models", models)[0] == 0
    assert not any(p.exists() for p in stale) and alive.is_dir()


# ---------------------------------------------------------------------------------------------------
# Signals: SIGTERM / SIGHUP mid-run leave nothing half-written and no process behind


def _kill_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 90.0) -> list[psutil.Process]:
    """Send `sig` to `proc` once `ready()`; return the processes it had started (its children)."""
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, f"finished before it could be interrupted:\n{proc.communicate()[1]}"
        assert time.monotonic() - t0 < timeout, "never got going"
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    return children


def _gone(procs: list[psutil.Process], timeout: float = 10.0) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not alive


def test_sigterm_stops_predict_mid_run_leaving_nothing(tmp_path, models):
    video = write_video(tmp_path / "long.avi", 1200, (160, 120))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "facemask.app.cli", "predict", str(video), "--out", str(out),
                             "--models", str(models), "--method", "fcn", "--device", "cpu", "--threads", "1"],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    children = _kill_when(proc, lambda: any(len(list(p.glob("labels/*.png"))) > 10 for p in tmp_path.glob(".out.tmp-*")),
                          signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path) == []
    assert _gone(children)


def _big_raw(folder: Path, videos: int = 4, frames: int = 150) -> None:
    """300VW layout whose landmarks span ~130 px: each frame takes the masks stage a few ms."""
    for v in range(1, videos + 1):
        vdir = folder / "data" / "raw" / "300VW" / f"{v:03d}"
        write_video(vdir / "vid.avi", frames, (320, 240))
        (vdir / "annot").mkdir()
        for f in range(1, frames + 1):
            (vdir / "annot" / f"{f:06d}.pts").write_text(format_pts(points(f % 20) * 8 + 20))


def test_sigterm_stops_the_masks_stage_and_its_workers(tmp_path):
    sig = signal.SIGTERM
    _big_raw(tmp_path)
    write_params(tmp_path, **{"masks.workers": 2})
    proc = subprocess.Popen([sys.executable, *stage_command("masks")], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    data = tmp_path / "data"
    children = _kill_when(proc, lambda: any(len(os.listdir(p / "images_orig")) > 20
                                            for p in data.glob(".300VW-Mask.tmp-*") if (p / "images_orig").is_dir()),
                          sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {signal.Signals(sig).name}" in err and "Traceback" not in err
    assert len(children) >= 2 and _gone(children)  # the pool's workers (and its resource tracker)
    assert sorted(os.listdir(data)) == ["raw"] and _leftovers(data) == []


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=["SIGHUP", "SIGTERM", "SIGINT"])
def test_every_signal_cleans_up_like_ctrl_c(tmp_path, capsys, sig):
    """In-process: the signal arrives while a stage writes its output folder."""
    def stage():
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half.txt").write_text("half-written")
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler interrupts this
        return 0

    # as in a foreground process: a shell starts background jobs with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler (the suite may run as such a job)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    t0 = time.monotonic()
    try:
        assert errors.run(stage) == 128 + sig
    finally:
        signal.signal(signal.SIGINT, old_int)
    assert time.monotonic() - t0 < 4
    assert os.listdir(tmp_path) == [] and signal.Signals(sig).name in capsys.readouterr().err
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before  # handlers restored

"""A 300VW-sized dry run of the data stages on this CPU: time, memory, files and bytes, and their growth.

    python bench/bench_scale.py                               # 1x, 4x, 16x of 30 frames a video (~30 min)
    python bench/bench_scale.py --scales 1 --base 30 --distinct 2 --width 320 --height 240   # a quick look

For each scale s the synthetic generator writes ``--distinct`` videos of ``base x s`` frames at ``--width`` x
``--height`` (300VW's frame sizes vary; 640 x 360 by default); they are laid out as the 114 videos of the
official archive (300VW's names; video i holds distinct video i mod ``--distinct``, so every stage works
on 114 videos of that length) and zipped as ``300VW_Dataset_2015_12_14.zip``. Then the ``download`` (from
that local archive), ``masks`` and ``clips`` stages run with ``configs/paper.yaml``'s settings — 10 % of the
1-s clips, 93 / 9 / 12 videos, 320 x 320 — each in a fresh process, as ``dvc repro`` runs them. Reported
per stage: wall and CPU seconds (the process and its pool; on a shared machine the CPU seconds are the
steadier figure), peak resident memory (the stage's process and its largest worker), and the files and
bytes of its output (a hard-linked file once, as on disk).

The extrapolation to full 300VW (218,595 frames, 757 sampled clips = 22,710 frames) fits each stage's
figures by least squares on what drives them: ``download`` on the frames (plus a constant); ``masks`` on
the frames (decoded and checked, all of them) and the frames of the sampled clips (cropped, filled and
written: ``masks.frames: sampled``); ``clips`` on the sampled frames (plus a constant). With 30 frames a
video every video has one clip, which is always kept (at least one clip a video), so the sampled share
falls from 100 % at 1x to 12.5 % at 16x and about 10 % at full size: the fits see both drivers vary.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent

FULL_FRAMES, FULL_CLIPS, CLIP = 218_595, 757, 30
STAGES = ("download", "masks", "clips")
OUTPUTS = {"download": "data/raw", "masks": "data/300VW-Mask", "clips": "data/clips"}
#: What each stage's cost is fitted on: columns of (1, frames, sampled frames).
DRIVERS = {"download": (0, 1), "masks": (1, 2), "clips": (0, 2)}


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def generate_archive(work: Path, frames: int, distinct: int, width: int, height: int, seed: int = 0) -> Path:
    """`distinct` synthetic videos laid out as the 114 of the official archive, zipped (stored, like video)."""
    from facemask.data.layout import CATEGORIES, DATASET_DIR
    from facemask.data.synth.generate import generate

    gen = work / "gen"
    generate(gen, dict(videos=distinct, frames=frames, fps=30, width=width, height=height,
                       categories=[0.4, 0.3, 0.3], workers=min(2, os.cpu_count() or 1)), seed=seed)
    sources = sorted(p for p in gen.iterdir() if p.is_dir() and p.name.isdigit())
    names = sorted(v for videos in CATEGORIES.values() for v in videos)
    archive = work / f"{DATASET_DIR}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i, name in enumerate(names):
            src = sources[i % len(sources)]
            for f in sorted(src.rglob("*")):
                if f.is_file() and (f.name == "vid.avi" or f.suffix == ".pts"):
                    zf.write(f, f"{DATASET_DIR}/{name}/{f.relative_to(src).as_posix()}")
    shutil.rmtree(gen)
    return archive


def stage_params(archive: Path, workers: int) -> dict:
    """configs/paper.yaml with the local archive and this machine's pool size."""
    p = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    p["data"]["archive"] = str(archive)
    p["masks"]["workers"] = workers
    return p


def run_stage(name: str, cwd: Path) -> dict:
    """One stage in a fresh process: wall / CPU seconds, peak memory, the output's files and bytes."""
    c0, t0 = _cpu_children(), time.perf_counter()
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--stage", name], cwd=cwd,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
    if res.returncode:
        sys.exit(f"stage {name} failed:\n{res.stderr[-3000:]}")
    mem = json.loads(res.stdout.strip().splitlines()[-1])
    out = cwd / OUTPUTS[name]
    files = {(st.st_dev, st.st_ino): st.st_size for st in (p.stat() for p in out.rglob("*") if p.is_file())}
    return {"wall_s": wall, "cpu_s": cpu, **mem, "files": len(files), "bytes": sum(files.values())}


def _stage_child(name: str) -> None:
    import importlib

    importlib.import_module(f"stages.{name}").main()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"peak_mib": own, "worker_peak_mib": kids}))


def one_scale(work: Path, frames: int, distinct: int, width: int, height: int, workers: int) -> dict:
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    archive = generate_archive(work, frames, distinct, width, height)
    setup_s = time.perf_counter() - t0
    run = work / "run"
    run.mkdir()
    (run / "params.yaml").write_text(yaml.safe_dump(stage_params(archive, workers), sort_keys=False))
    stages = {name: run_stage(name, run) for name in STAGES}
    summary = json.loads((run / "data" / "300VW-Mask" / "summary.json").read_text())
    meta = json.loads((run / "data" / "clips" / "meta.json").read_text())
    clips = sum(meta["splits"][s]["clips"] for s in ("train", "val", "test"))
    result = {"frames_per_video": frames, "frames": summary["frames"], "written": summary.get("written", summary["kept"]),
              "clips": clips, "sampled_frames": clips * CLIP, "archive_bytes": archive.stat().st_size,
              "setup_s": setup_s, "stages": stages}
    shutil.rmtree(work)
    return result


def fit(rows: list[dict], stage: str, key: str) -> float:
    """Least-squares fit of a stage's figure on its drivers, evaluated at full 300VW."""
    cols = DRIVERS[stage]
    x = np.array([[1.0, r["frames"], r["sampled_frames"]] for r in rows])[:, cols]
    y = np.array([r["stages"][stage][key] for r in rows], dtype=np.float64)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    full = np.array([1.0, FULL_FRAMES, FULL_CLIPS * CLIP])[list(cols)]
    return float(full @ coef)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def table(rows: list[dict], args) -> str:
    lines = [f"114 videos at {args.width}x{args.height} ({args.distinct} distinct synthetic videos repeated), "
             f"configs/paper.yaml (10 % of the 1-s clips, 320 x 320), masks.workers {args.workers}; "
             f"load average at the start {args.load:.1f} on {os.cpu_count()} cores.", "",
             "| scale | frames / video | frames | sampled clips (frames) | stage | wall s | CPU s | "
             "peak MiB (stage / worker) | files | bytes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name in STAGES:
            s = r["stages"][name]
            lines.append(f"| {r['scale']}x | {r['frames_per_video']} | {r['frames']:,} | {r['clips']} "
                         f"({r['sampled_frames']:,}) | {name} | {s['wall_s']:.0f} | {s['cpu_s']:.0f} | "
                         f"{s['peak_mib']:.0f} / {s['worker_peak_mib']:.0f} | {s['files']:,} | {_size(s['bytes'])} |")
    if len(rows) >= 2:
        for name in STAGES:
            peak = max(r["stages"][name]["peak_mib"] for r in rows)
            lines.append(f"| **300VW** | 1,917 | {FULL_FRAMES:,} | {FULL_CLIPS} ({FULL_CLIPS * CLIP:,}) | {name} | – | "
                         f"**{fit(rows, name, 'cpu_s'):.0f}** | {peak:.0f} (largest measured) | "
                         f"{fit(rows, name, 'files'):,.0f} | **{_size(fit(rows, name, 'bytes'))}** |")
        dense = FULL_CLIPS * CLIP * 3 * (320 * 320 * 4)
        lines += ["", "Extrapolated: least squares on each stage's drivers (bench/bench_scale.py's docstring), for the CPU "
                      "seconds, files and bytes; wall seconds follow the machine's other load and are not extrapolated "
                      "(on an idle machine: about the CPU seconds over the masks pool's size). The packed training "
                      f"data (data/clips) for the paper's 757 clips, 3 regions at 320 x 320: "
                      f"{_size(fit(rows, 'clips', 'bytes'))}; packed as raw arrays it would be {_size(dense)}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--base", type=int, default=30, help="frames a video at scale 1 (default: %(default)s)")
    ap.add_argument("--distinct", type=int, default=6, help="distinct synthetic videos (default: %(default)s)")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="masks.workers")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        _stage_child(args.stage)
        return
    if args.base < CLIP:
        sys.exit(f"--base {args.base}: a video needs at least one {CLIP}-frame clip")
    args.load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="facemask-scale-", dir=args.work) as tmp:
        for s in args.scales:
            r = one_scale(Path(tmp) / f"x{s}", args.base * s, args.distinct, args.width, args.height, args.workers)
            rows.append({"scale": s, **r})
            print(f"scale {s}x done: " + ", ".join(f"{k} {v['wall_s']:.0f} s" for k, v in r["stages"].items()),
                  file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items()}, "rows": rows}, indent=2))
    print(table(rows, args))


if __name__ == "__main__":
    main()

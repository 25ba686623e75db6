"""Benchmark the synthetic 300VW generator: frames/s, CPU time per frame, size on disk.

    python bench/bench_synth.py                 # params.yaml's data.synthetic and seed
    python bench/bench_synth.py --videos 6 --workers 1

Wall time depends on what else runs on the machine; CPU seconds per frame (this process
and its workers) do not, so both are reported.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from facemask.data.synth.generate import generate

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--videos", type=int)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--keep", help="write the set here instead of a temporary directory")
    args = ap.parse_args()
    params = yaml.safe_load(open(args.params))
    cfg = dict(params["data"]["synthetic"])
    for k in ("videos", "frames", "workers"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_synth-")) / "set"
    try:
        c0, t0 = _cpu(), time.perf_counter()
        generate(tmp, cfg, seed=int(params.get("seed", 0)))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        n = int(cfg["videos"]) * int(cfg["frames"])
        size = _du(tmp)
        avi = sum(p.stat().st_size for p in tmp.rglob("vid.avi"))
        print(f"set        : {cfg['videos']} videos x {cfg['frames']} frames at {cfg['width']}x{cfg['height']}"
              f" ({n} frames), workers {cfg.get('workers', 'default')}")
        print(f"wall       : {wall:.1f} s  -> {n / wall:.0f} frames/s")
        print(f"cpu        : {cpu:.1f} s  -> {1000 * cpu / n:.2f} ms CPU per frame ({n / cpu:.0f} frames per CPU-second)")
        print(f"on disk    : {size / 2**20:.1f} MiB (videos {avi / 2**20:.1f} MiB, {size / n / 1024:.1f} KiB/frame)")
    finally:
        if not args.keep:
            shutil.rmtree(tmp.parent, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Whether the synthetic videos and their masks have the same bytes on another CPU, at full size.

    python scripts/check_data_bytes.py                 # params.yaml's synthetic set: generator + masks
    python scripts/check_data_bytes.py --videos 20     # the first 20 videos' worth (faster)

Runs the generator and the masks stage twice in fresh processes, once as usual and once as a different CPU
would (`OTHER_CPU`: OpenCV without AVX/AVX2/FMA, NumPy at its x86-64-v2 baseline, OpenBLAS's generic
kernels, one thread), and compares every file's md5. tests/test_determinism.py does the same at a tiny size
on every run of the suite; this script is the full-size check a change to the generator needs: a drawing
coordinate exactly on a half of the 1/16-px grid is rare per frame, and only the full size found the
BLAS-summed outlines (33 of 114 videos one JPEG block apart before `facemask.core.exact.matmul`).
Exit status 1 and the differing files when any differ. About 4 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

#: A different CPU, as far as this one can pretend: no AVX/AVX2/FMA in OpenCV, NumPy at its x86-64-v2
#: baseline, OpenBLAS's generic SSE3 kernels, one thread everywhere.
OTHER_CPU = {"OPENCV_CPU_DISABLE": "AVX512_SKX,AVX2,FMA3,AVX", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
             "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "OPENCV_FOR_THREADS_NUM": "1"}

_RUN = r"""
import stages  # as the DVC stages run: NumPy off its AVX-512 (SVML) kernels before it is imported
import json, sys
from pathlib import Path
from facemask.data.synth.generate import generate
from facemask.data.masks.build import build_masks
out, cfg, seed = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
generate(out / "raw" / "300VW", cfg, seed=seed)
build_masks(out / "raw", out / "masks", workers=cfg["workers"], progress=False)
"""


def md5s(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--videos", type=int, help="fewer videos than params.yaml's data.synthetic.videos")
    args = ap.parse_args(argv)
    p = yaml.safe_load(args.params.read_text())
    cfg = {**p["data"]["synthetic"], "workers": 1}
    if args.videos:
        cfg["videos"] = args.videos
    with tempfile.TemporaryDirectory(prefix="data-bytes-") as tmp:
        runs = {}
        for name, env in (("this", {}), ("other", OTHER_CPU)):  # side by side: one core each
            log = open(Path(tmp) / f"{name}.log", "w")
            runs[name] = subprocess.Popen(
                [sys.executable, "-c", _RUN, str(Path(tmp) / name), json.dumps(cfg), str(p["data"]["seed"])],
                env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stderr=log, stdout=log)
        for name, r in runs.items():
            if r.wait():
                tail = (Path(tmp) / f"{name}.log").read_text()[-2000:]
                raise SystemExit(f"the {name!r} run failed:\n{tail}")
        a, b = md5s(Path(tmp) / "this"), md5s(Path(tmp) / "other")
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    print(f"{len(a)} files ({cfg['videos']} videos x {cfg['frames']} frames, generator + masks): "
          f"{len(differ)} differ on the other CPU's kernels")
    for k in differ[:20]:
        print("  ", k)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()

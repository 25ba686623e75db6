"""The data stages are byte-identical for a given seed, whatever the CPU's SIMD kernels and thread counts.

The committed `metrics/eval.json` must reproduce on another machine; every later stage follows from the
bytes of ``data/raw`` and ``data/clips``. A clean-clone run on a machine with AVX-512 once gave a
``data/raw`` 44 bytes different from one without: OpenCV's float kernels round differently with each
instruction set (`facemask.synth.exact`). Here the three data stages (generator, masks, clips) run at a
tiny size twice, in fresh processes: once as usual, once with OpenCV's AVX/AVX2/FMA kernels, NumPy's
AVX2 kernels and OpenBLAS's tuned kernels switched off, one thread and one worker — what a different CPU
would do — and every output file must have the same bytes. The md5s of one video and one packed array
are pinned, so a change of the bytes (code, or a dependency's version) is seen. The data stages also run
as configs/paper.yaml has them: masks of the sampled clips only (`masks.frames: sampled`) and each frame
stored once, encoded (`clips.storage: crops`, `facemask.store`); the arrays the loader reads from that
store, saved as ``.npy``, have the md5s of the dense packing's files, so neither changes a pixel the
models see.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: What the script below writes with seed 3. A change here means the benchmark's bytes changed:
#: regenerate, rerun `dvc repro`, and update both md5s in the same commit.
PINNED = {
    "raw/300VW/001/vid.avi": "dd1d3408ba9e88d40d5b2e42d8e0beeb",
    "clips/face/train/images.npy": "c74e4b1004ae54806412a1b3f1ed32f6",
    "paper/clips/face/train/images.npy (decoded)": "c74e4b1004ae54806412a1b3f1ed32f6",
}

SCRIPT = r"""
import hashlib, io, json, sys
from pathlib import Path
import cv2
import numpy as np
from facemask.synth import generate
from facemask.masks import build_masks
from facemask.clips import build_clips
from facemask.data import load_split

out, workers = Path(sys.argv[1]), int(sys.argv[2])
cfg = dict(videos=4, frames=30, fps=30, width=160, height=120, categories=[1, 1, 1], workers=workers)
generate(out / "raw" / "300VW", cfg, seed=3)
build_masks(out / "raw", out / "masks", workers=workers, progress=False)
clips = dict(length=10, fraction=1.0, split=[2, 1, 1], official_split=False, window=5,
             input_size={"face": 48, "eyes": 24, "mouth": 24},
             zoom={"eyes": {"margin": 0.35, "noise": 0.1}, "mouth": {"margin": 0.3, "noise": 0.1}})
build_clips(out / "masks", out / "clips", clips, seed=3, progress=False)
# as configs/paper.yaml: masks.frames sampled, clips.storage crops
build_masks(out / "raw", out / "paper" / "masks", workers=workers, progress=False,
            sampling=dict(length=10, fraction=1.0, seed=3))
build_clips(out / "paper" / "masks", out / "paper" / "clips", {**clips, "storage": "crops"}, seed=3, progress=False)
md5 = {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}
for region in ("face", "eyes", "mouth"):
    for i, kind in enumerate(("images", "labels")):
        buf = io.BytesIO()
        np.save(buf, np.asarray(load_split(out / "paper" / "clips" / region / "train")[i]))
        md5[f"paper/clips/{region}/train/{kind}.npy (decoded)"] = hashlib.md5(buf.getvalue()).hexdigest()
print(json.dumps(md5))
"""

#: A different CPU, as far as this one can pretend: no AVX/AVX2/FMA in OpenCV, NumPy at its x86-64-v2
#: baseline, OpenBLAS's generic SSE3 kernels, one thread everywhere.
OTHER_CPU = {"OPENCV_CPU_DISABLE": "AVX512_SKX,AVX2,FMA3,AVX", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
             "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "OPENCV_FOR_THREADS_NUM": "1"}


def _run(out: Path, workers: int, env: dict[str, str]) -> dict[str, str]:
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(workers)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("determinism")
    return _run(base / "a", 2, {}), _run(base / "b", 1, OTHER_CPU)


def test_data_stages_give_the_same_bytes_on_other_cpu_kernels(runs):
    a, b = runs
    assert len(a) > 100 and set(a) == set(b)           # every video, .pts, crop, label and array
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"{len(differ)} files differ, e.g. {differ[:5]}"


def test_pinned_bytes(runs):
    a, _ = runs
    assert {k: a[k] for k in PINNED} == PINNED


def test_the_crop_store_reads_as_the_dense_arrays(runs):
    """configs/paper.yaml's data (sampled masks, `clips.storage: crops`) gives the models every region's
    arrays byte for byte as params.yaml's dense packing holds them."""
    a, _ = runs
    for region in ("face", "eyes", "mouth"):
        for kind in ("images", "labels"):
            assert a[f"paper/clips/{region}/train/{kind}.npy (decoded)"] == a[f"clips/{region}/train/{kind}.npy"], \
                (region, kind)


def test_outputs_hold_no_wall_clock_figures(runs, tmp_path_factory):
    # the summaries are outputs too: a timing in them would change their bytes on every run
    a, _ = runs
    for name in ("masks/summary.json", "clips/meta.json"):
        assert name in a
    base = next(iter(tmp_path_factory.getbasetemp().glob("determinism*")))
    for name in ("masks/summary.json", "clips/meta.json"):
        text = (base / "a" / name).read_text()
        assert "seconds" not in text and "per_s" not in text, name

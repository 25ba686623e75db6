"""bench/gpu_smoke.sh in its tiny CPU mode: every step of the GPU smoke test runs and checks what it says."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("device", "fcn", "losses", "fuse", "predict", "speed", "all")


def test_gpu_smoke_tiny_mode_on_the_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", str(ROOT / "bench" / "gpu_smoke.sh"), "--tiny"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    ok = {line.split()[1].rstrip(":") for line in res.stdout.splitlines() if line.startswith("ok ")}
    assert ok == set(STEPS), res.stdout
    lines = res.stdout.splitlines()
    assert any("resuming after epoch 1 of 2" in ln for ln in lines if ln.startswith("ok fcn"))
    losses = next(ln for ln in lines if ln.startswith("ok losses"))
    assert losses.count("segloss") == 8 and "ce " in losses and "iou " in losses
    assert "100.00 % of pixels agree" in next(ln for ln in lines if ln.startswith("ok fuse"))
    assert "would take" in next(ln for ln in lines if ln.startswith("ok speed"))

"""Training throughput: the real data loader against the same model fed from memory, and peak memory.

    python bench/bench_train.py                       # default and paper sizes, both phases
    python bench/bench_train.py --sizes default --steps 20 --device cuda --workers 4

For each configuration a fresh process (so peak memory is its own) packs random clips in the clips
stage's layout under a temp folder, then times `--steps` optimiser steps of the engine's step
(forward, loss, backward, Adam) fed by `facemask.data` (memory-mapped arrays, augmentation,
collation, the sharded sampler) and fed from one batch held in memory, interleaved step by step so
that other load on the machine slows both alike. The loader's cost is ``loader_s / memory_s - 1``, in
wall time and in the process's CPU time (steadier on a shared machine; it counts loader workers
only with ``--workers 0``); "wait" is the share of the loader steps' wall time spent waiting for the batch.
Peak memory: the process's maximum resident set (ru_maxrss) on CPU, torch.cuda.max_memory_allocated on CUDA.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZES = {  # name: (encoder, input size, fcn batch, convlstm N)
    "default": ("resnet18", 96, 16, 2),
    "paper": ("resnet50", 320, 16, 2),
}
T = 5


def pack(root: Path, size: int, clips: int = 8, length: int = 30) -> Path:
    rng = np.random.default_rng(0)
    d = root / "bench" / "train"
    d.mkdir(parents=True)
    np.save(d / "images.npy", rng.integers(0, 256, (clips, length, size, size, 3), dtype=np.uint8))
    np.save(d / "labels.npy", rng.integers(0, 5, (clips, length, size, size), dtype=np.uint8))
    return d


def one(encoder: str, size: int, phase: str, batch: int, steps: int, device: str, workers: int) -> dict:
    from facemask import losses, nets
    from facemask.data import ClipDataset, ShardedBatchSampler, make_loader
    from facemask.engine import _forward_loss

    torch.manual_seed(0)
    dev = torch.device(device)
    amp = dev.type == "cuda"
    model = nets.FCN(encoder, 5)
    if phase == "convlstm":
        model = nets.ConvLSTMFCN.from_fcn(model)
    model = model.to(dev).train()
    if amp:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    loss_fn = losses.build_loss("ce")

    def step(x, y):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if amp and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        _forward_loss(model, x, y, loss_fn, amp).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if amp:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        clips = max(4, -(-(steps + 2) * batch * (T if phase == "convlstm" else 1) // 30))
        ds = ClipDataset(pack(Path(tmp), size, clips), window=T if phase == "convlstm" else None, augment=True)
        loader = iter(make_loader(ds, ShardedBatchSampler(len(ds), batch, seed=0), workers, pin_memory=amp))
        x, y = next(loader)
        held = x.clone(), y.clone()  # a batch held in memory
        step(x, y), step(*held)      # warm-up
        # Interleaved, so that whatever else runs on the machine slows both alike.
        wait = loader_s = memory_s = loader_cpu = memory_cpu = 0.0
        for _ in range(steps):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            x, y = next(loader)
            wait += time.perf_counter() - t0
            step(x, y)
            sync()
            t1, c1 = time.perf_counter(), time.process_time()
            step(*held)
            sync()
            loader_s, memory_s = loader_s + t1 - t0, memory_s + time.perf_counter() - t1
            loader_cpu, memory_cpu = loader_cpu + c1 - c0, memory_cpu + time.process_time() - c1
        del loader

    images = steps * batch * (T if phase == "convlstm" else 1)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if amp
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"loader_img_s": images / loader_s, "memory_img_s": images / memory_s,
            "overhead": loader_s / memory_s - 1, "cpu_overhead": loader_cpu / memory_cpu - 1,
            "wait": wait / loader_s, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--phases", nargs="+", default=["fcn", "convlstm"], choices=["fcn", "convlstm"])
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 default size, 3 paper size)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--one", nargs=4, metavar=("SIZE", "PHASE", "STEPS", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:  # a child: one configuration, JSON on stdout
        size, phase, steps, workers = args.one[0], args.one[1], int(args.one[2]), int(args.one[3])
        encoder, px, batch, n = SIZES[size]
        print(json.dumps(one(encoder, px, phase, batch if phase == "fcn" else n, steps, args.device, workers)))
        return

    device = "cuda" if args.device == "cuda" else "cpu"
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else f'cpu, {torch.get_num_threads()} threads'}; "
          f"loader workers: {args.workers}; augmentation on")
    print(f"| size | encoder | input | phase | batch | steps | loader img/s | memory img/s | loader cost | "
          f"cost in CPU time | wait | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for phase in args.phases:
            encoder, px, batch, n = SIZES[size]
            steps = args.steps or (10 if size == "default" else 3)
            out = subprocess.run([sys.executable, __file__, "--device", device, "--one", size, phase, str(steps),
                                  str(args.workers)], capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            b = f"{batch}" if phase == "fcn" else f"{n}x{T}"
            print(f"| {size} | {encoder} | {px} | {phase} | {b} | {steps} | {r['loader_img_s']:.1f} | "
                  f"{r['memory_img_s']:.1f} | {100 * r['overhead']:+.1f}% | "
                  f"{100 * r['cpu_overhead']:+.1f}% | {100 * r['wait']:.1f}% | {r['peak_mib']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()

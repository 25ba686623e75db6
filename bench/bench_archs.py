"""Training and prediction throughput of the FCN phase's networks (``model.arch``), to budget Table 2's runs.

    python bench/bench_archs.py                                  # fcn (resnet18), fcn_vgg16, deeplab_v2 at 128, 160
    python bench/bench_archs.py --archs deeplab_v2 --sizes 96 --batch 16 --steps 3
    python bench/bench_archs.py --fc6                            # FCN-8s's fc6 alone: 3×3 against VGG's 7×7

Each (arch, input size) runs in a fresh process (so its peak memory is its own) and times `--steps`
optimiser steps after one warm-up, built as the engine builds it (`build_model("fcn", config)`)
and trained as the engine trains (`training.loop.forward_loss`: cross-entropy, then fused Adam), on random
frames and labels held in memory (the data loader's cost is bench_train.py's subject); then as many
no-grad eval-mode batches, the way the fuse stage predicts. Reported: wall-clock images per second,
images per CPU-second of the process (steadier on a shared machine), parameters, peak resident memory,
and the 1-minute load average before and after (the machine is shared: other jobs slow the wall clock).

``--fc6`` times the forward and backward of FCN-8s's fc6 alone (4096 filters on the 512-channel pool5
map of 96, 128 and 160 inputs) with 3×3 and 7×7 kernels, 7×7 also with oneDNN switched off: the
measurement behind `facemask.models.baselines.FCN8s`'s 3×3 default (DESIGN.md).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

ARCHS = ("fcn", "fcn_vgg16", "deeplab_v2")


def one(arch: str, size: int, batch: int, steps: int, classes: int = 5) -> dict:
    from facemask.models.registry import build_model
    from facemask.training import losses
    from facemask.training.loop import forward_loss

    torch.manual_seed(0)
    model = build_model("fcn", {"arch": arch, "encoder": "resnet18", "output_stride": 16, "classes": classes})
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    loss_fn = losses.build_loss("ce")
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, classes, (batch, size, size))

    def step():
        forward_loss(model, x, y, loss_fn, False).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    load0 = os.getloadavg()[0]
    model.train()
    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    with torch.no_grad():
        model(x)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            model(x)
        eval_s, eval_cpu = time.perf_counter() - t0, time.process_time() - c0
    images = steps * batch
    return {"train_img_s": images / train_s, "train_img_cpu_s": images / train_cpu,
            "eval_img_s": images / eval_s, "eval_img_cpu_s": images / eval_cpu, "params_m": params / 1e6,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load": [round(load0, 2), round(os.getloadavg()[0], 2)]}


def fc6(batch: int) -> None:
    """FCN-8s's fc6 alone, forward + backward, on the pool5 maps of 96, 128 and 160 inputs."""
    torch.manual_seed(0)
    print(f"fc6 (512 -> 4096, same padding), batch {batch}, {torch.get_num_threads()} threads")
    print("| pool5 | input | kernel | oneDNN | forward s | backward s | load before / after |")
    print("|---|---|---|---|---|---|---|")
    for side in (3, 4, 5):
        for kernel, onednn in ((3, True), (7, True), (7, False)):
            conv = torch.nn.Conv2d(512, 4096, kernel, padding=kernel // 2)
            x = torch.rand(batch, 512, side, side, requires_grad=True)
            load0 = os.getloadavg()[0]
            with torch.backends.mkldnn.flags(enabled=onednn):
                t0 = time.perf_counter()
                out = conv(x)
                t1 = time.perf_counter()
                out.sum().backward()
                t2 = time.perf_counter()
            print(f"| {side}×{side} | {32 * side} | {kernel}×{kernel} | {'on' if onednn else 'off'} | {t1 - t0:.2f} | "
                  f"{t2 - t1:.2f} | {load0:.1f} / {os.getloadavg()[0]:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    ap.add_argument("--sizes", nargs="+", type=int, default=[128, 160])
    ap.add_argument("--batch", type=int, default=16, help="frames per step (train.fcn.batch_size: 16)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = the cores)")
    ap.add_argument("--fc6", action="store_true", help="time FCN-8s's fc6 alone instead (3x3 against 7x7)")
    ap.add_argument("--one", nargs=2, metavar=("ARCH", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.fc6:
        fc6(4 if args.batch == 16 else args.batch)
        return
    if args.one:  # a child: one configuration, JSON on stdout
        print(json.dumps(one(args.one[0], int(args.one[1]), args.batch, args.steps)))
        return

    print(f"cpu, {torch.get_num_threads()} threads, {os.cpu_count()} cores; batch {args.batch}, {args.steps} timed "
          f"steps; load average before the run {os.getloadavg()[0]:.2f}")
    print("| arch | input | params (M) | train img/s | train img/CPU-s | predict img/s | predict img/CPU-s | "
          "peak MiB | load before / after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for arch in args.archs:
            cmd = [sys.executable, __file__, "--one", arch, str(size), "--batch", str(args.batch),
                   "--steps", str(args.steps)] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            name = "fcn (resnet18, OS 16)" if arch == "fcn" else arch
            print(f"| {name} | {size} | {r['params_m']:.1f} | {r['train_img_s']:.2f} | {r['train_img_cpu_s']:.2f} | "
                  f"{r['eval_img_s']:.2f} | {r['eval_img_cpu_s']:.2f} | {r['peak_mib']:.0f} | "
                  f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""Training throughput: the real data loader against the same model fed from memory; storage options.

    python bench/bench_train.py                                 # default and paper sizes, both phases
    python bench/bench_train.py --sizes paper --phases fcn --steps 3
    python bench/bench_train.py --storage crops jpeg arrays --loader-only      # bytes and loader cost per frame
    python bench/bench_train.py --sizes default --steps 20 --device cuda --workers 4
    python bench/bench_train.py --sizes paper --device cuda --workers 4 --steps 30   # and the paper's schedule

The frames are real pipeline output: synthetic 300VW-style videos (``--width`` x ``--height``, 640 x 360 by
default) through the masks stage, so the face crops have a face crop's size and content. Storage options
of a split, all read through `facemask.data.clips.loaders.ClipDataset`:

* ``crops`` (what the clips stage writes, `facemask.data.clips.store`): each crop once, as the masks stage's JPEG and
  label PNG at the crop's own size; decoded, resized (eyes / mouth: cut) to S x S in the loader;
* ``jpeg``: the same store with every frame resized to S x S first (JPEG q95 of the packed frame);
* ``arrays``: the dense packing, raw uint8 S x S frames memory-mapped (409,600 B a frame at 320).

For each configuration a fresh process (so peak memory is its own) times ``--steps`` optimiser steps of
the engine's step (uint8 batch to the device and made float there, forward, loss, backward, Adam) fed by the
loader (augmentation on, the sharded sampler) and fed from one batch held in memory, interleaved step by
step so that other load on the machine slows both alike. The loader's cost is ``loader_s / memory_s - 1``,
in wall time and in the process's CPU time (steadier on a shared machine; it counts loader workers only
with ``--workers 0``); "wait" is the share of the loader steps' wall time spent waiting for the batch.
Peak memory: the process's maximum resident set (ru_maxrss) on CPU, torch.cuda.max_memory_allocated on CUDA.
``--loader-only`` times the loader alone (ms a frame, one process) and reports the bytes a frame takes.
With both phases at the paper's size (crops), the loader-fed rates give the wall time of the paper's schedule
on this device: 3 regions x (80 FCN epochs + 60 ConvLSTM epochs) over its 18,570 training frames.
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

SIZES = {  # name: (encoder, input size, fcn batch, convlstm N, encoder depth, output stride)
    "default": ("resnet18", 128, 16, 2, 3, 8),   # params.yaml's face model
    "paper": ("resnet50", 320, 16, 2, 5, 16),    # configs/paper.yaml's
}
T = 5
STORAGES = ("crops", "jpeg", "arrays")
#: The paper's training set (619 one-second clips of 30 frames) and schedule, for each of the 3 regions.
PAPER_FRAMES, PAPER_EPOCHS = 18_570, {"fcn": 80, "convlstm": 60}


def source(root: Path, width: int, height: int, videos: int = 2, frames: int = 60) -> Path:
    """Face crops and labels as the masks stage writes them, from synthetic 300VW-style video."""
    from facemask.data.masks.build import build_masks
    from facemask.data.synth.generate import generate

    generate(root / "raw" / "300VW", dict(videos=videos, frames=frames, fps=30, width=width, height=height,
                                          categories=[1, 1, 1], workers=1), seed=0)
    build_masks(root / "raw", root / "masks", workers=1, progress=False)
    return root / "masks"


def make_split(masks: Path, out: Path, storage: str, size: int, clips: int, length: int = 30) -> Path:
    """`clips` clips of `length` frames (the source's frames, repeated as needed) stored as `storage`."""
    import cv2

    from facemask.data.clips.store import decode_label, write_split

    names = sorted(p.stem for p in (masks / "images_orig").glob("*.jpg"))
    names = [names[i % len(names)] for i in range(clips * length)]
    crops = [cv2.imread(str(masks / "images_orig" / f"{n}.jpg")) for n in names]
    labels = [decode_label(np.fromfile(masks / "labels_orig" / f"{n}.png", np.uint8), n) for n in names]
    if storage != "crops":
        crops = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]
        labels = [cv2.resize(lb, (size, size), interpolation=cv2.INTER_NEAREST) for lb in labels]
    d = out / storage / "train"
    if storage == "arrays":
        d.mkdir(parents=True)
        np.save(d / "images.npy", np.stack([c[..., ::-1] for c in crops]).reshape(clips, length, size, size, 3))
        np.save(d / "labels.npy", np.stack(labels).reshape(clips, length, size, size))
    else:
        write_split(d, crops, labels, length, size)
    return d


def bytes_per_frame(split: Path) -> float:
    from facemask.data.clips.store import load_split

    frames = int(np.prod(load_split(split)[1].shape[:2]))
    return sum(p.stat().st_size for p in split.iterdir()) / frames


def one(encoder: str, size: int, phase: str, batch: int, steps: int, device: str, workers: int, storage: str,
        width: int, height: int, loader_only: bool, depth: int = 5, stride: int = 16) -> dict:
    import cv2

    from facemask.data.clips.loaders import ClipDataset, ShardedBatchSampler, batch_to_device, make_loader

    torch.manual_seed(0)
    dev = torch.device(device)
    amp = dev.type == "cuda"
    window = T if phase == "convlstm" else None
    per_item = T if window else 1

    with tempfile.TemporaryDirectory() as tmp:
        masks = source(Path(tmp), width, height)
        clips = max(4, -(-(steps + 3) * batch * per_item // 30))
        split = make_split(masks, Path(tmp) / "clips", storage, size, clips)
        crop_side = float(np.mean([s for p in (masks / "images_orig").glob("*.jpg") for s in cv2.imread(str(p)).shape[:2]]))
        ds = ClipDataset(split, window=window, augment=True)
        sampler = ShardedBatchSampler(len(ds), batch, seed=0)
        loader = iter(make_loader(ds, sampler, workers, pin_memory=amp))
        if loader_only:
            next(loader)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                next(loader)
            n = steps * batch * per_item
            return {"bytes_per_frame": bytes_per_frame(split), "crop_side": crop_side,
                    "loader_ms": 1e3 * (time.perf_counter() - t0) / n, "loader_cpu_ms": 1e3 * (time.process_time() - c0) / n}

        from facemask.models.nets import FCN, ConvLSTMFCN
        from facemask.training import losses
        from facemask.training.loop import forward_loss

        model = FCN(encoder, 5, output_stride=stride, encoder_depth=depth)
        if phase == "convlstm":
            model = ConvLSTMFCN.from_fcn(model)
        model = model.to(dev).train().to(memory_format=torch.channels_last)   # as the engine trains
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
        loss_fn = losses.build_loss("ce")

        def step(x, y):
            x, y = batch_to_device(x, y, dev)
            forward_loss(model, x, y, loss_fn, amp).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        def sync():
            if amp:
                torch.cuda.synchronize()

        x, y = next(loader)
        held = x.clone(), y.clone()  # a batch held in memory, uint8 as the loader gives it
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
        bpf = bytes_per_frame(split)

    images = steps * batch * per_item
    peak = (torch.cuda.max_memory_allocated() / 2**20 if amp
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"loader_img_s": images / loader_s, "memory_img_s": images / memory_s,
            "overhead": loader_s / memory_s - 1, "cpu_overhead": loader_cpu / memory_cpu - 1,
            "wait": wait / loader_s, "peak_mib": peak, "bytes_per_frame": bpf, "crop_side": crop_side}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--phases", nargs="+", default=["fcn", "convlstm"], choices=["fcn", "convlstm"])
    ap.add_argument("--storage", nargs="+", default=["crops"], choices=STORAGES)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 default size, 3 paper size; "
                                                            "--loader-only 20)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--width", type=int, default=640, help="synthetic video frame width (default: %(default)s)")
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--loader-only", action="store_true", help="time the loader alone; bytes per frame")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:  # a child: one configuration, JSON on stdout
        size, phase, storage, steps = args.one.split(",")
        encoder, px, batch, n, depth, stride = SIZES[size]
        print(json.dumps(one(encoder, px, phase, batch if phase == "fcn" else n, int(steps), args.device,
                             args.workers, storage, args.width, args.height, args.loader_only, depth, stride)))
        return

    device = "cuda" if args.device == "cuda" else "cpu"
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else f'cpu, {torch.get_num_threads()} threads'}; "
          f"loader workers: {args.workers}; augmentation on; crops from {args.width}x{args.height} synthetic video")
    if args.loader_only:
        print("| size | input | phase | storage | mean crop side | bytes / frame | loader ms / frame | loader CPU ms / frame |")
        print("|---|---|---|---|---|---|---|---|")
    else:
        print("| size | encoder | input | phase | storage | batch | steps | loader img/s | memory img/s | loader cost | "
              "cost in CPU time | wait | peak MiB | bytes / frame |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rates = {}
    for size in args.sizes:
        for phase in args.phases:
            for storage in args.storage:
                encoder, px, batch, n, _, _ = SIZES[size]
                steps = args.steps or (20 if args.loader_only else 10 if size == "default" else 3)
                cmd = [sys.executable, __file__, "--device", device, "--workers", str(args.workers), "--width",
                       str(args.width), "--height", str(args.height), "--one", f"{size},{phase},{storage},{steps}"]
                out = subprocess.run(cmd + (["--loader-only"] if args.loader_only else []), capture_output=True,
                                     text=True)
                if out.returncode:
                    sys.exit(out.stderr)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if args.loader_only:
                    print(f"| {size} | {px} | {phase} | {storage} | {r['crop_side']:.0f} | {r['bytes_per_frame']:,.0f} | "
                          f"{r['loader_ms']:.2f} | {r['loader_cpu_ms']:.2f} |", flush=True)
                    continue
                rates[size, phase, storage] = r["loader_img_s"]
                b = f"{batch}" if phase == "fcn" else f"{n}x{T}"
                print(f"| {size} | {encoder} | {px} | {phase} | {storage} | {b} | {steps} | {r['loader_img_s']:.1f} | "
                      f"{r['memory_img_s']:.1f} | {100 * r['overhead']:+.1f}% | {100 * r['cpu_overhead']:+.1f}% | "
                      f"{100 * r['wait']:.1f}% | {r['peak_mib']:.0f} | {r['bytes_per_frame']:,.0f} |", flush=True)

    paper = {phase: rates.get(("paper", phase, "crops")) for phase in PAPER_EPOCHS}
    if all(paper.values()):
        hours = 3 * PAPER_FRAMES * sum(PAPER_EPOCHS[p] / paper[p] for p in PAPER_EPOCHS) / 3600
        print(f"the paper's schedule (3 regions x (80 FCN + 60 ConvLSTM epochs) x {PAPER_FRAMES:,} frames) at the "
              f"loader-fed rates: {hours:.1f} h on {device}")


if __name__ == "__main__":
    main()

"""The face model's geometry: encoder, depth, output stride and input size, by speed and accuracy.

    python bench/bench_geometry.py                                   # the candidates below, ~45 min
    python bench/bench_geometry.py --candidates resnet18:3:8:128 --cpu-seconds 200

For each candidate ``encoder:depth:output_stride:input_size`` it measures the FCN's training speed
(images per CPU second of one thread, for the engine's step: forward, cross-entropy, backward, Adam, on a
batch held in memory; CPU time on one thread is what other load on a shared machine disturbs least), then
trains the face FCN with the real engine (`facemask.training.engine.train`, the params' FCN recipe: Adam,
lr 1e-3 decaying linearly, augmentation) on the pipeline's own masks (``data/300VW-Mask``, packed at the
candidate's input size into a temporary folder) for as many images as the candidate processes in
``--cpu-seconds`` at that speed, i.e. the same CPU budget for every candidate, and reports the best
validation IoU per class. The score map's cells across the face crop are input / output stride (the
paper: 320 / 16 = 20).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from facemask.core.paramfile import load_params
from facemask.data.clips.build import build_clips
from facemask.models.nets import FCN
from facemask.training import losses
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths, train

ROOT = Path(__file__).resolve().parent.parent

CANDIDATES = ["resnet18:5:16:96", "resnet18:3:8:128", "resnet18:4:8:128", "resnet18:3:8:160", "resnet34:3:8:128",
              "resnet18:4:8:160"]


def speed(encoder: str, depth: int, os_: int, size: int, batch: int = 16, steps: int = 6) -> float:
    """Training images per CPU second of the FCN on random data held in memory (after one warm-up step)."""
    torch.manual_seed(0)
    model = FCN(encoder, 5, None, os_, depth)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    loss_fn = losses.build_loss("ce")
    x, y = torch.rand(batch, 3, size, size), torch.randint(0, 5, (batch, size, size))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    step()
    t0 = time.process_time()
    for _ in range(steps):
        step()
    return steps * batch / (time.process_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", nargs="+", default=CANDIDATES, metavar="ENC:DEPTH:OS:SIZE")
    ap.add_argument("--cpu-seconds", type=float, default=400.0,
                    help="training budget per candidate, in CPU seconds of one thread at its measured speed")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (speed is measured per thread)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--masks", type=Path, default=ROOT / "data" / "300VW-Mask")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--work", type=Path, default=None, help="folder for the packed clips (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    params = yaml.safe_load(args.params.read_text())
    fcn = params["train"]["fcn"]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_geometry."))
    torch.set_num_threads(args.threads)
    rows = []
    for cand in args.candidates:
        encoder, depth, os_, size = cand.split(":")
        depth, os_, size = int(depth), int(os_), int(size)
        clips = work / f"clips-{size}"
        if not (clips / "meta.json").is_file():  # written last (either clips.storage)
            cfg = dict(params["clips"], input_size={"face": size, "eyes": 32, "mouth": 32})
            build_clips(args.masks, clips, cfg, int(params["data"].get("seed", 0)), source=params["data"]["source"])
        ips = speed(encoder, depth, os_, size, fcn["batch_size"])
        steps = max(1, round(args.cpu_seconds * ips / fcn["batch_size"] / args.epochs))
        base = TrainConfig.from_params(load_params(args.params), "fcn", "face")  # the params' FCN recipe
        cfg = dataclasses.replace(base, model={**base.model, "encoder": encoder, "output_stride": os_,
                                               "encoder_depth": depth},
                                  epochs=args.epochs, max_steps_per_epoch=steps)
        run = work / "runs" / cand.replace(":", "_")
        t0 = time.perf_counter()
        m = train(cfg, RunPaths(clips=clips / "face", model=run / "fcn.pt", live=run / "live",
                                checkpoint=run / "ckpt.pt"))
        row = {"candidate": cand, "cells": size // os_, "img_per_cpu_s": round(ips, 2),
               "images": steps * args.epochs * fcn["batch_size"], "wall_s": round(time.perf_counter() - t0),
               "best_epoch": m["best_epoch"], "val_miou": round(m["val"]["mIoU"], 4),
               **{k: round(v, 4) for k, v in m["val"]["IoU"].items() if k != "background"}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = ["candidate", "cells", "img_per_cpu_s", "images", "wall_s", "val_miou", "skin", "eyes", "lips", "inner_mouth"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

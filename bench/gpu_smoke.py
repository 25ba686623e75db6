"""GPU smoke test: what a 300VW run on a GPU relies on, in a few minutes (run it through bench/gpu_smoke.sh).

    bench/gpu_smoke.sh                 # one GPU: ResNet-50 at 320 x 320, bf16, channels_last (<= 5 min)
    bench/gpu_smoke.sh --tiny          # CPU, ResNet-18 at 32 x 32: the same steps in seconds (the test suite)

Steps, each printed as ``ok <step>: <what was checked> (<seconds>)``; any failure stops with a traceback:

1. device: CUDA really used (`facemask.core.devices` refuses with the reason when it cannot be);
2. fcn: the FCN phase of `facemask.training.engine` for two short epochs, interrupted after the first and resumed
   (bf16 autocast and channels_last on CUDA); parameters and memory on the device;
3. losses: the ConvLSTM-FCN made from it, one step with each loss (cross-entropy, IoU, SegLoss Eq. 8 / Eq. 9,
   hard / soft weights, on scores / softmax): finite losses and non-zero ConvLSTM gradients; then the
   ConvLSTM phase of the engine for a few steps (its conv6 calibration on the device);
4. fuse: the cascade on a few clips on the device and on the CPU: share of pixels with the same label;
5. predict: ``facemask predict <video> --device <device>`` on a synthetic 300VW-style video;
6. speed: training images/s at the paper's size with the real loader (crops stored as the clips stage
   stores them, decoded, resized and augmented in 4 and 8 workers), for the FCN and the ConvLSTM-FCN,
   and from them the wall time of the paper's schedule on one GPU (3 regions x (80 FCN epochs + 60
   ConvLSTM epochs) over 18,570 training frames).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facemask.training import engine
from facemask.training import losses, loop
from facemask.models.nets import ConvLSTMFCN, FCN
from facemask.models.registry import load_model, save_model
from facemask.core.devices import resolve_device
from facemask.core.params import DEFAULTS
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths

#: The paper's training set: 619 one-second clips of 30 frames, for each of the 3 regions.
PAPER_FRAMES, PAPER_FCN_EPOCHS, PAPER_CONVLSTM_EPOCHS = 18_570, 80, 60
SIZES = {  # encoder, crop side as stored, input side, FCN batch, steps per epoch, speed steps, workers
    "gpu": ("resnet50", 256, 320, 16, 4, 30, (4, 8)),
    "tiny": ("resnet18", 40, 32, 4, 2, 3, (0, 2)),
}
LOSSES = [("ce", {}), ("iou", {}),
          *[("segloss", {"lfun": f, "g": g, "weights": w, "on": on})
            for f, g in (("eq8", 0.5), ("eq9", 0.0)) for w in ("hard", "soft") for on in ("scores", "softmax")]]


def say(step: str, text: str, t0: float) -> None:
    print(f"ok {step}: {text} ({time.perf_counter() - t0:.1f} s)", flush=True)


def discs(n: int, side: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n crops (BGR) with nested discs of classes 1..4 moving a little from frame to frame, and their labels."""
    yy, xx = np.mgrid[:side, :side]
    palette = rng.integers(0, 256, (5, 3))
    crops, labels = [], []
    cx, cy = side / 2, side / 2
    for _ in range(n):
        cx, cy = np.clip([cx + rng.normal(0, side / 40), cy + rng.normal(0, side / 40)], side / 3, 2 * side / 3)
        lab = np.zeros((side, side), np.uint8)
        for c in range(1, 5):
            r = side / 3 * (1 - (c - 1) / 5)
            lab[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = c
        crops.append((0.8 * palette[lab] + rng.integers(0, 50, lab.shape + (3,))).astype(np.uint8))
        labels.append(lab)
    return crops, labels


def write_data(root: Path, crop: int, size: int, clips: dict[str, int], length: int = 10) -> Path:
    """``<root>/face/<split>`` in the clips stage's store (JPEG crops, label PNGs), resized to `size` on read."""
    from facemask.data.clips.store import write_split

    rng = np.random.default_rng(0)
    for split, n in clips.items():
        crops, labels = discs(n * length, crop, rng)
        write_split(root / "face" / split, crops, labels, length, size)
    return root / "face"


def run_paths(root: Path, phase: str, clips: Path) -> RunPaths:
    return RunPaths(clips=clips, model=root / "face" / f"{phase}.pt", live=root / "live" / phase,
                    checkpoint=root / ".checkpoints" / f"{phase}.pt",
                    init=root / "face" / "fcn.pt" if phase == "convlstm" else None)


class Interrupt(Exception):
    pass


def train_fcn_interrupted(cfg: TrainConfig, paths: RunPaths) -> str:
    """Train, stop after the first epoch's checkpoint, train again: the log must say it resumed."""
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("facemask.training.engine").addHandler(handler)
    save = engine.save_checkpoint

    def save_then_stop(path, state):
        save(path, state)
        if state["epoch"] == 1:
            raise Interrupt
    engine.save_checkpoint = save_then_stop
    try:
        engine.train(cfg, paths)
    except Interrupt:
        pass
    finally:
        engine.save_checkpoint = save
    engine.train(cfg, paths)
    logging.getLogger("facemask.training.engine").removeHandler(handler)
    resumed = [m for m in records if "resuming after epoch 1" in m]
    assert resumed and paths.model.is_file(), records
    return resumed[0]


def loss_steps(fcn_path: Path, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> list[str]:
    """One forward/backward of the ConvLSTM-FCN per loss: finite, and gradients reach the ConvLSTM."""
    amp = device.type == "cuda"
    out = []
    fcn = load_model(fcn_path, map_location=device)
    for name, kw in LOSSES:
        model = ConvLSTMFCN.from_fcn(fcn, init="glorot").to(device).train()
        loss = loop.forward_loss(model, x, y, losses.build_loss(name, **kw), amp)
        loss.backward()
        loss = loss.detach()
        grad = sum(float(p.grad.abs().sum()) for p in model.convlstm.parameters() if p.grad is not None)
        assert torch.isfinite(loss) and grad > 0, (name, kw, float(loss), grad)
        label = name + ("" if not kw else f" {kw['lfun']} g={kw['g']} {kw['weights']} {kw['on']}")
        out.append(f"{label} {float(loss):.3f}")
    return out


def zoomed_models(root: Path, face_convlstm: Path, size: int, device: torch.device) -> None:
    """Eye and mouth ConvLSTM-FCNs (untrained) next to the face models, so the cascade and predict run."""
    face = load_model(face_convlstm)
    for region, classes in (("eyes", 2), ("mouth", 3)):
        fcn = FCN(face.encoder_name, classes, output_stride=16)
        cfg = {"encoder": face.encoder_name, "classes": classes, "input_size": size, "T": 5, "region": region}
        save_model(root / region / "fcn.pt", fcn, "fcn", cfg)
        save_model(root / region / "convlstm.pt", ConvLSTMFCN.from_fcn(fcn), "convlstm", cfg)


def fuse_agreement(models: Path, clips: Path, device: torch.device, n_clips: int = 2) -> float:
    """Share of pixels the cascade labels alike on `device` and on the CPU, over a few val clips."""
    from facemask.inference.fusion import Cascade
    from facemask.data.clips.store import SplitView

    view = SplitView(clips / "val")
    windows = [[view.crop(c * view.length + t)[..., ::-1] for t in range(5)] for c in range(n_clips)]
    labels = {}
    for dev in (device, torch.device("cpu")):
        cascade = Cascade.from_dir(models, device=dev)
        labels[dev.type] = [r.cascade for r in cascade.run(windows)]
    same = total = 0
    for a, b in zip(labels[device.type], labels["cpu"]):
        for u, v in zip(a, b):
            same += int((u == v).sum())
            total += u.size
    return same / total


def predict_video(models: Path, work: Path, device: str, frames: int) -> dict:
    """``facemask predict`` on one synthetic 300VW-style video of `frames` frames at 320 x 240."""
    from facemask.data.synth.generate import generate

    generate(work / "raw", dict(videos=1, frames=frames, fps=30, width=320, height=240, categories=[1, 0, 0],
                                workers=1), seed=0)
    video = next((work / "raw").glob("*/vid.avi"))
    out = work / "predict"
    res = subprocess.run([sys.executable, "-m", "facemask.app.cli", "predict", str(video), "--models", str(models),
                          "--out", str(out), "--device", device, "--no-video", "-q"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


def images_per_s(encoder: str, phase: str, clips: Path, batch: int, steps: int, workers: int,
                 device: torch.device) -> float:
    """Training img/s of one phase with the real loader (store decode + resize + augmentation in workers)."""
    from facemask.data.clips.loaders import ClipDataset, ShardedBatchSampler, make_loader, batch_to_device

    amp = device.type == "cuda"
    T = 5 if phase == "convlstm" else None
    model = FCN(encoder, 5)
    if phase == "convlstm":
        model = ConvLSTMFCN.from_fcn(model, init="glorot")
    model = model.to(device).train()
    if amp:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    loss_fn = losses.build_loss("ce")
    ds = ClipDataset(clips / "train", window=T, augment=True)
    sampler = ShardedBatchSampler(len(ds), batch, seed=0)
    loader = make_loader(ds, sampler, workers, pin_memory=amp)
    done, t0, images = 0, None, 0
    while done < steps + 2:
        sampler.set_epoch(done)
        for x, y in loader:
            x, y = batch_to_device(x, y, device)
            loop.forward_loss(model, x, y, loss_fn, amp).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == 2:  # warm-up done (cudnn.benchmark, worker start)
                if amp:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            elif done > 2:
                images += x.shape[0] * (x.shape[1] if T else 1)
            if done == steps + 2:
                break
    if amp:
        torch.cuda.synchronize()
    return images / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU, tiny sizes (what the test suite runs)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    args = ap.parse_args()
    mode = "tiny" if args.tiny else "gpu"
    encoder, crop, size, batch, steps_per_epoch, speed_steps, worker_counts = SIZES[mode]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(0)
    if args.tiny:  # tiny tensors: one thread is faster, the more so on a busy machine
        torch.set_num_threads(1)
    t_all = t0 = time.perf_counter()

    device = resolve_device(args.device or ("cpu" if args.tiny else "cuda"), what="--device")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
        say("device", f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
                      f"cudnn {torch.backends.cudnn.version()}", t0)
    else:
        say("device", f"cpu ({torch.get_num_threads()} threads; tiny mode)", t0)

    with tempfile.TemporaryDirectory(prefix="facemask-smoke-") as tmp:
        work = Path(tmp)
        clips = write_data(work / "data", crop, size, {"train": 8, "val": 2})
        model = {"encoder": encoder, "encoder_weights": None, "output_stride": 16, "encoder_depth": 5,
                 "peephole": True, "convlstm_init": "conv6", "output_scale": 1.0}
        spec = str(device)

        t0 = time.perf_counter()
        fcn_cfg = dataclasses.replace(TrainConfig.from_params(DEFAULTS, "fcn", "face"), model=model, epochs=2,
                                      batch_size=batch, max_steps_per_epoch=steps_per_epoch, device=spec,
                                      workers=worker_counts[0])
        fcn_paths = run_paths(work / "models", "fcn", clips)
        resumed = train_fcn_interrupted(fcn_cfg, fcn_paths)
        text = f"{encoder} at {size}x{size}, batch {batch}, 2 x {steps_per_epoch} steps; {resumed}"
        if device.type == "cuda":
            assert torch.cuda.max_memory_allocated(device) > 0
            text += f"; bf16 + channels_last, peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
        say("fcn", text, t0)

        t0 = time.perf_counter()
        from facemask.data.clips.loaders import ClipDataset, batch_to_device

        ds = ClipDataset(clips / "train", window=5)
        x, y = batch_to_device(*(torch.stack(v) for v in zip(ds[0], ds[1])), device)
        results = loss_steps(fcn_paths.model, x, y, device)
        cl_cfg = dataclasses.replace(  # the paper's recipe: all layers, SegLoss Eq. 9, no head phase
            TrainConfig.from_params(DEFAULTS, "convlstm", "face"), model=model, epochs=1, batch_size=2, T=5,
            lr_decay="none", gamma=0.05, loss="segloss", loss_kwargs={"lfun": "eq9", "g": 0.0, "weights": "hard"},
            freeze_backbone=False, freeze_bn=False, head_steps=0, corrupt=0.0, max_steps_per_epoch=steps_per_epoch,
            device=spec, workers=worker_counts[0])
        m = engine.train(cl_cfg, run_paths(work / "models", "convlstm", clips))
        say("losses", "; ".join(results) + f"; ConvLSTM phase val mIoU {m['val']['mIoU']:.3f}", t0)

        t0 = time.perf_counter()
        zoomed_models(work / "models", work / "models" / "face" / "convlstm.pt", size, device)
        agree = fuse_agreement(work / "models", clips, device)
        assert agree >= (0.97 if device.type == "cuda" else 1.0), agree
        say("fuse", f"cascade labels on {device.type} vs cpu: {100 * agree:.2f} % of pixels agree", t0)

        t0 = time.perf_counter()
        frames = 10 if args.tiny else 60
        s = predict_video(work / "models", work, spec, frames)
        assert s["frames"] == frames, s
        say("predict", f"facemask predict --device {spec}: {s['frames']} frames, face in {s['faces_found']}", t0)

        t0 = time.perf_counter()
        speed_clips = write_data(work / "speed", crop, size, {"train": max(4, (speed_steps + 4) * batch // 10 + 1)})
        rates = {}
        for w in worker_counts:
            rates["fcn", w] = images_per_s(encoder, "fcn", speed_clips, batch, speed_steps, w, device)
        rates["convlstm", worker_counts[-1]] = images_per_s(encoder, "convlstm", speed_clips, 2, speed_steps,
                                                            worker_counts[-1], device)
        text = ", ".join(f"{p} {w} workers {r:.1f} img/s" for (p, w), r in rates.items())
        fcn_rate, cl_rate = max(r for (p, _), r in rates.items() if p == "fcn"), rates["convlstm", worker_counts[-1]]
        hours = 3 * PAPER_FRAMES * (PAPER_FCN_EPOCHS / fcn_rate + PAPER_CONVLSTM_EPOCHS / cl_rate) / 3600
        say("speed", f"{encoder} at {size}x{size}: {text}; the paper's schedule (3 regions x (80 + 60) epochs x "
                     f"{PAPER_FRAMES} frames) would take {hours:.1f} h on this device", t0)
    print(f"ok all ({time.perf_counter() - t_all:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

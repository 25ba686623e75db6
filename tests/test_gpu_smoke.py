"""The GPU smoke test: what a 300VW run on a GPU relies on, step by step, in a few minutes.

    pytest -m gpu tests/test_gpu_smoke.py -v       # on a GPU: ResNet-50 at 320 x 320, bf16, channels_last
    pytest tests/test_gpu_smoke.py                 # without CUDA: the tiny CPU variant only (ResNet-18, 32 x 32)

Each step runs in two variants: ``gpu`` (marked ``gpu``, skipped without CUDA; ``-m gpu`` selects it) and
``tiny`` (the CPU, tiny sizes, in the normal suite: the same code paths in seconds). The steps:

1. device: CUDA really used (`facemask.core.devices` refuses with the reason when it cannot be);
2. fcn: the FCN phase of `facemask.training.engine` for two short epochs, interrupted after the first and
   resumed (bf16 autocast and channels_last on CUDA), memory on the device;
3. losses: the ConvLSTM-FCN made from it, one step with each loss (cross-entropy, IoU, SegLoss Eq. 8 / Eq. 9,
   hard / soft weights, on scores / softmax): finite losses and non-zero ConvLSTM gradients; then the
   ConvLSTM phase of the engine for a few steps (its conv6 calibration on the device);
4. fuse: the cascade on a few clips on the device and on the CPU: the share of pixels with the same label;
5. predict: ``facemask predict <video> --device <device>`` on a synthetic 300VW-style video;
6. loader: training steps fed by the real loader (crops stored as the clips stage stores them, decoded,
   resized and augmented in worker processes, pinned memory on CUDA).

Speeds are measured by ``bench/bench_train.py`` (``--sizes paper --device cuda --workers 4``: training
images/s with the real loader, and from it the paper's schedule's wall time on that GPU), not here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from facemask.core.devices import resolve_device
from facemask.core.paramfile import load_overlay
from facemask.data.clips.loaders import ClipDataset, ShardedBatchSampler, batch_to_device, make_loader
from facemask.data.clips.store import SplitView, write_split
from facemask.data.synth.generate import generate
from facemask.inference.fusion import Cascade
from facemask.models.nets import FCN, ConvLSTMFCN
from facemask.models.registry import load_model, save_model
from facemask.training import engine, loop, losses
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths

ROOT = Path(__file__).resolve().parent.parent
LOSSES = [("ce", {}), ("iou", {}),
          *[("segloss", {"lfun": f, "g": g, "weights": w, "on": on})
            for f, g in (("eq8", 0.5), ("eq9", 0.0)) for w in ("hard", "soft") for on in ("scores", "softmax")]]

#: The paper's configuration (configs/paper.yaml over the defaults): what the smoke test trains, shrunk.
PAPER = load_overlay(ROOT / "configs" / "paper.yaml")


@dataclass(frozen=True)
class Mode:
    device: str
    encoder: str
    crop: int            # crop side as stored
    size: int            # input side
    batch: int           # FCN batch
    steps: int           # steps per epoch
    workers: int         # loader workers of the loader step
    frames: int          # frames of the predicted video


MODES = {"gpu": Mode("cuda", "resnet50", 256, 320, 16, 4, 4, 60),
         "tiny": Mode("cpu", "resnet18", 40, 32, 4, 2, 2, 10)}


@dataclass
class Smoke:
    mode: Mode
    device: torch.device
    work: Path
    clips: Path

    def model_cfg(self) -> dict:
        return {"encoder": self.mode.encoder, "encoder_weights": None, "output_stride": 16, "encoder_depth": 5,
                "peephole": True, "convlstm_init": "conv6", "output_scale": 1.0}

    def paths(self, phase: str) -> RunPaths:
        root = self.work / "models"
        return RunPaths(clips=self.clips, model=root / "face" / f"{phase}.pt", live=self.work / "live" / phase,
                        checkpoint=self.work / ".checkpoints" / f"{phase}.pt",
                        init=root / "face" / "fcn.pt" if phase == "convlstm" else None)


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
    rng = np.random.default_rng(0)
    for split, n in clips.items():
        crops, labels = discs(n * length, crop, rng)
        write_split(root / "face" / split, crops, labels, length, size)
    return root / "face"


@pytest.fixture(scope="module", params=[pytest.param("gpu", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")]), "tiny"])
def smoke(request, tmp_path_factory):
    mode = MODES[request.param]
    threads = torch.get_num_threads()
    if mode.device == "cpu":  # tiny tensors: one thread is faster, the more so on a busy machine
        torch.set_num_threads(1)
    torch.manual_seed(0)
    device = resolve_device(mode.device, what="--device")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    work = tmp_path_factory.mktemp(f"smoke-{request.param}")
    try:
        yield Smoke(mode, device, work, write_data(work / "data", mode.crop, mode.size, {"train": 8, "val": 2}))
    finally:
        torch.set_num_threads(threads)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def fcn(smoke) -> str:
    """The FCN phase trained, stopped after the first epoch's checkpoint, trained again: the resume message."""
    cfg = dataclasses.replace(TrainConfig.from_params(PAPER, "fcn", "face"), model=smoke.model_cfg(), epochs=2,
                              batch_size=smoke.mode.batch, max_steps_per_epoch=smoke.mode.steps,
                              device=str(smoke.device), workers=0)
    paths = smoke.paths("fcn")
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda r: records.append(r.getMessage())
    log = logging.getLogger("facemask.training.engine")
    level, save = log.level, engine.save_checkpoint

    def save_then_stop(path, state):
        save(path, state)
        if state["epoch"] == 1:
            raise Interrupt

    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(engine, "save_checkpoint", save_then_stop)
            with pytest.raises(Interrupt):
                engine.train(cfg, paths)
        engine.train(cfg, paths)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    resumed = [m for m in records if "resuming after epoch 1" in m]
    assert resumed and paths.model.is_file(), records
    return resumed[0]


@pytest.fixture(scope="module")
def convlstm(smoke, fcn) -> dict:
    """The ConvLSTM phase of the engine for a few steps (SegLoss Eq. 9), then untrained eye and mouth models
    beside the face models, so that the cascade and predict run: the phase's metrics."""
    cfg = dataclasses.replace(TrainConfig.from_params(PAPER, "convlstm", "face"),  # SegLoss Eq. 9, all layers
                              model=smoke.model_cfg(), epochs=1, batch_size=2, max_steps_per_epoch=smoke.mode.steps,
                              device=str(smoke.device), workers=0)
    metrics = engine.train(cfg, smoke.paths("convlstm"))
    face = load_model(smoke.paths("convlstm").model)
    for region, classes in (("eyes", 2), ("mouth", 3)):
        net = FCN(face.encoder_name, classes, output_stride=16)
        meta = {"encoder": face.encoder_name, "classes": classes, "input_size": smoke.mode.size, "T": 5,
                "region": region}
        save_model(smoke.work / "models" / region / "fcn.pt", net, "fcn", meta)
        save_model(smoke.work / "models" / region / "convlstm.pt", ConvLSTMFCN.from_fcn(net), "convlstm", meta)
    return metrics


def test_device(smoke):
    assert smoke.device.type == smoke.mode.device
    if smoke.device.type == "cuda":
        print(f"{torch.cuda.get_device_name(smoke.device)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"cudnn {torch.backends.cudnn.version()}")


def test_fcn_training_resumes_after_an_interruption(smoke, fcn):
    assert "resuming after epoch 1 of 2" in fcn
    if smoke.device.type == "cuda":
        assert torch.cuda.max_memory_allocated(smoke.device) > 0
        print(f"peak {torch.cuda.max_memory_allocated(smoke.device) / 2**30:.1f} GiB")


def test_every_loss_gives_a_finite_value_and_convlstm_gradients(smoke, fcn):
    ds = ClipDataset(smoke.clips / "train", window=5)
    x, y = batch_to_device(*(torch.stack(v) for v in zip(ds[0], ds[1])), smoke.device)
    net = load_model(smoke.paths("fcn").model, map_location=smoke.device)
    amp = smoke.device.type == "cuda"
    for name, kw in LOSSES:
        model = ConvLSTMFCN.from_fcn(net, init="glorot").to(smoke.device).train()
        loss = loop.forward_loss(model, x, y, losses.build_loss(name, **kw), amp)
        loss.backward()
        grad = sum(float(p.grad.abs().sum()) for p in model.convlstm.parameters() if p.grad is not None)
        assert torch.isfinite(loss.detach()) and grad > 0, (name, kw, float(loss), grad)


def test_convlstm_phase_trains_on_the_device(smoke, convlstm):
    assert np.isfinite(convlstm["val"]["mIoU"]) and 0 <= convlstm["val"]["mIoU"] <= 1
    assert smoke.paths("convlstm").model.is_file()


def test_fuse_on_the_device_agrees_with_the_cpu(smoke, convlstm):
    """The cascade's labels on the device and on the CPU, over two val clips: bf16 and cuDNN move a few
    pixels at most (the same device: every pixel)."""
    view = SplitView(smoke.clips / "val")
    windows = [[view.crop(c * view.length + t)[..., ::-1] for t in range(5)] for c in range(2)]
    labels = {dev.type: [r.cascade for r in Cascade.from_dir(smoke.work / "models", device=dev).run(windows)]
              for dev in (smoke.device, torch.device("cpu"))}
    pairs = [(u, v) for a, b in zip(labels[smoke.device.type], labels["cpu"]) for u, v in zip(a, b)]
    agree = sum(int((u == v).sum()) for u, v in pairs) / sum(u.size for u, _ in pairs)
    assert agree >= (0.97 if smoke.device.type == "cuda" else 1.0), agree


def test_predict_on_the_device(smoke, convlstm):
    """``facemask predict`` on one synthetic 300VW-style video at 320 x 240, on the device."""
    raw = smoke.work / "raw"
    generate(raw, dict(videos=1, frames=smoke.mode.frames, fps=30, width=320, height=240, categories=[1, 0, 0],
                       workers=1), seed=0)
    video, out = next(raw.glob("*/vid.avi")), smoke.work / "predict"
    res = subprocess.run([sys.executable, "-m", "facemask.app.cli", "predict", str(video), "--models",
                          str(smoke.work / "models"), "--out", str(out), "--device", str(smoke.device),
                          "--no-video", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == smoke.mode.frames and summary["faces_found"] > 0, summary


@pytest.mark.parametrize("phase", ["fcn", "convlstm"])
def test_the_loader_feeds_training_on_the_device(smoke, phase):
    """A few steps fed by the real loader in worker processes (store decode, resize, augmentation; pinned
    memory on CUDA): the batches reach the device and the loss stays finite."""
    amp = smoke.device.type == "cuda"
    T = 5 if phase == "convlstm" else None
    model = FCN(smoke.mode.encoder, 5)
    model = (ConvLSTMFCN.from_fcn(model, init="glorot") if T else model).to(smoke.device).train()
    if amp:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ds = ClipDataset(smoke.clips / "train", window=T, augment=True)
    batch = 2 if T else smoke.mode.batch
    loader = make_loader(ds, ShardedBatchSampler(len(ds), batch, seed=0), smoke.mode.workers, pin_memory=amp)
    steps = 0
    for x, y in loader:
        x, y = batch_to_device(x, y, smoke.device)
        assert x.device.type == smoke.device.type and x.shape[0] == batch
        loss = loop.forward_loss(model, x, y, losses.build_loss("ce"), amp)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        assert torch.isfinite(loss.detach())
        steps += 1
        if steps == 3:
            break
    assert steps == 3

"""One training / evaluation loop for every phase and region (Sect. 4.2).

* ``fcn``: the reference FCN from scratch (or ImageNet), cross-entropy, Adam, lr 1e-3 decaying
  linearly to 0 over the run.
* ``convlstm``: the ConvLSTM-FCN built from that region's trained FCN (every weight but ``conv6``),
  trained on T-frame windows with CE, the IoU loss (Eq. 3) or the Segmentation Loss (Eq. 7),
  Adam or RMSprop, lr for the ConvLSTM and lr·γ for every other layer, or the ConvLSTM alone
  (``freeze_backbone``).

After every epoch the model is scored on the validation split (mIoU over the non-background
classes, from one confusion matrix over the whole split); the best epoch's weights are the output.
Curves go to DVCLive, the best epoch's metrics to its ``metrics.json``.

Every epoch ends with a checkpoint (model, optimiser, scheduler, RNG states, best weights so far,
per-epoch history, and a fingerprint of everything that determines the result). A rerun with the
same fingerprint continues after the last finished epoch and ends, on CPU, with exactly the weights
and metrics of an uninterrupted run: the data order and augmentation depend only on (seed, epoch,
index) (see `facemask.data`), so there is no loader state to restore.

Runs on CPU or CUDA (channels_last on both: +10 % on this CPU; bf16 autocast on CUDA), and under ``torchrun`` as DDP: each global
batch is split into equal micro-batches over the processes (`facemask.data.ShardedBatchSampler`),
so N processes take the same steps as one process accumulating N micro-batches (``accum``), down to
the BatchNorm statistics of each micro-batch; only the BatchNorm running averages differ (DDP keeps
rank 0's). Only rank 0 writes files. Validation is shared out and its confusion matrices summed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from facemask import losses, nets
from facemask.data import ClipDataset, ShardedBatchSampler, eval_batches, make_loader
from facemask.clips import ORIG_LABELS
from facemask.io import atomic_file, load_ragged
from facemask.metrics import iou_per_class, mean_iou

log = logging.getLogger("facemask.engine")

PHASES = ("fcn", "convlstm")


@dataclass
class TrainConfig:
    """Everything that decides one training run (the stage fills it from params.yaml).

    `batch_size` counts items per optimiser step: frames for ``fcn``, T-frame sequences (the
    paper's N) for ``convlstm``. It is global: under DDP each process takes
    ``batch_size / (processes * accum)`` items per micro-batch.
    """

    phase: str                                  # fcn | convlstm
    classes: int
    model: dict = field(default_factory=dict)   # nets.build_model: encoder, encoder_weights, output_stride, peephole
    class_names: list[str] | None = None
    epochs: int = 1
    batch_size: int = 16
    T: int = 5                                  # convlstm: frames per sequence
    lr: float = 1e-3
    lr_decay: str = "linear"                    # linear (to 0 at the last step) | none
    optimizer: str = "adam"                     # adam | rmsprop
    gamma: float = 1.0                          # convlstm: lr * gamma for every layer but the ConvLSTM
    freeze_backbone: bool = False               # convlstm: train the ConvLSTM alone
    freeze_bn: bool = False                     # convlstm: keep the encoder's batch-norm statistics
    loss: str = "ce"                            # ce | iou | segloss
    loss_kwargs: dict = field(default_factory=dict)
    augment: bool = True
    max_steps_per_epoch: int | None = None      # cap on optimiser steps per epoch (quick runs)
    accum: int = 1                              # micro-batches accumulated per step in each process
    seed: int = 0
    device: str = "auto"                        # auto | cpu | cuda
    workers: int = 0                            # data-loader processes
    data: dict = field(default_factory=dict)    # what the data is (source, videos): recorded in the model file

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"phase {self.phase!r}; valid: {PHASES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}; valid: {sorted(OPTIMIZERS)}")
        if self.lr_decay not in ("linear", "none"):
            raise ValueError(f"lr_decay {self.lr_decay!r}; valid: linear, none")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.class_names is None:
            self.class_names = [f"class{c}" for c in range(self.classes)]
        if len(self.class_names) != self.classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.classes} classes")


@dataclass
class RunPaths:
    clips: Path                 # <clips>/<region>: {train,val}/{images,labels}.npy
    model: Path                 # the best weights (models/<region>/<phase>.pt)
    live: Path                  # DVCLive folder (metrics/train/<region>/<phase>)
    checkpoint: Path            # per-epoch state (models/.checkpoints/<region>/<phase>.pt)
    init: Path | None = None    # convlstm: the region's fcn.pt


# Fused Adam: 4x faster steps on CPU than the default loop. Keras's RMSprop (the authors'
# framework) uses rho = 0.9 where torch's default alpha is 0.99.
OPTIMIZERS = {
    "adam": lambda groups: torch.optim.Adam(groups, fused=True),
    "rmsprop": lambda groups: torch.optim.RMSprop(groups, alpha=0.9),
}


# ---------------------------------------------------------------------------------------------------
# Pieces


def build_model(cfg: TrainConfig, init: Path | None = None, calibration: torch.Tensor | None = None) -> torch.nn.Module:
    """The phase's model; a ConvLSTM-FCN from the region's FCN at `init` (`calibration`: a few training
    frames (N, 3, H, W) that scale the ``conv6`` initialisation, see `nets.init_from_conv6`)."""
    if cfg.phase == "fcn":
        return nets.build_model("fcn", {**cfg.model, "classes": cfg.classes})
    if init is None or not Path(init).is_file():
        raise FileNotFoundError(f"{init}: the ConvLSTM-FCN starts from this region's trained FCN (run train_fcn first)")
    fcn = nets.load_model(init, map_location="cpu")
    if fcn.classes != cfg.classes:
        raise ValueError(f"{init}: an FCN of {fcn.classes} classes, this region has {cfg.classes}")
    model = nets.ConvLSTMFCN.from_fcn(fcn, peephole=cfg.model.get("peephole", True),
                                      output_scale=cfg.model.get("output_scale", 1.0),
                                      init=cfg.model.get("convlstm_init", "conv6"), calibration=calibration)
    return model.freeze_backbone(cfg.freeze_backbone).freeze_bn(cfg.freeze_bn)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam/RMSprop; for the ConvLSTM-FCN lr on the ConvLSTM and lr*gamma elsewhere (or the ConvLSTM alone)."""
    if cfg.phase == "fcn":
        groups = [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}]
    else:
        groups = model.param_groups(cfg.lr, cfg.gamma)
    return OPTIMIZERS[cfg.optimizer](groups)


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if cfg.lr_decay == "linear":  # the paper's "learning rate 0.001 with linear decays", per step to 0
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total_steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


# ---------------------------------------------------------------------------------------------------
# Device, processes, determinism


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()


def _setup(device: str) -> tuple[_Dist, torch.device]:
    """The process's place (torchrun's RANK/WORLD_SIZE/LOCAL_RANK) and its device."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"train.device {device!r}; valid: auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but torch sees no CUDA device")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    env = os.environ
    d = _Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    if d.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(d.local_rank)
        return d, torch.device("cuda", d.local_rank)
    return d, torch.device("cpu")


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(cfg: TrainConfig, paths: RunPaths) -> str:
    """What a checkpoint must share with this run to be continued: the config (not device or
    workers, which change nothing), the data files, and the FCN a ConvLSTM-FCN starts from."""
    conf = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("device", "workers", "data")}
    files = []
    for split in ("train", "val"):
        for name in ("images.npy", "labels.npy"):
            st = (paths.clips / split / name).stat()
            files.append([split, name, st.st_size, st.st_mtime_ns])
    h = hashlib.sha256(json.dumps([conf, files], sort_keys=True, default=str).encode())
    if cfg.phase == "convlstm" and paths.init is not None:
        h.update(Path(paths.init).read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# The loop


def _forward_loss(model, x, y, loss_fn, amp: bool) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        scores = model(x)
    # (B, [T,] C, H, W) -> (N, C, H, W); the losses run in float32
    return loss_fn(scores.float().flatten(0, scores.dim() - 4), y.flatten(0, y.dim() - 3))


def train_epoch(net, batches, opt, sched, loss_fn, accum: int = 1, amp: bool = False) -> torch.Tensor:
    """One pass over `batches` (micro-batches, `accum` per optimiser step); returns (sum of losses, count)."""
    device = next(net.parameters()).device
    loss_sum = torch.zeros(2, dtype=torch.float64, device=device)
    for i, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        last = (i + 1) % accum == 0
        # under DDP, gradients are averaged over the processes on a step's last micro-batch only
        with contextlib.nullcontext() if last or not isinstance(net, DDP) else net.no_sync():
            loss = _forward_loss(net, x, y, loss_fn, amp)
            (loss / accum).backward()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss is {loss.item()} at micro-batch {i}")
        loss_sum += torch.stack([loss.detach().double(), torch.ones_like(loss_sum[0])])
        if last:
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
        if hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{loss.item():.4f}")
    return loss_sum


@torch.no_grad()
def evaluate(model, loader, classes: int, device: torch.device, amp: bool = False,
             targets: list[list[np.ndarray]] | None = None) -> torch.Tensor:
    """The (C, C) confusion matrix of `model` over `loader` (rows: truth, columns: prediction).

    With `targets` (per batch of `loader`, the labels of its frames, in order, at each crop's own
    resolution) every frame's scores are resized bilinearly to its crop's size before the arg-max, as the
    test set is scored (`facemask.fusion.labels_at`); otherwise the packed labels are compared at the
    packed size.
    """
    model.eval()
    cm = torch.zeros(classes * classes, dtype=torch.int64, device=device)
    for b, (x, y) in enumerate(loader):
        x = x.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores = model(x)
        if targets is None:
            y = y.to(device, non_blocking=True)
            cm += torch.bincount((y * classes + scores.argmax(dim=-3)).flatten(), minlength=classes * classes)
            continue
        scores = scores.float().flatten(0, scores.dim() - 4)  # (frames, C, S, S)
        for s, t in zip(scores, targets[b]):
            pred = F.interpolate(s[None], size=t.shape, mode="bilinear", align_corners=False)[0].argmax(0)
            t = torch.from_numpy(t).to(device).long()
            cm += torch.bincount((t * classes + pred).flatten(), minlength=classes * classes)
    return cm.view(classes, classes)


def _score(record: dict) -> float:
    """Val mIoU, with an undefined one (no foreground class anywhere) ranking last."""
    return record["val/mIoU"] if np.isfinite(record["val/mIoU"]) else -np.inf


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _open_live(paths: RunPaths, history: list[dict]):
    """A fresh DVCLive folder holding the epochs already done (replayed from the checkpoint), so
    its curves always match the checkpointed state, however the last run ended."""
    from dvclive import Live

    class CurvesOnly(Live):
        def _init_dvc(self):  # no repository look-up: files in `dir` only
            self._dvc_file = "dvc.yaml"

    kw = dict(resume=False, dvcyaml=False, save_dvc_exp=False)
    try:
        live = Live(str(paths.live), **kw)
    except Exception as e:  # DVCLive's repository look-up fails in a git repo without commits
        log.warning("DVCLive could not open the repository (%s); writing %s without it", e, paths.live)
        live = CurvesOnly(str(paths.live), **kw)
    for record in history:
        for key, value in record.items():
            live.log_metric(key, value)
        live.next_step()
    return live


def train(cfg: TrainConfig, paths: RunPaths) -> dict:
    """Train one phase of one region; write the best weights to `paths.model`; return its metrics."""
    d, device = _setup(cfg.device)
    cpu = device.type == "cpu"
    deterministic = torch.are_deterministic_algorithms_enabled()
    if cpu:
        torch.use_deterministic_algorithms(True)
    try:
        return _train(cfg, paths, d, device)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, paths: RunPaths, d: _Dist, device: torch.device) -> dict:
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    amp = device.type == "cuda"
    window = cfg.T if cfg.phase == "convlstm" else None

    train_set = ClipDataset(paths.clips / "train", window=window, augment=cfg.augment, seed=cfg.seed)
    val_set = ClipDataset(paths.clips / "val", window=window)
    sampler = ShardedBatchSampler(len(train_set), cfg.batch_size, seed=cfg.seed, rank=d.rank, world=d.world,
                                  accum=cfg.accum, max_batches=cfg.max_steps_per_epoch)
    val_batches = eval_batches(len(val_set), cfg.batch_size, d.rank, d.world)
    val_loader = make_loader(val_set, val_batches, cfg.workers, pin_memory=amp)
    val_targets = None  # the val labels at each crop's own size, when the clips stage wrote them
    if (paths.clips / "val" / ORIG_LABELS).is_file():
        orig = load_ragged(paths.clips / "val" / ORIG_LABELS)
        val_targets = [[orig[f] for i in batch for f in val_set.frames_of(i)] for batch in val_batches]
    unit = f"{cfg.T}-frame sequences" if window else "frames"
    if d.main:
        log.info("%s: %d train %s (%d steps of %d per epoch), %d val %s, %d process(es) on %s",
                 paths.clips, len(train_set), unit, sampler.steps, cfg.batch_size, len(val_set), unit, d.world, device)

    calibration = None
    if cfg.phase == "convlstm":  # every 5th training clip's first window, un-augmented: the same in each process
        frames = train_set.images[::5, :cfg.T]
        calibration = torch.from_numpy(np.array(frames)).flatten(0, 1).permute(0, 3, 1, 2).float() / 255  # a copy: writable
    model = build_model(cfg, paths.init, calibration).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, cfg.epochs * sampler.steps)
    loss_fn = losses.build_loss(cfg.loss, **cfg.loss_kwargs)

    # Continue from the last finished epoch when the checkpoint belongs to this very run.
    fp = fingerprint(cfg, paths)
    start, history, best = 0, [], {"epoch": -1, "metrics": None, "state": None}
    converted = None  # convlstm: the val metrics of the model as converted from its FCN, before any step

    def validate() -> dict:
        cm = evaluate(model, val_loader, cfg.classes, device, amp, val_targets)
        if d.world > 1:
            dist.all_reduce(cm)
        cm = cm.cpu().numpy()
        return {"val/mIoU": mean_iou(cm), **{f"val/IoU/{n}": float(v) for n, v in zip(cfg.class_names, iou_per_class(cm))}}
    if paths.checkpoint.is_file():
        ckpt = torch.load(paths.checkpoint, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") == fp:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            start, history, best = ckpt["epoch"], ckpt["history"], ckpt["best"]
            converted = ckpt.get("converted")
            _set_rng_state(ckpt["rng"])
            if d.main:
                log.info("%s: resuming after epoch %d of %d", paths.checkpoint, start, cfg.epochs)
        elif d.main:
            log.info("%s: written by another configuration; starting afresh", paths.checkpoint)
        del ckpt

    if cfg.phase == "convlstm" and converted is None:  # how much the conversion itself costs (DESIGN.md)
        converted = validate()
        if d.main:
            log.info("converted from %s: val mIoU %.4f before fine-tuning", paths.init, converted["val/mIoU"])
    net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if d.world > 1 else model
    live = _open_live(paths, history) if d.main else None

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = make_loader(train_set, sampler, cfg.workers, pin_memory=amp, seed=cfg.seed * 100_003 + epoch)
        lrs = {"lr" if len(opt.param_groups) == 1 else f"lr/{g['name']}": g["lr"] for g in opt.param_groups}
        bar = tqdm(loader, desc=f"{paths.clips.name} {cfg.phase} {epoch + 1}/{cfg.epochs}", disable=not d.main,
                   leave=False, dynamic_ncols=True)
        loss_sum = train_epoch(net, bar, opt, sched, loss_fn, cfg.accum, amp)
        if d.world > 1:
            dist.all_reduce(loss_sum)
            for b in model.buffers():  # BatchNorm statistics: rank 0's, as DDP broadcasts them
                dist.broadcast(b, 0)
        train_time = time.perf_counter() - t0

        record = {"train/loss": float(loss_sum[0] / loss_sum[1]), **validate(), **lrs}  # lrs: of the epoch's first step
        history.append(record)
        if best["metrics"] is None or _score(record) > _score(best["metrics"]):
            best = {"epoch": epoch, "metrics": record,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        if d.main:
            items = sampler.steps * cfg.batch_size * (cfg.T if window else 1)
            log.info("epoch %d/%d: loss %.4f, val mIoU %.4f (best %.4f at epoch %d); %.1f img/s, %.0f s",
                     epoch + 1, cfg.epochs, record["train/loss"], record["val/mIoU"], best["metrics"]["val/mIoU"],
                     best["epoch"] + 1, items / train_time, time.perf_counter() - t0)
            for key, value in record.items():
                live.log_metric(key, value)
            live.next_step()
            save_checkpoint(paths.checkpoint, {
                "fingerprint": fp, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "best": best, "history": history, "rng": _rng_state(),
                "converted": converted})
        d.barrier()

    metrics = {"best_epoch": best["epoch"] + 1, **_nest({k: v for k, v in best["metrics"].items()
                                                         if not k.startswith("lr")})}
    if converted is not None:
        metrics["converted"] = _nest(converted)
    if d.main:
        model.load_state_dict(best["state"])
        config = {**cfg.model, "classes": cfg.classes, "class_names": cfg.class_names, "region": paths.clips.name,
                  "input_size": int(train_set.images.shape[2]), "data": dict(cfg.data)}
        if cfg.phase == "convlstm":
            config["T"] = cfg.T
            config["output_scale"] = model.output_scale  # the number, where the params say `auto`
        nets.save_model(paths.model, model, cfg.phase, config, epoch=best["epoch"] + 1, metrics=metrics)
        live.summary = dict(metrics)
        live.end()
        paths.checkpoint.unlink(missing_ok=True)
        log.info("wrote %s (epoch %d, val mIoU %.4f) and %s", paths.model, metrics["best_epoch"],
                 metrics["val"]["mIoU"], paths.live)
    d.barrier()
    return metrics


def save_checkpoint(path: Path, state: dict) -> None:
    """Written under a temporary name and renamed: an interruption never leaves half a checkpoint."""
    with atomic_file(path, "wb") as f:
        torch.save(state, f)

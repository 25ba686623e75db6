"""One training / evaluation loop for every phase and region (Sect. 4.2).

* ``fcn``: the reference FCN from scratch (or ImageNet), cross-entropy, Adam, lr 1e-3 decaying
  linearly to 0 over the run.
* ``convlstm``: the ConvLSTM-FCN built from that region's trained FCN (every weight but ``conv6``),
  trained on T-frame windows with CE, the IoU loss (Eq. 3) or the Segmentation Loss (Eq. 7),
  Adam or RMSprop, lr for the ConvLSTM and lr·γ for every other layer, or the ConvLSTM alone
  (``freeze_backbone``).

After every epoch the model is scored on the validation split (mIoU over the non-background
classes, from one confusion matrix over the whole split); the best epoch's weights are the output.
Curves go to DVCLive, the best epoch's metrics to its ``metrics.json``. A ConvLSTM-FCN is also scored as
converted, before any step, and no phase that falls far below that start is kept (`facemask.training.guard`):
the output is the best by val mIoU of the head-only phase and the epochs that the guard passes, else the
converted start; ``metrics.json`` names it (``kept``) and the phases rejected (``guard``).

Every epoch ends with a checkpoint (model, optimiser, scheduler, RNG states, best weights so far,
per-epoch history, and a fingerprint of everything that determines the result). A rerun with the
same fingerprint continues after the last finished epoch and ends, on CPU, with exactly the weights
and metrics of an uninterrupted run: the data order and augmentation depend only on (seed, epoch,
index) (see `facemask.data.clips.loaders`), so there is no loader state to restore.

Runs on CPU or CUDA (channels_last on both: +10 % on this CPU; bf16 autocast and ``cudnn.benchmark`` on
CUDA; `facemask.core.devices` picks the device or says why CUDA cannot be used), and under ``torchrun`` as DDP,
on one node or several. The batch in the params is global — items per optimiser step, the paper's 16
frames or N = 2 sequences on any hardware — and so is the learning rate, which never scales with the
number of processes. Each global batch is cut into near-equal micro-batches over the processes
(`facemask.data.clips.loaders.ShardedBatchSampler`, any process count: with more processes than items, the spare
ones carry a zero-weight padding item), so P processes take the same steps as one process
accumulating P micro-batches (``accum``), down to the BatchNorm statistics of each micro-batch; only
the BatchNorm running averages differ (DDP keeps rank 0's). ``sync_bn`` (CUDA) normalises over all
processes' micro-batches instead. A run interrupted on one process count continues on another: the
checkpoint's fingerprint leaves out how a global batch is computed (device, workers, accum, sync_bn,
compile). Only rank 0 writes files; rank 0 builds the first model before the others, so pretrained
weights are downloaded once into the shared cache. Validation is shared out and its confusion
matrices summed. Nothing waits on the device inside a step except at the log points (every
`LOG_EVERY` micro-batches on CUDA): the loss's finiteness is checked there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from facemask.core.errors import ParamsError
from facemask.core.io import atomic_file
from facemask.core.iou import iou_per_class, mean_iou
from facemask.data.clips.loaders import (ClipDataset, ShardedBatchSampler, batch_to_device, check_split, eval_batches,
                                    make_loader)
from facemask.data.clips.store import load_orig_labels
from facemask.models.nets import ConvLSTMFCN
from facemask.models.registry import build_model, load_model, save_model
from facemask.training import losses
from facemask.training.config import TrainConfig
from facemask.training.distributed import Dist, join, process_group
from facemask.training.guard import Guard
from facemask.training.head import train_head
from facemask.training.loop import OPTIMIZERS, evaluate, forward_loss, probe_evaluate, train_epoch

log = logging.getLogger(__name__)

#: Settings that change how a global batch is computed, not which: a checkpoint continues across them.
HARDWARE = ("device", "workers", "accum", "sync_bn", "compile")
#: On CUDA, the micro-batches between two host synchronisations (progress bar, finiteness check).
LOG_EVERY = 25


@dataclass
class RunPaths:
    clips: Path                 # <clips>/<region>: {train,val}/{images,labels}.npy
    model: Path                 # the best weights (models/<region>/<phase>.pt)
    live: Path                  # DVCLive folder (metrics/train/<region>/<phase>)
    checkpoint: Path            # per-epoch state (models/.checkpoints/<region>/<phase>.pt)
    init: Path | None = None    # convlstm: the region's fcn.pt


# ---------------------------------------------------------------------------------------------------
# Pieces


def phase_model(cfg: TrainConfig, init: Path | None = None, calibration=None,
                device: torch.device | str = "cpu") -> torch.nn.Module:
    """The phase's model; a ConvLSTM-FCN from the region's FCN at `init` (`calibration`: a few training
    frames, uint8 (..., H, W, 3) or float (N, 3, H, W), that scale the ``conv6`` initialisation, run in
    small batches on `device`, see `nets.conv6_score_std`)."""
    if cfg.phase == "fcn":
        return build_model("fcn", {**cfg.model, "classes": cfg.classes})
    if init is None or not Path(init).is_file():
        raise FileNotFoundError(f"{init}: the ConvLSTM-FCN starts from this region's trained FCN (run train_fcn first)")
    fcn = load_model(init, map_location=device)
    if fcn.classes != cfg.classes:
        raise ValueError(f"{init}: an FCN of {fcn.classes} classes, this region has {cfg.classes}")
    model = ConvLSTMFCN.from_fcn(fcn, peephole=cfg.model["peephole"], output_scale=cfg.model["output_scale"],
                                 init=cfg.model["convlstm_init"], calibration=calibration)
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
# Processes, determinism


def check_config(cfg: TrainConfig, processes: int, device_type: str | None = None) -> None:
    """Whether `cfg` can train on `processes` processes (and `device_type`, when known); the stage calls it
    for both phases before any training, so a bad combination fails in minutes, not after the FCNs.

    Raises:
        ValueError: naming the setting and what would work (`facemask.data.clips.loaders.check_split`; ``sync_bn``
            with several processes on the CPU: torch's SyncBatchNorm runs on GPUs only).
    """
    idle = check_split(cfg.batch_size, processes, cfg.accum, cfg.sync_bn)
    if cfg.sync_bn and processes > 1 and device_type == "cpu":
        raise ValueError("sync_bn needs CUDA: torch's SyncBatchNorm does not run on the CPU")
    if idle and processes > 1:
        log.warning("%s: %d of %d processes get no item of a batch of %d (a zero-weight padding item instead)",
                    cfg.phase, idle, processes, cfg.batch_size)


def ddp_preflight(model: torch.nn.Module, train_set, loss_fn, cfg: TrainConfig, d: Dist, device: torch.device,
                  amp: bool = False) -> None:
    """Before a multi-process run trains: does every trainable parameter get a gradient from a micro-batch?

    DDP (without ``find_unused_parameters``) needs a gradient for every parameter on every step; one that
    gets none stops the run only at its second step, with DDP's "Expected to have finished reduction in the
    prior iteration" (issue 24). So every process runs, once, what an idle process runs each step: the
    padding micro-batch (the first training item, loss x 0, `train_epoch`), forward and backward in
    training mode; the processes add up their counts, and a parameter without a gradient on any of them
    stops all of them in seconds with one line naming the setting. Nothing of the check remains: the
    gradients are dropped and the buffers (BatchNorm statistics), the random state (dropout) and every
    module's train/eval mode are restored, so the run is the one it would be without it. One process:
    nothing to check (and nothing runs).

    Raises:
        ParamsError: ``params.yaml: <setting> ...: N trainable parameters get no gradient (names...)``.
    """
    if d.world == 1:
        return
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    modes = {m: m.training for m in model.modules()}
    x, y = batch_to_device(*torch.utils.data.default_collate([train_set[(0, 0)]]), device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model.train()
            for p in params.values():
                p.grad = None
            (forward_loss(model, x, y, loss_fn, amp) * 0.0).backward()
        missing = [n for n, p in params.items() if p.grad is None]
    finally:
        for p in params.values():
            p.grad = None
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
        for m, training in modes.items():
            m.training = training
    count = torch.tensor(len(missing), device=device)
    dist.all_reduce(count)
    if count.item() == 0:
        return
    m = cfg.model
    if "batch_norm" in m:                                       # a Table 2 baseline (stages.train baselines)
        setting = f"baselines.archs ({m.get('arch')}, baselines.batch_norm {m['batch_norm']})"
    elif m.get("arch", "fcn") != "fcn":
        setting = f"model.arch {m['arch']}"
    elif missing and not missing[0].startswith("encoder."):
        setting = f"model.peephole {m.get('peephole')} / model.convlstm_init {m.get('convlstm_init')}"
    else:
        setting = f"model.encoder {m.get('encoder')} / model.encoder_depth {m.get('encoder_depth')}"
    what = (f"{len(missing)} trainable parameter(s) get no gradient from a training micro-batch ("
            + ", ".join(missing[:3]) + (f" and {len(missing) - 3} more)" if len(missing) > 3 else ")")
            if missing else "trainable parameters get no gradient on another process")
    raise ParamsError(f"params.yaml: {setting} (train.{cfg.phase} on {d.world} processes): {what}; DDP needs one "
                      f"for every parameter at every step: train on one process (train.launcher: python) or "
                      f"change the setting")


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(cfg: TrainConfig, paths: RunPaths) -> str:
    """What a checkpoint must share with this run to be continued: the config (not the `HARDWARE`
    settings, which change how a batch is computed, not which, nor the data record), the data files,
    and the FCN a ConvLSTM-FCN starts from."""
    conf = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in (*HARDWARE, "data")}
    files = []
    for split in ("train", "val"):
        for p in sorted(f for f in (paths.clips / split).iterdir() if f.is_file()):
            st = p.stat()
            files.append([split, p.name, st.st_size, st.st_mtime_ns])
    h = hashlib.sha256(json.dumps([conf, files], sort_keys=True, default=str).encode())
    if cfg.phase == "convlstm" and paths.init is not None:
        h.update(Path(paths.init).read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# The loop


def _score(record: dict) -> float:
    """Val mIoU, with an undefined one (no foreground class anywhere) ranking last."""
    return record["val/mIoU"] if np.isfinite(record["val/mIoU"]) else -np.inf


def _state(model: torch.nn.Module) -> dict:
    """A copy of `model`'s weights and buffers on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


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


def train(cfg: TrainConfig, paths: RunPaths, keep_checkpoint: bool = False) -> dict:
    """Train one phase of one region; write the best weights to `paths.model`; return its metrics.

    The last checkpoint is removed once the model is written, unless `keep_checkpoint` (a caller training
    several models in one stage keeps the finished ones' until all are done: a rerun after an interruption
    then rewrites them from their checkpoints instead of retraining). Under torchrun the process group is
    set up here and torn down on return, unless the caller had set it up (then it stays the caller's).
    """
    with process_group(cfg.device):
        d, device = join(cfg.device)  # the group is up (or not needed): this process's place and device
        deterministic = torch.are_deterministic_algorithms_enabled()
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            random.seed(cfg.seed)
            np.random.seed(cfg.seed)
            torch.manual_seed(cfg.seed)
            run = _TrainingRun(cfg, paths, d, device)
            run.build()
            run.resume()
            run.fit()
            return run.finish(keep_checkpoint)
        finally:
            torch.use_deterministic_algorithms(deterministic)


class _TrainingRun:
    """One call of `train`, step by step: the data (on construction), `build` the model and its optimiser,
    `resume` from a checkpoint of this very run, `fit` the remaining epochs, `finish` (write the best model)."""

    def __init__(self, cfg: TrainConfig, paths: RunPaths, d: Dist, device: torch.device):
        self.cfg, self.paths, self.d, self.device = cfg, paths, d, device
        self.guard = Guard(cfg.guard_drop, cfg.guard_share)
        self.amp = device.type == "cuda"
        window = cfg.T if cfg.phase == "convlstm" else None
        check_config(cfg, d.world, device.type)
        self.train_set = ClipDataset(paths.clips / "train", window=window, augment=cfg.augment, seed=cfg.seed,
                                     corrupt=cfg.corrupt)
        val_set = ClipDataset(paths.clips / "val", window=window)
        self.sampler = ShardedBatchSampler(len(self.train_set), cfg.batch_size, seed=cfg.seed, rank=d.rank,
                                           world=d.world, accum=cfg.accum, max_batches=cfg.max_steps_per_epoch,
                                           sync_bn=cfg.sync_bn)
        val_batches = eval_batches(len(val_set), cfg.batch_size, d.rank, d.world)
        self.val_loader = make_loader(val_set, val_batches, cfg.workers, pin_memory=self.amp)
        self.loader = make_loader(self.train_set, self.sampler, cfg.workers, pin_memory=self.amp,
                                  seed=cfg.seed)  # workers persist
        self.val_targets = None  # the val labels at each crop's own size, when the split has them
        orig = load_orig_labels(paths.clips / "val")
        if orig is not None:
            self.val_targets = [[orig[f] for i in batch for f in val_set.frames_of(i)] for batch in val_batches]
        if d.main:
            unit = f"{cfg.T}-frame sequences" if window else "frames"
            log.info("%s: %d train %s (%d steps of %d per epoch), %d val %s, %d process(es) on %s", paths.clips,
                     len(self.train_set), unit, self.sampler.steps, cfg.batch_size, len(val_set), unit, d.world, device)

    def build(self) -> None:
        """The phase's model on the device (channels_last; SyncBatchNorm when asked), its optimiser, schedule, loss."""
        cfg, d = self.cfg, self.d
        calibration = None
        if cfg.phase == "convlstm":  # every 5th training clip's first window, un-augmented: the same in each process
            calibration = np.asarray(self.train_set.images[::5, :cfg.T])
        with d.main_first():  # pretrained weights: downloaded by rank 0, then read from the cache by the others
            model = phase_model(cfg, self.paths.init, calibration, self.device).to(self.device)
        if cfg.sync_bn and d.world > 1:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(memory_format=torch.channels_last)
        self.opt = build_optimizer(self.model, cfg)
        self.sched = build_scheduler(self.opt, cfg, cfg.epochs * self.sampler.steps)
        self.loss_fn = losses.build_loss(cfg.loss, **cfg.loss_kwargs)
        # several processes: a setting DDP cannot train fails here, in seconds, not at the second step
        ddp_preflight(self.model, self.train_set, self.loss_fn, cfg, d, self.device, self.amp)

    def validate(self) -> dict:
        """Val mIoU and per-class IoU of the model as it is (the processes' confusion matrices summed); for a
        ConvLSTM-FCN also the black probe's mIoU on the val windows (`loop.probe_evaluate`: its memory, on val)."""
        cfg = self.cfg
        cm = evaluate(self.model, self.val_loader, cfg.classes, self.device, self.amp, self.val_targets)
        probe = probe_evaluate(self.model, self.val_loader, cfg.classes, self.device, self.amp) \
            if cfg.phase == "convlstm" else None
        if self.d.world > 1:
            dist.all_reduce(cm)
            if probe is not None:
                dist.all_reduce(probe)
        cm = cm.cpu().numpy()
        out = {"val/mIoU": mean_iou(cm), **{f"val/IoU/{n}": float(v) for n, v in zip(cfg.class_names, iou_per_class(cm))}}
        if probe is not None:
            out["val/probe/black/mIoU"] = mean_iou(probe.cpu().numpy())
        return out

    def resume(self) -> None:
        """Continue after the last finished epoch when the checkpoint belongs to this very run (`fingerprint`);
        a new ConvLSTM-FCN is scored once as converted, before any step (DESIGN.md)."""
        cfg, paths, d = self.cfg, self.paths, self.d
        self.fp = fingerprint(cfg, paths)
        self.start, self.history = 0, []
        self.best = {"epoch": -1, "kept": None, "metrics": None, "state": None}  # see `keep`
        self.converted = None  # convlstm: the val metrics of the model as converted from its FCN
        self.head = None       # convlstm: the head-only phase's loss and val metrics (`train_head`)
        self.rejected = {}     # convlstm: the phases the guard did not keep, and why (`keep`)
        if paths.checkpoint.is_file():
            ckpt = torch.load(paths.checkpoint, map_location="cpu", weights_only=False)
            if ckpt.get("fingerprint") == self.fp:
                self.model.load_state_dict(ckpt["model"])
                self.opt.load_state_dict(ckpt["optimizer"])
                self.sched.load_state_dict(ckpt["scheduler"])
                self.start, self.history, self.best = ckpt["epoch"], ckpt["history"], ckpt["best"]
                self.converted, self.head, self.rejected = ckpt["converted"], ckpt["head"], ckpt["rejected"]
                _set_rng_state(ckpt["rng"])
                if d.main:
                    log.info("%s: resuming after epoch %d of %d", paths.checkpoint, self.start, cfg.epochs)
            elif d.main:
                log.info("%s: written by another configuration; starting afresh", paths.checkpoint)
            del ckpt
        if cfg.phase == "convlstm" and self.converted is None:  # how much the conversion itself costs
            self.converted = self.validate()
            self.best = {"epoch": -1, "kept": "converted", "metrics": self.converted, "state": _state(self.model)}
            if d.main:
                log.info("converted from %s: val mIoU %.4f before fine-tuning", paths.init, self.converted["val/mIoU"])
            if cfg.head_steps:
                self.head = self.train_head()
                self.keep("head-only phase", -1, self.head)

    def train_head(self) -> dict:
        """The head-only phase (`facemask.training.head`), the same in every process, before the first epoch of
        a new run (a resumed run has it in its weights); its val metrics are recorded beside the converted's."""
        cfg = self.cfg
        opt = OPTIMIZERS[cfg.optimizer]([{"params": list(self.model.convlstm.parameters()), "lr": cfg.lr,
                                          "name": "convlstm"}])
        windows = ClipDataset(self.paths.clips / "train", window=cfg.T)
        done = train_head(self.model, windows, opt, self.loss_fn, cfg.head_steps, cfg.batch_size, cfg.corrupt,
                          cfg.seed, self.device, progress=self.d.main)
        record = {**done, **self.validate()}
        if self.d.main:
            log.info("head-only phase: %d steps on cached features (corrupt %.2f), loss %.4f, val mIoU %.4f",
                     done["steps"], cfg.corrupt, done["loss"], record["val/mIoU"])
        return record

    def fit(self) -> None:
        """The remaining epochs, each followed by validation and (rank 0) the curves and a checkpoint."""
        cfg, d, device = self.cfg, self.d, self.device
        net = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None) if d.world > 1 else self.model
        if cfg.compile:
            net = torch.compile(net)
        self.live = _open_live(self.paths, self.history) if d.main else None
        for epoch in range(self.start, cfg.epochs):
            t0 = time.perf_counter()
            loss_sum = self.train_one_epoch(net, epoch)
            train_time = time.perf_counter() - t0
            record = {"train/loss": float(loss_sum[0] / loss_sum[1]), **self.validate(), **self.lrs}
            self.history.append(record)
            self.keep(f"epoch {epoch + 1}", epoch, record)
            if d.main:
                self.end_epoch(epoch, record, train_time, time.perf_counter() - t0)
            d.barrier()

    def keep(self, name: str, epoch: int, record: dict) -> None:
        """After a phase (`name`: the head-only phase, an epoch; `record`: its val metrics): the model as it is
        becomes the best when it scores higher than the best so far, or when that is the converted start, which
        any trained state the guard passes replaces. A phase that falls far below the converted start
        (`facemask.training.guard.Guard`) is not kept: one warning line, its reasons recorded, and the model
        returns to the best state (the optimiser's moments cleared), which the next phase continues from."""
        reasons = self.guard.check(record, self.converted) if self.converted is not None else []
        if reasons:
            self.rejected[name] = "; ".join(reasons)
            if self.d.main:
                back = "converted start" if self.best["kept"] == "converted" else self.best["kept"]
                log.warning("%s: %s falls far below the converted start: %s; not kept, back to the %s",
                            self.paths.clips.name, name, self.rejected[name], back)
            self.model.load_state_dict(self.best["state"])
            self.opt.state.clear()
            return
        best = self.best
        if best["metrics"] is None or best["kept"] == "converted" or _score(record) > _score(best["metrics"]):
            self.best = {"epoch": epoch, "kept": name, "metrics": record, "state": _state(self.model)}

    def train_one_epoch(self, net, epoch: int) -> torch.Tensor:
        """One epoch's steps on every process; returns (sum of losses, count) over all processes. Keeps the
        learning rates of its first step in `lrs`."""
        cfg, d = self.cfg, self.d
        net.train()
        self.sampler.set_epoch(epoch)  # the epoch travels to the (persistent) workers with every index
        groups = self.opt.param_groups
        self.lrs = {"lr" if len(groups) == 1 else f"lr/{g['name']}": g["lr"] for g in groups}
        bar = tqdm(self.loader, desc=f"{self.paths.clips.name} {cfg.phase} {epoch + 1}/{cfg.epochs}",
                   disable=not d.main, leave=False, dynamic_ncols=True)
        loss_sum = train_epoch(net, bar, self.opt, self.sched, self.loss_fn, self.sampler.divisors, self.amp,
                               check_every=1 if self.device.type == "cpu" else LOG_EVERY)
        if d.world > 1:
            dist.all_reduce(loss_sum)
            for b in self.model.buffers():  # BatchNorm statistics: rank 0's, as DDP broadcasts them
                dist.broadcast(b, 0)
        return loss_sum

    def end_epoch(self, epoch: int, record: dict, train_time: float, seconds: float) -> None:
        """Rank 0: the epoch's log line, its curves, and the checkpoint a rerun continues from."""
        cfg, best = self.cfg, self.best
        items = self.sampler.steps * cfg.batch_size * (cfg.T if cfg.phase == "convlstm" else 1)
        log.info("epoch %d/%d: loss %.4f, val mIoU %.4f (best %.4f: %s); %.1f img/s, %.0f s",
                 epoch + 1, cfg.epochs, record["train/loss"], record["val/mIoU"], best["metrics"]["val/mIoU"],
                 best["kept"], items / train_time, seconds)
        for key, value in record.items():
            self.live.log_metric(key, value)
        self.live.next_step()
        save_checkpoint(self.paths.checkpoint, {
            "fingerprint": self.fp, "epoch": epoch + 1, "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "best": best,
            "history": self.history, "rng": _rng_state(), "converted": self.converted, "head": self.head,
            "rejected": self.rejected})

    def finish(self, keep_checkpoint: bool) -> dict:
        """Rank 0 writes the best epoch's weights (`facemask.models.registry.save_model`) and the summary."""
        cfg, paths, d, best = self.cfg, self.paths, self.d, self.best
        metrics = {"best_epoch": best["epoch"] + 1, "kept": best["kept"],
                   **_nest({k: v for k, v in best["metrics"].items() if k.startswith(("train/", "val/"))})}
        if self.converted is not None:
            metrics["converted"] = _nest(self.converted)
            metrics["guard"] = {"drop": cfg.guard_drop, "share": cfg.guard_share, "rejected": dict(self.rejected)}
        if self.head is not None:
            metrics["head"] = _nest(self.head)
        if d.main:
            model = self.model
            model.load_state_dict(best["state"])
            config = {**cfg.model, "classes": cfg.classes, "class_names": cfg.class_names, "region": paths.clips.name,
                      "input_size": int(self.train_set.images.shape[2]), "data": dict(cfg.data)}
            if cfg.phase == "convlstm":
                config["T"] = cfg.T
                config["output_scale"] = model.output_scale  # the number, where the params say `auto`
            save_model(paths.model, model, cfg.phase, config, epoch=best["epoch"] + 1, metrics=metrics)
            self.live.summary = dict(metrics)
            self.live.end()
            if not keep_checkpoint:
                paths.checkpoint.unlink(missing_ok=True)
            log.info("wrote %s (%s, val mIoU %.4f) and %s", paths.model, best["kept"], metrics["val"]["mIoU"],
                     paths.live)
        d.barrier()
        return metrics


def save_checkpoint(path: Path, state: dict) -> None:
    """Written under a temporary name and renamed: an interruption never leaves half a checkpoint."""
    with atomic_file(path, "wb") as f:
        torch.save(state, f)

"""What decides one training run (`TrainConfig`), made from the validated settings (`TrainConfig.from_params`).

`TrainConfig` has no defaults of its own for what params.yaml sets: every such field comes from
`facemask.core.params.Params` (the one home of the settings and their defaults) through `from_params`, which is
how the training stages, the tests and the benchmarks make one (a test shrinks it with `dataclasses.replace`).
What is fixed by the paper's recipe rather than set (the FCN phase: Adam, cross-entropy, nothing frozen) is
written in `from_params`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from facemask.core.params import Params
from facemask.data.labels import REGION_CLASS_NAMES
from facemask.models.registry import PHASES
from facemask.training.guard import Guard
from facemask.training.loop import OPTIMIZERS

#: The ``model`` keys each phase reads (dvc.yaml declares the same: an FCN does not retrain for a ConvLSTM key).
FCN_KEYS = ("arch", "encoder", "encoder_weights", "output_stride", "encoder_depth")
CONVLSTM_KEYS = ("peephole", "convlstm_init", "output_scale")


@dataclass
class TrainConfig:
    """Everything that decides one training run.

    `batch_size` counts items per optimiser step: frames for ``fcn``, T-frame sequences (the paper's N) for
    ``convlstm``. It is global: under DDP the processes share each batch
    (`facemask.data.clips.loaders.ShardedBatchSampler`), and `lr` is that of the global batch on any process count.
    """

    phase: str                     # fcn | convlstm
    classes: int
    model: dict                    # registry.build_model's keys: FCN_KEYS (+ CONVLSTM_KEYS for convlstm)
    epochs: int
    batch_size: int
    lr: float
    lr_decay: str                  # linear (to 0 at the last step) | none
    augment: bool
    max_steps_per_epoch: int | None  # cap on optimiser steps per epoch
    accum: int                     # micro-batches accumulated per step in each process
    seed: int
    device: str                    # auto | cpu | cuda | cuda:N (facemask.core.devices)
    workers: int                   # data-loader processes (persistent across epochs)
    sync_bn: bool                  # DDP on CUDA: SyncBatchNorm over the processes' micro-batches
    compile: bool                  # torch.compile the training forward
    optimizer: str                 # adam | rmsprop
    loss: str                      # ce | iou | segloss
    loss_kwargs: dict              # segloss: lfun, g, weights, on
    T: int | None                  # convlstm: frames per sequence
    gamma: float                   # convlstm: lr * gamma for every layer but the ConvLSTM
    freeze_backbone: bool          # convlstm: train the ConvLSTM alone
    freeze_bn: bool                # convlstm: keep the encoder's batch-norm statistics
    head_steps: int                # convlstm: head-only steps on cached features first (training.head)
    corrupt: float                 # convlstm: share of windows with one frame blacked / noised
    guard_drop: float              # convlstm: a phase whose val mIoU falls more than this below the converted start's,
    guard_share: float             # or a class's below this share of its, is not kept (training.guard)
    class_names: list[str] | None = None
    data: dict = field(default_factory=dict)  # what the data is (source, videos): recorded in the model file

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"phase {self.phase!r}; valid: {PHASES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}; valid: {sorted(OPTIMIZERS)}")
        Guard(self.guard_drop, self.guard_share)  # raises on values out of range
        if self.class_names is None:
            self.class_names = [f"class{c}" for c in range(self.classes)]
        if len(self.class_names) != self.classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.classes} classes")

    @classmethod
    def from_params(cls, params: Params, phase: str, region: str, data: dict | None = None) -> TrainConfig:
        """The config of `phase` (``fcn`` | ``convlstm``) for `region` from the settings; `data` (what the models
        are trained on: ``{"source", "videos"}``) is recorded in the model file."""
        t, r = params.train, params.region(region)
        p = getattr(t, phase)
        keys = FCN_KEYS if phase == "fcn" else FCN_KEYS + CONVLSTM_KEYS
        names = list(REGION_CLASS_NAMES.get(region, ()))
        common = dict(phase=phase, classes=r.classes, model={k: getattr(params.model, k) for k in keys},
                      class_names=names if len(names) == r.classes else None, epochs=p.epochs, lr=p.lr,
                      lr_decay=p.lr_decay, augment=p.augment, max_steps_per_epoch=p.max_steps_per_epoch,
                      accum=p.accum, seed=params.seed, device=t.device, workers=t.workers, sync_bn=t.sync_bn,
                      compile=t.compile, data=dict(data or {}))
        if phase == "fcn":  # the paper's FCN recipe: Adam, cross-entropy, every layer trained
            return cls(**common, batch_size=p.batch_size, optimizer="adam", loss="ce", loss_kwargs={}, T=None,
                       gamma=1.0, freeze_backbone=False, freeze_bn=False, head_steps=0, corrupt=0.0, guard_drop=1.0,
                       guard_share=0.0)  # the FCN starts untrained: nothing to guard
        segloss = {"lfun": p.lfun, "g": p.g, "weights": p.weights, "on": p.segloss_on} if p.loss == "segloss" else {}
        return cls(**common, batch_size=p.N, optimizer=p.optimizer, loss=p.loss, loss_kwargs=segloss, T=p.T,
                   gamma=r.gamma, freeze_backbone=p.freeze_backbone, freeze_bn=p.freeze_bn, head_steps=p.head_steps,
                   corrupt=p.corrupt, guard_drop=p.guard_drop, guard_share=p.guard_share)

    @classmethod
    def for_baseline(cls, params: Params, arch: str, region: str, data: dict | None = None) -> TrainConfig:
        """The FCN phase's config for one of Table 2's baselines (``fcn_vgg16`` | ``deeplab_v2``): its model keys
        are the arch, the encoder weights and ``baselines.batch_norm`` (the archs fix their encoder and strides)."""
        cfg = cls.from_params(params, "fcn", region, data=data)
        return dataclasses.replace(cfg, model={"arch": arch, "encoder_weights": params.model.encoder_weights,
                                               "batch_norm": params.baselines.batch_norm})

"""The one training loop (every phase, region and process count) and the validation pass.

`train_epoch` takes the micro-batches of an epoch, `evaluate` scores a model on a split; both run whatever
model and batches they are given: the FCN and ConvLSTM phases (`facemask.training.engine`) and the head-only
phase on cached features (`facemask.training.head`).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from facemask.data.clips.loaders import batch_to_device

# Fused Adam: 4x faster steps on CPU than the default loop. Keras's RMSprop (the authors'
# framework) uses rho = 0.9 where torch's default alpha is 0.99.
OPTIMIZERS = {
    "adam": lambda groups: torch.optim.Adam(groups, fused=True),
    "rmsprop": lambda groups: torch.optim.RMSprop(groups, alpha=0.9),
}


def forward_loss(model, x, y, loss_fn, amp: bool) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        scores = model(x)
    # (B, [T,] C, H, W) -> (N, C, H, W); the losses run in float32
    return loss_fn(scores.float().flatten(0, scores.dim() - 4), y.flatten(0, y.dim() - 3))


def train_epoch(net, batches, opt, sched, loss_fn, divisors=(1.0,), amp: bool = False,
                check_every: int = 1) -> torch.Tensor:
    """One pass over `batches` (micro-batches, ``len(divisors)`` per optimiser step); returns (sum of losses, count).

    Each micro-batch's loss is divided by its entry of `divisors` before the backward pass (the number of
    micro-batches when they are equal; 0: a padding micro-batch, weight 0, not counted): see
    `facemask.data.clips.loaders.ShardedBatchSampler`. Host and device synchronise only every `check_every` micro-batches
    (and at the end), where a non-finite loss raises.
    """
    accum = len(divisors)
    device = next(net.parameters()).device
    loss_sum = torch.zeros(2, dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # the first micro-batch with a non-finite loss
    n = len(batches)
    for i, (x, y) in enumerate(batches):
        x, y = batch_to_device(x, y, device)
        div = divisors[i % accum]
        last = (i + 1) % accum == 0
        # under DDP, gradients are averaged over the processes on a step's last micro-batch only
        with contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync():
            loss = forward_loss(net, x, y, loss_fn, amp)
            (loss / div if div else loss * 0.0).backward()
        if div:
            loss = loss.detach()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), i, first_bad)
            loss_sum += torch.stack([loss.double(), torch.ones_like(loss_sum[0])])
        if (i + 1) % check_every == 0 or i + 1 == n:  # a host sync: only here
            if first_bad.item() >= 0:
                raise FloatingPointError(f"the training loss is not finite at micro-batch {first_bad.item()}")
            if hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{loss.item():.4f}")
        if last:
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
    return loss_sum


@torch.no_grad()
def evaluate(model, loader, classes: int, device: torch.device, amp: bool = False,
             targets: list[list[np.ndarray]] | None = None) -> torch.Tensor:
    """The (C, C) confusion matrix of `model` over `loader` (rows: truth, columns: prediction).

    With `targets` (per batch of `loader`, the labels of its frames, in order, at each crop's own
    resolution) every frame's scores are resized bilinearly to its crop's size before the arg-max, as the
    test set is scored (`facemask.inference.fusion.labels_at`); otherwise the packed labels are compared at the
    packed size.
    """
    model.eval()
    cm = torch.zeros(classes * classes, dtype=torch.int64, device=device)
    for b, (x, y) in enumerate(loader):
        x, y = batch_to_device(x, y, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores = model(x)
        if targets is None:
            cm += torch.bincount((y * classes + scores.argmax(dim=-3)).flatten(), minlength=classes * classes)
            continue
        scores = scores.float().flatten(0, scores.dim() - 4)  # (frames, C, S, S)
        for s, t in zip(scores, targets[b]):
            pred = F.interpolate(s[None], size=t.shape, mode="bilinear", align_corners=False)[0].argmax(0)
            t = torch.from_numpy(t).to(device).long()
            cm += torch.bincount((t * classes + pred).flatten(), minlength=classes * classes)
    return cm.view(classes, classes)


@torch.no_grad()
def probe_evaluate(model, loader, classes: int, device: torch.device, amp: bool = False) -> torch.Tensor:
    """The (C, C) confusion matrix, at the packed size, of the last frame of every window of `loader` with that
    frame replaced by an all-black one in the input (its labels kept): what a model holds of the window's past
    (the black probe of `facemask.inference.probes`, on the validation windows)."""
    model.eval()
    cm = torch.zeros(classes * classes, dtype=torch.int64, device=device)
    for x, y in loader:
        x, y = batch_to_device(x, y, device)
        x = x.clone()
        x[:, -1] = 0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores = model(x)[:, -1]
        cm += torch.bincount((y[:, -1] * classes + scores.argmax(dim=-3)).flatten(), minlength=classes * classes)
    return cm.view(classes, classes)

"""The head-only phase: the new ConvLSTM trained alone, on cached features of the frozen encoder.

Not in the paper, which fine-tunes the ConvLSTM-FCN end to end on 2 x 5-frame sequences a step. At the CPU
default's budget of a few hundred such steps the ConvLSTM never opens its memory: its forget gates stay at
their start (0.03), and resetting its state at every frame changes 0.2 % of the pixels (issue 23). With the
encoder frozen, its features of every training window are computed once; the ConvLSTM — a 1x1 ConvLSTM on
h x w cells, then the bilinear resize — then trains for thousands of steps in seconds.

`corrupt` replaces, in that share of the steps' windows, one frame after the first by the features of an
all-black or a uniform-noise frame, its labels kept (`facemask.data.clips.loaders.corrupt_window` does the same in
image space for the end-to-end epochs): a model that holds the window's earlier frames is rewarded, a
per-frame one cannot do better than guess.

The phase runs identically in every process (the same windows and draws, no gradient exchange) before the
phase's own epochs (`facemask.training.engine`), through the one loop (`facemask.training.loop.train_epoch`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from facemask.data.clips.loaders import CORRUPTIONS, ClipDataset, batch_to_device
from facemask.training.loop import train_epoch

#: Noise frames whose features are cached for the corruptions.
NOISE_FRAMES = 8


@torch.no_grad()
def cache_features(model: nn.Module, dataset: ClipDataset, device: torch.device, batch: int = 8,
                   progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's features of every window of `dataset` (un-augmented), float16 (N, T, c, h, w) on the CPU,
    and their packed labels uint8 (N, T, S, S)."""
    was = model.training
    model.eval()
    feats, labels = [], []
    idx = range(len(dataset))
    for i in tqdm(range(0, len(dataset), batch), desc="cache features", unit="batch", disable=not progress, leave=False):
        items = [dataset[j] for j in idx[i:i + batch]]
        x, y = batch_to_device(torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]), device)
        f = model.features(x.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        feats.append(f.reshape(*x.shape[:2], *f.shape[1:]).to(torch.float16).cpu())
        labels.append(y.to(torch.uint8).cpu())
    model.train(was)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def corruption_features(model: nn.Module, size: int, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """The features of an all-black frame (1, c, h, w) and of `NOISE_FRAMES` uniform-noise frames of `size`."""
    was = model.training
    model.eval()
    rng = np.random.default_rng([seed, 29])
    frames = np.concatenate([np.zeros((1, size, size, 3), np.uint8),
                             rng.integers(0, 256, (NOISE_FRAMES, size, size, 3), dtype=np.uint8)])
    x, _ = batch_to_device(torch.from_numpy(frames).permute(0, 3, 1, 2), torch.zeros(1), device)
    f = model.features(x).float().cpu()
    model.train(was)
    return {"black": f[:1], "noise": f[1:]}


class HeadBatches:
    """`steps` batches of `n` windows drawn with replacement from the cached features, a `corrupt` share of
    them with one frame after the first replaced by a black or noise frame's features; seeded by `seed`."""

    def __init__(self, feats: torch.Tensor, labels: torch.Tensor, extra: dict[str, torch.Tensor], steps: int,
                 n: int, corrupt: float, seed: int):
        self.feats, self.labels, self.extra = feats, labels, extra
        self.steps, self.n, self.corrupt, self.seed = int(steps), int(n), float(corrupt), seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, 31])
        T = self.feats.shape[1]
        for _ in range(self.steps):
            idx = torch.from_numpy(rng.integers(0, len(self.feats), self.n))
            x = self.feats[idx].float()
            for b in range(self.n):
                if T > 1 and rng.random() < self.corrupt:
                    t, kind = int(rng.integers(1, T)), CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
                    pool = self.extra[kind]
                    x[b, t] = pool[int(rng.integers(len(pool)))]
            yield x, self.labels[idx]


class Head(nn.Module):
    """A ConvLSTM-FCN's head (`facemask.models.nets.ConvLSTMFCN.head`) as a model of features (B, T, c, h, w)."""

    def __init__(self, model: nn.Module, size: int):
        super().__init__()
        self.model, self.size = model, int(size)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.model.head(f, (self.size, self.size))


def train_head(model: nn.Module, train_set: ClipDataset, opt: torch.optim.Optimizer, loss_fn: nn.Module,
               steps: int, n: int, corrupt: float, seed: int, device: torch.device, progress: bool = True) -> dict:
    """`steps` optimiser steps of `opt` (over the ConvLSTM's parameters) on cached features of `train_set`'s
    windows; returns ``{"steps", "loss"}`` (the mean training loss)."""
    feats, labels = cache_features(model, train_set, device, progress=progress)
    size = labels.shape[-1]
    batches = HeadBatches(feats, labels, corruption_features(model, size, device, seed), steps, n, corrupt, seed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    head = Head(model, size).train()
    bar = tqdm(batches, desc="head-only", unit="step", disable=not progress, leave=False, dynamic_ncols=True)
    loss_sum = train_epoch(head, bar, opt, sched, loss_fn, check_every=max(1, steps))
    return {"steps": int(steps), "loss": float(loss_sum[0] / max(float(loss_sum[1]), 1.0))}

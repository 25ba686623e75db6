"""Datasets over the packed clips: single frames (FCN phase) and T-frame windows (ConvLSTM phase).

The clips stage writes, per region (`face`, `eyes`, `mouth`) and split (`train`, `val`, `test`), a
`facemask.data.clips.store` split: each frame's face crop once, encoded, read as the packed arrays (clips, L, S, S, 3)
uint8 RGB and (clips, L, S, S) uint8 class ids (a frame is decoded, cut and resized when read, in the
loader's workers). Plain ``images.npy`` / ``labels.npy`` of those shapes are read too (memory-mapped).
ConvLSTM windows start at
0, T, 2T ... inside each clip, so they coincide with the zoom boxes, which are held fixed over
the same T-frame windows (Sect. 4.1).

Randomness never depends on who reads the data: the order of the samples is a function of
(seed, epoch) (`train_batches`) and a sample's augmentation a function of (seed, epoch, index); the
training sampler hands the epoch to the dataset with every index, so persistent loader workers need no
message between epochs. The number of loader workers or DDP processes, and whether a run was
interrupted and resumed, therefore change nothing in what the model sees.

Items stay uint8 up to the training device (a quarter of float32's bytes through the workers' queues and
the host-to-device copy); `batch_to_device` makes them float there. The models normalise inside
(`facemask.models.nets`), so nothing else is needed.
"""
from __future__ import annotations

import random
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from facemask.data.clips.store import load_split


def build_augment() -> A.Compose:
    """Mild photometric and geometric jitter. A horizontal flip is safe: no class is left/right."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10),
                 border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 1.0), p=0.2),
    ])


class ClipDataset(Dataset):
    """Frames (`window=None`) or T-frame windows of the packed clips of one split.

    A frame item is ``(image (3, H, W) uint8 RGB, label (H, W) uint8)``; a window item is
    ``(images (T, 3, H, W), labels (T, H, W))`` (`batch_to_device` makes a batch float in [0, 1] and long).
    An index is an int (augmented with the epoch of `set_epoch`) or ``(epoch, index)``, as
    `ShardedBatchSampler` yields them. With `augment`, one random draw is applied to every frame of a
    window and to its labels.

    Args:
        split_dir: folder with `images.npy` and `labels.npy`.
        window: T for T-frame windows aligned at 0, T, 2T ... in each clip; None for single frames.
        augment: apply `build_augment()`.
        seed: base seed of the augmentation; the draw for an item is seeded by (seed, epoch, index).
        corrupt: windows only: the share of windows in which one frame after the first is replaced by a
            black or a uniform-noise frame (`corrupt_window`), its labels kept: a model that remembers the
            window's earlier frames can still segment it, a per-frame model cannot (not in the paper; the
            memory training of DESIGN.md). Drawn per (seed, epoch, index), after the augmentation.
    """

    def __init__(self, split_dir: str | Path, window: int | None = None, augment: bool = False, seed: int = 0,
                 corrupt: float = 0.0):
        self.images, self.labels = load_split(split_dir)
        clips, length = self.images.shape[:2]
        self.window = window
        self.per_clip = length if window is None else length // window
        if self.per_clip == 0:
            raise ValueError(f"{split_dir}: clips of {length} frames hold no window of {window}")
        self.n = clips * self.per_clip
        self.augment = build_augment() if augment else None
        self.seed, self.epoch, self.corrupt = seed, 0, float(corrupt)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (call before creating the loader's iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def frames_of(self, index: int) -> list[int]:
        """Flat frame numbers (clip · L + t) of item `index`: one for a frame item, T for a window."""
        clip, k = divmod(index, self.per_clip)
        length = self.images.shape[1]
        if self.window is None:
            return [clip * length + k]
        return [clip * length + k * self.window + t for t in range(self.window)]

    def __getitem__(self, item: int | tuple[int, int]):
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        clip, k = divmod(index, self.per_clip)
        if self.window is None:
            img, lbl = self.images[clip, k:k + 1], self.labels[clip, k:k + 1]
        else:
            img, lbl = self.images[clip, k * self.window:(k + 1) * self.window], \
                self.labels[clip, k * self.window:(k + 1) * self.window]
        img, lbl = np.array(img), np.array(lbl)  # copies out of the read-only memory map
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            self.augment.set_random_state(rng, random.Random(int(rng.integers(2**63))))
            out = self.augment(images=img, masks=lbl)
            img, lbl = out["images"], out["masks"]
        if self.corrupt and self.window is not None:
            corrupt_window(img, np.random.default_rng([self.seed, epoch, index, 17]), self.corrupt)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(0, 3, 1, 2)
        y = torch.from_numpy(np.ascontiguousarray(lbl))
        return (x[0], y[0]) if self.window is None else (x, y)


#: What `corrupt_window` puts in place of a frame.
CORRUPTIONS = ("black", "noise")


def corrupt_window(images: np.ndarray, rng: np.random.Generator, share: float) -> tuple[int, str] | None:
    """With probability `share`, replace one frame after the first of the window `images` (T, H, W, 3) uint8, in
    place, by an all-black frame or uniform noise (even odds); returns (frame, kind) or None."""
    if len(images) < 2 or rng.random() >= share:
        return None
    t, kind = int(rng.integers(1, len(images))), CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    images[t] = 0 if kind == "black" else rng.integers(0, 256, images[t].shape, dtype=np.uint8)
    return t, kind


def batch_to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch on `device` as the models take it: uint8 images float in [0, 1] (frames (B, 3, H, W)
    channels_last, as the models run: +10 % on this CPU too), labels long. The conversion runs on the
    device, after the copy."""
    x = x.to(device, non_blocking=True)
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()  # uint8 images; features stay as they are
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True).long()


def train_batches(n: int, batch_size: int, seed: int, epoch: int, max_batches: int | None = None) -> list[np.ndarray]:
    """This epoch's global batches: a permutation seeded by (seed, epoch), cut into full batches."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    batches = [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    if not batches:
        raise ValueError(f"{n} training items: fewer than one batch of {batch_size}")
    return batches[:max_batches] if max_batches else batches


def micro_sizes(batch_size: int, parts: int) -> list[int]:
    """Sizes of `parts` near-equal pieces of a batch, in order: the first ``batch_size % parts`` one larger."""
    q, r = divmod(batch_size, parts)
    return [q + (k < r) for k in range(parts)]


def check_split(batch_size: int, world: int = 1, accum: int = 1, sync_bn: bool = False) -> int:
    """Whether a global batch can be cut for `world` processes x `accum` micro-batches; the number of
    processes that get no item of a step (they train on a padding item of weight 0, see
    `ShardedBatchSampler`).

    Raises:
        ValueError: naming the combination and what would work: a batch or `accum` below 1; `accum` > 1
            with fewer items than micro-batches (some would be empty); `sync_bn` with idle processes
            (their padding would enter the synchronised statistics).
    """
    if batch_size < 1 or accum < 1 or world < 1:
        raise ValueError(f"batch {batch_size}, accum {accum}, processes {world}: each must be at least 1")
    parts = world * accum
    if parts <= batch_size:
        return 0
    if accum > 1:
        raise ValueError(f"a batch of {batch_size} cut into {world} process(es) x accum {accum} = {parts} "
                         f"micro-batches leaves some empty; use accum <= {max(1, batch_size // world)}")
    if sync_bn:
        raise ValueError(f"{world} processes for a batch of {batch_size}: {world - batch_size} would hold only a "
                         f"padding item, which SyncBatchNorm would mix into the batch statistics; use at most "
                         f"{batch_size} processes or train.sync_bn false")
    return world - batch_size


class ShardedBatchSampler:
    """The micro-batches this process trains on, in order, for one epoch.

    Every optimiser step consumes one global batch of `batch_size` items, whatever the number of
    processes. It is cut into ``world * accum`` near-equal micro-batches (`micro_sizes`); process
    `rank` takes micro-batches ``rank * accum ... rank * accum + accum - 1`` and accumulates their
    gradients, and DDP averages over the processes. Each micro-batch's loss is divided by `divisors`
    (``batch_size / (world * its size)``; ``accum`` when the cut is even), so the averaged gradient is
    that of the global batch's mean loss for any cut. So one process with ``accum = k`` and k processes
    with ``accum = 1`` see exactly the same micro-batches (down to BatchNorm statistics) and take the
    same steps, up to floating-point summation order. With more processes than items, a process whose
    micro-batch is empty trains on the batch's first item with weight 0 (divisor 0): DDP's gradient
    all-reduce needs every process, and the item only touches that process's own BatchNorm statistics,
    which DDP overwrites with rank 0's. Items are yielded as ``(epoch, index)``.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int = 0, world: int = 1, accum: int = 1,
                 max_batches: int | None = None, sync_bn: bool = False):
        check_split(batch_size, world, accum, sync_bn)
        sizes = micro_sizes(batch_size, world * accum)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        self.pieces = [(int(starts[k]), sizes[k]) for k in range(rank * accum, (rank + 1) * accum)]
        self.divisors = [batch_size / (world * m) if m else 0.0 for _, m in self.pieces]
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.accum = rank, accum
        self.max_batches, self.epoch = max_batches, 0
        self.steps = len(train_batches(n, batch_size, seed, 0, max_batches))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps * self.accum

    def __iter__(self):
        for batch in train_batches(self.n, self.batch_size, self.seed, self.epoch, self.max_batches):
            for start, m in self.pieces:
                yield [(self.epoch, int(i)) for i in (batch[start:start + m] if m else batch[:1])]


def eval_batches(n: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """A contiguous share of 0..n-1 for this process, in batches; the shares cover every item once."""
    lo, hi = n * rank // world, n * (rank + 1) // world
    return [list(range(i, min(i + batch_size, hi))) for i in range(lo, hi, batch_size)]


def worker_init_fn(worker_id: int) -> None:
    """Seed a loader worker from torch's per-worker seed; one thread each (the cores are shared)."""
    seed = get_worker_info().seed % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def make_loader(dataset: Dataset, batch_sampler, workers: int = 0, pin_memory: bool = False,
                seed: int = 0) -> DataLoader:
    """A loader over `batch_sampler`; its own generator (seeded by `seed`) seeds the workers, so
    creating it draws nothing from torch's global random state. Its workers persist across epochs
    (iterate it again for the next one; the sampler carries the epoch)."""
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, pin_memory=pin_memory,
                      worker_init_fn=worker_init_fn if workers else None, persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(seed))


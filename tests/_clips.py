"""Tiny packed clips in the clips stage's layout (``<root>/<region>/<split>/{images,labels}.npy``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_clips(root: Path, region: str = "face", classes: int = 5, clips: dict[str, int] | None = None,
                length: int = 10, size: int = 32, seed: int = 0) -> Path:
    """Nested discs of classes 1..C-1 at a random place per frame, each class its own colour plus noise,
    so a model can learn something in a few steps. Returns ``<root>/<region>``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    palette = rng.integers(0, 256, (classes, 3))
    for split, n in (clips or {"train": 4, "val": 2}).items():
        labels = np.zeros((n, length, size, size), np.uint8)
        for i in range(n):
            for t in range(length):
                cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
                for c in range(1, classes):
                    r = size / 3 * (1 - (c - 1) / classes)
                    labels[i, t][(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = c
        images = (0.8 * palette[labels] + rng.integers(0, 50, labels.shape + (3,))).astype(np.uint8)
        d = Path(root) / region / split
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "images.npy", images)
        np.save(d / "labels.npy", labels)
    return Path(root) / region

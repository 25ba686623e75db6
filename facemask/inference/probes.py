"""Memory probes: does a temporal model use its past? (Not in the paper; the evidence its claim needs.)

On each test clip, the last frame of every full T-frame window is replaced, in the models' input only, by
an all-black frame (``black``), uniform noise (``noise``) — the two corruptions training uses —, colour bars
(``bars``) or a checkerboard (``checker``) — which no training step and no benchmark event shows —; its ground
truth stays the frame's. A per-frame model sees nothing of the face there. A model that remembers the window's
earlier frames can hold the face: the *hold* shows the FCN's labels of the frame before carried to this frame's
crop (`facemask.evaluation.conditions`). The ``cut`` probe puts the same frame of another subject's clip there
(`facemask.core.methods.donor_clip`), scored against that frame's ground truth: a cut a model should follow. `probe_clip` gives the labels on the replaced frames of

* ``fcn`` — the per-frame FCN (what no memory gives),
* ``primary`` — the face ConvLSTM-FCN on the paper's windows (its memory: the window's earlier frames),
* ``primary_stream`` — the same with the state carried across the clip's windows (`facemask.inference.fusion.Stream`),
* ``primary_reset`` — the same weights with the state reset at every frame (the memoryless control).

The evaluate stage scores them (``metrics/eval/memory.json``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from facemask.core.methods import PROBES, probe_frames
from facemask.inference.fusion import ClipPredictor, Stream, fcn_probs, labels_at, per_frame, window_labels, windows_of


def replacement(kind: str, shape: tuple[int, ...], seed: Sequence[int]) -> np.ndarray:
    """The frame of a probe `kind` (``black``, ``noise``, ``bars``, ``checker``; ``cut`` takes another clip's
    frame, `probe_clip`), uint8 `shape` (H, W, 3): all black; uniform noise in 0..255 drawn by a generator seeded
    by `seed`; seven vertical colour bars at 75 % (white, yellow, cyan, green, magenta, red, blue: a test card);
    a black-and-white checkerboard of 8-pixel squares."""
    h, w = shape[:2]
    if kind == "black":
        return np.zeros(shape, np.uint8)
    if kind == "noise":
        return np.random.default_rng(list(seed)).integers(0, 256, shape, dtype=np.uint8)
    if kind == "bars":
        colours = np.array(BARS, np.uint8)
        return np.broadcast_to(colours[np.arange(w) * len(BARS) // w][None], (h, w, 3)).copy()
    if kind == "checker":
        square = (np.arange(h)[:, None] // 8 + np.arange(w)[None] // 8) % 2
        return np.repeat((255 * square).astype(np.uint8)[..., None], 3, axis=2)
    raise ValueError(f"unknown probe {kind!r}; valid: {', '.join(PROBES)}")


#: The colour bars (RGB) of the ``bars`` probe, left to right.
BARS = ((191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0), (0, 0, 191))


def probe_clip(predictor: ClipPredictor, crops: Sequence[np.ndarray], packed: np.ndarray, kind: str,
               seed: Sequence[int], donor: np.ndarray | None = None) -> dict[str, dict[int, np.ndarray]]:
    """``{method: {frame index: labels}}`` of `PROBED` on the replaced frames (`probe_frames`) of one clip
    whose packed frames (L, S, S, 3) get the `kind` replacement (`replacement`, seeded by `seed` and the
    frame; ``cut``: the same frame of `donor`, another subject's packed clip). Labels at each crop's own size,
    as every method's."""
    cascade = predictor.cascade
    T, n = cascade.T, len(crops)
    frames = np.array(packed)
    probed = probe_frames(n, T)
    if kind == "cut" and (donor is None or len(donor) < n):
        raise ValueError("the cut probe needs a donor clip at least as long as the clip")
    for i in probed:
        frames[i] = donor[i] if kind == "cut" else replacement(kind, frames[i].shape, (*seed, i))
    idx = windows_of(n, T)
    windows, inputs = [[crops[i] for i in w] for w in idx], frames[np.asarray(idx)]
    face, size, batch, device = cascade.models["face"], cascade.sizes["face"], cascade.batch, cascade.device
    probs = fcn_probs(predictor.fcn, frames[probed], device)
    out = {"fcn": {i: labels_at(p, crops[i].shape[:2]) for i, p in zip(probed, probs)}}
    runs = {"primary": {}, "primary_stream": {"stream": Stream()}, "primary_reset": {"memory": False}}
    for name, forward in runs.items():
        labels = per_frame(idx, window_labels(face, windows, size, batch, device, inputs, **forward), n)
        out[name] = {i: labels[i] for i in probed}
    return out

"""The cascade of Sect. 3.3 / 4.2: a primary face model, then zoomed eye and mouth models.

For every T-frame window of face crops:

1. the primary (face) ConvLSTM-FCN segments the window; its scores are resized bilinearly to each
   crop's own size and arg-maxed, so every later step works at the crop's original resolution;
2. the eye and the mouth region are located in the primary's labels of the whole window with
   `facemask.data.clips.regions.zoom_box` (no noise): the boxes the zoomed models were trained on, made the same way
   from predicted instead of true labels, one pixel box held fixed over the window (Sect. 4.2);
3. each box is cropped from every original-resolution crop (`facemask.data.clips.regions.crop_zoom`, as in
   training), the zoomed ConvLSTM-FCN segments the T crops, its scores are resized back to the box's
   size and arg-maxed;
4. the zoomed labels replace the primary's inside the box (`merge_region`).

**Fallback when the primary predicts no eye (or no mouth) anywhere in a window** (a closed eye, a
profile, a blurred frame): the box of the previous window of the same stream (the face moves little in
T frames; "previous"); at the start of a stream, `zoom_box`'s own fallback, the part's typical place in
the predicted face (`facemask.data.clips.regions.FALLBACK`, in the whole crop when no face is predicted either;
"typical"). `WindowResult.fallback` records which one was used.

**Replacement rule** (`merge_region`), inside the box only (clipped to the crop):

* a pixel the zoomed model gives one of its part classes becomes that class (eye model: eye → eyes;
  mouth model: lips → lips, inner mouth → inner mouth), whatever the primary said there;
* a pixel the zoomed model calls background but the primary called one of that model's parts becomes
  **skin**: the zoomed model says "not this part", and eyes and mouth lie inside the face, ringed by skin
  in every mask (the eyebrows are the skin's upper edge);
* every other pixel keeps the primary's label (skin, background, or the other model's parts).

The eye box is merged first, then the mouth box, so where the two boxes overlap the mouth model has the
last word on lips and inner mouth, and the eye model's eyes survive unless the mouth model claims them.

`ClipPredictor` adds the paper's comparison methods on whole test clips, with the same resizing: the
baseline FCN frame by frame, and the FCN with temporal smoothing (`facemask.inference.smoothing.temporal_smooth` of
the softmax at model resolution, then resized: the crops of a clip differ in size, the model's grid is
the one they share). Models run channels_last, under bf16 autocast on CUDA.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facemask.core import devices
from facemask.core.methods import CLIP_METHODS, TEMPORAL_METHODS
from facemask.data.clips.regions import DEFAULT_ZOOM, ZOOM_REGIONS, crop_zoom, zoom_box
from facemask.data.labels import REGION_CLASS_IDS, REGIONS, SKIN
from facemask.inference.smoothing import temporal_smooth
from facemask.models.registry import load_model


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` on `device` in eval mode, channels_last."""
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------------
# Tensors in, labels out


def to_input(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 RGB crops (..., h, w, 3) -> float (..., 3, size, size) in [0, 1] (resized by `resize_image`)."""
    images = np.asarray(images)
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    if flat.shape[1:3] != (size, size):
        flat = np.stack([resize_image(im, size) for im in flat])
    x = torch.from_numpy(np.require(flat, requirements=["C", "W"])).permute(0, 3, 1, 2).float().div_(255)
    return x.reshape(*lead, 3, size, size)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """A crop resized to size × size as the clips stage packs the training frames (`cv2.INTER_AREA`)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def labels_at(scores: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) scores or probabilities -> (H, W) uint8 class ids: bilinear resize to `size`, then arg-max."""
    s = scores.float().unsqueeze(0)
    if tuple(s.shape[-2:]) != tuple(size):
        s = F.interpolate(s, size=tuple(int(v) for v in size), mode="bilinear", align_corners=False)
    # max(0).indices: the same first maximum as argmax(0), ~7x faster on CPU over the leading dim (2.14)
    return s[0].max(0).indices.to(torch.uint8).cpu().numpy()


class Stream:
    """The ConvLSTM state a stream of windows carries from one window to the next (a clip, or a face segment of
    a video): the windows of a stream are then scored as one sequence, so no frame after the stream's first is
    scored without a past. `reset` starts a new stream."""

    def __init__(self):
        self.state = None

    def reset(self) -> None:
        self.state = None


@torch.no_grad()
def run_model(model: torch.nn.Module, x: torch.Tensor, batch: int, device: torch.device,
              stream: Stream | None = None, **forward) -> torch.Tensor:
    """`model` on `x` (N, ...) in chunks of `batch` items (bf16 autocast on CUDA); float32 scores on the CPU.

    With `stream` the N items are consecutive T-frame windows (N, T, ...) of one stream, scored in order from
    the state the stream holds, which they leave updated (a ConvLSTM-FCN; `Stream`). `forward` goes to the
    model (``memory=False``: every frame from the zero state).
    """
    out = []
    amp = device.type == "cuda"
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            if stream is None:
                out.append(model(xb, **forward).float().cpu())
                continue
            n, t = xb.shape[:2]
            scores, stream.state = model(xb.reshape(1, n * t, *xb.shape[2:]), stream.state, return_state=True,
                                         **forward)
            out.append(scores.reshape(n, t, *scores.shape[2:]).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def window_labels(model: torch.nn.Module, windows: Sequence[Sequence[np.ndarray]], size: int, batch: int,
                  device: torch.device, inputs: np.ndarray | None = None, stream: Stream | None = None,
                  **forward) -> list[list[np.ndarray]]:
    """`model`'s labels for windows of T RGB uint8 crops, each at its crop's size.

    The crops are resized to `size` (or `inputs`, (n, T, size, size, 3), are those already resized); an
    FCN runs frame by frame, a ConvLSTM-FCN over each window (with `stream`, over the windows as one
    sequence, `run_model`).
    """
    x = to_input(np.stack([np.stack([resize_image(c, size) for c in w]) for w in windows])
                 if inputs is None else inputs, size)
    scores = run_model(model, x, batch, device, stream, **forward)
    return [[labels_at(scores[i, t], crop.shape[:2]) for t, crop in enumerate(w)] for i, w in enumerate(windows)]


def fcn_probs(model: torch.nn.Module, frames: np.ndarray, device: torch.device, batch: int = 16) -> torch.Tensor:
    """Softmax of the FCN for frames (L, S, S, 3) uint8 at model resolution: (L, C, S, S) float32."""
    size = int(model.config.get("input_size", frames.shape[1])) if hasattr(model, "config") else frames.shape[1]
    return run_model(model, to_input(frames, size), batch, device).softmax(1)


# ---------------------------------------------------------------------------------------------------
# The replacement rule


def merge_region(primary: np.ndarray, zoom_labels: np.ndarray, box: Sequence[int], region: str) -> np.ndarray:
    """The primary mask with one zoomed model's labels merged into `box` (the rule of the module docstring).

    Args:
        primary: (H, W) face class ids (0 bg, 1 skin, 2 eyes, 3 lips, 4 inner mouth).
        zoom_labels: (y1 - y0, x1 - x0) class ids of the zoomed model (eyes: 0/1; mouth: 0/1/2).
        box: (x0, y0, x1, y1) integer pixels in `primary`, x1/y1 exclusive; may reach outside it.
        region: ``eyes`` or ``mouth``.

    Returns a new array; `primary` is not changed.
    """
    if region not in ZOOM_REGIONS:
        raise ValueError(f"unknown region {region!r}; valid: {list(ZOOM_REGIONS)}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if zoom_labels.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"zoomed labels {zoom_labels.shape} do not fit the box {(x0, y0, x1, y1)}")
    lut = np.asarray(REGION_CLASS_IDS[region], dtype=np.uint8)
    if zoom_labels.size and zoom_labels.max() >= len(lut):
        raise ValueError(f"{region} labels hold class {zoom_labels.max()}; the {region} model has {len(lut)} classes")
    out = primary.copy()
    h, w = out.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return out
    z = lut[zoom_labels[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]]
    view = out[cy0:cy1, cx0:cx1]
    parts = lut[1:]
    was_part = np.isin(view, parts)
    view[was_part & (z == 0)] = SKIN
    view[z > 0] = z[z > 0]
    return out


# ---------------------------------------------------------------------------------------------------
# The cascade


@dataclass
class WindowResult:
    """What the cascade made of one window: labels at each crop's size, and the boxes it used."""
    primary: list[np.ndarray]
    cascade: list[np.ndarray]
    boxes: dict[str, tuple[int, int, int, int]]                # pixels (x0, y0, x1, y1), end-exclusive
    fallback: dict[str, str | None] = field(default_factory=dict)  # None, "previous" or "typical"


class Cascade:
    """The primary face ConvLSTM-FCN with the zoomed eye and mouth ConvLSTM-FCNs (Sect. 3.3).

    Calling it on T-frame windows of face crops gives the fused label maps; `run` also returns the
    primary model's own labels and the boxes. Windows passed in successive calls form one stream:
    a window without an eye or mouth takes the box of the previous one (`reset` starts a new stream).

    Args:
        face, eyes, mouth: ConvLSTM-FCNs for 5, 2 and 3 classes (`facemask.models.registry.load_model`).
        zoom: per region the box settings used in training (``clips.zoom.<region>``: ``margin``, and
            ``aspect`` if set; ``noise`` is ignored). Default: the checkpoint's ``config["zoom"]`` if
            it has one, else `DEFAULT_ZOOM`.
        device: where the models run.
        batch: windows per forward pass.
        input_sizes: per region, the side the model expects; default: the checkpoint's ``input_size``.
        stream: the primary carries its ConvLSTM state from each window into the next of the stream (`Stream`:
            no frame after the stream's first is scored without a past); False: every window starts from the
            zero state, as the paper trains and scores it. The zoomed models always start each window afresh
            (their box moves from window to window).

    Example::

        cascade = Cascade.from_dir("models", device="auto")
        labels = cascade.predict_window(list_of_T_rgb_uint8_crops)   # T arrays, each at its crop's size
    """

    def __init__(self, face, eyes, mouth, zoom: dict[str, dict] | None = None, device="cpu", batch: int = 4,
                 input_sizes: dict[str, int] | None = None, stream: bool = False):
        self.device = devices.resolve_device(device, what="train.device")
        self.models = {"face": face, "eyes": eyes, "mouth": mouth}
        for region, m in self.models.items():
            classes = len(REGION_CLASS_IDS[region])
            if getattr(m, "classes", classes) != classes:
                raise ValueError(f"the {region} model has {m.classes} classes; the cascade needs {classes}")
            prepare_model(m, self.device)
        self.zoom = {r: dict((zoom or {}).get(r) or getattr(self.models[r], "config", {}).get("zoom") or DEFAULT_ZOOM[r])
                     for r in ZOOM_REGIONS}
        sizes = dict(input_sizes or {})
        self.sizes = {r: int(sizes.get(r) or getattr(m, "config", {}).get("input_size") or 0)
                      for r, m in self.models.items()}
        missing = [r for r, s in self.sizes.items() if not s]
        if missing:
            raise ValueError(f"input size unknown for {missing}: pass input_sizes (the checkpoints carry none)")
        self.T = int(getattr(face, "config", {}).get("T") or 5)
        self.batch = int(batch)
        self.stream = Stream() if stream else None
        self.reset()

    def streaming(self) -> "Cascade":
        """The same models as a cascade whose primary carries its state across the windows of a stream."""
        return Cascade(self.models["face"], self.models["eyes"], self.models["mouth"], self.zoom, self.device,
                       self.batch, self.sizes, stream=True)

    @classmethod
    def from_dir(cls, models_dir: str | Path, zoom: dict[str, dict] | None = None, device="auto",
                 batch: int = 4, arch: str = "convlstm") -> "Cascade":
        """The cascade of ``<models_dir>/{face,eyes,mouth}/<arch>.pt``."""
        models_dir = Path(models_dir)
        models = {}
        for region in REGIONS:
            path = models_dir / region / f"{arch}.pt"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: model missing (run the pipeline: dvc repro)")
            models[region] = load_model(path)
        return cls(models["face"], models["eyes"], models["mouth"], zoom, device, batch)

    def reset(self) -> None:
        """Start a new stream: forget the last boxes (and, streaming, the primary's state)."""
        self._last: dict[str, tuple[int, int, int, int]] = {}
        if self.stream is not None:
            self.stream.reset()

    # -- the steps ---------------------------------------------------------------------------------

    def _scores(self, region: str, x: torch.Tensor) -> torch.Tensor:
        return run_model(self.models[region], x, self.batch, self.device)

    def primary_labels(self, windows: Sequence[Sequence[np.ndarray]], inputs: np.ndarray | None = None):
        """The primary model's labels, at each crop's size, for every window."""
        return window_labels(self.models["face"], windows, self.sizes["face"], self.batch, self.device, inputs,
                             self.stream)

    def locate(self, labels: Sequence[np.ndarray], region: str) -> tuple[tuple[int, int, int, int], str | None]:
        """The pixel box of `region` over a window of primary labels, and which fallback gave it."""
        found = any(np.isin(lab, REGION_CLASS_IDS[region][1:]).any() for lab in labels)
        if not found and region in self._last:
            return self._last[region], "previous"
        z = self.zoom[region]
        box = zoom_box(labels, region, float(z["margin"]), noise=0.0, aspect=z.get("aspect"))
        return box, None if found else "typical"

    def run(self, windows: Sequence[Sequence[np.ndarray]], inputs: np.ndarray | None = None) -> list[WindowResult]:
        """The cascade on windows of T RGB uint8 face crops (any sizes; one window's crops of one face).

        Args:
            windows: each a sequence of T crops (h, w, 3) uint8 RGB at their original resolution.
            inputs: optional (n, T, S, S, 3) uint8, the same crops already resized for the face model
                (the packed test clips); by default they are resized here.
        """
        if not windows:
            return []
        for w in windows:
            if len(w) != self.T:
                raise ValueError(f"a window holds {len(w)} crops; the models were trained on T = {self.T}")
        primary = self.primary_labels(windows, inputs)
        results = []
        for p in primary:
            boxes, fb = {}, {}
            for region in ZOOM_REGIONS:
                boxes[region], fb[region] = self.locate(p, region)
                self._last[region] = boxes[region]
            results.append(WindowResult(p, list(p), boxes, fb))
        for region in ZOOM_REGIONS:
            size = self.sizes[region]
            crops = np.stack([np.stack([crop_zoom(c, r.boxes[region], size) for c in w])
                              for w, r in zip(windows, results)])
            scores = self._scores(region, to_input(crops, size))
            for r, sc in zip(results, scores):
                x0, y0, x1, y1 = r.boxes[region]
                for t in range(len(r.cascade)):
                    z = labels_at(sc[t], (y1 - y0, x1 - x0))
                    r.cascade[t] = merge_region(r.cascade[t], z, r.boxes[region], region)
        return results

    def predict_window(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The fused labels of one window of T crops, each (h, w) uint8 at its crop's size."""
        return self.run([crops])[0].cascade

    def __call__(self, windows: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        """The fused labels of several windows (one forward pass per `batch` windows)."""
        return [r.cascade for r in self.run(windows)]


# ---------------------------------------------------------------------------------------------------
# Every method of the paper on one test clip


def windows_of(n: int, T: int) -> list[list[int]]:
    """Frame indices of the T-frame windows 0.., T.., 2T.. of an n-frame clip; a last, shorter window is
    filled up to T by repeating its last frame (the ConvLSTM is causal: the copies change nothing before them)."""
    return [[min(i, n - 1) for i in range(s, s + T)] for s in range(0, n, T)]


def per_frame(windows: Sequence[Sequence[int]], outputs: Sequence[Sequence], n: int) -> list:
    """Window outputs back to one per frame: a frame's first occurrence wins (not the padding copies)."""
    out = [None] * n
    for w, items in zip(windows, outputs):
        for i, item in zip(w, items):
            if out[i] is None:
                out[i] = item
    return out


class ClipPredictor:
    """Every method, on whole clips of face crops.

    * ``fcn`` — the baseline FCN, frame by frame;
    * ``fcn_smooth`` — its softmax averaged over T frames with Gaussian weights
      (`facemask.inference.smoothing.temporal_smooth`);
    * ``primary`` — the face ConvLSTM-FCN alone, on the windows 0.., T.., 2T.. of the clip;
    * ``cascade`` — the primary with the zoomed eye and mouth models (`Cascade`);
    * `TEMPORAL_METHODS`: ``primary_stream`` and ``cascade_stream`` (the state carried across the clip's
      windows), ``primary_reset`` (the primary's weights, the state reset at every frame);
    * one more per entry of `baselines` (``{name: per-frame model}``, Table 2's VGG-16 FCNs), frame by frame
      as ``fcn``.

    Every label map is made at its crop's original size (scores resized bilinearly, then arg-max).
    """

    def __init__(self, fcn: torch.nn.Module, cascade: Cascade, sigma: float,
                 baselines: dict[str, torch.nn.Module] | None = None):
        self.fcn = prepare_model(fcn, cascade.device)
        self.cascade, self.streaming = cascade, cascade.streaming()
        self.sigma = float(sigma)
        self.baselines = {name: prepare_model(m, cascade.device) for name, m in (baselines or {}).items()}
        clash = set(self.baselines) & {*CLIP_METHODS, *TEMPORAL_METHODS}
        if clash:
            raise ValueError(f"baseline names {sorted(clash)} clash with the paper's methods")
        # "cascade" includes the primary
        self.seconds = {m: 0.0 for m in ("fcn", "fcn_smooth", "cascade", *TEMPORAL_METHODS[1:], *self.baselines)}

    def __call__(self, crops: Sequence[np.ndarray], packed: np.ndarray | None = None) -> tuple[dict, list[WindowResult]]:
        """Labels of every method for one clip.

        Args:
            crops: the clip's L face crops, (h, w, 3) uint8 RGB at their original resolution.
            packed: optional (L, S, S, 3) uint8, the same crops as packed for training (the models' input).

        Returns ``({method: [L label maps]}, [the cascade's WindowResult per window]))``; the methods are
        `CLIP_METHODS`, `TEMPORAL_METHODS` and the baselines' names.
        """
        T, n = self.cascade.T, len(crops)
        sizes = [c.shape[:2] for c in crops]
        frames = np.stack([resize_image(c, self.cascade.sizes["face"]) for c in crops]) if packed is None \
            else np.asarray(packed)
        out, results = self._per_frame(frames, sizes, T), []
        idx = windows_of(n, T)
        windows, inputs = [[crops[i] for i in w] for w in idx], frames[np.asarray(idx)]
        for name, cascade in (("cascade", self.cascade), ("cascade_stream", self.streaming)):
            t0 = time.perf_counter()
            cascade.reset()  # each clip is a stream of its own
            runs = cascade.run(windows, inputs)
            primary = name.replace("cascade", "primary")
            out[primary] = per_frame(idx, [r.primary for r in runs], n)
            out[name] = per_frame(idx, [r.cascade for r in runs], n)
            results = results or runs
            self.seconds[name] += time.perf_counter() - t0
        t0 = time.perf_counter()
        face = self.cascade.models["face"]
        out["primary_reset"] = per_frame(idx, window_labels(face, windows, self.cascade.sizes["face"], self.cascade.batch,
                                                            self.cascade.device, inputs, memory=False), n)
        self.seconds["primary_reset"] += time.perf_counter() - t0
        for name, model in self.baselines.items():
            t0 = time.perf_counter()
            p = fcn_probs(model, frames, self.cascade.device)
            out[name] = [labels_at(p[i], sizes[i]) for i in range(n)]
            self.seconds[name] += time.perf_counter() - t0
        return out, results

    def _per_frame(self, frames: np.ndarray, sizes, T: int) -> dict:
        """``fcn`` and ``fcn_smooth``: the FCN's softmax per frame, and smoothed over T frames."""
        t0 = time.perf_counter()
        probs = fcn_probs(self.fcn, frames, self.cascade.device)
        out = {"fcn": [labels_at(probs[i], sizes[i]) for i in range(len(sizes))]}
        t1 = time.perf_counter()
        smooth = torch.from_numpy(temporal_smooth(probs.numpy(), self.sigma, T))
        out["fcn_smooth"] = [labels_at(smooth[i], sizes[i]) for i in range(len(sizes))]
        self.seconds["fcn"] += t1 - t0
        self.seconds["fcn_smooth"] += time.perf_counter() - t1
        return out


@torch.no_grad()
def predict_packed(model: torch.nn.Module, images: np.ndarray, T: int | None, device, batch: int = 8) -> np.ndarray:
    """Labels of `model` on packed clips (clips, L, S, S, 3) at their packed size: (clips, L, S, S) uint8.

    An FCN (`T` None) sees single frames; a ConvLSTM-FCN the windows 0.., T.., 2T.. of each clip (a
    shorter last window is filled by repeating its last frame).
    """
    device = devices.resolve_device(device, what="train.device")
    model = prepare_model(model, device)
    c, n, s = images.shape[:3]
    out = np.empty(images.shape[:-1], np.uint8)
    for k in range(c):
        x = to_input(np.asarray(images[k]), s)
        if T is None:
            scores = run_model(model, x, batch * 4, device)
            out[k] = scores.argmax(1).to(torch.uint8).numpy()
        else:
            idx = windows_of(n, T)
            scores = run_model(model, x[np.asarray(idx)], batch, device)   # (windows, T, C, S, S)
            out[k] = np.stack(per_frame(idx, scores.argmax(2).to(torch.uint8).numpy(), n))
    return out

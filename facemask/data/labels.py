"""The label maps: class ids and names of each region, the paper's colours, label PNGs.

Label PNGs are single-channel; pixel values are the class ids (0 background, 1 skin, 2 eyes,
3 lips, 4 inner mouth) and a palette shows the paper's colours (Fig. 3): red, green, cyan, blue.
The zoomed models have classes of their own (eyes: background, eye; mouth: background, lips,
inner mouth), each a face class (`REGION_CLASS_IDS`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image


#: Class ids of the face masks.
BACKGROUND, SKIN, EYES, LIPS, INNER_MOUTH = range(5)


CLASS_NAMES = ("background", "skin", "eyes", "lips", "inner_mouth")


#: RGB colour of each class id: the paper's Fig. 3 and the authors' RGB labels
#: (skin red, eyes green, outer mouth cyan, inner mouth blue, background black).
PALETTE = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255))


def _palette_bytes() -> list[int]:
    flat = [c for rgb in PALETTE for c in rgb]
    return flat + [0] * (768 - len(flat))


def write_label_png(path: str | Path, label: np.ndarray) -> None:
    """Write class ids as a single-channel palette PNG (values = ids; colours = `PALETTE`)."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"{path}: a label map must be 2-D, got shape {label.shape}")
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > 255):
            raise ValueError(f"{path}: class ids outside 0..255")
        label = label.astype(np.uint8)
    label = np.ascontiguousarray(label)
    out = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    out.putpalette(_palette_bytes())
    out.save(str(path), format="PNG", optimize=False, compress_level=1)


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a label PNG written by `write_label_png` (or any single-channel PNG) as class ids.

    Palette and greyscale PNGs give their pixel values (the ids) as they are. An RGB label,
    such as the authors' own release, is converted with `rgb_to_classes`.

    Raises:
        ValueError: the file cannot be read as an image; names it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("P", "L", "I", "I;16"):
                return np.asarray(img if img.mode in ("P", "L") else img.convert("L"), dtype=np.uint8).copy()
            return rgb_to_classes(np.asarray(img.convert("RGB")))
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: cannot read label image ({e})") from None


def rgb_to_classes(rgb: np.ndarray, max_distance: float = 96.0) -> np.ndarray:
    """The authors' RGB colour labels -> class ids (nearest `PALETTE` colour).

    Their labels are written from MATLAB colours in [0, 1] (skin (1, 0, 0), eyes (0, 1, 0), lips
    (0, 1, 1), inner mouth (0, 0, 1), background black); saved as 8 bits that is 0 / 255 per
    channel. An image whose values are all 0 or 1 is taken as that [0, 1] form. Every pixel goes to
    the nearest palette colour (Euclidean in RGB), which absorbs small deviations (resampled or
    compressed labels).

    Args:
        rgb: (H, W, 3) RGB (not BGR) label image.
        max_distance: a pixel further than this from every palette colour is an error.

    Raises:
        ValueError: not (H, W, 3), or pixels whose colour is no class (the count and an example).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"RGB labels must be (H, W, 3), got {rgb.shape}")
    x = rgb.astype(np.float32)
    if x.size and x.max() <= 1.0:
        x = x * 255.0
    pal = np.asarray(PALETTE, dtype=np.float32)
    d2 = ((x[:, :, None, :] - pal[None, None]) ** 2).sum(-1)  # (H, W, 5)
    ids = d2.argmin(-1).astype(np.uint8)
    far = np.sqrt(np.take_along_axis(d2, ids[..., None].astype(np.int64), -1)[..., 0]) > max_distance
    if far.any():
        i, j = np.argwhere(far)[0]
        raise ValueError(f"{int(far.sum())} label pixel(s) match no class colour, e.g. RGB "
                         f"{tuple(int(v) for v in rgb[i, j])} at (row {i}, col {j})")
    return ids


def classes_to_rgb(label: np.ndarray, palette: Sequence[Sequence[int]] = PALETTE) -> np.ndarray:
    """Class ids -> (H, W, 3) uint8 RGB in the paper's colours (the inverse of `rgb_to_classes`)."""
    pal = np.asarray(palette, dtype=np.uint8)
    return pal[np.asarray(label)]


def overlay(image_bgr: np.ndarray, label: np.ndarray, alpha: float = 0.45,
            palette: Sequence[Sequence[int]] = PALETTE, edges: bool = True) -> np.ndarray:
    """The BGR image with the label colours blended in (background untouched) and class edges drawn."""
    colours = classes_to_rgb(label, palette)[..., ::-1].astype(np.float32)
    out = image_bgr.astype(np.float32)
    fg = np.asarray(label) > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    out = out.round().clip(0, 255).astype(np.uint8)
    if edges:  # each region's outline in its full colour, on the region's own side
        lab = np.asarray(label)
        edge = np.zeros(lab.shape, bool)
        diff_x, diff_y = lab[:, 1:] != lab[:, :-1], lab[1:, :] != lab[:-1, :]
        edge[:, 1:] |= diff_x
        edge[:, :-1] |= diff_x
        edge[1:, :] |= diff_y
        edge[:-1, :] |= diff_y
        edge &= fg
        out[edge] = colours[edge].astype(np.uint8)
    return out


REGIONS = ("face", "eyes", "mouth")


#: For each region, the face class id of each of its class ids (index = the region's class id).
REGION_CLASS_IDS: dict[str, tuple[int, ...]] = {
    "face": (0, 1, 2, 3, 4),
    "eyes": (0, EYES),
    "mouth": (0, LIPS, INNER_MOUTH),
}


REGION_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "face": ("background", "skin", "eyes", "lips", "inner_mouth"),
    "eyes": ("background", "eye"),
    "mouth": ("background", "lips", "inner_mouth"),
}


def remap_labels(labels: np.ndarray, region: str) -> np.ndarray:
    """Face class ids -> the region's ids (eyes: 0 bg, 1 eye; mouth: 0 bg, 1 lips, 2 inner mouth)."""
    lut = np.zeros(256, np.uint8)
    for i, c in enumerate(REGION_CLASS_IDS[region]):
        lut[c] = i
    return lut[np.asarray(labels, dtype=np.uint8)]


def region_palette(region: str) -> tuple[tuple[int, int, int], ...]:
    """The paper's colours of a region's classes (Fig. 4: eyes green, lips cyan, inner mouth blue)."""
    return tuple(PALETTE[c] for c in REGION_CLASS_IDS[region])


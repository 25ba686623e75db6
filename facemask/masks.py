"""Face masks from 68 landmarks, the authors' square crop, label PNGs and contact sheets.

The 300VW-Mask labels (Wang et al., IJCV 2019, Sect. 4.1; the authors' MATLAB scripts) are made
from the iBUG-68 landmarks of every frame:

* each contour piece is a cubic spline with not-a-knot ends whose parameter is the point index
  (`scipy.interpolate.CubicSpline(..., bc_type="not-a-knot")`), sampled finely;
* pieces break (are only C0) at the eye corners, the mouth corners and the upper-lip centre:
  skin = jaw 0..16, brow 26..22, brow 21..17 (the brows are the top edge: no forehead; the nose
  lies inside the skin); eyes = upper lid 36..39 + lower lid 39,40,41,36 (and 42..47 alike);
  lips = 48..51, 51..54, 54..59,48; inner mouth = 60..64, 64..67,60;
* the closed contours are filled in the order skin, eyes, lips, inner mouth, each over the
  previous one, so "lips" ends up the ring between the outer and the inner lip contour.

Filling uses the pixel-centre rule of MATLAB's ``poly2mask``: a pixel belongs to a region when its
centre lies inside the contour (even-odd rule, half-open at the edges), so a filled area equals the
contour's area up to the pixel grid. ``cv2.fillPoly`` instead also sets every pixel the outline
touches, which grows a region by about 0.7 px all round: +20 % on an eye 30 x 10 px wide.

The crop (`square_crop_box`): a square of side ``scale * mean(w, h)`` of the landmark box about its
centre, clipped to the frame; frame and mask are cropped alike and the evaluation works at that
crop's own resolution.

Label PNGs are single-channel; pixel values are the class ids (0 background, 1 skin, 2 eyes,
3 lips, 4 inner mouth) and a palette shows the paper's colours (Fig. 3): red, green, cyan, blue.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from facemask.errors import BadInputError, MissingInputError, ParamsError
from facemask.io import atomic_dir, atomic_write_json
from facemask.landmarks import N_POINTS
from facemask.synth.exact import matmul, spline_matrix

log = logging.getLogger(__name__)

#: Class ids of the face masks.
BACKGROUND, SKIN, EYES, LIPS, INNER_MOUTH = range(5)
CLASS_NAMES = ("background", "skin", "eyes", "lips", "inner_mouth")

#: RGB colour of each class id: the paper's Fig. 3 and the authors' RGB labels
#: (skin red, eyes green, outer mouth cyan, inner mouth blue, background black).
PALETTE = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255))

#: Fill order and contours: (class id, closed contours, each a list of spline pieces of
#: 0-based landmark indices). Consecutive pieces share their end point (a C0 corner).
CONTOURS: tuple[tuple[int, tuple[tuple[tuple[int, ...], ...], ...]], ...] = (
    (SKIN, ((tuple(range(0, 17)), tuple(range(26, 21, -1)), tuple(range(21, 16, -1))),)),
    (EYES, (((36, 37, 38, 39), (39, 40, 41, 36)),
            ((42, 43, 44, 45), (45, 46, 47, 42)))),
    (LIPS, (((48, 49, 50, 51), (51, 52, 53, 54), (54, 55, 56, 57, 58, 59, 48)),)),
    (INNER_MOUTH, (((60, 61, 62, 63, 64), (64, 65, 66, 67, 60)),)),
)

#: Spline samples per pixel of the longest landmark interval's chord (at least 8 per interval).
_SAMPLES_PER_PX = 2.0
_MIN_PER_INTERVAL = 8


# ---------------------------------------------------------------------------------------------------
# Contours and filling


@lru_cache(maxsize=4096)
def _spline_matrix(k: int, per_interval: int) -> np.ndarray:
    """(n, k) matrix S with S @ points = the not-a-knot spline through k points sampled at n =
    per_interval (k - 1) + 1 evenly spaced parameter values (a spline is linear in its data), with the same
    bits on every CPU (`facemask.synth.exact.spline_matrix`)."""
    m = spline_matrix(k, per_interval)
    m.setflags(write=False)
    return m


def spline_piece(points: np.ndarray) -> np.ndarray:
    """The not-a-knot cubic spline through (k, 2) points, parameter = point index, sampled finely.

    Every landmark interval gets ``max(8, ceil(2 x longest interval chord in px))`` samples, so
    consecutive samples lie about half a pixel apart or closer; the first and last points are
    included. Same result as ``CubicSpline(arange(k), points, bc_type="not-a-knot")(s)``, with
    the spline's (linear) dependence on the points precomputed per (k, samples), and the product summed
    in a fixed order (`facemask.synth.exact.matmul`: the labels' bytes do not depend on the CPU's BLAS).
    """
    points = np.asarray(points, dtype=np.float64)
    k = len(points)
    chord = float(np.sqrt((np.diff(points, axis=0) ** 2).sum(1)).max())
    per = max(_MIN_PER_INTERVAL, math.ceil(_SAMPLES_PER_PX * chord))
    return matmul(_spline_matrix(k, per), points)


def contour(points: np.ndarray, pieces: Sequence[Sequence[int]]) -> np.ndarray:
    """The closed outline (M, 2) through `pieces` of the (68, 2) landmarks, one spline per piece."""
    parts = [spline_piece(points[list(p)]) for p in pieces]
    # drop each piece's last sample: it repeats the next piece's first point (the polygon closes itself)
    return np.concatenate([p[:-1] for p in parts], axis=0)


def fill_polygon(mask: np.ndarray, polygon: np.ndarray, value: int) -> np.ndarray:
    """Set the pixels of `mask` whose centres lie inside `polygon` to `value`, in place.

    Pixel (row i, column j) has its centre at (x, y) = (j, i). Inside is the even-odd rule,
    half-open like MATLAB's poly2mask: a row's crossings x_a < x_b fill the centres j with
    x_a <= j < x_b (so two polygons sharing an edge never both claim a pixel).
    """
    h, w = mask.shape
    poly = np.asarray(polygon, dtype=np.float64)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    top, bottom = max(0, math.ceil(y0.min())), min(h - 1, math.floor(y0.max()))
    if top > bottom:
        return mask
    rows = np.arange(top, bottom + 1, dtype=np.float64)[:, None]
    crosses = (y0 <= rows) != (y1 <= rows)  # (R, E): edge spans the row's centre line (half-open)
    r, e = np.nonzero(crosses)
    if r.size == 0:
        return mask
    ya, yb, xa, xb = y0[e], y1[e], x0[e], x1[e]
    x = xa + (rows[r, 0] - ya) * (xb - xa) / (yb - ya)
    # a crossing at x toggles inside/outside from pixel ceil(x) on: parity of the running count,
    # over the columns the polygon spans only
    left, right = max(0, math.ceil(x0.min())), min(w, math.floor(x0.max()) + 1)
    if left >= right:
        return mask
    span = right - left
    col = np.clip(np.ceil(x) - left, 0, span).astype(np.int64)
    toggles = np.bincount(r * (span + 1) + col, minlength=len(rows) * (span + 1)).reshape(len(rows), span + 1)
    inside = (np.cumsum(toggles[:, :span], axis=1) & 1).astype(bool)
    mask[top:bottom + 1, left:right][inside] = value
    return mask


def _check_points(points) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (N_POINTS, 2):
        raise ValueError(f"landmarks must be ({N_POINTS}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks hold NaN or infinite coordinates")
    return points


def landmarks_to_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """The 5-class face mask of one frame from its 68 landmarks (the 300VW-Mask labels).

    Args:
        points: (68, 2) float, 0-based pixel coordinates (x, y) of the iBUG-68 landmarks.
        height, width: size of the mask; landmarks outside it are fine (the mask is clipped).

    Returns:
        (height, width) uint8 class ids: 0 background, 1 skin, 2 eyes, 3 lips, 4 inner mouth.

    Raises:
        ValueError: points of the wrong shape, or not finite.
    """
    points = _check_points(points)
    mask = np.zeros((int(height), int(width)), dtype=np.uint8)
    for cls, contours in CONTOURS:
        for pieces in contours:
            fill_polygon(mask, contour(points, pieces), cls)
    return mask


# ---------------------------------------------------------------------------------------------------
# Crop


def square_crop_box(points: np.ndarray, frame_h: int, frame_w: int, scale: float = 1.3) -> tuple[int, int, int, int]:
    """The authors' face crop: a square of side ``scale * mean(w, h)`` of the landmark box, clipped.

    (w, h) is the size of the points' bounding box (max - min, in pixels). The square holds
    ``side = max(1, round(scale * (w + h) / 2))`` pixels a side and is placed so that its centre,
    ``x0 + (side - 1) / 2`` in pixel-centre coordinates, is the box centre rounded to the nearest
    half pixel: ``x0 = floor(cx - (side - 1) / 2 + 0.5)`` (likewise y0). It is then clipped to the
    frame, so at a border the crop is no longer square.

    Args:
        points: (N, 2) 0-based pixel coordinates (x, y); any N >= 1 (e.g. 68 landmarks, or the two
            corners of a box).
        frame_h, frame_w: frame size.
        scale: side / mean(w, h) (params ``masks.crop_scale``; the authors: 1.3).

    Returns:
        (x0, y0, x1, y1) ints, end-exclusive: the crop is ``frame[y0:y1, x0:x1]``.

    Raises:
        ValueError: points not finite, or the square lies entirely outside the frame.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("crop: points hold NaN or infinite coordinates")
    (xmin, ymin), (xmax, ymax) = points.min(axis=0), points.max(axis=0)
    side = max(1, int(math.floor(scale * ((xmax - xmin) + (ymax - ymin)) / 2 + 0.5)))
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    x0 = int(math.floor(cx - (side - 1) / 2 + 0.5))
    y0 = int(math.floor(cy - (side - 1) / 2 + 0.5))
    box = (max(0, x0), max(0, y0), min(int(frame_w), x0 + side), min(int(frame_h), y0 + side))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"crop: the square {(x0, y0, x0 + side, y0 + side)} lies outside the "
                         f"{frame_w}x{frame_h} frame")
    return box


# ---------------------------------------------------------------------------------------------------
# Label PNGs and colours


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


# ---------------------------------------------------------------------------------------------------
# Contact sheets (Fig. 3 / Fig. 4)


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


def _tile(img: np.ndarray, size: int, interpolation: int) -> np.ndarray:
    """Fit `img` into a size x size tile (aspect kept, black borders)."""
    h, w = img.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(img, (nw, nh), interpolation=interpolation)
    tile = np.zeros((size, size) + img.shape[2:], img.dtype)
    y, x = (size - nh) // 2, (size - nw) // 2
    tile[y:y + nh, x:x + nw] = small
    return tile


def _caption(tile: np.ndarray, text: str) -> None:
    for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, colour, thick, cv2.LINE_AA)


def contact_sheet(items: Sequence[tuple[np.ndarray, np.ndarray, str]], tile: int = 128, columns: int = 8,
                  palette: Sequence[Sequence[int]] = PALETTE) -> np.ndarray:
    """A grid of crops with their labels, like the paper's Fig. 3 (faces) and Fig. 4 (eyes, mouths).

    Each item (BGR image, class ids, caption) becomes one column of three tiles: the image, the
    label in the paper's colours, and the label blended over the image with class edges.

    Returns:
        A BGR uint8 image (write it with ``cv2.imwrite``).
    """
    if not items:
        return np.zeros((tile, tile, 3), np.uint8)
    cols = []
    for image, label, text in items:
        img = _tile(image, tile, cv2.INTER_AREA)
        lab = _tile(np.asarray(label, np.uint8), tile, cv2.INTER_NEAREST)
        col_rgb = classes_to_rgb(lab, palette)[..., ::-1].copy()
        ov = overlay(img, lab, palette=palette)
        _caption(img, text)
        cols.append(np.concatenate([img, col_rgb, ov], axis=0))
    rows = []
    for i in range(0, len(cols), columns):
        row = cols[i:i + columns]
        row += [np.zeros_like(cols[0])] * (columns - len(row)) if len(cols) > columns else []
        rows.append(np.concatenate([np.pad(c, ((0, 2), (0, 2), (0, 0)), constant_values=255) for c in row], axis=1))
    return np.concatenate(rows, axis=0)


# ---------------------------------------------------------------------------------------------------
# The 300VW-Mask dataset (the `masks` stage)

#: Drop reasons of the authors' release (300vw-mask source), next to `facemask.video.DROP_REASONS`.
RELEASE_DROP_REASONS = ("bad_label", "size_mismatch")
#: Columns of ``frames.csv``: one row per written frame; the crop box (x0, y0, x1, y1) in frame
#: pixels, end-exclusive (empty for the authors' release, whose images are crops already); (w, h)
#: the crop's size; image / label the files relative to the dataset folder; (frame_w, frame_h)
#: the video frame's size.
FRAME_COLUMNS = ("video", "frame", "category", "x0", "y0", "x1", "y1", "w", "h",
                 "image", "label", "frame_w", "frame_h")
#: Sheet tiles: at most this many videos, one frame each.
SHEET_VIDEOS = 24


def stem(video: str, frame: int) -> str:
    """``VVV_FFFFFF``: the authors' file name of frame `frame` (1-based) of video `video`."""
    return f"{video}_{int(frame):06d}"


def _sheet_frame(n_frames: int) -> int:
    """The frame (1-based) a video shows in the contact sheet: the middle one."""
    return max(1, n_frames // 2 + 1)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def masks_for_video(job: tuple) -> dict:
    """Worker: reconcile one 300VW video, write its crops and masks; return rows and counts.

    job: (video folder, output folder, category, crop scale, JPEG quality, outside tolerance, sampling).
    With `sampling` (``{"length", "fraction", "seed"}``) a first pass finds the usable frames, the video's
    clips are sampled from them (`facemask.clips.sample_video`, as the clips stage would) and a second pass
    writes only those clips' frames; the result then has ``clips`` (their first frames) and ``available``.
    """
    from facemask.video import Reconciliation, frame_count, reconcile

    vdir, out, category, scale, quality, outside_tol, sampling = job
    vdir, out = Path(vdir), Path(out)
    video = vdir.name
    report = Reconciliation(video)
    rows, shot, extra = [], None, {}
    want = _sheet_frame(frame_count(vdir / "vid.avi"))
    wanted, last = None, None
    if sampling is not None:
        from facemask.clips import sample_video

        usable = [n for n, _, _ in reconcile(vdir, outside_tol, report)]
        firsts, available = sample_video(video, usable, sampling["length"], sampling["fraction"], sampling["seed"])
        wanted = sorted(f + i for f in firsts for i in range(sampling["length"]))
        want, last = (wanted[len(wanted) // 2], wanted[-1]) if wanted else (None, 0)
        extra = {"clips": firsts, "available": available}
        wanted = set(wanted)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for n, frame, points in reconcile(vdir, outside_tol, report if wanted is None else None):
        if wanted is not None:  # the second pass: the sampled clips' frames only
            if n > last:
                break
            if n not in wanted:
                continue
        fh, fw = frame.shape[:2]
        x0, y0, x1, y1 = square_crop_box(points, fh, fw, scale)
        crop = frame[y0:y1, x0:x1]
        label = landmarks_to_mask(points - (x0, y0), y1 - y0, x1 - x0)
        name = stem(video, n)
        if not cv2.imwrite(str(out / "images_orig" / f"{name}.jpg"), crop, params):
            raise OSError(f"{out / 'images_orig' / name}.jpg: cv2.imwrite failed")
        write_label_png(out / "labels_orig" / f"{name}.png", label)
        rows.append((video, n, category, x0, y0, x1, y1, x1 - x0, y1 - y0,
                     f"images_orig/{name}.jpg", f"labels_orig/{name}.png", fw, fh))
        if shot is None and n >= want:
            shot = (crop.copy(), label, f"{video} f{n} c{category}", category)
    return {"video": video, "rows": rows, "report": report.as_dict(), "shot": shot, **extra}


def release_video(job: tuple) -> dict:
    """Worker: convert one video of the authors' release (RGB labels -> class ids, images copied)."""
    from facemask.video import Reconciliation

    src, out, video, frames, category = job
    src, out = Path(src), Path(out)
    report = Reconciliation(video)
    report.frames = report.annotations = len(frames)
    rows, shot = [], None
    want = frames[len(frames) // 2] if frames else None
    for n in frames:
        name = stem(video, n)
        img_src, lab_src = src / "images_orig" / f"{name}.jpg", src / "labels_orig" / f"{name}.png"
        try:
            label = read_label_png(lab_src)
        except ValueError as e:
            report.drop("bad_label", n, f"{lab_src}: {e}")
            continue
        with Image.open(img_src) as im:
            size = im.size
        if size != (label.shape[1], label.shape[0]):
            report.drop("size_mismatch", n, f"{img_src}: image {size[0]}x{size[1]}, label "
                                            f"{label.shape[1]}x{label.shape[0]}")
            continue
        shutil.copyfile(img_src, out / "images_orig" / f"{name}.jpg")
        write_label_png(out / "labels_orig" / f"{name}.png", label)
        report.kept += 1
        h, w = label.shape
        rows.append((video, n, category, None, None, None, None, w, h,
                     f"images_orig/{name}.jpg", f"labels_orig/{name}.png", None, None))
        if shot is None and n >= want:
            shot = (cv2.imread(str(img_src)), label, f"{video} f{n} c{category}", category)
    return {"video": video, "rows": rows, "report": report.as_dict(), "shot": shot}


def _categories(root: Path, videos) -> dict[str, int]:
    """Video -> category from ``root/metadata.csv`` (written by the download stage), else the
    official 300VW category of the name, else -1."""
    import pandas as pd

    from facemask.raw import category_of

    known = {}
    meta = root / "metadata.csv"
    if meta.is_file():
        df = pd.read_csv(meta, dtype={"video": str})
        if {"video", "category"} <= set(df.columns):
            known = {str(v).zfill(3): int(c) for v, c in zip(df["video"], df["category"])}
    out = {}
    for v in videos:
        if v in known:
            out[v] = known[v]
        else:
            try:
                out[v] = category_of(v)
            except ValueError:
                out[v] = -1
    return out


def _split_frames(split_dir: Path) -> set[tuple[str, int]]:
    """(video, frame) of every line of the authors' split files (``/images_orig/VVV_FFFFFF.jpg ...``)."""
    out = set()
    for path in sorted(split_dir.glob("*.txt")):
        for line in path.read_text().splitlines():
            if line.strip():
                v, _, f = Path(line.split()[0]).stem.partition("_")
                if f.isdigit():
                    out.add((v, int(f)))
    return out


def _run_pool(fn, jobs: list, workers: int, desc: str, weights: list[int], progress: bool) -> list[dict]:
    """Run `fn` over `jobs` (in a process pool when workers > 1), with a frame-weighted tqdm bar."""
    from concurrent.futures import as_completed

    from tqdm import tqdm

    from facemask.pool import process_pool

    results = []
    with tqdm(total=sum(weights), desc=desc, unit="frame", disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            _worker_init()
            for job, w in zip(jobs, weights):
                results.append(fn(job))
                bar.update(w)
        else:
            with process_pool(min(workers, len(jobs)), _worker_init) as ex:
                futures = {ex.submit(fn, job): w for job, w in zip(jobs, weights)}
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update(futures[fut])
    return sorted(results, key=lambda r: r["video"])


def _sheet(results: list[dict]) -> np.ndarray:
    """Fig. 3: one frame per video, categories taken in turn, at most `SHEET_VIDEOS`."""
    shots = [r["shot"] for r in results if r["shot"] is not None]
    by_cat: dict[int, list] = {}
    for s in shots:
        by_cat.setdefault(s[3], []).append(s)
    chosen = []
    while len(chosen) < SHEET_VIDEOS and any(by_cat.values()):
        for c in sorted(by_cat):
            if by_cat[c] and len(chosen) < SHEET_VIDEOS:
                chosen.append(by_cat[c].pop(0))
    return contact_sheet([(img, lab, text) for img, lab, text, _ in chosen], tile=128, columns=8)


def _summary(results: list[dict], reasons: tuple[str, ...], **extra) -> dict:
    reports = [r["report"] for r in results]
    dropped = {k: sum(r["dropped"].get(k, 0) for r in reports) for k in reasons}
    return {
        **extra,
        "videos": len(reports),
        "frames": sum(r["frames"] for r in reports),
        "annotations": sum(r["annotations"] for r in reports),
        "kept": sum(r["kept"] for r in reports),
        "dropped_total": sum(dropped.values()),
        "dropped": dropped,
        "per_video": reports,
    }


#: Where a dropped frame's problem lies, per drop reason: (video folder or release root, video, frame) -> text.
_DROP_WHERE = {
    "no_annotation": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} missing",
    "no_frame": lambda root, v, n: f"{root / v / 'vid.avi'} has no frame {n}",
    "unreadable_frame": lambda root, v, n: f"{root / v / 'vid.avi'} frame {n} does not decode",
    "bad_annotation": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} unreadable",
    "landmarks_nan": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} holds NaN",
    "landmarks_outside": lambda root, v, n: f"{root / v / 'annot' / f'{n:06d}.pts'} has points outside the frame",
    "bad_label": lambda root, v, n: f"{root / 'labels_orig' / f'{stem(v, n)}.png'} unreadable",
    "size_mismatch": lambda root, v, n: f"{root / 'images_orig' / f'{stem(v, n)}.jpg'} and its label differ in size",
}


def check_drops(summary: dict, root: Path, max_drop_share: float, top: int = 3) -> None:
    """Fail when no frame is kept, or when more than `max_drop_share` of them are dropped.

    Raises:
        BadInputError: one line naming `root`, the counts, the `top` drop reasons and an example
            file for each.
    """
    kept, dropped = summary["kept"], summary["dropped_total"]
    total = kept + dropped
    if total == 0:
        raise BadInputError(f"{root}: no frame found in {summary['videos']} video(s)")
    share = dropped / total
    if kept > 0 and share <= max_drop_share:
        return
    reasons = sorted(((n, r) for r, n in summary["dropped"].items() if n), reverse=True)[:top]
    parts = []
    for n, reason in reasons:
        example = next(((r["video"], r["examples"][reason][0]) for r in summary["per_video"]
                        if r["examples"].get(reason)), None)
        where = _DROP_WHERE.get(reason)
        parts.append(f"{reason} {n}" + (f" (e.g. {where(root, *example)})" if example and where else ""))
    why = "no frame kept" if kept == 0 else f"{share:.0%} dropped, more than masks.max_drop_share {max_drop_share:g}"
    raise BadInputError(f"{root}: {dropped} of {total} frames dropped ({why}): {'; '.join(parts)}")


def build_masks(raw_dir: str | Path, out_dir: str | Path, source: str = "synthetic", crop_scale: float = 1.3,
                jpeg_quality: int = 95, workers: int = 2, outside_tol: float = 0.0, max_drop_share: float = 0.5,
                progress: bool = True, sampling: dict | None = None) -> dict:
    """Write the 300VW-Mask dataset (the authors' layout) from ``data/raw``; all or nothing.

    With ``source`` ``synthetic`` or ``300vw``, every video of ``raw_dir/300VW`` is reconciled
    (`facemask.video.reconcile`), each kept frame is cropped (`square_crop_box`) and its mask made
    (`landmarks_to_mask`). With ``300vw-mask`` the authors' release in ``raw_dir/300VW-Mask-Dataset``
    is converted: RGB labels to class ids, images copied, ``data_splits/split_1`` copied.

    `sampling` (``masks.frames: sampled``; None: every usable frame): ``{"length", "fraction", "seed",
    "official_split"}``, the clips stage's sampling. Only the frames of the sampled 1-s clips are written
    (the paper's 10 % of 218,595): the clips are drawn per video from its usable frames exactly as the
    clips stage would (`facemask.clips.sample_video`) and listed in ``clips.csv`` (video, first_frame,
    category), which the clips stage then takes as they are (`facemask.clips.read_sampled`). With
    ``300vw-mask`` and ``official_split`` the frames the split files list are converted; without, the
    whole release.

    Writes into `out_dir` (replaced only on success): ``images_orig/VVV_FFFFFF.jpg``,
    ``labels_orig/VVV_FFFFFF.png`` (palette PNG of class ids), ``frames.csv`` (`FRAME_COLUMNS`; the
    frames written), ``summary.json`` (counts, drops by reason, per video, the sampling),
    ``contact_sheet.png`` (Fig. 3), ``clips.csv`` when sampled, and, for the release,
    ``data_splits/split_1/*.txt``.

    Returns:
        The summary (also in ``summary.json``).

    Raises:
        ParamsError: unknown source.
        MissingInputError: the raw folder for the source is missing (a FileNotFoundError).
        BadInputError: no frame kept, or more than `max_drop_share` of the frames dropped
            (`check_drops`); nothing is written then.
    """
    import pandas as pd

    from facemask.video import DROP_REASONS, frame_count

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    t0 = time.perf_counter()
    if source in ("synthetic", "300vw"):
        root = raw_dir / "300VW"
        if not root.is_dir():
            raise MissingInputError(f"{root}: no 300VW folder (run the download stage with data.source={source})")
        vdirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
        if not vdirs:
            raise MissingInputError(f"{root}: no video folders (NNN/)")
        cats = _categories(root, [p.name for p in vdirs])
        weights = [max(1, frame_count(p / "vid.avi")) for p in vdirs]
    elif source == "300vw-mask":
        from facemask.raw import MASK_DATASET_DIR

        root = raw_dir / MASK_DATASET_DIR
        if not (root / "images_orig").is_dir():
            raise MissingInputError(f"{root}: no images_orig/ (run the download stage with data.source=300vw-mask)")
        by_video: dict[str, list[int]] = {}
        for p in (root / "images_orig").glob("*.jpg"):
            v, _, f = p.stem.partition("_")
            by_video.setdefault(v, []).append(int(f))
        cats = _categories(root, list(by_video))
        videos = sorted(by_video)
        weights = [len(by_video[v]) for v in videos]
    else:
        raise ParamsError(f"unknown data.source {source!r}; valid: synthetic, 300vw, 300vw-mask")

    extra: dict = {}
    with atomic_dir(out_dir) as work:
        (work / "images_orig").mkdir()
        (work / "labels_orig").mkdir()
        if source == "300vw-mask":
            if sampling is not None and sampling.get("official_split"):
                listed = _split_frames(root / "data_splits" / "split_1")
                by_video = {v: [f for f in by_video[v] if (v, f) in listed] for v in videos}
            jobs = [(str(root), str(work), v, sorted(by_video[v]), cats[v]) for v in videos]
            results = _run_pool(release_video, jobs, workers, "300VW-Mask labels", weights, progress)
            reasons = RELEASE_DROP_REASONS
            split_src = root / "data_splits" / "split_1"
            if split_src.is_dir():
                shutil.copytree(split_src, work / "data_splits" / "split_1")
        else:
            plan = None if sampling is None else {k: sampling[k] for k in ("length", "fraction", "seed")}
            jobs = [(str(p), str(work), cats[p.name], crop_scale, jpeg_quality, outside_tol, plan) for p in vdirs]
            results = _run_pool(masks_for_video, jobs, workers, "masks", weights, progress)
            reasons = DROP_REASONS
            if plan is not None:
                clips = pd.DataFrame([(r["video"], f, cats[r["video"]]) for r in results for f in r["clips"]],
                                     columns=["video", "first_frame", "category"])
                clips.to_csv(work / "clips.csv", index=False)
                extra["sampling"] = {**plan, "clips": len(clips),
                                     "clips_available": sum(r["available"] for r in results),
                                     "videos_without_clips": [r["video"] for r in results if not r["available"]]}
        check_drops(_summary(results, reasons), root, max_drop_share)
        rows = [row for r in results for row in r["rows"]]
        if sampling is not None:  # every frame kept is written otherwise (and the summary stays as it was)
            extra["written"] = len(rows)
        df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        for c in ("x0", "y0", "x1", "y1", "frame_w", "frame_h"):
            df[c] = df[c].astype("Int64")
        df.to_csv(work / "frames.csv", index=False)
        cv2.imwrite(str(work / "contact_sheet.png"), _sheet(results))
        # No wall-clock figures or pool size in the output: its bytes depend on the data and params alone.
        summary = _summary(results, reasons, source=source, crop_scale=crop_scale, jpeg_quality=jpeg_quality,
                           outside_tol=outside_tol, max_drop_share=max_drop_share, **extra)
        atomic_write_json(work / "summary.json", summary)
    seconds = time.perf_counter() - t0
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v) or "none"
    log.info(
        "%s: %d videos, %d frames kept, %d dropped (%s), %d written; %.1f frames/s", out_dir, summary["videos"],
        summary["kept"], summary["dropped_total"], dropped, len(rows), summary["frames"] / max(seconds, 1e-9))
    return summary

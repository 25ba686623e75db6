"""Every learned method's predictions on the test clips, written as the evaluate stage reads them: a label PNG
(class ids, the paper's palette) per method and test frame at the crop's original size, the memory probes, the
zoomed models' labels on their own test sub-datasets (the `fuse` stage)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facemask.core.methods import PROBED, PROBES, donor_clip
from facemask.data.clips.regions import ZOOM_REGIONS
from facemask.data.clips.store import load_split
from facemask.data.labels import write_label_png
from facemask.inference.fusion import ClipPredictor, predict_packed
from facemask.inference.probes import probe_clip
from facemask.models.registry import load_model


def read_crop(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{path}: missing or unreadable face crop")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_methods(out: Path, predictor: ClipPredictor, methods, clips: list[dict], packed, mask_dir: Path):
    """Every method's label PNGs of every test frame in ``out/<method>/``; returns (frames, the cascade's boxes)."""
    T, frames, boxes = predictor.cascade.T, 0, []
    for m in methods:
        (out / m).mkdir()
    for k, clip in enumerate(tqdm(clips, desc="fuse", unit="clip")):
        names = clip["names"]
        crops = [read_crop(mask_dir / "images_orig" / f"{n}.jpg") for n in names]
        labels, windows = predictor(crops, packed[k, :len(names)])
        for m in methods:
            for n, lab in zip(names, labels[m]):
                write_label_png(out / m / f"{n}.png", lab)
        for w, r in enumerate(windows):
            for region in ZOOM_REGIONS:
                boxes.append({"clip": k, "window": w, "first": names[w * T], "region": region,
                              **dict(zip(("x0", "y0", "x1", "y1"), r.boxes[region])),
                              "fallback": r.fallback[region] or ""})
        frames += len(names)
    return frames, boxes


def write_probes(out: Path, predictor: ClipPredictor, clips: list[dict], packed, mask_dir: Path) -> int:
    """The memory probes (`facemask.inference.probes`): ``out/<kind>/<method>/VVV_FFFFFF.png`` for the
    replaced frames of every test clip; returns their number per kind."""
    count = 0
    for kind in PROBES:
        for m in PROBED:
            (out / kind / m).mkdir(parents=True)
    videos = [clip["video"] for clip in clips]
    for k, clip in enumerate(tqdm(clips, desc="memory probes", unit="clip")):
        names = clip["names"]
        crops = [read_crop(mask_dir / "images_orig" / f"{n}.jpg") for n in names]
        donor = packed[donor_clip(videos, k)]
        for kind in PROBES:
            labels = probe_clip(predictor, crops, packed[k, :len(names)], kind, seed=(k,), donor=donor)
            for m in PROBED:
                for i, lab in labels[m].items():
                    write_label_png(out / kind / m / f"{names[i]}.png", lab)
        count += len(labels["fcn"])
    return count


def write_zoomed(out: Path, clips_dir: Path, models_dir: Path, T: int, device) -> None:
    """The eye and mouth models (FCN and ConvLSTM-FCN) on their test sub-datasets: ``out/<region>/<arch>.npy``,
    labels at the packed size (Tables 7, 8)."""
    for region in ZOOM_REGIONS:
        images, _ = load_split(clips_dir / region / "test")
        (out / region).mkdir(parents=True)
        for arch in ("fcn", "convlstm"):
            model = load_model(models_dir / region / f"{arch}.pt")
            np.save(out / region / f"{arch}.npy", predict_packed(model, images, T if arch == "convlstm" else None, device))

"""`facemask predict` on the test videos, scored as the paper scores: the protocol users run.

The paper's protocol, and the fuse stage's, gives the models each test frame's crop cut at the ground truth's
landmark box: a memory kept in crop coordinates then has the face's motion compensated for free. `facemask
predict` cuts its crops from the landmarker's landmarks (smoothed boxes, faces lost and found, its face segments
for the streamed state). Here each learned method runs as `facemask predict` runs it, over each whole test video
(`predict_test_videos`), and its full-frame labels are cut at each test frame's ground-truth crop, so the evaluate
stage scores them like every other method, per frame condition too.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from tqdm import tqdm

from facemask.app.predict import predict
from facemask.data.labels import read_label_png, write_label_png
from facemask.data.layout import parse_stem
from facemask.evaluation.conditions import crop_boxes

#: The methods run through `facemask predict`, by name: its options.
LOCATED = {"predict_cascade": {"method": "cascade", "state": "stream"},
           "predict_primary": {"method": "primary", "state": "stream"},
           "predict_primary_window": {"method": "primary", "state": "window"},
           "predict_fcn": {"method": "fcn", "state": "window"}}


def predict_test_videos(clips: list[dict], videos_dir: Path, mask_dir: Path, models: Path, out: Path,
                        device: str = "auto", progress: bool = True) -> dict:
    """Every `LOCATED` method over each test video (``videos_dir/VVV/vid.avi``) as `facemask predict` runs it by
    default (the default landmarker, its face choice and smoothing), each test frame's labels cut at its crop
    box into ``out/<method>/VVV_FFFFFF.png``. Returns info.json's content: the methods and, per method, how many
    test frames had a face."""
    boxes = crop_boxes(Path(mask_dir) / "frames.csv")
    frames: dict[str, list[str]] = {}
    for clip in clips:
        frames.setdefault(clip["video"], []).extend(clip["names"])
    info = {"methods": list(LOCATED), "options": LOCATED, "frames_with_face": dict.fromkeys(LOCATED, 0)}
    for method in LOCATED:
        (out / method).mkdir(parents=True)
    for video, names in tqdm(sorted(frames.items()), desc="predict on the test videos", unit="video",
                             disable=not progress):
        for method, options in LOCATED.items():
            with tempfile.TemporaryDirectory(prefix="facemask-located-") as tmp:
                run = Path(tmp) / "out"
                predict(videos_dir / video / "vid.avi", run, models=models, device=device, video=False,
                        progress=False, **options)
                for name in names:
                    full = read_label_png(run / "labels" / f"{parse_stem(name)[1]:06d}.png")
                    x0, y0, x1, y1 = boxes[name]
                    label = full[y0:y1, x0:x1]
                    info["frames_with_face"][method] += int(label.any())
                    write_label_png(out / method / f"{name}.png", label)
    return info

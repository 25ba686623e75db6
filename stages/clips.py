"""Stage `clips`: params `data.seed`, `data.source`, `clips` -> data/clips.

Reads data/300VW-Mask (frames.csv, images_orig/, labels_orig/, and data_splits/split_1/ for the
authors' release) and writes data/clips/{index.csv, split/*_per10.txt, <region>/<split>/*.npy,
meta.json, contact_*.png}; see `facemask.clips.build_clips`.
"""
from __future__ import annotations

from pathlib import Path

from facemask.clips import build_clips
from stages._common import load_params, run_stage, setup_logging


def main() -> None:
    setup_logging()
    params = load_params()
    build_clips(Path("data/300VW-Mask"), Path("data/clips"), params["clips"], int(params["data"]["seed"]),
                source=params["data"]["source"])


if __name__ == "__main__":
    run_stage(main)

"""Stage `located`: the learned methods as `facemask predict` runs them, on the test videos ->
data/predictions/located.

    python -m stages.located --clips data/clips --masks data/300VW-Mask --raw data/raw --models models \
        --out data/predictions/located

Reads params ``train.device`` and ``evaluate.located`` (false: ``info.json`` alone, saying so); the test clips (``data/clips/index.csv``), each test frame's crop box
(``data/300VW-Mask/frames.csv``), the raw test videos (``data/raw/300VW``) and the models. Each method of
`facemask.app.located.LOCATED` runs over each whole test video with `facemask predict`'s defaults (the crops cut
from the landmarker's landmarks); its labels are cut at each test frame's ground-truth crop. Writes ``--out``:
``<method>/VVV_FFFFFF.png`` and ``info.json``. Needs the raw videos: with the authors' release (crops only) it
writes ``info.json`` alone, saying why.
"""
from __future__ import annotations

import json

from facemask.app.located import predict_test_videos
from facemask.core.io import atomic_dir
from facemask.data.clips.build import read_split_clips
from facemask.data.layout import VIDEOS_DIR
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("located", "clips", "masks", "raw", "models", "out", argv=argv)
    log = setup_logging()
    params = load_params()
    clips = read_split_clips(args.clips, "test")
    videos = args.raw / VIDEOS_DIR
    with atomic_dir(args.out) as out:
        if not params.evaluate.located:
            info = {"skipped": "evaluate.located is false"}
        elif all((videos / c["video"] / "vid.avi").is_file() for c in clips):
            info = predict_test_videos(clips, videos, args.masks, args.models, out, device=params.train.device)
        else:
            info = {"skipped": f"{videos}: no test videos (the authors' release holds crops only)"}
            log.warning("located: %s", info["skipped"])
        (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    run_stage(main)

"""Stage `masks`: params `data.source`, `data.seed`, `masks`, `clips.length`, `clips.fraction`,
`clips.official_split`, ``--raw`` -> ``--out`` (data/300VW-Mask: the authors' layout).

    python -m stages.masks --raw data/raw --out data/300VW-Mask

Reads data/raw (300VW/ for the synthetic and 300vw sources, 300VW-Mask-Dataset/ for 300vw-mask) and
writes data/300VW-Mask/{images_orig/VVV_FFFFFF.jpg, labels_orig/VVV_FFFFFF.png, frames.csv,
summary.json, contact_sheet.png} (+ clips.csv with `masks.frames: sampled`, data_splits/split_1/ for
300vw-mask); see `facemask.data.masks.build.build_masks`. `masks.frames`: ``sampled`` writes only the frames of the
1-s clips the clips stage will use (drawn here, with the clips stage's params); ``all`` every usable frame.
"""
from __future__ import annotations

from facemask.data.masks.build import build_masks
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("masks", "raw", "out", argv=argv)
    setup_logging()
    params = load_params()
    m, c = params.masks, params.clips
    sampling = None
    if m.frames == "sampled":
        sampling = {"length": c.length, "fraction": c.fraction, "seed": params.data.seed,
                    "official_split": c.official_split}
    build_masks(args.raw, args.out, source=params.data.source, crop_scale=m.crop_scale, jpeg_quality=m.jpeg_quality,
                workers=m.workers, outside_tol=m.outside_tol, max_drop_share=m.max_drop_share, sampling=sampling)


if __name__ == "__main__":
    run_stage(main)

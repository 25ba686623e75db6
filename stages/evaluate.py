"""Stage `evaluate`: predictions + ground truth -> metrics/eval.json, metrics/zoomed.json, metrics/eval/.

    python -m stages.evaluate --predictions data/predictions --masks data/300VW-Mask --clips data/clips \
        --raw data/raw --seeds metrics/seeds --curves metrics/train --out metrics

Reads params ``seed``, ``clips.window`` and ``evaluate``; the predictions of every method (``learned/`` of stage
`fuse`, ``tracker/`` and ``mesh/`` of the landmark stages), the ground truth ``data/300VW-Mask/labels_orig`` (and
``images_orig`` for the figure, ``frames.csv`` for the crop boxes), the test clip index and the zoomed test
sub-datasets' labels, the generator's per-frame record ``data/raw/300VW/frames.csv``, and the other training
seeds' records ``metrics/seeds/seed_<N>.json`` and the training stages' validation scores ``metrics/train/``
(recorded with the run). IoU is computed at each crop's original resolution and
accumulated over the whole test set (confusion matrices summed). What it writes: `facemask.evaluation.run`.
"""
from __future__ import annotations

from facemask.evaluation.run import evaluate, write_results
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("evaluate", "predictions", "masks", "clips", "raw", "seeds", "curves", "out", argv=argv)
    setup_logging()
    params = load_params()
    e = params.evaluate
    results = evaluate(args.clips, args.masks, args.raw, args.predictions, args.seeds, args.curves, seed=params.seed,
                       examples=e.examples, window=params.clips.window, draws=e.draws, stats_seed=e.stats_seed)
    write_results(results, args.out)
    print(results["eval"]["results.md"])


if __name__ == "__main__":
    run_stage(main)

"""The ConvLSTM phase's learning rate: val IoU per class of each region's ConvLSTM-FCN at each candidate lr.

    dvc repro train_fcn@face train_fcn@eyes train_fcn@mouth        # the benchmark instance of params.yaml
    python bench/bench_convlstm_lr.py                                # lr 1e-3, 3e-4, 1e-4; ~6 min a run on 2 cores
    python bench/bench_convlstm_lr.py --lr 1e-4 --regions mouth

For each region and candidate ``train.convlstm.lr`` it trains the ConvLSTM phase as the stage does (the
params' recipe, `stages.train.config`; the real engine, `facemask.training.engine.train`) from the pipeline's
FCN (``models/<region>/fcn.pt``) on its clips (``data/clips/<region>``), into a temporary folder, and prints
the val mIoU and IoU per class of the converted start, of the head-only phase and of the model kept, with
the phases the guard rejected (`facemask.training.guard`). Validation scores only: choose on these, never on
the test split. ``--json`` writes every run's metrics.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

from facemask.core.paramfile import load_params
from facemask.core.params import Params
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths, train

ROOT = Path(__file__).resolve().parent.parent


def scores(record: dict) -> str:
    """``mIoU (class IoU, ...)`` of a nested metrics record."""
    return f"{record['mIoU']:.3f} (" + ", ".join(f"{k} {v:.3f}" for k, v in record["IoU"].items()) + ")"


def run(params: Params, region: str, lr: float, work: Path) -> dict:
    """The ConvLSTM phase of `region` at `lr`, the rest as in `params`; its metrics, with ``seconds``."""
    cfg = dataclasses.replace(TrainConfig.from_params(params, "convlstm", region), lr=lr)
    paths = RunPaths(clips=ROOT / "data" / "clips" / region, model=work / "convlstm.pt", live=work / "live",
                     checkpoint=work / "checkpoint.pt", init=ROOT / "models" / region / "fcn.pt")
    t0 = time.perf_counter()
    metrics = train(cfg, paths)
    return {**metrics, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4])
    ap.add_argument("--regions", nargs="+", default=["face", "eyes", "mouth"])
    ap.add_argument("--json", type=Path, help="write every run's metrics here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    params = load_params(ROOT / "params.yaml")
    print(f"data.seed {params.data.seed}, seed {params.seed}")
    out = {}
    for region in args.regions:
        for lr in args.lr:
            with tempfile.TemporaryDirectory() as tmp:
                m = run(params, region, lr, Path(tmp))
            out[f"{region}/{lr:g}"] = m
            print(f"{region} lr {lr:g} ({m['seconds']:.0f} s): converted {scores(m['converted']['val'])}")
            if "head" in m:
                print(f"    head-only phase {scores(m['head']['val'])}")
            print(f"    kept {m['kept']}: {scores(m['val'])}; rejected: {sorted(m['guard']['rejected']) or 'none'}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

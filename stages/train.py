"""Stages ``train_fcn@<region>`` and ``train_convlstm@<region>``: one training run of one region.

    python -m stages.train <fcn|convlstm> <region>
    torchrun --nproc_per_node 2 -m stages.train <fcn|convlstm> <region>     # DDP

Reads params: seed, model, train.device, train.workers, train.<phase>, regions.<region>.
Reads data/clips/<region>/{train,val} and data/clips/index.csv (the training videos, recorded with
data.source in the model file: `facemask predict --method auto` reads them); convlstm also models/<region>/fcn.pt.
Writes models/<region>/<phase>.pt (the best epoch) and metrics/train/<region>/<phase>/ (DVCLive);
keeps per-epoch state in models/.checkpoints/<region>/<phase>.pt until the run completes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from facemask.clips import REGION_CLASS_NAMES, read_index
from facemask.engine import PHASES, RunPaths, TrainConfig, train
from stages._common import load_params, run_stage, setup_logging


#: The `model` params each phase reads (dvc.yaml declares the same: an FCN does not retrain for a ConvLSTM key).
#: ``arch``: fcn (the reference FCN) | fcn_vgg16 | deeplab_v2 (Table 2's VGG-16 baselines, facemask.baselines).
FCN_KEYS = ("arch", "encoder", "encoder_weights", "output_stride", "encoder_depth")
CONVLSTM_KEYS = ("peephole", "convlstm_init", "output_scale")


def config(params: dict, phase: str, region: str) -> TrainConfig:
    """The engine's config for one phase and region, from params.yaml."""
    t, r = params["train"], params["regions"][region]
    p = t[phase]
    names = list(REGION_CLASS_NAMES.get(region, ()))
    common = dict(
        phase=phase, classes=r["classes"],
        model={k: params["model"][k] for k in (FCN_KEYS if phase == "fcn" else FCN_KEYS + CONVLSTM_KEYS)},
        class_names=names if names and len(names) == r["classes"] else None,
        epochs=p["epochs"], lr=p["lr"], augment=p.get("augment", True),
        max_steps_per_epoch=p.get("max_steps_per_epoch"), accum=p.get("accum", 1),
        seed=params["seed"], device=t["device"], workers=t["workers"], data=data_record(params),
    )
    if phase == "fcn":
        return TrainConfig(**common, batch_size=p["batch_size"], lr_decay=p.get("lr_decay", "linear"), loss="ce")
    loss_kwargs = ({"lfun": p["lfun"], "g": p["g"], "weights": p["weights"], "on": p.get("segloss_on", "scores")}
                   if p["loss"] == "segloss" else {})
    return TrainConfig(**common, batch_size=p["N"], T=p["T"], lr_decay=p.get("lr_decay", "none"),
                       optimizer=p["optimizer"], gamma=r["gamma"], freeze_backbone=p["freeze_backbone"],
                       freeze_bn=p.get("freeze_bn", False),
                       loss=p["loss"], loss_kwargs=loss_kwargs)


def data_record(params: dict, clips: Path = Path("data/clips")) -> dict:
    """What the models are trained on, for the model file: ``{"source": data.source, "videos": n}``."""
    index = read_index(clips)
    return {"source": params["data"]["source"], "videos": int(index.loc[index.split == "train", "video"].nunique())}


def paths(phase: str, region: str) -> RunPaths:
    return RunPaths(
        clips=Path("data/clips") / region,
        model=Path("models") / region / f"{phase}.pt",
        live=Path("metrics/train") / region / phase,
        checkpoint=Path("models/.checkpoints") / region / f"{phase}.pt",
        init=Path("models") / region / "fcn.pt" if phase == "convlstm" else None,
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    params = load_params()
    if len(argv) != 2 or argv[0] not in PHASES or argv[1] not in params["regions"]:
        sys.exit(f"usage: python -m stages.train {{{'|'.join(PHASES)}}} {{{'|'.join(params['regions'])}}}")
    setup_logging()
    train(config(params, *argv), paths(*argv))


if __name__ == "__main__":
    run_stage(main)

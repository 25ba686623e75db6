"""Stages ``train_fcn@<region>``, ``train_convlstm@<region>`` and ``train_baselines``: training runs of a region.

    python -m stages.train <fcn|convlstm|baselines> <region> --clips DIR --index CSV --model PT --curves DIR
                           --checkpoint PT [--init PT]
    torchrun --nproc_per_node 2 -m stages.train ...                                # DDP

(dvc.yaml's ``cmd`` of each training stage gives the paths; `python -m stages.command train_fcn@face` prints one.)

Reads params: seed, model, train.device, train.workers, train.sync_bn, train.compile, train.<phase>,
regions.<region>. Before training it checks both phases' batches against the process count (and the
device), so a combination the ConvLSTM phase cannot run fails before the FCNs train, not after.
Reads ``--clips`` (data/clips/<region>: {train,val}) and ``--index`` (data/clips/index.csv: the training
videos, recorded with data.source in the model file: `facemask predict --method auto` reads them); convlstm
also ``--init`` (models/<region>/fcn.pt). Writes ``--model`` (models/<region>/<phase>.pt, the best epoch) and
``--curves`` (metrics/train/<region>/<phase>/, DVCLive); keeps per-epoch state in ``--checkpoint``
(models/.checkpoints/<region>/<phase>.pt) until the run completes.

``baselines``: each arch of ``baselines.archs`` (Table 2's fcn_vgg16, deeplab_v2; none by default) trained
as the FCN phase (``train.fcn``'s recipe, ``model.encoder_weights``) on the region's clips, one after the
other: ``--model``, ``--curves`` and ``--checkpoint`` are then folders (models/<region>/baselines/<arch>.pt,
metrics/train/<region>/baselines/<arch>/, models/.checkpoints/<region>/baselines/<arch>.pt); the first two hold
``archs.json``, the archs trained (the fuse stage scores each as a method of its own).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from facemask.core.errors import ParamsError
from facemask.core.io import atomic_write_json
from facemask.data.clips.build import read_index
from facemask.data.labels import REGION_CLASS_NAMES
from facemask.models.registry import PHASES
from facemask.training.distributed import process_group, world
from facemask.training.engine import RunPaths, TrainConfig, check_config, train
from stages._common import load_params, run_stage, setup_logging, stage_args

#: The `model` params each phase reads (dvc.yaml declares the same: an FCN does not retrain for a ConvLSTM key).
#: ``arch``: fcn (the reference FCN) | fcn_vgg16 | deeplab_v2 (Table 2's VGG-16 baselines, facemask.models.baselines).
FCN_KEYS = ("arch", "encoder", "encoder_weights", "output_stride", "encoder_depth")
CONVLSTM_KEYS = ("peephole", "convlstm_init", "output_scale")
#: The guard's thresholds in train.convlstm (facemask.training.guard; left out: TrainConfig's defaults).
GUARD_KEYS = ("guard_drop", "guard_share")


def config(params: dict, phase: str, region: str, data: dict | None = None) -> TrainConfig:
    """The engine's config for one phase and region, from params.yaml; `data` (`data_record`) is recorded in
    the model file (the start-up `check` needs none)."""
    t, r = params["train"], params["regions"][region]
    p = t[phase]
    names = list(REGION_CLASS_NAMES.get(region, ()))
    common = dict(
        phase=phase, classes=r["classes"],
        model={k: params["model"][k] for k in (FCN_KEYS if phase == "fcn" else FCN_KEYS + CONVLSTM_KEYS)},
        class_names=names if names and len(names) == r["classes"] else None,
        epochs=p["epochs"], lr=p["lr"], augment=p.get("augment", True),
        max_steps_per_epoch=p.get("max_steps_per_epoch"), accum=p.get("accum", 1),
        seed=params["seed"], device=t["device"], workers=t["workers"], data=data or {},
        sync_bn=bool(t.get("sync_bn", False)), compile=bool(t.get("compile", False)),
    )
    if phase == "fcn":
        return TrainConfig(**common, batch_size=p["batch_size"], lr_decay=p.get("lr_decay", "linear"), loss="ce")
    loss_kwargs = ({"lfun": p["lfun"], "g": p["g"], "weights": p["weights"], "on": p.get("segloss_on", "scores")}
                   if p["loss"] == "segloss" else {})
    return TrainConfig(**common, batch_size=p["N"], T=p["T"], lr_decay=p.get("lr_decay", "none"),
                       optimizer=p["optimizer"], gamma=r["gamma"], freeze_backbone=p["freeze_backbone"],
                       freeze_bn=p.get("freeze_bn", False), head_steps=p.get("head_steps", 0),
                       corrupt=p.get("corrupt", 0.0), loss=p["loss"], loss_kwargs=loss_kwargs,
                       **{k: p[k] for k in GUARD_KEYS if k in p})


def data_record(params: dict, index: Path) -> dict:
    """What the models are trained on, for the model file: ``{"source": data.source, "videos": n}`` (`index`:
    the clips stage's index.csv)."""
    clips = read_index(index)
    return {"source": params["data"]["source"], "videos": int(clips.loc[clips.split == "train", "video"].nunique())}


def run_paths(args) -> RunPaths:
    """One phase's files, as the stage's command line names them."""
    return RunPaths(clips=args.clips, model=args.model, live=args.curves, checkpoint=args.checkpoint, init=args.init)


def baseline_paths(args, arch: str) -> RunPaths:
    """An arch's files inside the baselines' folders the command line names."""
    return RunPaths(clips=args.clips, model=args.model / f"{arch}.pt", live=args.curves / arch,
                    checkpoint=args.checkpoint / f"{arch}.pt")


def baseline_config(params: dict, arch: str, region: str, data: dict | None = None) -> TrainConfig:
    """The FCN phase's config for a Table 2 baseline: its model keys are the arch, the encoder weights and
    ``baselines.batch_norm`` (VGG-16 or VGG-16-BN; the archs fix their encoder and strides otherwise, and
    dvc.yaml declares no other `model` key for them)."""
    cfg = config(params, "fcn", region, data=data)
    return dataclasses.replace(cfg, model={"arch": arch, "encoder_weights": params["model"]["encoder_weights"],
                                           "batch_norm": bool(params["baselines"].get("batch_norm", True))})


def train_baselines(params: dict, region: str, args) -> None:
    """Each of ``baselines.archs`` as the FCN phase of `region` (the same loop, recipe and data), then the
    manifest ``archs.json`` in both output folders (written last: it names only models that exist).

    Under torchrun the archs share one process group. Each finished arch keeps its last checkpoint until
    the manifest is written, so a rerun after an interruption (DVC clears the outputs first) rewrites the
    finished models from their checkpoints and continues the unfinished one."""
    archs = list(params.get("baselines", {}).get("archs", []))
    data = data_record(params, args.index)
    runs = [(baseline_config(params, arch, region, data), baseline_paths(args, arch)) for arch in archs]
    with process_group(params["train"]["device"]) as d:
        for cfg, run in runs:
            train(cfg, run, keep_checkpoint=True)
        if d.main:
            for folder in (args.model, args.curves):
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_json(folder / "archs.json", {"archs": archs})
            for _, run in runs:
                run.checkpoint.unlink(missing_ok=True)
        d.barrier()


def main(argv: list[str] | None = None) -> None:
    args = stage_args("train", "clips", "index", "model", "curves", "checkpoint", optional=("init",),
                      positional=("phase", "region"), argv=argv)
    params = load_params()
    phases = (*PHASES, "baselines")
    if args.phase not in phases or args.region not in params["regions"]:
        sys.exit(f"usage: python -m stages.train {{{'|'.join(phases)}}} {{{'|'.join(params['regions'])}}} ...")
    if (args.phase == "convlstm") != (args.init is not None):
        sys.exit("python -m stages.train: --init (the region's fcn.pt) goes with the convlstm phase, and only with it")
    setup_logging()
    if args.phase == "baselines":
        check(params, args.region, ("fcn",))
        train_baselines(params, args.region, args)
        return
    check(params, args.region)
    train(config(params, args.phase, args.region, data=data_record(params, args.index)), run_paths(args))


def check(params: dict, region: str, phases: tuple[str, ...] = PHASES) -> None:
    """The phases' batch settings (both by default) against this run's process count (torchrun's
    WORLD_SIZE) and device."""
    processes = world().world
    device = str(params["train"]["device"])
    device_type = "cpu" if device == "cpu" or (device == "auto" and not torch.cuda.is_available()) else None
    for phase in phases:
        try:
            check_config(config(params, phase, region), processes, device_type)
        except ValueError as e:
            key = "train.fcn.batch_size" if phase == "fcn" else "train.convlstm.N"
            raise ParamsError(f"params.yaml: {key} / train.{phase}.accum / train.sync_bn with {processes} "
                              f"process(es): {e}") from None


if __name__ == "__main__":
    run_stage(main)

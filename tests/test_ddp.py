"""Several processes (torchrun, gloo on the CPU) with the project's own configurations (issue 24).

The stage runs under ``torchrun`` with the real ``params.yaml`` and ``configs/paper.yaml``, changed only in
epochs and steps per epoch (1 and 2) and in what does not change what a step computes (`engine.HARDWARE`:
``train.device: cpu``, ``train.workers: 0``; paper.yaml's ImageNet weights need the internet:
``model.encoder_weights: null``), on tiny clips (4 + 2 clips of 10 frames at 32 px). Each run is compared
with one process accumulating the same micro-batches (``accum``), as tests/test_engine.py compares: every
parameter's distance to the one-process weights within 1 % of that parameter's update, the training loss
to 1e-4 of itself. Before issue 24, ``params.yaml``'s ``encoder_depth: 3`` left ResNet-18's ``layer3`` and
``layer4`` registered but never run, and DDP stopped at the second step ("Expected to have finished
reduction in the prior iteration"). 2 processes: the fast tier (params.yaml, both phases, and the start-up
check: about 65 s on 2 cores, most of it starting torchrun's processes); 4 processes and paper.yaml's
ResNet-50 on 2 and 4: slow (about 3.5 min).
"""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml
from _clips import write_clips
from _params import config_dict, typed

from _stages import stage_args, stage_command, torchrun

from facemask.core.errors import ParamsError
from facemask.data.clips.loaders import ClipDataset
from facemask.models.encoder import make_encoder
from facemask.models.nets import FCN, ConvLSTMFCN
from facemask.models.registry import load_model, save_model
from facemask.training import engine
from facemask.training.config import TrainConfig
from facemask.training.distributed import Dist
from facemask.training.engine import RunPaths

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("params.yaml", "configs/paper.yaml")


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("data"), clips={"train": 4, "val": 2}, length=10, size=32)


def shrunk(config: str) -> dict:
    """The project's configuration file `config`, shrunk to 1 epoch of 2 steps in each phase, on the CPU."""
    p = config_dict(config)
    for phase in ("fcn", "convlstm"):
        p["train"][phase].update(epochs=1, max_steps_per_epoch=2)
    p["train"].update(device="cpu", workers=0)   # engine.HARDWARE: how a step is computed, not what
    p["model"]["encoder_weights"] = None         # paper.yaml: imagenet, a download
    return p


def paths(root: Path, phase: str, clips: Path) -> RunPaths:
    return RunPaths(clips=clips, model=root / "models" / "face" / f"{phase}.pt",
                    live=root / "metrics" / "train" / "face" / phase,
                    checkpoint=root / "models" / ".checkpoints" / "face" / f"{phase}.pt",
                    init=root / "models" / "face" / "fcn.pt" if phase == "convlstm" else None)


@pytest.fixture(scope="module")
def fcn_models(clips, tmp_path_factory):
    """Each configuration's FCN (one process), the start of its ConvLSTM phase; trained on first use."""

    done: dict[str, Path] = {}

    def get(config: str) -> Path:
        if config not in done:
            run = paths(tmp_path_factory.mktemp("fcn"), "fcn", clips)
            engine.train(TrainConfig.from_params(typed(shrunk(config)), "fcn", "face"), run)
            done[config] = run.model
        return done[config]
    return get


def _initial_model(cfg: TrainConfig, run: RunPaths) -> torch.nn.Module:
    """The model a run of `cfg` starts from, built as `engine.train` builds it (seeded, then built)."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    calibration = None
    if cfg.phase == "convlstm":
        calibration = np.asarray(ClipDataset(run.clips / "train", window=cfg.T).images[::5, :cfg.T])
    return engine.phase_model(cfg, run.init, calibration)


def _work(tmp_path: Path, clips: Path, params: dict, fcn: Path | None) -> Path:
    """A project folder for the stage: params.yaml, data/clips/{face, index.csv}, models/face/fcn.pt."""
    work = tmp_path / "ddp"
    (work / "data" / "clips").mkdir(parents=True)
    (work / "data" / "clips" / "face").symlink_to(clips)
    (work / "data" / "clips" / "index.csv").write_text(
        "clip,split,row,video,first_frame,length,category\n0,train,0,001,1,5,1\n1,train,1,002,1,5,1\n")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if fcn is not None:
        (work / "models" / "face").mkdir(parents=True)
        (work / "models" / "face" / "fcn.pt").write_bytes(fcn.read_bytes())
    return work


def _train_loss(live: Path) -> float:
    rows = (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert len(rows) == 2, rows                                  # header, epoch 1
    return float(rows[-1].split("\t")[-1])


def check_processes_match_one(config: str, phase: str, world: int, clips: Path, fcn_models, tmp_path: Path) -> str:
    """`world` processes under torchrun against one process accumulating the same micro-batches."""

    params = shrunk(config)
    cfg = TrainConfig.from_params(typed(params), phase, "face")
    assert cfg.accum == 1
    fcn = fcn_models(config) if phase == "convlstm" else None
    one = paths(tmp_path / "one", phase, clips)
    if fcn is not None:
        one.init.parent.mkdir(parents=True)
        one.init.write_bytes(fcn.read_bytes())
    # idle processes (more than the batch's items) train on a padding item of weight 0: not a micro-batch
    engine.train(dataclasses.replace(cfg, accum=min(world, cfg.batch_size)), one)

    work = _work(tmp_path, clips, params, fcn)
    rc, log = torchrun(work, world, stage_command(f"train_{phase}", "face"))
    assert rc == 0, "\n".join(sorted({line[:300] for line in log.splitlines() if "Error:" in line})) or log[-3000:]
    assert f"{world} process(es) on cpu" in log

    start = _initial_model(cfg, one)
    init, names = start.state_dict(), [k for k, _ in start.named_parameters()]
    a = torch.load(one.model, weights_only=True)["state_dict"]
    b = torch.load(work / "models" / "face" / f"{phase}.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(a[k], init[k]) for k in names)    # it trained
    # Adam's first steps are ~lr * sign(gradient): compare whole updates (BatchNorm running statistics are
    # rank 0's under DDP: not compared)
    for k in names:
        update = (a[k] - init[k]).norm()
        assert (b[k] - a[k]).norm() <= 1e-2 * update + 1e-7, (k, float((b[k] - a[k]).norm()), float(update))
    u, v = _train_loss(one.live), _train_loss(work / "metrics" / "train" / "face" / phase)
    assert abs(u - v) <= 1e-4 * abs(u), (u, v)
    return log


@pytest.mark.parametrize("phase", ["fcn", "convlstm"])
def test_params_yaml_on_two_processes_matches_one_process(phase, clips, fcn_models, tmp_path):
    check_processes_match_one("params.yaml", phase, 2, clips, fcn_models, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["fcn", "convlstm"])
def test_params_yaml_on_four_processes_matches_one_process(phase, clips, fcn_models, tmp_path):
    log = check_processes_match_one("params.yaml", phase, 4, clips, fcn_models, tmp_path)
    if phase == "convlstm":   # N = 2 sequences on 4 processes: 2 carry the zero-weight padding item
        assert "2 of 4 processes get no item" in log


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("phase", ["fcn", "convlstm"])
def test_paper_yaml_on_several_processes_matches_one_process(phase, world, clips, fcn_models, tmp_path):
    check_processes_match_one("configs/paper.yaml", phase, world, clips, fcn_models, tmp_path)


# ---------------------------------------------------------------------------------------------------
# The cause: parameters an encoder never runs


def test_the_stages_a_truncated_encoder_never_runs_are_frozen():
    """smp keeps a ResNet's layer3 and layer4 registered at depth 3 (torchvision's names); they are frozen,
    stay in the state dict (the checkpoint layout), and no other parameter is; the whole encoder trains at
    depth 5. ``freeze_backbone`` off again leaves them frozen."""
    import torchvision

    full = [f"encoder.{n}" for n, _ in torchvision.models.resnet18().named_parameters() if not n.startswith("fc.")]
    for depth, dropped in ((3, ("layer3.", "layer4.")), (4, ("layer4.",)), (5, ())):
        model = ConvLSTMFCN("resnet18", 5, None, 8, encoder_depth=depth)
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        assert frozen == [n for n in full if n.startswith(tuple(f"encoder.{s}" for s in dropped))], depth
        assert [k for k in model.state_dict() if k.startswith("encoder.") and "running" not in k
                and "num_batches" not in k] == full
        model(torch.rand(1, 2, 3, 32, 32)).sum().backward()
        assert all((p.grad is None) == (not p.requires_grad) for p in model.parameters()), depth
        model.freeze_backbone(True).freeze_backbone(False)
        assert [n for n, p in model.named_parameters() if not p.requires_grad] == frozen


def test_an_encoder_head_never_run_is_frozen_at_any_depth():
    """smp's EfficientNet keeps the classifier's 1x1 expansion and its batch norm (`_conv_head`, `_bn1`),
    which its forward never runs (smp pull request 779), at depth 5 too."""
    encoder = make_encoder("efficientnet-b0", None, 16, 5)
    assert encoder.unused_parameters == ("_conv_head.weight", "_bn1.weight", "_bn1.bias")
    assert [n for n, p in encoder.named_parameters() if not p.requires_grad] == list(encoder.unused_parameters)


def test_a_model_loaded_from_its_file_freezes_the_same_parameters(tmp_path):
    model = FCN("resnet18", 5, None, 8, encoder_depth=3)
    save_model(tmp_path / "fcn.pt", model, "fcn", {"encoder": "resnet18", "classes": 5, "output_stride": 8,
                                                         "encoder_depth": 3})
    loaded = load_model(tmp_path / "fcn.pt")
    assert loaded.encoder.unused_parameters == model.encoder.unused_parameters
    assert len(loaded.encoder.unused_parameters) == 30                      # layer3 and layer4 of ResNet-18
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in model.parameters()]


# ---------------------------------------------------------------------------------------------------
# The start-up check


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo group of this process alone (the check's all-reduce then sums its own count)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _fcn_setup(clips: Path, freeze: bool):

    cfg = TrainConfig.from_params(typed(shrunk("params.yaml")), "fcn", "face")
    model = engine.phase_model(cfg)
    if not freeze:                                  # the encoder as smp returns it (main before issue 24)
        model.encoder.requires_grad_(True)
    return cfg, model, ClipDataset(clips / "train", augment=True, seed=cfg.seed)


def test_the_start_up_check_leaves_no_trace(clips, one_process_group):
    """A passing check: the weights, the BatchNorm statistics, the gradients (none), every module's mode and
    the random state are as before, to the bit."""
    cfg, model, train_set = _fcn_setup(clips, freeze=True)
    model.train()
    model.encoder.layer1.eval()                     # a mixed state, as freeze_bn leaves one
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    engine.ddp_preflight(model, train_set, torch.nn.CrossEntropyLoss(), cfg, Dist(0, 2, 0),
                         torch.device("cpu"))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_start_up_check_names_the_setting(clips, one_process_group):
    cfg, model, train_set = _fcn_setup(clips, freeze=False)
    with pytest.raises(ParamsError, match=r"^params.yaml: model.encoder resnet18 / model.encoder_depth 3 \(train.fcn "
                                          r"on 2 processes\): 30 trainable parameter\(s\) get no gradient .*"
                                          r"\(encoder.layer3.0.conv1.weight, .* and 27 more\); DDP needs"):
        engine.ddp_preflight(model, train_set, torch.nn.CrossEntropyLoss(), cfg, Dist(0, 2, 0),
                             torch.device("cpu"))
    engine.ddp_preflight(model, train_set, torch.nn.CrossEntropyLoss(), cfg, Dist(0, 1, 0),
                         torch.device("cpu"))            # one process: nothing to check


#: The stage with the encoder as smp returns it (every stage registered, none frozen: main before issue 24).
UNFROZEN_STAGE = """
from facemask.models import encoder
encoder.freeze_unused = lambda encoder, size=64: ()
from stages import train
from stages._common import run_stage
run_stage(train.main)
"""


def test_a_model_ddp_cannot_train_stops_before_training_with_one_line(clips, tmp_path):
    """Under torchrun, a model with parameters it never uses stops at start-up with one line naming the
    setting, the same on each process that gets to print it, before any step (not with DDP's error at the second
    step). (torchrun stops the other process as soon as one exits: on a busy machine the second line may not get
    out, so one or two identical lines.)"""
    work = _work(tmp_path, clips, shrunk("params.yaml"), None)
    (work / "unfrozen.py").write_text(UNFROZEN_STAGE)
    rc, log = torchrun(work, 2, ["unfrozen.py", *stage_args("train_fcn", "face")])
    assert rc != 0
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(set(errors)) == 1 and len(errors) in (1, 2), log[-3000:]    # the same line from each process
    assert errors[0].startswith("error: params.yaml: model.encoder resnet18 / model.encoder_depth 3 (train.fcn on 2 "
                                "processes): 30 trainable parameter(s) get no gradient"), errors
    assert "epoch 1/1" not in log and "Expected to have finished reduction" not in log

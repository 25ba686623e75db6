"""The training loop: both phases end to end, resume after an interruption, DDP against one process,
layer-wise learning rates and the frozen backbone. Tiny: ResNet-18 at 32x32, a few clips."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from _clips import write_clips
from _params import params as project_params
from _params import typed, write_params
from _stages import stage_args, stage_command, torchrun

from facemask.core.errors import ParamsError
from facemask.models.nets import FCN, ConvLSTMFCN
from facemask.models.registry import load_model
from facemask.training import engine
from facemask.training.distributed import Dist
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths

MODEL = {"arch": "fcn", "encoder": "resnet18", "encoder_weights": None, "output_stride": 16, "encoder_depth": 5, "peephole": True,
         "convlstm_init": "conv6", "output_scale": 1.0}


def fcn_config(**kw) -> TrainConfig:
    """params.yaml's FCN phase of the face, shrunk: tiny model, 2 epochs of 3 steps of 4 frames."""
    return dataclasses.replace(TrainConfig.from_params(typed(), "fcn", "face"), **{
        "model": dict(MODEL), "class_names": None, "epochs": 2, "batch_size": 4, "max_steps_per_epoch": 3, **kw})


def convlstm_config(**kw) -> TrainConfig:
    """params.yaml's ConvLSTM phase of the face with the paper's recipe (all layers, SegLoss Eq. 9, no head-only
    phase, no corruption), shrunk: tiny model, 2 epochs."""
    base = TrainConfig.from_params(typed(), "convlstm", "face")
    return dataclasses.replace(base, **{
        "model": dict(MODEL), "class_names": None, "lr": 1e-3, "epochs": 2, "batch_size": 2, "T": 5, "lr_decay": "none",
        "gamma": 0.05, "loss": "segloss",
        "loss_kwargs": {"lfun": "eq9", "g": 0.0, "weights": "hard"}, "freeze_backbone": False, "freeze_bn": False,
        "head_steps": 0, "corrupt": 0.0, "max_steps_per_epoch": None, **kw})


def run_paths(root: Path, phase: str, clips: Path) -> RunPaths:
    return RunPaths(clips=clips, model=root / "models" / f"{phase}.pt", live=root / "metrics" / phase,
                    checkpoint=root / "models" / ".checkpoints" / f"{phase}.pt",
                    init=root / "models" / "fcn.pt" if phase == "convlstm" else None)


def curves(live: Path) -> dict[str, str]:
    return {str(p.relative_to(live)): p.read_text() for p in sorted((live / "plots").rglob("*.tsv"))}


pytestmark = pytest.mark.usefixtures("one_thread_per_module")  # tiny tensors: one thread (conftest)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("data"), clips={"train": 4, "val": 2}, length=10, size=32)


@pytest.fixture(scope="module")
def trained_fcn(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    metrics = engine.train(fcn_config(), run_paths(root, "fcn", clips))
    return root, metrics


def test_fcn_then_convlstm_write_models_and_metrics(trained_fcn, clips):
    root, metrics = trained_fcn
    fcn = load_model(root / "models" / "fcn.pt")
    assert isinstance(fcn, FCN) and fcn.checkpoint["epoch"] == metrics["best_epoch"]
    summary = json.loads((root / "metrics" / "fcn" / "metrics.json").read_text())
    assert summary["val"]["mIoU"] == metrics["val"]["mIoU"]
    assert set(summary["val"]["IoU"]) == {f"class{c}" for c in range(5)}
    assert len(curves(root / "metrics" / "fcn")["plots/metrics/val/mIoU.tsv"].splitlines()) == 1 + 2  # header, 2 epochs
    assert not (root / "models" / ".checkpoints" / "fcn.pt").exists()

    metrics = engine.train(convlstm_config(max_steps_per_epoch=2), run_paths(root, "convlstm", clips))
    model = load_model(root / "models" / "convlstm.pt")
    assert isinstance(model, ConvLSTMFCN) and model.config["T"] == 5 and model.config["input_size"] == 32
    assert 0 <= metrics["val"]["mIoU"] <= 1 and metrics["best_epoch"] in (1, 2)
    assert {"lr/convlstm.tsv", "lr/backbone.tsv"} <= {Path(k).relative_to("plots/metrics").as_posix()
                                                      for k in curves(root / "metrics" / "convlstm")}


class Interrupt(Exception):
    pass


def interrupt_after_epoch(monkeypatch, epoch: int) -> None:
    """Make `engine.save_checkpoint` raise `Interrupt` once it has written the checkpoint of `epoch`
    (``monkeypatch.undo()`` ends it)."""
    save = engine.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        if state["epoch"] == epoch:
            raise Interrupt
    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)


def test_resume_after_interruption_ends_like_an_uninterrupted_run(clips, tmp_path, monkeypatch):
    cfg = fcn_config(epochs=3)
    whole = run_paths(tmp_path / "whole", "fcn", clips)
    engine.train(cfg, whole)

    cut = run_paths(tmp_path / "cut", "fcn", clips)
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(Interrupt):
        engine.train(cfg, cut)
    assert cut.checkpoint.exists() and not cut.model.exists()
    monkeypatch.undo()
    torch.manual_seed(1234)  # the global random state at restart must not matter
    engine.train(cfg, cut)

    a, b = torch.load(whole.model, weights_only=True), torch.load(cut.model, weights_only=True)
    assert a["epoch"] == b["epoch"] and a["metrics"] == b["metrics"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (whole.live / "metrics.json").read_text() == (cut.live / "metrics.json").read_text()
    assert curves(whole.live) == curves(cut.live)  # every epoch's row, once
    assert not cut.checkpoint.exists()


def test_a_checkpoint_of_another_configuration_is_not_continued(clips, tmp_path):
    paths = run_paths(tmp_path, "fcn", clips)
    fp = engine.fingerprint(fcn_config(), paths)
    assert engine.fingerprint(fcn_config(device="cpu", workers=2), paths) == fp   # changes nothing
    assert engine.fingerprint(fcn_config(lr=0.01), paths) != fp
    assert engine.fingerprint(fcn_config(seed=1), paths) != fp


def test_layerwise_learning_rates(trained_fcn):
    root, _ = trained_fcn
    model = engine.phase_model(convlstm_config(), root / "models" / "fcn.pt")
    opt = engine.build_optimizer(model, convlstm_config(lr=0.002, gamma=0.05))
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["convlstm"]["lr"] == 0.002 and groups["backbone"]["lr"] == pytest.approx(0.002 * 0.05)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(groups["convlstm"]["params"]) == ids(model.convlstm.parameters())
    assert ids(groups["backbone"]["params"]) | ids(groups["convlstm"]["params"]) == ids(model.parameters())
    assert isinstance(opt, torch.optim.Adam)
    rms = engine.build_optimizer(model, convlstm_config(optimizer="rmsprop"))
    assert isinstance(rms, torch.optim.RMSprop)


def test_frozen_backbone_trains_the_convlstm_alone(trained_fcn, clips, tmp_path):
    root, _ = trained_fcn
    paths = run_paths(tmp_path, "convlstm", clips)
    paths.init = root / "models" / "fcn.pt"
    engine.train(convlstm_config(epochs=1, max_steps_per_epoch=2, freeze_backbone=True), paths)
    before = torch.load(paths.init, weights_only=True)["state_dict"]
    after = torch.load(paths.model, weights_only=True)["state_dict"]
    init = ConvLSTMFCN.from_fcn(load_model(paths.init)).state_dict()  # the ConvLSTM's initial weights
    for k, v in after.items():
        if k.startswith("convlstm."):
            continue
        assert torch.equal(v, before[k]), k          # weights and BatchNorm statistics alike
    changed = [k for k, v in after.items() if k.startswith("convlstm.") and not torch.equal(v, init[k])]
    assert "convlstm.conv_x.weight" in changed and "convlstm.conv_h.weight" in changed


def test_ddp_two_processes_match_one_process(clips, tmp_path):
    """2 processes x 1 micro-batch per step (gloo) against 1 process accumulating the same 2 micro-batches."""
    cfg = fcn_config(epochs=1, max_steps_per_epoch=3)
    one = run_paths(tmp_path / "one", "fcn", clips)
    engine.train(TrainConfig(**{**cfg.__dict__, "accum": 2}), one)

    # the stage under torchrun, in a work dir of its own
    work = tmp_path / "ddp"
    (work / "data" / "clips").mkdir(parents=True)
    (work / "data" / "clips" / "face").symlink_to(clips)
    _write_index(work)
    write_params(work, seed=cfg.seed, **{f"model.{k}": v for k, v in MODEL.items()}, **{
        "train.device": "cpu", "train.workers": 0, "train.fcn.epochs": 1, "train.fcn.batch_size": 4,
        "train.fcn.lr": cfg.lr, "train.fcn.augment": True, "train.fcn.lr_decay": "linear", "train.fcn.accum": 1,
        "train.fcn.max_steps_per_epoch": 3})
    rc, out = torchrun(work, 2, stage_command("train_fcn", "face"), timeout=180)
    assert rc == 0, out[-3000:]

    a = torch.load(one.model, weights_only=True)["state_dict"]
    saved = torch.load(work / "models" / "face" / "fcn.pt", weights_only=True)
    b = saved["state_dict"]
    assert saved["config"]["data"] == {"source": "synthetic", "videos": 2}  # what `predict --method auto` reads
    torch.manual_seed(cfg.seed)
    init = dict(FCN("resnet18", 5).named_parameters())   # the weights both runs started from
    # Adam's first steps are ~lr * sign(gradient): summation-order noise flips a few near-zero
    # gradients, so compare whole updates. (1 process without accumulation, whose BatchNorm sees
    # all 4 items at once, is ~1.4 away on this measure.)
    for k, w in init.items():
        update = (a[k] - w).norm()
        assert (b[k] - a[k]).norm() <= 1e-2 * update, k
    # BatchNorm running statistics are rank 0's under DDP (its micro-batches only): not compared
    assert not (work / "models" / ".checkpoints" / "face" / "fcn.pt").exists()


def _stage_params(cfg: TrainConfig, **train) -> dict:
    """The project's params.yaml (the schema needs every section) for `stages.train convlstm face` holding `cfg`."""
    p = project_params(seed=cfg.seed, **{"regions.face.gamma": cfg.gamma})
    p["model"].update(MODEL)
    p["train"].update({"device": "cpu", "workers": 0, **train})
    p["train"]["fcn"].update({"epochs": 1, "batch_size": 4, "lr": 1e-3, "max_steps_per_epoch": 1})
    p["train"]["convlstm"].update({"epochs": cfg.epochs, "T": cfg.T, "N": cfg.batch_size, "lr": cfg.lr,
                                   "optimizer": cfg.optimizer, "freeze_backbone": False, "loss": cfg.loss,
                                   **cfg.loss_kwargs, "augment": cfg.augment, "lr_decay": cfg.lr_decay,
                                   "max_steps_per_epoch": cfg.max_steps_per_epoch})
    p["clips"]["window"] = cfg.T  # the schema: clips.window = train.convlstm.T
    return p


def _write_index(work: Path) -> None:
    """The clip index the training stage reads for the model file's data record (two training videos)."""
    (work / "data" / "clips" / "index.csv").write_text("clip,split,row,video,first_frame,length,category\n"
                                                       "0,train,0,001,1,5,1\n1,train,1,002,1,5,1\n2,test,0,003,1,5,1\n")


@pytest.mark.slow
def test_convlstm_on_four_processes_resumed_from_one_matches_one_process(trained_fcn, clips, tmp_path, monkeypatch):
    """The paper's N = 2 sequences on 4 processes (2 of them idle, with zero-weight padding), continuing a
    checkpoint one process wrote, against one process accumulating the same 2 micro-batches throughout.

    Epoch 1 runs in this process in both runs (bit-identical); epoch 2 may differ only by the order of
    floating-point sums. The models saved are the best epoch's (here the first: val mIoU ties), so epoch 2
    is compared through its curves, which both runs log: the training loss (the mean over the epoch's
    micro-batches, every one a function of the weights so far) to 1e-4 of itself, and every class's val
    IoU (of the epoch-2 weights) to 1e-3. (Measured: equal to the last bit; with gloo the weights 2/(4 x 1)
    and 1/2 make the same sums.) About a minute on 2 cores: slow."""

    root, _ = trained_fcn
    params = _stage_params(convlstm_config(epochs=2, max_steps_per_epoch=2))   # accum 1: 4 x 1 micro-batch
    cfg = dataclasses.replace(TrainConfig.from_params(typed(params), "convlstm", "face"), accum=2)  # what the stage runs, accumulated
    one = run_paths(tmp_path / "one", "convlstm", clips)
    one.init = root / "models" / "fcn.pt"
    engine.train(cfg, one)

    work = tmp_path / "ddp"
    (work / "data" / "clips").mkdir(parents=True)
    (work / "data" / "clips" / "face").symlink_to(clips)
    _write_index(work)
    (work / "models" / "face").mkdir(parents=True)
    (work / "models" / "face" / "fcn.pt").write_bytes(one.init.read_bytes())
    cut = RunPaths(clips=clips, model=work / "models" / "face" / "convlstm.pt", live=work / "metrics" / "train" /
                   "face" / "convlstm", checkpoint=work / "models" / ".checkpoints" / "face" / "convlstm.pt",
                   init=work / "models" / "face" / "fcn.pt")
    save = engine.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        raise Interrupt
    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        engine.train(cfg, cut)                   # epoch 1 on one process, then interrupted
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    rc, log = torchrun(work, 4, stage_command("train_convlstm", "face"))
    assert rc == 0, log[-3000:]
    assert "resuming after epoch 1 of 2" in log and "2 of 4 processes get no item" in log

    one_curves, cut_curves = curves(one.live), curves(cut.live)
    assert one_curves.keys() == cut_curves.keys() and "plots/metrics/train/loss.tsv" in one_curves

    def epoch2(text: str) -> float:
        rows = text.splitlines()
        assert len(rows) == 1 + 2, text                  # header, epochs 1 and 2
        return float(rows[-1].split("\t")[-1])
    for name in one_curves:
        u, v = epoch2(one_curves[name]), epoch2(cut_curves[name])
        if name.endswith("train/loss.tsv"):
            assert abs(u - v) <= 1e-4 * abs(u), (name, u, v)
        elif "/val/" in name:
            assert abs(u - v) <= 1e-3, (name, u, v)


def test_a_bad_combination_fails_before_any_training(tmp_path, monkeypatch):
    """accum 2 x 2 processes for the ConvLSTM's N = 2: the FCN stage stops before training the FCN."""
    from stages import train as stage

    params = _stage_params(convlstm_config(), sync_bn=False)
    params["train"]["convlstm"]["accum"] = 2
    monkeypatch.setattr(stage, "load_params", lambda: typed(params))

    def train(*args):
        raise Interrupt  # reached training
    monkeypatch.setattr(stage, "train", train)
    monkeypatch.setattr(stage, "data_record", lambda params, index: {})  # no clip index here
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ParamsError, match=r"params.yaml: train.convlstm.N / .* 2 process\(es\): .* accum <= 1"):
        stage.main(stage_args("train_fcn", "face"))
    params["train"]["convlstm"]["accum"] = 1       # SyncBatchNorm on CPU processes
    params["train"]["sync_bn"] = True
    with pytest.raises(ParamsError, match="SyncBatchNorm does not run on the CPU"):
        stage.main(stage_args("train_fcn", "face"))
    monkeypatch.setenv("WORLD_SIZE", "1")          # one process: nothing to synchronise, nothing to cut
    with pytest.raises(Interrupt):
        stage.main(stage_args("train_fcn", "face"))


def test_rank_zero_builds_first():
    """`_Dist.main_first`: rank 0 finishes the block (e.g. a weight download) before the others start it.
    Two threads stand for two processes, a threading barrier for the process group's."""
    import threading
    import time

    barrier, events = threading.Barrier(2), []

    class Proc(Dist):
        def barrier(self):
            barrier.wait(timeout=10)

    def run(rank):
        with Proc(rank, 2, rank).main_first():
            events.append((rank, "enter"))
            time.sleep(0.2 if rank == 0 else 0.0)
            events.append((rank, "exit"))

    threads = [threading.Thread(target=run, args=(r,)) for r in (1, 0)]   # rank 1 starts first
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events == [(0, "enter"), (0, "exit"), (1, "enter"), (1, "exit")]


def test_compile_wraps_the_training_forward(clips, tmp_path, monkeypatch):
    """`compile: true` trains through torch.compile's module (here a stand-in that records what it gets:
    compiling takes minutes on this CPU); the saved state dict is the plain model's."""
    compiled = []

    def fake_compile(module):
        compiled.append(module)
        return module
    monkeypatch.setattr(engine.torch, "compile", fake_compile)
    paths = run_paths(tmp_path, "fcn", clips)
    engine.train(fcn_config(epochs=1, max_steps_per_epoch=1, compile=True), paths)
    assert len(compiled) == 1 and isinstance(compiled[0], FCN)
    assert all(not k.startswith("_orig_mod") for k in torch.load(paths.model, weights_only=True)["state_dict"])

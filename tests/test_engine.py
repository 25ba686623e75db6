"""The training loop: both phases end to end, resume after an interruption, DDP against one process,
layer-wise learning rates and the frozen backbone. Tiny: ResNet-18 at 32x32, a few clips."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _clips import write_clips
from _params import write_params

from facemask import engine, nets
from facemask.engine import RunPaths, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"arch": "fcn", "encoder": "resnet18", "encoder_weights": None, "output_stride": 16, "encoder_depth": 5, "peephole": True,
         "convlstm_init": "conv6", "output_scale": 1.0}


def fcn_config(**kw) -> TrainConfig:
    return TrainConfig(**{"phase": "fcn", "classes": 5, "model": MODEL, "epochs": 2, "batch_size": 4,
                          "max_steps_per_epoch": 3, **kw})


def convlstm_config(**kw) -> TrainConfig:
    return TrainConfig(**{"phase": "convlstm", "classes": 5, "model": MODEL, "epochs": 2, "batch_size": 2, "T": 5,
                          "lr_decay": "none", "gamma": 0.05, "loss": "segloss",
                          "loss_kwargs": {"lfun": "eq9", "g": 0.0, "weights": "hard"}, **kw})


def run_paths(root: Path, phase: str, clips: Path) -> RunPaths:
    return RunPaths(clips=clips, model=root / "models" / f"{phase}.pt", live=root / "metrics" / phase,
                    checkpoint=root / "models" / ".checkpoints" / f"{phase}.pt",
                    init=root / "models" / "fcn.pt" if phase == "convlstm" else None)


def curves(live: Path) -> dict[str, str]:
    return {str(p.relative_to(live)): p.read_text() for p in sorted((live / "plots").rglob("*.tsv"))}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from two threads, and on a busy machine their spin-waits cost a lot."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    fcn = nets.load_model(root / "models" / "fcn.pt")
    assert isinstance(fcn, nets.FCN) and fcn.checkpoint["epoch"] == metrics["best_epoch"]
    summary = json.loads((root / "metrics" / "fcn" / "metrics.json").read_text())
    assert summary["val"]["mIoU"] == metrics["val"]["mIoU"]
    assert set(summary["val"]["IoU"]) == {f"class{c}" for c in range(5)}
    assert len(curves(root / "metrics" / "fcn")["plots/metrics/val/mIoU.tsv"].splitlines()) == 1 + 2  # header, 2 epochs
    assert not (root / "models" / ".checkpoints" / "fcn.pt").exists()

    metrics = engine.train(convlstm_config(max_steps_per_epoch=2), run_paths(root, "convlstm", clips))
    model = nets.load_model(root / "models" / "convlstm.pt")
    assert isinstance(model, nets.ConvLSTMFCN) and model.config["T"] == 5 and model.config["input_size"] == 32
    assert 0 <= metrics["val"]["mIoU"] <= 1 and metrics["best_epoch"] in (1, 2)
    assert {"lr/convlstm.tsv", "lr/backbone.tsv"} <= {Path(k).relative_to("plots/metrics").as_posix()
                                                      for k in curves(root / "metrics" / "convlstm")}


class Interrupt(Exception):
    pass


def test_resume_after_interruption_ends_like_an_uninterrupted_run(clips, tmp_path, monkeypatch):
    cfg = fcn_config(epochs=3)
    whole = run_paths(tmp_path / "whole", "fcn", clips)
    engine.train(cfg, whole)

    cut = run_paths(tmp_path / "cut", "fcn", clips)
    save = engine.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        if state["epoch"] == 1:
            raise Interrupt
    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupt):
        engine.train(cfg, cut)
    assert cut.checkpoint.exists() and not cut.model.exists()
    monkeypatch.setattr(engine, "save_checkpoint", save)
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
    model = engine.build_model(convlstm_config(), root / "models" / "fcn.pt")
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
    init = nets.ConvLSTMFCN.from_fcn(nets.load_model(paths.init)).state_dict()  # the ConvLSTM's initial weights
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
    (work / "data" / "clips" / "index.csv").write_text("clip,split,row,video,first_frame,length,category\n"
                                                       "0,train,0,001,1,5,1\n1,train,1,002,1,5,1\n2,test,0,003,1,5,1\n")
    write_params(work, seed=cfg.seed, **{f"model.{k}": v for k, v in MODEL.items()}, **{
        "train.device": "cpu", "train.workers": 0, "train.fcn.epochs": 1, "train.fcn.batch_size": 4,
        "train.fcn.lr": cfg.lr, "train.fcn.augment": True, "train.fcn.lr_decay": "linear", "train.fcn.accum": 1,
        "train.fcn.max_steps_per_epoch": 3})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stages.train", "fcn", "face"]
    with subprocess.Popen(cmd, cwd=work, env=env, start_new_session=True) as proc:
        try:
            assert proc.wait(timeout=180) == 0
        finally:  # never leave the workers behind
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)

    a = torch.load(one.model, weights_only=True)["state_dict"]
    saved = torch.load(work / "models" / "face" / "fcn.pt", weights_only=True)
    b = saved["state_dict"]
    assert saved["config"]["data"] == {"source": "synthetic", "videos": 2}  # what `predict --method auto` reads
    torch.manual_seed(cfg.seed)
    init = dict(nets.FCN("resnet18", 5).named_parameters())   # the weights both runs started from
    # Adam's first steps are ~lr * sign(gradient): summation-order noise flips a few near-zero
    # gradients, so compare whole updates. (1 process without accumulation, whose BatchNorm sees
    # all 4 items at once, is ~1.4 away on this measure.)
    for k, w in init.items():
        update = (a[k] - w).norm()
        assert (b[k] - a[k]).norm() <= 1e-2 * update, k
    # BatchNorm running statistics are rank 0's under DDP (its micro-batches only): not compared
    assert not (work / "models" / ".checkpoints" / "face" / "fcn.pt").exists()

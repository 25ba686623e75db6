"""No silent collapse (`facemask.training.guard`): the rule on hand-made scores, then the engine on a tiny
ConvLSTM-FCN (3 classes, ResNet-18 to layer2 at 32x32, a few clips): a phase that collapses is not kept, the better model is, the
reasons reach ``metrics.json`` and the log, a rerun after an interruption ends the same, and a normal run is
what it would be without the guard."""
from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from _clips import write_clips
from test_engine import MODEL, Interrupt, interrupt_after_epoch, run_paths
from test_engine import convlstm_config as engine_convlstm_config
from test_engine import fcn_config as engine_fcn_config

from facemask.data.clips.loaders import ClipDataset
from facemask.models.registry import load_model
from facemask.training import engine
from facemask.training.guard import Guard

pytestmark = pytest.mark.usefixtures("one_thread_per_module")  # tiny tensors: one thread (conftest)

START = {"val/mIoU": 0.5, "val/IoU/background": 0.9375, "val/IoU/lips": 0.5, "val/IoU/inner_mouth": 0.5}


def scores(miou: float, lips: float, inner: float) -> dict:
    return {"val/mIoU": miou, "val/IoU/background": 0.9375, "val/IoU/lips": lips, "val/IoU/inner_mouth": inner}


def test_a_class_at_zero_and_a_fall_of_the_miou_are_named_with_their_numbers():
    reasons = Guard(drop=0.05, share=0.5).check(scores(0.25, 0.5, 0.0), START)
    assert reasons == ["inner_mouth val IoU 0.000 against 0.500 at the start (floor 0.250)",
                       "val mIoU 0.250 against 0.500 at the start (floor 0.450)"]


def test_what_stays_within_the_floors_is_kept():
    guard = Guard(drop=0.125, share=0.5)
    assert guard.check(START, START) == []
    assert guard.check(scores(0.375, 0.5, 0.25), START) == []           # exactly at both floors
    assert guard.check(scores(0.625, 0.75, 0.5), START) == []           # better
    assert len(guard.check(scores(0.37, 0.5, 0.25), START)) == 1        # the mIoU just below its floor
    assert guard.check(scores(0.45, 0.65, 0.24), START)[0].startswith("inner_mouth")  # one class, mIoU fine


def test_a_class_the_start_misses_or_the_split_lacks_cannot_fall():
    start = {**START, "val/IoU/inner_mouth": 0.0, "val/IoU/lips": math.nan}
    assert Guard().check(scores(0.5, math.nan, 0.0), start) == []
    assert Guard().check(scores(0.5, 0.0, 0.0), start) == []


def test_the_guard_can_be_switched_off_but_not_set_out_of_range():
    assert Guard(drop=1.0, share=0.0).check(scores(0.0, 0.0, 0.0), START) == []
    for bad in ({"drop": -0.1}, {"share": 1.5}, {"share": -0.1}):
        with pytest.raises(ValueError, match="guard"):
            Guard(**bad)
    with pytest.raises(ValueError, match="guard"):
        engine_convlstm_config(guard_share=2.0)


# ------------------------------------------------------------------------------------------------
# The engine on a tiny ConvLSTM-FCN

#: 4 x 4 score cells on a 32 x 32 crop (the default's geometry, 8 x 8 cells on 64 px, in small), the default's
#: ConvLSTM start and output scale.
TINY = {"classes": 3, "model": {**MODEL, "encoder_depth": 3, "output_stride": 8, "output_scale": "auto"}}


def fcn_config(**kw):
    return engine_fcn_config(**TINY, **kw)


def convlstm_config(**kw):
    return engine_convlstm_config(**TINY, **kw)


OFF = {"guard_drop": 1.0, "guard_share": 0.0}
#: The default recipe in small: the ConvLSTM alone, IoU loss, head-only phase, corrupted windows.
RECIPE = {"freeze_backbone": True, "freeze_bn": True, "loss": "iou", "loss_kwargs": {}, "head_steps": 20,
          "corrupt": 0.5, "max_steps_per_epoch": 3}
#: The ConvLSTM's learning rate before and after the fix (DESIGN: a step of Adam against the conv6 start's scale).
COLLAPSING_LR, LR = 1e-3, 3e-4


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("data"), classes=3, clips={"train": 6, "val": 2}, length=10, size=32)


@pytest.fixture(scope="module")
def fcn(clips, tmp_path_factory):
    """A tiny FCN that finds every class, so that a collapse has something to lose."""
    root = tmp_path_factory.mktemp("run")
    metrics = engine.train(fcn_config(epochs=4, max_steps_per_epoch=6, lr=0.01), run_paths(root, "fcn", clips))
    assert min(metrics["val"]["IoU"].values()) > 0.2
    return root / "models" / "fcn.pt"


def run(cfg, fcn, clips, root):
    paths = run_paths(root, "convlstm", clips)
    paths.init = fcn
    return engine.train(cfg, paths), paths


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_a_collapse_is_not_kept_and_is_named(fcn, clips, tmp_path, caplog):
    """The collapse the default recipe had at lr 1e-3, in small: the head-only phase drives class 2 to 0, and so
    does each epoch from the converted start. None is kept, the written model is the converted start, and
    each rejection is one warning line naming the region, the class and the numbers."""
    cfg = convlstm_config(**RECIPE, lr=COLLAPSING_LR)
    with caplog.at_level(logging.WARNING, logger="facemask.training.engine"):
        metrics, paths = run(cfg, fcn, clips, tmp_path)
    assert set(metrics["guard"]["rejected"]) == {"head-only phase", "epoch 1", "epoch 2"}
    assert metrics["kept"] == "converted" and metrics["best_epoch"] == 0
    assert metrics["val"] == metrics["converted"]["val"]
    lines = [r.getMessage() for r in caplog.records if r.name == engine.log.name]
    lines = [line for line in lines if "falls far below" in line]
    assert [line.split(" falls")[0] for line in lines] == ["face: head-only phase", "face: epoch 1", "face: epoch 2"]
    assert all(": class2 val IoU 0.000 against " in line and line.endswith("back to the converted start")
               for line in lines)
    assert json.loads((paths.live / "metrics.json").read_text())["guard"] == metrics["guard"]
    # the file holds the converted start's weights, as the engine builds it
    calibration = np.asarray(ClipDataset(clips / "train", window=cfg.T).images[::5, :cfg.T])
    start = engine.phase_model(cfg, fcn, calibration).state_dict()
    written = weights(paths.model)
    assert written.keys() == start.keys() and all(torch.equal(start[k], written[k]) for k in start)


def _collapse_after_each_epoch(monkeypatch) -> list[dict]:
    """Make every epoch end collapsed: the ConvLSTM's cell input says background everywhere. Returns the list
    that receives the ConvLSTM's weights at the start of each epoch."""
    run_epoch = engine._TrainingRun.train_one_epoch
    starts = []

    def collapse(self, net, epoch):
        starts.append({k: v.clone() for k, v in self.model.convlstm.state_dict().items()})
        loss = run_epoch(self, net, epoch)
        with torch.no_grad():
            n = self.model.convlstm.hidden_channels
            self.model.convlstm.conv_x.weight[2 * n:3 * n].zero_()
            self.model.convlstm.conv_x.bias[2 * n:3 * n].fill_(-10.0)
            self.model.convlstm.conv_x.bias[2 * n].fill_(10.0)
        return loss
    monkeypatch.setattr(engine._TrainingRun, "train_one_epoch", collapse)
    return starts


def test_an_epoch_that_collapses_returns_to_the_best_earlier_state(fcn, clips, tmp_path, monkeypatch):
    """The head-only phase passes, every epoch collapses: the model written is the head-only phase's, and
    each epoch starts from it again."""
    cfg = convlstm_config(**RECIPE, lr=LR)
    passed, _ = run(cfg, fcn, clips, tmp_path / "normal")
    assert passed["guard"]["rejected"] == {}
    starts = _collapse_after_each_epoch(monkeypatch)
    metrics, paths = run(cfg, fcn, clips, tmp_path / "collapsed")
    assert set(metrics["guard"]["rejected"]) == {"epoch 1", "epoch 2"}
    assert all(r.startswith("class1 val IoU 0.000") for r in metrics["guard"]["rejected"].values())
    assert metrics["kept"] == "head-only phase" and metrics["val"] == metrics["head"]["val"]
    assert metrics["head"] == passed["head"]
    written = weights(paths.model)
    for start in starts:  # each epoch started from the head-only phase's weights, as written
        assert all(torch.equal(v, written[f"convlstm.{k}"]) for k, v in start.items())
    curve = (paths.live / "plots" / "metrics" / "val" / "mIoU.tsv").read_text().splitlines()
    assert len(curve) == 1 + 2  # the rejected epochs stay on the curves


def test_a_run_with_rejections_resumes_like_an_uninterrupted_one(fcn, clips, tmp_path, monkeypatch):
    cfg = convlstm_config(**RECIPE, lr=COLLAPSING_LR, epochs=3)
    whole, whole_paths = run(cfg, fcn, clips, tmp_path / "whole")
    interrupt_after_epoch(monkeypatch, 2)
    with pytest.raises(Interrupt):
        run(cfg, fcn, clips, tmp_path / "cut")
    monkeypatch.undo()
    cut, cut_paths = run(cfg, fcn, clips, tmp_path / "cut")
    assert cut == whole and len(whole["guard"]["rejected"]) >= 2
    a, b = weights(whole_paths.model), weights(cut_paths.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_normal_run_passes_through_untouched(fcn, clips, tmp_path):
    """The default recipe in small: nothing rejected, and the same model and scores as with the guard off."""
    on, on_paths = run(convlstm_config(**RECIPE, lr=LR), fcn, clips, tmp_path / "on")
    off, off_paths = run(convlstm_config(**RECIPE, lr=LR, **OFF), fcn, clips, tmp_path / "off")
    assert on["guard"]["rejected"] == {} and on["kept"] in ("head-only phase", "epoch 1", "epoch 2")
    assert {k: v for k, v in on.items() if k != "guard"} == {k: v for k, v in off.items() if k != "guard"}
    a, b = weights(on_paths.model), weights(off_paths.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_model(on_paths.model).checkpoint["metrics"]["kept"] == on["kept"]

"""The settings have one home, the schema (`facemask.core.params`): params.yaml is its rendering, overlays name
only what differs, and what training and the model registry use comes from it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from facemask.app.cli import main as facemask
from facemask.core import paramfile
from facemask.core.errors import ParamsError
from facemask.core.params import DEFAULTS, Params
from facemask.models.registry import build_model
from facemask.training.config import CONVLSTM_KEYS, FCN_KEYS, TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def test_params_yaml_is_the_schema_rendered():
    """Every key, its default and its comment come from the schema: the file is exactly what it renders."""
    assert (ROOT / "params.yaml").read_text() == paramfile.render(DEFAULTS)
    assert paramfile.load_params(ROOT / "params.yaml") == DEFAULTS


def test_every_key_has_a_comment_and_the_file_keeps_them():
    text = (ROOT / "params.yaml").read_text()
    body = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert all(" # " in line for line in body), [line for line in body if " # " not in line]
    assert "crop_scale: 1.3" in text and "Square crop side = crop_scale x mean(w, h)" in text


def test_a_complete_file_is_required_but_an_overlay_is_not(tmp_path):
    raw = DEFAULTS.model_dump()
    del raw["masks"]["outside_tol"]
    with pytest.raises(ParamsError, match=r"^x.yaml: masks.outside_tol: missing \(required\)$"):
        paramfile.validate(raw, "x.yaml")
    overlay = tmp_path / "o.yaml"
    overlay.write_text("masks:\n  crop_scale: 1.5\n")
    p = paramfile.load_overlay(overlay)
    assert p.masks.crop_scale == 1.5 and p.masks.outside_tol == DEFAULTS.masks.outside_tol
    overlay.write_text("masks:\n  crop_scal: 1.5\n")
    with pytest.raises(ParamsError, match=r"o.yaml: masks.crop_scal: unknown key \(did you mean 'crop_scale'\?\)"):
        paramfile.load_overlay(overlay)


def test_paper_overlay_applied_and_passed_as_overrides_agree(tmp_path, capsys):
    """`facemask params apply` writes a complete params.yaml holding the overlay; the `-S` overrides, set key by
    key as DVC sets them into params.yaml (YAML values), give the same settings."""
    paper = paramfile.load_overlay(ROOT / "configs" / "paper.yaml")
    assert paper != DEFAULTS and paper.model.encoder == "resnet50" and paper.train.convlstm.loss == "segloss"
    out = tmp_path / "params.yaml"
    assert facemask(["params", "apply", str(ROOT / "configs" / "paper.yaml"), "--to", str(out)]) == 0
    assert paramfile.load_params(out) == paper
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for override in paramfile.overrides(paper):
        key, value = override.split("=", 1)
        *path, last = key.split(".")
        node = raw
        for k in path:
            node = node[k]
        node[last] = yaml.safe_load(value)
    assert paramfile.validate(raw) == paper
    assert facemask(["params", "overrides", str(ROOT / "configs" / "paper.yaml")]) == 0
    assert "-S model.encoder=resnet50 " in capsys.readouterr().out


def test_train_config_takes_every_setting_from_the_schema():
    """Each field of the FCN and ConvLSTM phases' configs is the params key it names, for the paper's settings
    too (so nothing in between has a default of its own)."""
    for params in (DEFAULTS, paramfile.load_overlay(ROOT / "configs" / "paper.yaml")):
        t, m = params.train, params.model
        fcn = TrainConfig.from_params(params, "fcn", "face")
        assert (fcn.epochs, fcn.batch_size, fcn.lr, fcn.lr_decay, fcn.augment, fcn.max_steps_per_epoch, fcn.accum) == \
            (t.fcn.epochs, t.fcn.batch_size, t.fcn.lr, t.fcn.lr_decay, t.fcn.augment, t.fcn.max_steps_per_epoch,
             t.fcn.accum)
        assert (fcn.seed, fcn.device, fcn.workers, fcn.sync_bn, fcn.compile) == \
            (params.seed, t.device, t.workers, t.sync_bn, t.compile)
        assert fcn.model == {k: getattr(m, k) for k in FCN_KEYS}
        c = t.convlstm
        for region in ("face", "eyes", "mouth"):
            cl = TrainConfig.from_params(params, "convlstm", region)
            assert (cl.epochs, cl.batch_size, cl.T, cl.lr, cl.optimizer, cl.freeze_backbone, cl.freeze_bn,
                    cl.head_steps, cl.corrupt, cl.loss, cl.lr_decay, cl.max_steps_per_epoch) == \
                (c.epochs, c.N, c.T, c.lr, c.optimizer, c.freeze_backbone, c.freeze_bn, c.head_steps, c.corrupt,
                 c.loss, c.lr_decay, c.max_steps_per_epoch)
            assert cl.gamma == params.region(region).gamma and cl.classes == params.region(region).classes
            assert cl.model == {k: getattr(m, k) for k in FCN_KEYS + CONVLSTM_KEYS}
        segloss = TrainConfig.from_params(params.model_copy(update={"train": t.model_copy(
            update={"convlstm": c.model_copy(update={"loss": "segloss"})})}), "convlstm", "face")
        assert segloss.loss_kwargs == {"lfun": c.lfun, "g": c.g, "weights": c.weights, "on": c.segloss_on}
    field_names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(TrainConfig)
               if f.name not in ("class_names", "data")), "TrainConfig has defaults of its own"
    assert {"phase", "classes", "model"} <= field_names


def test_the_registry_builds_the_schemas_network_when_a_key_is_left_out():
    fcn = build_model("fcn", {"classes": 5})
    m = DEFAULTS.model
    assert fcn.encoder_name == m.encoder and fcn.encoder_depth == m.encoder_depth
    assert fcn.output_stride == m.output_stride
    convlstm = build_model("convlstm", {"classes": 5})
    assert convlstm.convlstm.peephole == m.peephole and convlstm.output_scale == 1.0  # auto: no FCN to measure
    vgg = build_model("fcn", {"arch": "fcn_vgg16", "classes": 5})
    assert vgg.batch_norm == DEFAULTS.baselines.batch_norm


def test_params_is_frozen():
    with pytest.raises(Exception):
        DEFAULTS.seed = 3  # type: ignore[misc]
    assert isinstance(DEFAULTS, Params)

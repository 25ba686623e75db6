"""The VGG-16 baselines of Table 2 (FCN-8s, DeepLab-V2): score-map strides and output sizes, where the
VGG-16 weights land (against a functional VGG-16 written from the papers' layer lists), the bilinear
upsampling, training steps, checkpoints and the fuse stage's prediction path."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from _params import typed
from _clips import write_clips
from _stages import stage_args, stage_command

from facemask.inference.fusion import predict_packed
from facemask.models.baselines import ASPPBranch, DeepLabV2, FCN8s, LearnedUpsample, bilinear_kernel
from facemask.models.encoder import make_encoder
from facemask.models.nets import FCN, ConvLSTMFCN
from facemask.models.registry import build_model, load_model, save_model
from facemask.training import engine
from facemask.training.config import TrainConfig
from facemask.training.engine import RunPaths
from stages import train as train_stage

ROOT = Path(__file__).resolve().parent.parent

# conv index in VGG-16's `features` (torchvision / smp numbering) -> True where a pooling follows it
VGG16_CONVS = [(0, False), (2, True), (5, False), (7, True), (10, False), (12, False), (14, True),
               (17, False), (19, False), (21, True), (24, False), (26, False), (28, True)]
# the same for VGG-16-BN (conv, bn, relu): by hand from torchvision's vgg16_bn layer list
VGG16_BN_CONVS = [(0, False), (3, True), (7, False), (10, True), (14, False), (17, False), (20, True),
                  (24, False), (27, False), (30, True), (34, False), (37, False), (40, True)]


def vgg16_functional(x, sd, deeplab: bool = False, batch_norm: bool = False) -> dict[str, torch.Tensor]:
    """pool3, pool4, pool5 of VGG-16 (or VGG-16-BN: eval-mode batch norm from `sd` after each convolution)
    computed from the state dict `sd` with F.conv2d / F.batch_norm / F.max_pool2d: plain (2×2 pools,
    stride 2) or DeepLab's (3×3 pools, stride 2 for pool1–3 and 1 for pool4–5, padding 1; conv5 at
    dilation 2)."""
    out, pool = {}, 0
    for i, pooled in VGG16_BN_CONVS if batch_norm else VGG16_CONVS:
        dil = 2 if deeplab and pool == 4 else 1
        x = F.conv2d(x, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=dil, dilation=dil)
        if batch_norm:
            b = f"features.{i + 1}."
            x = F.batch_norm(x, sd[b + "running_mean"], sd[b + "running_var"], sd[b + "weight"], sd[b + "bias"],
                             training=False, eps=1e-5)
        x = F.relu(x)
        if pooled:
            pool += 1
            if deeplab:
                x = F.max_pool2d(x, 3, stride=2 if pool <= 3 else 1, padding=1)
            else:
                x = F.max_pool2d(x, 2, 2)
            out[f"pool{pool}"] = x
    return out


def on_meta(cls, **kw):
    """A model built on the meta device: its shapes, without the arithmetic (nor the initialisation)."""
    with torch.device("meta"):
        return cls(**kw).eval()


@pytest.fixture(scope="module")
def fcn8s_meta():
    return on_meta(FCN8s, classes=5)


@pytest.fixture(scope="module")
def deeplab_meta():
    return on_meta(DeepLabV2, classes=5)


@torch.no_grad()
def run_seeing(model, x, names, inputs: bool = False):
    """`model(x)` and, for each named submodule, what it returned (or, with `inputs`, was fed) on that call."""
    seen, handles = {}, []
    for name in names:
        module = model.get_submodule(name)
        if inputs:
            handles.append(module.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, a[0])))
        else:
            handles.append(module.register_forward_hook(lambda m, a, o, name=name: seen.__setitem__(name, o)))
    try:
        return model(x), seen
    finally:
        for h in handles:
            h.remove()


# ------------------------------------------------------------------------------------------------
# Shapes and strides (on the meta device: shapes without the arithmetic)


@pytest.mark.parametrize("size", [(96, 96), (128, 128), (160, 160), (320, 320), (100, 100), (112, 144)])
def test_fcn8s_score_maps_at_strides_32_16_8(fcn8s_meta, size):
    x = torch.empty(2, 3, *size, device="meta")
    out, got = run_seeing(fcn8s_meta, x, ["score_fr", "score_pool4", "score_pool3"])
    coarse = fcn8s_meta.score_maps(x)
    assert out.shape == (2, 5, *size)
    # VGG's 2×2 pools round down: pool_k is floor(H / 2^k) (floored at every step, the same thing)
    for name, stride in (("score_fr", 32), ("score_pool4", 16), ("score_pool3", 8)):
        assert got[name].shape == (2, 5, *(s // stride for s in size)), name
    assert coarse.shape == (2, 5, *(s // 8 for s in size))


@pytest.mark.parametrize("size", [(96, 96), (128, 128), (160, 160), (320, 320), (100, 100), (321, 321)])
def test_deeplab_scores_at_output_stride_8(deeplab_meta, size):
    out, got = run_seeing(deeplab_meta, torch.empty(2, 3, *size, device="meta"), [f"aspp.{k}" for k in range(4)])
    assert out.shape == (2, 5, *size)
    # 3×3 pools with stride 2 and padding 1 give ceil(n / 2); pool4/pool5 keep the size:
    # ceil(H / 8), e.g. 41×41 on DeepLab's own 321×321 crops
    expected = tuple(math.ceil(s / 8) for s in size)
    assert [tuple(got[f"aspp.{k}"].shape) for k in range(4)] == [(2, 5, *expected)] * 4
    if size == (321, 321):
        assert expected == (41, 41)


def test_sequences_are_taken_frame_by_frame(fcn8s_meta, deeplab_meta):
    for model in (fcn8s_meta, deeplab_meta):
        assert model(torch.empty(2, 4, 3, 64, 96, device="meta")).shape == (2, 4, 5, 64, 96)


def test_too_small_input_is_named(fcn8s_meta):
    with pytest.raises(ValueError, match=r"FCN8s needs inputs of at least 32×32, got \(16, 64\)"):
        fcn8s_meta(torch.empty(1, 3, 16, 64, device="meta"))


def test_layer_settings_of_the_papers():
    m = on_meta(DeepLabV2, classes=3)
    pools = [m.encoder.features[i] for i in m.pools]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 3 + [(3, 1, 1)] * 2
    conv5 = [c for c in m.encoder.features[m.pools[3] + 1:m.pools[4]] if isinstance(c, torch.nn.Conv2d)]
    assert [(c.dilation, c.padding) for c in conv5] == [((2, 2), (2, 2))] * 3
    assert [(b.fc6.kernel_size, b.fc6.dilation, b.fc6.out_channels, b.fc7.out_channels, b.fc8.out_channels)
            for b in m.aspp] == [((3, 3), (r, r), 1024, 1024, 3) for r in (6, 12, 18, 24)]
    assert [b.drop6.p for b in m.aspp] == [0.5] * 4
    assert on_meta(DeepLabV2, classes=3, rates=(12,)).rates == (12,)  # LargeFOV
    f = on_meta(FCN8s, classes=3)
    assert (f.fc6.kernel_size, f.fc6.out_channels, f.fc7.out_channels, f.drop.p) == ((3, 3), 4096, 4096, 0.5)
    assert on_meta(FCN8s, classes=3, fc6_kernel=7).fc6.weight.shape == (4096, 512, 7, 7)  # VGG-16's fc6
    with pytest.raises(ValueError, match="odd"):
        FCN8s(classes=3, fc6_kernel=4)


# ------------------------------------------------------------------------------------------------
# Where the VGG-16 weights land


def _fake_imagenet(monkeypatch, folder):
    """smp's download of the VGG-16 ImageNet weights, served from `folder`: random tensors under the
    names of the real file (features.N.weight / .bias), and a config.json with telltale statistics."""
    import segmentation_models_pytorch.encoders as smp_enc
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(11)
    sd, cin = {}, 3
    for i, _ in VGG16_CONVS:
        cout = {0: 64, 2: 64, 5: 128, 7: 128}.get(i, 256 if i < 17 else 512)
        sd[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * math.sqrt(2 / (9 * cin))
        sd[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.1
        cin = cout
    save_file(sd, folder / "model.safetensors")
    stats = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    (folder / "config.json").write_text(json.dumps({"input_space": "RGB", "input_range": [0, 1], **stats}))
    monkeypatch.setattr(smp_enc, "hf_hub_download", lambda repo_id, filename, revision=None: str(folder / filename))
    return sd, stats


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Each baseline built once (smp builds, initialises and drops a whole VGG-16 classifier every time)
    through ``model.encoder_weights: imagenet``, from `_fake_imagenet`'s weights; tests that change a
    model take a copy."""
    config = {"encoder": "resnet18", "encoder_weights": "imagenet", "output_stride": 16, "classes": 3,
              "input_size": 64, "region": "mouth", "batch_norm": False}
    with pytest.MonkeyPatch.context() as mp:
        sd, stats = _fake_imagenet(mp, tmp_path_factory.mktemp("imagenet"))
        torch.manual_seed(0)
        models = {arch: build_model("fcn", {**config, "arch": arch}).eval()
                  for arch in ("fcn_vgg16", "deeplab_v2")}
    return models, {**config, "encoder_weights": None}, sd, stats


def _normalised(x, stats):
    return (x - torch.tensor(stats["mean"]).view(1, 3, 1, 1)) / torch.tensor(stats["std"]).view(1, 3, 1, 1)


def test_imagenet_weights_land_where_fcn8s_expects_them(pretrained, one_thread):
    models, _, sd, stats = pretrained
    model = models["fcn_vgg16"]
    assert isinstance(model, FCN8s)
    for k, v in sd.items():
        assert torch.equal(model.encoder.state_dict()[k], v), k
    # what score_pool3, score_pool4 and fc6 are fed is VGG-16's pool3, pool4 and pool5 of the normalised image
    x = torch.rand(2, 3, 64, 96)
    _, seen = run_seeing(model, x, ["score_pool3", "score_pool4", "fc6"], inputs=True)
    with torch.no_grad():
        ref = vgg16_functional(_normalised(x, stats), sd)
    torch.testing.assert_close(seen["score_pool3"], ref["pool3"])
    torch.testing.assert_close(seen["score_pool4"], ref["pool4"])
    torch.testing.assert_close(seen["fc6"], ref["pool5"])
    assert ref["pool5"].shape[-2:] == (2, 3)


def test_imagenet_weights_land_where_deeplab_expects_them(pretrained, one_thread):
    models, _, sd, stats = pretrained
    model = models["deeplab_v2"]
    assert isinstance(model, DeepLabV2) and model.rates == (6, 12, 18, 24)
    for k, v in sd.items():
        assert torch.equal(model.encoder.state_dict()[k], v), k
    x = torch.rand(2, 3, 64, 72)
    _, seen = run_seeing(model, x, [f"aspp.{k}" for k in range(4)], inputs=True)
    with torch.no_grad():
        ref = vgg16_functional(_normalised(x, stats), sd, deeplab=True)
    for k in range(4):  # every ASPP branch reads DeepLab's pool5
        torch.testing.assert_close(seen[f"aspp.{k}"], ref["pool5"])
    assert ref["pool5"].shape[-2:] == (8, 9)


def test_plain_smp_state_dict_loads_into_both_trunks():
    """DeepLab changes pooling and dilation only: a plain smp VGG-16 state dict fits it strictly."""
    with torch.device("meta"):
        plain = make_encoder("vgg16", None, 32).state_dict()
    plain = {k: torch.randn(v.shape) for k, v in plain.items()}
    for model in (on_meta(FCN8s, classes=2), on_meta(DeepLabV2, classes=2)):
        model.encoder.to_empty(device="cpu")
        model.encoder.load_state_dict(plain, strict=True)
        assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in plain.items())


@pytest.mark.parametrize("arch", ["fcn_vgg16", "deeplab_v2"])
def test_batch_norm_variant_feeds_the_heads_vgg16_bn(arch, tmp_path, one_thread):
    """``batch_norm: true`` (baselines.batch_norm): the trunk is VGG-16-BN — 13 batch norms, one after each
    convolution — with the arch's own pooling and dilation, and the heads read its pool3 / pool4 / pool5
    exactly as a functional VGG-16-BN computes them from the model's state dict (eval mode, running
    statistics set away from their 0 / 1 start so a skipped batch norm would show)."""
    torch.manual_seed(0)
    model = build_model("fcn", {"arch": arch, "classes": 3, "batch_norm": True,
                                     **({"fc6_kernel": 1} if arch == "fcn_vgg16" else {})}).eval()
    assert model.batch_norm and model.encoder_name == "vgg16_bn"
    bns = [m for m in model.encoder.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 13
    with torch.no_grad():
        for bn in bns:
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    sd = {k.removeprefix("encoder."): v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    x = torch.rand(2, 3, 64, 72)
    normalised = (x - model.mean) / model.std
    with torch.no_grad():
        ref = vgg16_functional(normalised, sd, deeplab=arch == "deeplab_v2", batch_norm=True)
    if arch == "fcn_vgg16":
        _, seen = run_seeing(model, x, ["score_pool3", "score_pool4", "fc6"], inputs=True)
        for name, pool in (("score_pool3", "pool3"), ("score_pool4", "pool4"), ("fc6", "pool5")):
            torch.testing.assert_close(seen[name], ref[pool])
        assert ref["pool5"].shape[-2:] == (2, 2)
    else:
        _, seen = run_seeing(model, x, [f"aspp.{k}" for k in range(4)], inputs=True)
        for k in range(4):
            torch.testing.assert_close(seen[f"aspp.{k}"], ref["pool5"])
        assert ref["pool5"].shape[-2:] == (8, 9)
    # the checkpoint rebuilds VGG-16-BN (its running statistics included) from the config it stores
    save_model(tmp_path / "m.pt", model, "fcn", {"arch": arch, "classes": 3, "batch_norm": True,
                                                       **({"fc6_kernel": 1} if arch == "fcn_vgg16" else {})})
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.batch_norm and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    plain = build_model("fcn", {"arch": arch, "classes": 3, "batch_norm": False,
                                **({"fc6_kernel": 1} if arch == "fcn_vgg16" else {})})
    assert not plain.batch_norm and not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


def test_offline_imagenet_error_is_plain(monkeypatch):
    import segmentation_models_pytorch.encoders as smp_enc
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*a, **k):
        raise LocalEntryNotFoundError("Name or service not known")

    monkeypatch.setattr(smp_enc, "hf_hub_download", offline)
    with pytest.raises(RuntimeError, match=r"'vgg16'.*internet.*model.encoder_weights: null"):
        with torch.device("meta"):
            DeepLabV2(classes=2, encoder_weights="imagenet")


# ------------------------------------------------------------------------------------------------
# Bilinear upsampling, ASPP


def test_bilinear_kernel_by_hand():
    w = bilinear_kernel(2, 2)
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])  # 1 - |t - 1.5| / 2
    torch.testing.assert_close(w[0, 0], taps[:, None] * taps[None, :])
    assert torch.equal(w[0, 1], torch.zeros(4, 4)) and torch.equal(w[1, 1], w[0, 0])
    torch.testing.assert_close(bilinear_kernel(1, 3)[0, 0, 2], torch.tensor([1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]))


def test_learned_upsample_starts_as_bilinear_interpolation():
    up = LearnedUpsample(3)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        y = up(x)
        ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        assert y.shape == (2, 3, 10, 14) and up(x, (11, 15)).shape == (2, 3, 11, 15)
    # equal away from the one-pixel border (there the transposed convolution sees zero padding)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    assert up.weight.requires_grad and up.bias is None
    x3 = torch.randn(1, 1, 4, 4)
    with torch.no_grad():  # ×3: kernel 5, output 12×12
        y3 = LearnedUpsample(1, 3)(x3)
    assert y3.shape == (1, 1, 12, 12)
    torch.testing.assert_close(y3[..., 2:-2, 2:-2], F.interpolate(x3, scale_factor=3, mode="bilinear")[..., 2:-2, 2:-2])


def test_aspp_rate_beyond_the_map_is_its_centre_tap(one_thread):
    """At input 96 (12×12 at stride 8) taps r = 12 or more away from the centre only ever meet padding:
    such a branch's fc6 is a 1×1 convolution by its centre weights (DESIGN.md)."""
    torch.manual_seed(0)
    branch = ASPPBranch(8, 3, rate=12, width=16).eval()
    f = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        centre = F.conv2d(f, branch.fc6.weight[:, :, 1:2, 1:2], branch.fc6.bias)
        torch.testing.assert_close(branch.fc6(f), centre)
        assert not torch.allclose(ASPPBranch(8, 3, rate=6, width=16).fc6(f)[..., 6:, 6:],
                                  F.conv2d(f, branch.fc6.weight[:, :, 1:2, 1:2], branch.fc6.bias)[..., 6:, 6:])


# ------------------------------------------------------------------------------------------------
# Training, checkpoints, the fuse stage


def _tiny_batch(size: int = 48):
    """Two 48×48 frames: pool5 is 1×1 and pool4 3×3 for FCN-8s (an odd ×2 upsampling), 6×6 for DeepLab."""
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(2, size, size, dtype=torch.long)
    y[:, size // 4:3 * size // 4, size // 5:4 * size // 5] = 1
    y[:, 2 * size // 5:3 * size // 5, 3 * size // 8:5 * size // 8] = 2
    return x, y


@pytest.mark.parametrize("arch", ["fcn_vgg16", "deeplab_v2"])
def test_a_few_steps_lower_the_loss(pretrained, arch, one_thread):
    torch.manual_seed(0)
    model = copy.deepcopy(pretrained[0][arch]).train()
    x, y = _tiny_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)  # as the engine
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if arch == "fcn_vgg16":  # every score layer starts at zero: uniform softmax, CE = ln 3
        assert losses[0] == pytest.approx(math.log(3), abs=1e-6)
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("arch", ["fcn_vgg16", "deeplab_v2"])
def test_checkpoint_round_trip_and_fuse_path(pretrained, tmp_path, arch, one_thread):
    models, config, _, _ = pretrained
    model = copy.deepcopy(models[arch])
    if arch == "fcn_vgg16":  # its score layers start at zero: give it scores to compare
        torch.manual_seed(4)
        with torch.no_grad():
            for layer in (model.score_fr, model.score_pool4, model.score_pool3):
                layer.weight.normal_(0, 0.1)
    path = tmp_path / "fcn.pt"
    save_model(path, model, "fcn", {**config, "arch": arch}, epoch=1)
    loaded = load_model(path)  # builds with encoder_weights None: no download, weights from the file
    assert type(loaded) is type(model) and loaded.config["arch"] == arch and not loaded.training
    images = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 64, 3), dtype=np.uint8)
    x = torch.from_numpy(images[0]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)
    assert expected.std() > 0
    labels = predict_packed(loaded, images, None, "cpu")  # how the fuse stage scores an FCN's packed clips
    assert labels.shape == (1, 3, 64, 64) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[0], expected.argmax(1).numpy())


def _engine_run(root, clips):
    """The FCN phase's loop on FCN-8s (a 1×1 fc6 keeps the per-epoch checkpoints small)."""
    cfg = dataclasses.replace(TrainConfig.from_params(typed(), "fcn", "face"), epochs=1, batch_size=4,
                              max_steps_per_epoch=2, model={"arch": "fcn_vgg16", "encoder_weights": None,
                                                            "batch_norm": False, "fc6_kernel": 1})
    paths = RunPaths(clips=clips, model=root / "fcn.pt", live=root / "live", checkpoint=root / "ckpt.pt")
    metrics = engine.train(cfg, paths)
    assert 0 <= metrics["val"]["mIoU"] <= 1
    return paths.model


def test_the_engine_trains_fcn8s(tmp_path, one_thread):
    clips = write_clips(tmp_path / "data", clips={"train": 2, "val": 1}, length=6, size=32)
    model = load_model(_engine_run(tmp_path / "run", clips))
    assert isinstance(model, FCN8s) and model.fc6_kernel == 1 and model.config["input_size"] == 32
    assert not torch.equal(model.upscore2.weight, bilinear_kernel(5, 2))  # the upsampling learned


@pytest.mark.slow
def test_the_engine_trains_fcn8s_deterministically(tmp_path, one_thread):
    clips = write_clips(tmp_path / "data", clips={"train": 2, "val": 1}, length=6, size=32)
    a, b = (torch.load(_engine_run(tmp_path / run, clips), weights_only=True)["state_dict"] for run in "ab")
    assert all(torch.equal(v, b[k]) for k, v in a.items())


def test_the_fcn_stage_reads_model_arch(monkeypatch):
    monkeypatch.setattr(train_stage, "data_record", lambda params, index: {"source": "synthetic", "videos": 1})  # no data/clips here
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["model"]["arch"] == "fcn"  # the default: the reference FCN
    params["model"]["arch"] = "deeplab_v2"
    assert TrainConfig.from_params(typed(params), "fcn", "face").model["arch"] == "deeplab_v2"


def test_unknown_arch_and_convlstm_conversion_fail_clearly():
    with pytest.raises(ValueError, match=r"model.arch 'unet'; valid: fcn, fcn_vgg16, deeplab_v2"):
        build_model("fcn", {"arch": "unet", "encoder": "resnet18", "classes": 2})
    with pytest.raises(TypeError, match=r"model.arch: fcn only, not from a DeepLabV2"):
        ConvLSTMFCN.from_fcn(on_meta(DeepLabV2, classes=2))
    assert type(build_model("fcn", {"classes": 2})) is FCN  # the settings' default: model.arch fcn


def test_the_baselines_stage_trains_each_arch_as_the_fcn_phase(tmp_path, monkeypatch):
    """`python -m stages.train baselines face`: every arch of baselines.archs through the FCN phase's loop
    with train.fcn's recipe, into models/face/baselines/<arch>.pt, then archs.json naming them (none: an
    empty list, so the fuse stage has something to read); the finished archs' checkpoints are kept until
    then, and removed after."""
    from _params import params as project_params

    params = project_params(**{"baselines.archs": ["deeplab_v2", "fcn_vgg16"], "train.fcn.lr": 0.5,
                               "model.encoder_weights": None})
    monkeypatch.setattr(train_stage, "load_params", lambda: typed(params))
    monkeypatch.setattr(train_stage, "data_record", lambda params, index: {"source": "synthetic", "videos": 3})
    runs = []

    def train(cfg, paths, keep_checkpoint=False):
        assert keep_checkpoint
        assert not (Path("models/face/baselines") / "archs.json").exists()  # the manifest comes last
        runs.append((cfg, paths))
        for f in (paths.model, paths.checkpoint):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(cfg.model["arch"])
    monkeypatch.setattr(train_stage, "train", train)
    monkeypatch.chdir(tmp_path)
    train_stage.main(stage_args("train_baselines"))
    assert [c.model["arch"] for c, _ in runs] == ["deeplab_v2", "fcn_vgg16"]
    reference = TrainConfig.from_params(typed(params), "fcn", "face", data={"source": "synthetic", "videos": 3})
    for cfg, paths in runs:
        arch = cfg.model["arch"]
        # the FCN phase's recipe; of `model` only the arch and the encoder weights (what dvc.yaml declares)
        assert cfg == dataclasses.replace(reference, model={"arch": arch, "encoder_weights": None,
                                                            "batch_norm": True})
        assert cfg.lr == 0.5 and cfg.phase == "fcn" and cfg.classes == 5
        assert paths.model == Path("models/face/baselines") / f"{arch}.pt"
        assert paths.live == Path("metrics/train/face/baselines") / arch
        assert paths.checkpoint == Path("models/.checkpoints/face/baselines") / f"{arch}.pt"
        assert paths.init is None and not paths.checkpoint.exists() and paths.model.read_text() == arch
    for folder in ("models/face/baselines", "metrics/train/face/baselines"):
        assert json.loads((tmp_path / folder / "archs.json").read_text()) == {"archs": ["deeplab_v2", "fcn_vgg16"]}

    # baselines.batch_norm: false builds them on the papers' plain VGG-16
    plain = {**params, "baselines": {**params["baselines"], "batch_norm": False}}
    assert TrainConfig.for_baseline(typed(plain), "deeplab_v2", "face").model["batch_norm"] is False

    params["baselines"]["archs"] = []
    runs.clear()
    train_stage.main(stage_args("train_baselines"))
    assert runs == [] and json.loads((tmp_path / "models/face/baselines/archs.json").read_text()) == {"archs": []}


def test_a_kept_checkpoint_rewrites_the_model_without_training(tmp_path, one_thread, caplog):
    """What a rerun of train_baselines after an interruption does for an arch that had finished: its kept
    checkpoint (epoch = epochs) writes the same model again, with no training step."""
    clips = write_clips(tmp_path / "data", clips={"train": 2, "val": 1}, length=6, size=32)
    cfg = dataclasses.replace(TrainConfig.from_params(typed(), "fcn", "face"), epochs=1, batch_size=4,
                              max_steps_per_epoch=1, model={"arch": "fcn_vgg16", "encoder_weights": None,
                                                            "batch_norm": False, "fc6_kernel": 1})
    paths = RunPaths(clips=clips, model=tmp_path / "m" / "fcn.pt", live=tmp_path / "live", checkpoint=tmp_path / "ckpt.pt")
    engine.train(cfg, paths, keep_checkpoint=True)
    assert paths.checkpoint.is_file()
    first = torch.load(paths.model, weights_only=True)["state_dict"]
    paths.model.unlink()
    calls = []
    step = engine.train_epoch
    engine.train_epoch = lambda *a, **k: calls.append(1) or step(*a, **k)
    try:
        with caplog.at_level("INFO", logger="facemask.training.engine"):
            engine.train(cfg, paths)
    finally:
        engine.train_epoch = step
    assert calls == [] and "resuming after epoch 1 of 1" in caplog.text
    again = torch.load(paths.model, weights_only=True)["state_dict"]
    assert again.keys() == first.keys() and all(torch.equal(v, again[k]) for k, v in first.items())
    assert not paths.checkpoint.exists()  # removed this time (keep_checkpoint off)


@pytest.mark.slow
def test_both_baselines_on_two_processes(tmp_path):
    """`torchrun --nproc_per_node 2 -m stages.train baselines face` with both archs: one process group for
    the two runs (a second set-up after a tear-down fails under gloo and NCCL), models and manifest."""
    import os
    import subprocess
    import sys

    from _params import params as project_params

    write_clips(tmp_path / "data" / "clips", clips={"train": 2, "val": 1}, length=6, size=32)
    (tmp_path / "data" / "clips" / "index.csv").write_text(
        "clip,split,row,video,first_frame,length,category\n0,train,0,001,1,6,1\n1,train,1,002,1,6,1\n")
    params = project_params(**{"baselines.archs": ["fcn_vgg16", "deeplab_v2"], "train.device": "cpu",
                               "train.fcn.epochs": 1, "train.fcn.batch_size": 2, "train.fcn.max_steps_per_epoch": 1})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *stage_command("train_baselines")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert type(load_model(tmp_path / "models/face/baselines/fcn_vgg16.pt")) is FCN8s
    assert type(load_model(tmp_path / "models/face/baselines/deeplab_v2.pt")) is DeepLabV2
    assert json.loads((tmp_path / "models/face/baselines/archs.json").read_text()) == {"archs": ["fcn_vgg16", "deeplab_v2"]}
    assert not any((tmp_path / "models" / ".checkpoints").rglob("*.pt"))

"""The networks by name, and their checkpoints: build, save and load any model of this package.

Two names say what a model is, each with one meaning:

* its **phase** (`PHASES`): ``fcn``, the per-frame model the FCN phase trains (the paper's FCN or one of
  Table 2's baselines), or ``convlstm``, the ConvLSTM-FCN converted from a trained FCN (Sect. 3.1);
* its **network** (`NETWORKS`, ``config["arch"]`` of an ``fcn`` model, the params key ``model.arch``):
  ``fcn`` (the paper's FCN, `facemask.models.nets.FCN`), ``fcn_vgg16`` (FCN-8s) or ``deeplab_v2``
  (`facemask.models.baselines`).

Checkpoints (`save_model`): ``{"format": 2, "phase", "config", "state_dict", "epoch", "metrics"}``, loadable
with ``torch.load(weights_only=True)``. Format 1 (before the package was layered) named the phase ``arch``;
`load_checkpoint` reads both.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from facemask.core.io import atomic_file
from facemask.core.params import DEFAULTS
from facemask.models.baselines import ASPP_RATES, DeepLabV2, FCN8s
from facemask.models.nets import FCN, ConvLSTMFCN

#: Checkpoint layout version written by `save_model` (1: the phase under the key ``arch``).
CHECKPOINT_FORMAT = 2
#: The training phases, and the class of the model each trains (an ``fcn`` model's class: `NETWORKS`).
PHASES = ("fcn", "convlstm")
#: The FCN phase's networks by ``model.arch``.
NETWORKS: dict[str, type[nn.Module]] = {"fcn": FCN, "fcn_vgg16": FCN8s, "deeplab_v2": DeepLabV2}


#: What a model file written before a key existed was built with (`load_checkpoint` fills them in): not defaults of
#: the settings (those live in `facemask.core.params`), but the only values those files could have had.
LEGACY_CONFIG = {"arch": "fcn", "encoder_depth": 5, "output_stride": 16, "peephole": True, "output_scale": 1.0,
                 "batch_norm": False}


def with_defaults(config: Mapping[str, Any]) -> dict:
    """`config` with every network key it leaves out taken from the settings' defaults (`facemask.core.params`:
    ``model.*``, ``baselines.batch_norm``); ``output_scale: auto`` (resolved from the FCN's scores when a
    ConvLSTM-FCN is converted, `ConvLSTMFCN.from_fcn`) is 1 for a network built on its own."""
    defaults = {**DEFAULTS.model.model_dump(), "batch_norm": DEFAULTS.baselines.batch_norm}
    out = {**defaults, **config}
    if out["output_scale"] == "auto":
        out["output_scale"] = 1.0
    return out


def build_model(phase: str, config: Mapping[str, Any]) -> nn.Module:
    """A new model of `phase` from a checkpoint-style config; a key it leaves out takes the settings' default
    (`with_defaults`).

    Args:
        phase: ``"fcn"`` (the network ``config["arch"]`` names) or ``"convlstm"``.
        config: ``classes``, and ``arch``, ``encoder``, ``encoder_weights``, ``output_stride``,
            ``encoder_depth``; for ``convlstm`` also ``peephole`` and ``output_scale``; for the baselines see
            `build_baseline`. Other keys (``input_size``, ``region``, ``class_names``…) are metadata.

    Raises:
        ValueError: an unknown phase or network, naming the valid ones.
    """
    if phase not in PHASES:
        raise ValueError(f"Unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    config = with_defaults(config)
    network = config["arch"] if phase == "fcn" else "fcn"
    if network not in NETWORKS:
        raise ValueError(f"Unknown model.arch {network!r}; valid: {', '.join(NETWORKS)}")
    if network != "fcn":  # model.arch: a baseline of Table 2
        return build_baseline(network, config)
    kw = dict(encoder=config["encoder"], classes=int(config["classes"]), encoder_weights=config["encoder_weights"],
              output_stride=int(config["output_stride"]), encoder_depth=int(config["encoder_depth"]))
    if phase == "convlstm":
        return ConvLSTMFCN(**kw, peephole=bool(config["peephole"]), output_scale=float(config["output_scale"]))
    return FCN(**kw)


def build_baseline(network: str, config: Mapping[str, Any]) -> nn.Module:
    """One of Table 2's VGG-16 baselines (``fcn_vgg16``, ``deeplab_v2``) from a checkpoint-style config.

    Reads ``classes``, ``encoder_weights``, ``batch_norm`` (False: VGG-16 as the papers have it; True:
    VGG-16-BN, ``baselines.batch_norm``; the keys it leaves out: `with_defaults`), and optionally the network's own ``fc6_kernel`` (fcn_vgg16, default 3)
    or ``aspp_rates`` (deeplab_v2, default 6, 12, 18, 24). ``encoder`` and ``output_stride`` belong to the
    reference FCN: the network fixes both here (VGG-16; strides 32 … 8, 8).
    """
    config = with_defaults(config)
    kw: dict[str, Any] = dict(classes=int(config["classes"]), encoder_weights=config["encoder_weights"],
                              batch_norm=bool(config["batch_norm"]))
    if network == "fcn_vgg16":
        return FCN8s(**kw, fc6_kernel=int(config.get("fc6_kernel", 3)))
    if network == "deeplab_v2":
        return DeepLabV2(**kw, rates=tuple(config.get("aspp_rates", ASPP_RATES)))
    raise ValueError(f"Unknown baseline {network!r}; valid: fcn_vgg16, deeplab_v2")


def _plain(obj):
    """Python scalars/containers only, so the checkpoint loads with ``weights_only=True``."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def architecture(model: nn.Module) -> dict:
    """The keys `build_model` needs to rebuild `model`, read off the model itself (so a saved file describes the
    network it holds, whatever config the caller passed)."""
    if isinstance(model, FCN8s):
        return {"arch": "fcn_vgg16", "classes": model.classes, "batch_norm": model.batch_norm,
                "fc6_kernel": model.fc6_kernel}
    if isinstance(model, DeepLabV2):
        return {"arch": "deeplab_v2", "classes": model.classes, "batch_norm": model.batch_norm,
                "aspp_rates": list(model.rates)}
    out = {"arch": "fcn", "encoder": model.encoder_name, "classes": model.classes,
           "output_stride": model.output_stride, "encoder_depth": model.encoder_depth}
    if isinstance(model, ConvLSTMFCN):
        out.update(peephole=model.convlstm.peephole, output_scale=model.output_scale)
    return out


def save_model(path, model: nn.Module, phase: str, config: Mapping[str, Any], epoch: int | None = None,
               metrics: Mapping[str, Any] | None = None) -> None:
    """Write a model checkpoint atomically.

    Layout: ``{"format", "phase", "config", "state_dict", "epoch", "metrics"}``; the state dict is the bare
    model's (DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes are not saved), on CPU.
    ``config["encoder_weights"]`` is kept as information only: `load_model` never downloads.
    """
    if phase not in PHASES:
        raise ValueError(f"Unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "phase": phase,
        "config": _plain({**config, **architecture(model)}),  # the file says how to rebuild it
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": None if epoch is None else int(epoch),
        "metrics": _plain(dict(metrics or {})),
    }
    with atomic_file(path, "wb") as f:
        torch.save(ckpt, f)


def load_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint dict written by `save_model` (tensors only as state; safe ``weights_only`` load), with
    its phase under ``"phase"`` whatever its format."""
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and ckpt.get("format", 1) == 1 and "arch" in ckpt:  # format 1: the phase as "arch"
        ckpt = {**{k: v for k, v in ckpt.items() if k != "arch"}, "phase": ckpt["arch"]}
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or ckpt.get("phase") not in PHASES:
        raise ValueError(f"{path}: not a facemask model checkpoint (expected keys phase, config, state_dict)")
    ckpt["config"] = {**LEGACY_CONFIG, **ckpt.get("config", {})}
    return ckpt


def load_model(path, map_location="cpu") -> nn.Module:
    """The model saved at `path` by `save_model`, in eval mode, with ``.phase``/``.config``/``.checkpoint``
    (epoch and metrics) attached. The weights come from the file: nothing is downloaded."""
    ckpt = load_checkpoint(path, map_location)
    config = dict(ckpt["config"], encoder_weights=None)
    model = build_model(ckpt["phase"], config)
    # The statistics the weights were trained with, not the defaults for weights=None.
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.phase, model.config = ckpt["phase"], ckpt["config"]
    model.checkpoint = {"epoch": ckpt.get("epoch"), "metrics": ckpt.get("metrics", {})}
    return model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()

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
from facemask.models.baselines import ASPP_RATES, DeepLabV2, FCN8s
from facemask.models.nets import FCN, ConvLSTMFCN

#: Checkpoint layout version written by `save_model` (1: the phase under the key ``arch``).
CHECKPOINT_FORMAT = 2
#: The training phases, and the class of the model each trains (an ``fcn`` model's class: `NETWORKS`).
PHASES = ("fcn", "convlstm")
#: The FCN phase's networks by ``model.arch``.
NETWORKS: dict[str, type[nn.Module]] = {"fcn": FCN, "fcn_vgg16": FCN8s, "deeplab_v2": DeepLabV2}


def build_model(phase: str, config: Mapping[str, Any]) -> nn.Module:
    """A new model of `phase` from a checkpoint-style config.

    Args:
        phase: ``"fcn"`` (the network ``config["arch"]`` names, default ``fcn``) or ``"convlstm"``.
        config: for the paper's networks ``encoder``, ``classes``, ``output_stride`` (default 16),
            ``encoder_depth`` (default 5), ``encoder_weights`` (default None); for ``convlstm`` also
            ``peephole`` (default True) and ``output_scale`` (default 1); for the baselines see
            `build_baseline`. Other keys (``input_size``, ``region``, ``class_names``…) are metadata.

    Raises:
        ValueError: an unknown phase or network, naming the valid ones.
    """
    if phase not in PHASES:
        raise ValueError(f"Unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    network = config.get("arch", "fcn") if phase == "fcn" else "fcn"
    if network not in NETWORKS:
        raise ValueError(f"Unknown model.arch {network!r}; valid: {', '.join(NETWORKS)}")
    if network != "fcn":  # model.arch: a baseline of Table 2
        return build_baseline(network, config)
    kw = dict(encoder=config["encoder"], classes=int(config["classes"]),
              encoder_weights=config.get("encoder_weights"), output_stride=int(config.get("output_stride", 16)),
              encoder_depth=int(config.get("encoder_depth", 5)))
    if phase == "convlstm":
        return ConvLSTMFCN(**kw, peephole=bool(config.get("peephole", True)),
                           output_scale=float(config.get("output_scale", 1.0)))
    return FCN(**kw)


def build_baseline(network: str, config: Mapping[str, Any]) -> nn.Module:
    """One of Table 2's VGG-16 baselines (``fcn_vgg16``, ``deeplab_v2``) from a checkpoint-style config.

    Reads ``classes``, ``encoder_weights`` (default None), ``batch_norm`` (default False: VGG-16 as the
    papers have it; True: VGG-16-BN, ``baselines.batch_norm``), and optionally ``fc6_kernel`` (fcn_vgg16,
    default 3) or ``aspp_rates`` (deeplab_v2, default 6, 12, 18, 24). ``encoder`` and ``output_stride``
    belong to the reference FCN: the network fixes both here (VGG-16; strides 32 … 8, 8).
    """
    kw: dict[str, Any] = dict(classes=int(config["classes"]), encoder_weights=config.get("encoder_weights"),
                              batch_norm=bool(config.get("batch_norm", False)))
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
        "config": _plain(dict(config)),
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

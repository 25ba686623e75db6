"""The encoder every network of this package is built on: an smp / timm encoder, its input
normalisation and the bilinear resize of the scores (`EncoderNet`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)



IMAGENET_STD = (0.229, 0.224, 0.225)



def _normalisation(encoder: str, weights: str | None) -> tuple[list[float], list[float]]:
    """Mean and std (for inputs in [0, 1]) that the encoder's pretrained weights expect.

    Read from the encoder's pretrained configuration where that needs no download (timm ``tu-``
    encoders; smp encoders whose config.json `get_encoder` just fetched with the weights); ImageNet's
    otherwise, so a model built offline normalises the same way every time.
    """
    if encoder.startswith("tu-") or weights is not None:
        from segmentation_models_pytorch.encoders import get_preprocessing_params

        try:
            p = get_preprocessing_params(encoder, pretrained=weights if isinstance(weights, str) else "imagenet")
        except (OSError, ValueError, KeyError, AttributeError):
            p = None
        if p is not None and p.get("input_space", "RGB") == "RGB":
            scale = float(p.get("input_range", [0, 1])[1])  # [0, 255]-range statistics -> [0, 1]
            return [m / scale for m in p["mean"]], [s / scale for s in p["std"]]
    return list(IMAGENET_MEAN), list(IMAGENET_STD)



def make_encoder(name: str, weights: str | None = None, output_stride: int = 16, depth: int = 5) -> nn.Module:
    """An smp encoder (``model.encoder``) dilated to `output_stride`, truncated to its first `depth` stages.

    Args:
        name: any smp encoder name (``resnet18/34/50``, ``mobilenet_v2``, ``efficientnet-b0``…) or a timm
            one as ``tu-<name>`` (``tu-mobilenetv3_small_100``, ``tu-mobilenetv4_conv_small``…).
        weights: ``None`` (random initialisation) or the name of smp's pretrained weights (``imagenet``;
            any non-null value for ``tu-`` encoders). Downloading them needs the internet.
        output_stride: 16 (the paper's) or 8; 32 leaves the encoder undilated.
        depth: stages kept (5: the whole encoder, as the paper's ResNet-50; 4 drops the last stage, so a
            ResNet ends at ``layer3``). With ``output_stride`` 8 and depth 4 the last kept stage is dilated.
    """
    from segmentation_models_pytorch.encoders import get_encoder

    if name.startswith("tu-") and weights is not None:
        weights = True  # timm: the pretrained tag is part of the name
    try:
        encoder = get_encoder(name, weights=weights, output_stride=output_stride, depth=depth)
    except OSError as e:  # huggingface_hub / requests / urllib failures are all OSErrors
        if weights is None:
            raise
        raise RuntimeError(
            f"Pretrained weights ({weights!r}) for encoder {name!r} could not be downloaded: they need the "
            f"internet the first time (then they are cached by huggingface_hub). Set "
            f"`model.encoder_weights: null` in params.yaml to start from random weights instead. ({e})"
        ) from e
    freeze_unused(encoder)
    return encoder


def freeze_unused(encoder: nn.Module, size: int = 64) -> tuple[str, ...]:
    """Freeze the parameters `encoder`'s forward never uses (``requires_grad`` False); their names are kept
    in ``encoder.unused_parameters`` (and returned).

    smp truncates an encoder to `depth` stages in its forward only: the stages beyond stay registered (a
    ResNet at ``encoder_depth`` 3 never runs ``layer3`` and ``layer4``: 10.5 M of resnet18's 11.2 M
    parameters), and a few encoders keep a head they never run (EfficientNet's ``conv_head``). Such
    parameters get no gradient, which DDP takes for an error (issue 24: "Expected to have finished
    reduction in the prior iteration"); frozen, neither DDP nor an optimiser sees them. They stay in the
    state dict, so checkpoints keep their layout. Found by one forward and backward pass of a zero image of
    `size` pixels in eval mode: no running statistic moves and no random number is drawn.
    """
    names = [n for n, _ in encoder.named_parameters()]
    unused = set(getattr(encoder, "unused_parameters", ()))
    params = {n: p for n, p in encoder.named_parameters() if p.requires_grad}
    if params:
        modes = {m: m.training for m in encoder.modules()}
        try:
            with torch.enable_grad():
                encoder.eval()
                out = encoder(torch.zeros(1, 3, size, size, device=next(iter(params.values())).device))
                total = sum(f.float().sum() for f in out if f.requires_grad)
                grads = (torch.autograd.grad(total, list(params.values()), allow_unused=True)
                         if torch.is_tensor(total) else [None] * len(params))
        finally:
            for m, training in modes.items():
                m.training = training
        unused |= {n for n, g in zip(params, grads) if g is None}
    for n, p in encoder.named_parameters():
        if n in unused:
            p.requires_grad_(False)
    encoder.unused_parameters = tuple(n for n in names if n in unused)
    return encoder.unused_parameters


class EncoderNet(nn.Module):
    """What both networks share: the normalisation buffers, the encoder and the bilinear resize."""
    def __init__(self, encoder: str, classes: int, encoder_weights: str | None, output_stride: int,
                 encoder_depth: int = 5):
        super().__init__()
        self.encoder_name = encoder
        self.classes = int(classes)
        self.output_stride = int(output_stride)
        self.encoder_depth = int(encoder_depth)
        self.encoder = make_encoder(encoder, encoder_weights, output_stride, self.encoder_depth)
        mean, std = _normalisation(encoder, encoder_weights)
        # Persistent: a checkpoint keeps the statistics its weights were trained with.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    @property
    def feature_channels(self) -> int:
        return self.encoder.out_channels[-1]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) RGB in [0, 1] -> every feature map the encoder returns, finest first."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.encoder(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> the encoder's last feature map (N, c, H/16, W/16)."""
        return self.encode(x)[-1]

    @staticmethod
    def _resize(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(scores, size=size, mode="bilinear", align_corners=False)


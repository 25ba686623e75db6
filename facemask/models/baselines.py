"""The two still-image baselines of the paper's Table 2 (Sect. 4.2) on VGG-16: FCN-8s and DeepLab-V2.

* `FCN8s` (``model.arch: fcn_vgg16``) — Long, Shelhamer & Darrell, "Fully Convolutional Networks for
  Semantic Segmentation", CVPR 2015: VGG-16 with its fully connected layers cast to convolutions (fc6,
  4096 filters, 3×3 here where VGG's is 7×7 — see `FCN8s`; fc7 1×1, 4096; dropout 0.5 after each), a
  class-score layer on fc7, on pool4 and on pool3, the coarser scores upsampled ×2 by learned transposed
  convolutions initialised to bilinear interpolation and summed with the finer ones (the skip
  architecture of their Sect. 4.2 and Fig. 3), the stride-8 sum upsampled bilinearly (fixed, as their
  final ×8 "deconvolution") to the input size.
* `DeepLabV2` (``model.arch: deeplab_v2``) — Chen, Papandreou, Kokkinos, Murphy & Yuille, "DeepLab:
  Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected
  CRFs", TPAMI 2018 (arXiv 1606.00915): VGG-16 with 3×3 max pooling (padding 1) throughout, pool4 and
  pool5 at stride 1, and conv5 dilated at rate 2 (atrous convolution, their Eq. 1,
  y[i] = Σ_k x[i + r·k] w[k], Sect. 3.1), so the features stay at output stride 8; then atrous spatial
  pyramid pooling (ASPP, Sect. 3.2 and Fig. 4; "ASPP-L" of their Table 3): four branches fc6 (3×3, 1024
  filters, rate r ∈ {6, 12, 18, 24}) → fc7 (1×1, 1024) → fc8 (1×1, C), dropout 0.5 after fc6 and fc7,
  whose scores are summed; the stride-8 scores are resized bilinearly to the input size.
  ``rates=(12,)`` is the single-branch DeepLab-LargeFOV head. The fully connected CRF of their
  Sect. 3.3 is not provided (DESIGN.md says why).

Both are built on the VGG-16 encoder of segmentation-models-pytorch (`facemask.models.encoder.make_encoder`,
undilated: smp cannot dilate VGG), so ``model.encoder_weights: imagenet`` loads its ImageNet
convolution weights (conv1_1 … conv5_3) into exactly the layers both papers initialise from ImageNet.
smp's encoder drops VGG-16's classifier, so fc6/fc7 start from scratch here even with ImageNet weights
(both papers cast them from the ImageNet classifier). What each network adds to the encoder — the
pool3/pool4 taps, fc6/fc7, the score layers, the bilinear-initialised upsampling, DeepLab's pooling and
dilation changes and the ASPP head — is written here.

Input, output and checkpoints as every facemask model (`facemask.models.nets`): float RGB in [0, 1]
normalised inside the model, (B, 3, H, W) or (B, T, 3, H, W) (frame by frame), raw scores at the input
size. `facemask.models.registry.build_model("fcn", config)` builds them when ``config["arch"]`` names them,
so the FCN phase trains them and `facemask.models.registry.save_model` / `load_model` store them like the
reference FCN.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from facemask.models.encoder import EncoderNet

#: The smp encoder both baselines are built on (the "VGG-16 version" of the paper's Sect. 4.2), and its
#: variant with batch norm after every convolution (``batch_norm: true``: VGG-16 trained from scratch).
VGG16 = "vgg16"
VGG16_BN = "vgg16_bn"
#: DeepLab-V2's ASPP-L sampling rates (Chen et al. 2018, Table 3).
ASPP_RATES = (6, 12, 18, 24)


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """The weight of a ×`factor` transposed convolution that performs bilinear interpolation, channel by
    channel (Long et al. 2015, Sect. 4.2: the 2× upsamplings start as bilinear interpolation, then learn).

    Kernel side 2f − f mod 2; tap t weighs 1 − |t − c| / f, c the kernel's centre; the 2-D kernel is the
    outer product, on the (c, c) diagonal of the (out, in) channel matrix, zero elsewhere.
    """
    side = 2 * factor - factor % 2
    centre = factor - 1 if side % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(side, dtype=torch.float32) - centre).abs() / factor
    weight = torch.zeros(channels, channels, side, side)
    weight[range(channels), range(channels)] = taps[:, None] * taps[None, :]
    return weight


class LearnedUpsample(nn.ConvTranspose2d):
    """FCN's learned upsampling: a C→C transposed convolution (stride f, kernel 2f − f mod 2: 4 for ×2, no
    bias) initialised to bilinear interpolation (`bilinear_kernel`) and trained with the rest of the network.

    Padding ⌊f/2⌋ makes the output f·h × f·w and aligns it with the finer map (where FCN pads the input by
    100 and crops); `forward` takes that map's size, which may be one larger than 2h on odd sizes.
    Away from the border it equals ``F.interpolate(..., scale_factor=f, mode="bilinear")``.
    """

    def __init__(self, channels: int, factor: int = 2):
        super().__init__(channels, channels, 2 * factor - factor % 2, stride=factor, padding=factor // 2,
                         bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, factor))

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        return super().forward(x, output_size=None if size is None else list(size))


def _init_like_vgg_classifier(*layers: nn.Conv2d) -> None:
    """N(0, 0.01) weights, zero bias: torchvision's initialisation of the VGG-16 classifier these fc
    layers are cast from (smp's encoder does not keep the classifier, so there is nothing to load)."""
    for layer in layers:
        nn.init.normal_(layer.weight, 0.0, 0.01)
        nn.init.zeros_(layer.bias)


class VGGNet(EncoderNet):
    """What both baselines share: smp's undilated VGG-16 encoder, the input normalisation (`EncoderNet`),
    frame-by-frame forward and the bilinear resize of the stride-8 scores to the input size.

    ``batch_norm=True`` takes smp's VGG-16-BN instead (torchvision's ``vgg16_bn``, Simonyan & Zisserman's
    VGG-16 with batch norm, Ioffe & Szegedy 2015, after each of the 13 convolutions): the same layers,
    strides and poolings, so the FCN-8s taps and DeepLab's pooling and dilation changes apply unchanged.
    Both papers start VGG-16 from ImageNet; from scratch at train.fcn's recipe (Adam 1e-3) the plain
    VGG-16 blows up in its first steps and ends predicting skin only (README "Table 2"), which is why the
    embedded default trains the BN variant (`baselines.batch_norm`, DESIGN.md). The heads (fc6, fc7, the
    score layers, ASPP) have no batch norm in either."""

    #: The smallest input side (FCN-8s: five 2×2 poolings must leave one pixel; DeepLab's never empty a map).
    min_size = 1

    def __init__(self, classes: int, encoder_weights: str | None, batch_norm: bool = False):
        super().__init__(VGG16_BN if batch_norm else VGG16, classes, encoder_weights, output_stride=32)
        self.batch_norm = bool(batch_norm)
        self.pools = [i for i, m in enumerate(self.encoder.features) if isinstance(m, nn.MaxPool2d)]
        assert len(self.pools) == 5, self.pools

    def score_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> the class scores at output stride 8, before the resize."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"{type(self).__name__} needs inputs of at least {self.min_size}×{self.min_size}, "
                             f"got {tuple(x.shape[-2:])}")
        scores = self._resize(self.score_maps(x), x.shape[-2:])
        return scores.reshape(*lead, *scores.shape[1:])


# ---------------------------------------------------------------------------------------------------
# FCN-8s


class FCN8s(VGGNet):
    """FCN-8s on VGG-16 (Long et al. 2015, Fig. 3 and Sect. 4.2)::

        pool5 ─ fc6 (3×3, 4096) ─ fc7 (1×1, 4096) ─ score_fr ─ upscore2 (×2) ─┐
        pool4 ─ score_pool4 ──────────────────────────────────────────────── + ─ upscore_pool4 (×2) ─┐
        pool3 ─ score_pool3 ──────────────────────────────────────────────────────────────────────── + ─ ×8

    smp's VGG encoder returns the maps *before* each pooling (relu1_2 … relu5_3, strides 1 … 16) and
    pool5 (stride 32); pool3 and pool4 are the encoder's own 2×2 pooling layers applied to relu3_3 and
    relu4_3. fc6 uses "same" padding instead of FCN's 100-pixel padding of conv1_1 and the crops it
    needs: the score maps then sit exactly on the pool5/pool4/pool3 grids (H/32, H/16, H/8, floored).
    Score layers start at zero (Long et al., Sect. 4.3), the ×2 upsamplings at bilinear
    (`LearnedUpsample`); trained in one stage, as FCN-8s "at-once", not 32s → 16s → 8s.

    Args:
        classes: C.
        encoder_weights: ``None`` or ``"imagenet"`` (conv1_1 … conv5_3; downloaded by smp).
        fc6_kernel: side of fc6 (odd). VGG-16's is 7, the whole 7×7 pool5 map of its 224 input; our pool5
            maps are 3×3 (input 96) to 5×5 (160), 10×10 at the paper's 320. Default 3, as DeepLab-LargeFOV
            subsampled VGG's fc6 to 3×3: at input 96 a 7×7 kernel's outer ring only ever meets padding,
            and PyTorch's CPU backward of a 7×7, 4096-filter convolution on 3×3–5×5 maps is pathologically
            slow (measured: 71–148 s for 4 frames, against about 1 s for 3×3; DESIGN.md). 7 gives VGG-16's
            layer.
        dropout: after fc6 and after fc7 (0.5 in FCN, as in VGG-16).
        batch_norm: build on VGG-16-BN (smp ``vgg16_bn``: batch norm between each convolution and its ReLU)
            instead of VGG-16; the heads are the same (`VGGNet`'s note).
    """

    min_size = 32

    def __init__(self, classes: int = 5, encoder_weights: str | None = None, fc6_kernel: int = 3,
                 dropout: float = 0.5, batch_norm: bool = False):
        if fc6_kernel < 1 or fc6_kernel % 2 != 1:
            raise ValueError(f"fc6_kernel must be odd (same padding), got {fc6_kernel}")
        super().__init__(classes, encoder_weights, batch_norm)
        self.fc6_kernel = int(fc6_kernel)
        c3, c4, c5 = self.encoder.out_channels[2:5]  # relu3_3 (256), relu4_3 (512), relu5_3 (512)
        self.fc6 = nn.Conv2d(c5, 4096, fc6_kernel, padding=fc6_kernel // 2)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.drop = nn.Dropout(dropout)
        self.score_fr = nn.Conv2d(4096, self.classes, 1)
        self.score_pool4 = nn.Conv2d(c4, self.classes, 1)
        self.score_pool3 = nn.Conv2d(c3, self.classes, 1)
        self.upscore2 = LearnedUpsample(self.classes)
        self.upscore_pool4 = LearnedUpsample(self.classes)
        _init_like_vgg_classifier(self.fc6, self.fc7)
        for layer in (self.score_fr, self.score_pool4, self.score_pool3):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.output_stride = 8

    def score_maps(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encode(x)
        pool3 = self.encoder.features[self.pools[2]](f[2])
        pool4 = self.encoder.features[self.pools[3]](f[3])
        h = self.drop(F.relu(self.fc6(f[-1]), inplace=True))
        h = self.drop(F.relu(self.fc7(h), inplace=True))
        s = self.score_fr(h)                                                          # stride 32
        s = self.upscore2(s, pool4.shape[-2:]) + self.score_pool4(pool4)              # fuse_pool4, stride 16
        return self.upscore_pool4(s, pool3.shape[-2:]) + self.score_pool3(pool3)      # fuse_pool3, stride 8


# ---------------------------------------------------------------------------------------------------
# DeepLab-V2


def deeplab_trunk(encoder: nn.Module) -> nn.Module:
    """Turn smp's VGG-16 encoder, in place, into DeepLab's trunk (the released VGG-16 prototxt):
    pool1–3 3×3 with stride 2 and padding 1, pool4 and pool5 3×3 with stride 1 and padding 1, conv5_1–3
    dilated at rate 2 (padding 2). No weight changes shape, so ImageNet weights load as for plain VGG-16.

    DeepLab's Caffe pools round up; with padding 1 that gives the same sizes as PyTorch's rounding down
    on DeepLab's own 8k + 1 crops (321 -> 161, 81, 41), and exactly H/2, H/4, H/8 on multiples of 8.
    smp's ``forward`` still returns the encoder's last layer, now pool5 at output stride 8.
    """
    features = encoder.features
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    for k, i in enumerate(pools):
        features[i] = nn.MaxPool2d(3, stride=2 if k < 3 else 1, padding=1)
    for m in features[pools[3] + 1:pools[4]]:
        if isinstance(m, nn.Conv2d):
            m.dilation, m.padding = (2, 2), (2, 2)
    encoder._output_stride = 8
    return encoder


class ASPPBranch(nn.Sequential):
    """One branch of DeepLab-V2's ASPP (Fig. 4): fc6 3×3 at rate r -> ReLU, dropout -> fc7 1×1 -> ReLU,
    dropout -> fc8 1×1 to the C classes."""

    def __init__(self, in_channels: int, classes: int, rate: int, width: int = 1024, dropout: float = 0.5):
        super().__init__(OrderedDict([
            ("fc6", nn.Conv2d(in_channels, width, 3, padding=rate, dilation=rate)),
            ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Conv2d(width, width, 1)),
            ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Conv2d(width, classes, 1)),
        ]))
        self.rate = int(rate)
        _init_like_vgg_classifier(self.fc6, self.fc7)
        nn.init.normal_(self.fc8.weight, 0.0, 0.01)  # DeepLab's fc8: Gaussian, std 0.01, bias 0
        nn.init.zeros_(self.fc8.bias)


class DeepLabV2(VGGNet):
    """DeepLab-V2 on VGG-16 (Chen et al. 2018): `deeplab_trunk` (output stride 8) -> ASPP, the branches'
    scores summed (Fig. 4) -> bilinear resize to the input size.

    Args:
        classes: C.
        encoder_weights: ``None`` or ``"imagenet"`` (conv1_1 … conv5_3; downloaded by smp).
        rates: the ASPP sampling rates; (6, 12, 18, 24) is ASPP-L (DeepLab-V2), (12,) LargeFOV.
        width: filters of fc6 and fc7 in each branch (1024 in DeepLab).
        dropout: after fc6 and after fc7 of each branch (0.5).
        batch_norm: build on VGG-16-BN (smp ``vgg16_bn``) instead of VGG-16 (`VGGNet`'s note).

    Trained on the labels at full resolution through the bilinear resize (DeepLab subsamples the labels
    by 8 instead). No CRF.
    """

    def __init__(self, classes: int = 5, encoder_weights: str | None = None, rates: Sequence[int] = ASPP_RATES,
                 width: int = 1024, dropout: float = 0.5, batch_norm: bool = False):
        if not rates or any(int(r) < 1 for r in rates):
            raise ValueError(f"ASPP rates must be positive integers, got {rates!r}")
        super().__init__(classes, encoder_weights, batch_norm)
        deeplab_trunk(self.encoder)
        self.rates = tuple(int(r) for r in rates)
        self.aspp = nn.ModuleList(ASPPBranch(self.feature_channels, self.classes, r, width, dropout)
                                  for r in self.rates)
        self.output_stride = 8

    def score_maps(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # pool5, stride 8
        return torch.stack([branch(f) for branch in self.aspp]).sum(0)

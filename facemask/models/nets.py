"""The networks of the paper: the reference FCN, the ConvLSTM of Eq. 1 and the ConvLSTM-FCN (Sect. 3.1).

* `FCN` — an smp encoder dilated to output stride 16 (the paper's is ResNet-50 with its stage-5 blocks
  dilated at rate 2: 20×20 features at 320×320), then ``conv6``, a linear 1×1 convolution to C classes,
  then bilinear resizing straight to the input size (no learned upsampling, no skips).
* `ConvLSTM` — Eq. 1 (Shi et al. 2015) with learnable Hadamard peepholes, which can be switched off
  (Keras's ConvLSTM2D, the authors' framework, has none).
* `ConvLSTMFCN` — the FCN with ``conv6`` replaced by a ConvLSTM of the same filter settings (1×1,
  C filters), with the reshapes (B·T, C, h, w) ↔ (B, T, C, h, w) of Fig. 1 around it;
  `ConvLSTMFCN.from_fcn` keeps every weight of a trained FCN except ``conv6``.

Bounded output. The ConvLSTM-FCN's scores are the ConvLSTM's hidden state h = o ∘ tanh(c) ∈ (−1, 1),
whereas the FCN's are unbounded; from the zero initial state |c_t| < t + 1, so frame t of a sequence
scores within ±tanh(t + 1): ±0.762 on the first frame, ±0.964 on the second, ±0.995 on the third.
Softmax of such scores is never sharp: the target's probability is at most 1 / (1 + (C − 1) e^(−2b)),
so cross-entropy cannot fall below ``ce_floor(C, b)`` (b = 1: 0.433 for C = 5, 0.240 for C = 3, 0.127
for C = 2; b = tanh 1 on the first frame: 0.627, 0.362, 0.197) and the soft IoU of Eq. 3 cannot reach 1;
the arg-max, and so the mIoU, is not affected. Eq. 9's L_p = −score is linear: bounded only because the
scores are (on the unbounded FCN it has no minimum), and Eq. 8/9 margins g ≥ 2 can never be met.
``output_scale`` (default 1: faithful) multiplies the scores by a fixed constant for anyone who wants to
lift that floor (``auto``: the FCN's own score range, so the converted model starts with the FCN's scores,
`auto_output_scale`); a learnable scale would run off to infinity under Eq. 9, whose loss falls linearly
with it.

Input of every model: float RGB in [0, 1]; the encoder's normalisation (ImageNet mean/std unless the
encoder's own pretrained configuration says otherwise) is applied inside the model. Output: raw scores.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from facemask.models.encoder import EncoderNet


def ce_floor(classes: int, bound: float = 1.0) -> float:
    """The least cross-entropy reachable when every score lies in [−bound, bound].

    Best case: the target's score at +bound, the C − 1 others at −bound, so
    p_target = 1 / (1 + (C − 1) e^(−2·bound)) and CE = log(1 + (C − 1) e^(−2·bound)).
    """
    return math.log1p((classes - 1) * math.exp(-2.0 * bound))


class FCN(EncoderNet):
    """The reference FCN (Sect. 3.1, Table 1): encoder at output stride 16 -> ``conv6`` -> bilinear resize.

    Args:
        encoder: smp encoder name (paper: ``resnet50``), see `make_encoder`.
        classes: C, the number of classes (``conv6`` has C filters).
        encoder_weights: ``None`` or ``"imagenet"`` (downloaded; offline a RuntimeError says so).
        output_stride: 16 in the paper.
        encoder_depth: encoder stages kept (paper: 5, the whole ResNet-50).

    Input: (B, 3, H, W) float RGB in [0, 1] (or (B, T, 3, H, W), processed frame by frame).
    Output: raw scores of the same leading shape with C channels at the input's H×W.
    """

    def __init__(self, encoder: str = "resnet50", classes: int = 5, encoder_weights: str | None = None,
                 output_stride: int = 16, encoder_depth: int = 5):
        super().__init__(encoder, classes, encoder_weights, output_stride, encoder_depth)
        self.conv6 = nn.Conv2d(self.feature_channels, self.classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        scores = self._resize(self.conv6(self.features(x)), x.shape[-2:])
        return scores.reshape(*lead, *scores.shape[1:])


class ConvLSTM(nn.Module):
    """A ConvLSTM layer, Eq. 1 (Shi et al. 2015)::

        i_t = σ(W_xi * X_t + W_hi * H_{t−1} + W_ci ∘ C_{t−1} + b_i)
        f_t = σ(W_xf * X_t + W_hf * H_{t−1} + W_cf ∘ C_{t−1} + b_f)
        C_t = f_t ∘ C_{t−1} + i_t ∘ tanh(W_xc * X_t + W_hc * H_{t−1} + b_c)
        o_t = σ(W_xo * X_t + W_ho * H_{t−1} + W_co ∘ C_t + b_o)
        H_t = o_t ∘ tanh(C_t)

    The peepholes W_ci, W_cf, W_co are **per channel** (one weight per hidden channel, shape
    (C_hidden, 1, 1), broadcast over the positions). A per-position peephole (shape (C_hidden, h, w), as
    in some ConvLSTM code) would tie the model to one feature-map size (20×20 at the paper's 320×320, 6×6
    at 96×96) and break the translation equivariance every other weight of the layer has; per channel is
    also the convolutional reading of the FC-LSTM's diagonal peephole matrix, one weight per cell unit,
    where a "unit" is now a channel shared across the positions. They start at zero, so the layer starts
    as a peephole-free ConvLSTM; ``peephole=False`` removes them (Keras's ConvLSTM2D has none).

    The state starts at zero for every sequence passed to `forward`. Initialisation follows Keras's
    ConvLSTM2D: Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias but 1 for the forget gate.

    Args:
        in_channels: channels of X_t.
        hidden_channels: channels of H_t and C_t (the filters).
        kernel_size: of the convolutions ``*`` (odd; "same" padding). 1 in the ConvLSTM-FCN.
        peephole: learn the Hadamard peepholes W_ci, W_cf, W_co.

    Input (B, T, C_in, h, w) -> H_t for every t, (B, T, C_hidden, h, w).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 1, peephole: bool = True):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.in_channels = int(in_channels)
        self.hidden_channels = int(hidden_channels)
        self.kernel_size = int(kernel_size)
        self.peephole = bool(peephole)
        pad = kernel_size // 2
        # Gate blocks in the order i, f, c, o (as Keras); the bias b_{i,f,c,o} lives in conv_x.
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size, padding=pad, bias=True)
        self.conv_h = nn.Conv2d(hidden_channels, 4 * hidden_channels, kernel_size, padding=pad, bias=False)
        if peephole:
            self.w_ci = nn.Parameter(torch.zeros(hidden_channels, 1, 1))
            self.w_cf = nn.Parameter(torch.zeros(hidden_channels, 1, 1))
            self.w_co = nn.Parameter(torch.zeros(hidden_channels, 1, 1))
        else:
            self.register_parameter("w_ci", None)
            self.register_parameter("w_cf", None)
            self.register_parameter("w_co", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        n = self.hidden_channels
        nn.init.xavier_uniform_(self.conv_x.weight)
        for k in range(4):  # each gate's recurrent kernel orthogonal, as Keras does for the whole matrix
            nn.init.orthogonal_(self.conv_h.weight.data[k * n:(k + 1) * n])
        nn.init.zeros_(self.conv_x.bias)
        with torch.no_grad():
            self.conv_x.bias[n:2 * n].fill_(1.0)  # unit forget bias
        for w in (self.w_ci, self.w_cf, self.w_co):
            if w is not None:
                nn.init.zeros_(w)

    def zero_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(H, C) = 0 for a batch shaped like the frame `x` (B, C_in, h, w)."""
        z = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[-2:])
        return z, z

    def step(self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], gx: torch.Tensor | None = None):
        """One time step of Eq. 1: (X_t, (H_{t−1}, C_{t−1})) -> (H_t, C_t).

        `gx`, the input convolution W_x * X_t + b, may be passed precomputed (`forward` does all T at once).
        """
        h, c = state
        if gx is None:
            gx = self.conv_x(x_t)
        gi, gf, gc, go = (gx + self.conv_h(h)).chunk(4, dim=1)
        if self.peephole:
            gi = gi + self.w_ci * c
            gf = gf + self.w_cf * c
        c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gc)
        if self.peephole:
            go = go + self.w_co * c  # the output gate peeps at the new cell C_t
        h = torch.sigmoid(go) * torch.tanh(c)
        return h, c

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                return_state: bool = False):
        """H_t for every t of (B, T, C_in, h, w), from `state` (H_0, C_0; None: zero); with `return_state` also
        the state after the last frame, (H_T, C_T), to carry into the next window of a stream."""
        if x.dim() != 5:
            raise ValueError(f"ConvLSTM expects (B, T, C, h, w), got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        gx = self.conv_x(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1, *x.shape[-2:])
        if state is None:
            state = self.zero_state(x[:, 0])
        out = []
        for k in range(t):
            state = self.step(None, state, gx=gx[:, k])
            out.append(state[0])
        h = torch.stack(out, dim=1)
        return (h, state) if return_state else h

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, "
                f"peephole={self.peephole}")


@torch.no_grad()
def conv6_score_std(fcn: FCN, images, batch: int = 16) -> float:
    """The standard deviation of `fcn`'s class-centred scores (before the resize) on `images`.

    `images`: float (N, 3, H, W) in [0, 1], or uint8 RGB frames (..., H, W, 3) as packed. They go through
    the FCN `batch` at a time on its device (the paper's ~600 calibration frames at 320² at once would
    take ~10 GB); the scores, C x H/s x W/s a frame (s: the output stride), are gathered on the CPU.
    """
    was_training = fcn.training
    fcn.eval()
    device = next(fcn.parameters()).device
    if torch.is_tensor(images):
        chunks = (images[i:i + batch] for i in range(0, len(images), batch))
    else:
        frames = np.asarray(images)
        frames = frames.reshape(-1, *frames.shape[-3:])
        chunks = (torch.from_numpy(np.array(frames[i:i + batch])).permute(0, 3, 1, 2).float() / 255
                  for i in range(0, len(frames), batch))
    s = torch.cat([fcn.conv6(fcn.features(x.to(device))).float().cpu() for x in chunks])
    fcn.train(was_training)
    return max(float((s - s.mean(dim=1, keepdim=True)).std()), 1e-6)


#: `init_from_conv6`: the FCN's centred scores are divided by this many of their standard deviations, so
#: that ±3 std lands within ±0.5, where tanh(x) = x within 8 %.
CONV6_RANGE = 6.0


#: `init_from_conv6`: gate biases, i = o = σ(3) = 0.95 and f = σ(−3) = 0.05: the cell passes each frame through.
GATE_BIAS = 3.0


@torch.no_grad()
def init_from_conv6(lstm: ConvLSTM, conv6: nn.Conv2d, scale: float = 1.0, gate_bias: float = GATE_BIAS) -> None:
    """Start a 1×1 `ConvLSTM` as the FCN's classifier ``conv6`` (our choice; the paper is silent).

    The cell-input block (W_xc, b_c) gets ``conv6``'s weights centred over the classes (W − mean_c W,
    b − mean_c b: every pixel's scores shift by one constant, so softmax and arg-max are unchanged), times
    `scale`; `from_fcn` passes 1 / (`CONV6_RANGE` · std of the centred scores on a few training frames,
    `conv6_score_std`), which puts nearly all scores in tanh's linear range. The gates' input weights and
    all recurrent kernels are zeroed (peepholes start at zero anyway) and the gate biases set to
    i = o = σ(b), f = σ(−b) (b = `gate_bias`, 3: 0.95 and 0.05). With s̃_t the centred, scaled FCN scores of
    frame t the new layer then starts as

        C_t = σ(−b) C_{t−1} + σ(b) tanh(s̃_t),     H_t = σ(b) tanh(C_t)  ≈  σ(b)² s̃_t:

    a linear map of the FCN's scores, frame by frame, so its arg-max, after the bilinear resize too (a
    linear map commutes with it), is the FCN's. Measured on the default benchmark (face FCN, val mIoU at
    the crops' resolution 0.595): this start scores 0.593; the previous one (biases 0, 1, 0, 0, i.e.
    f = 0.73, scale 1 / std) 0.501 — tanh tied the leading classes (eyes 0.40 → 0.20) and the smoothing
    lagged the moving face; pass-through gates at 1 / std 0.521, smoothing gates at 1 / (3 std) 0.570.
    Every zeroed weight still gets gradients (the gates' outputs matter and their inputs X_t, H_{t−1} are
    not zero), so training learns from there what the previous frames add.
    """
    if lstm.kernel_size != 1 or conv6.kernel_size != (1, 1):
        raise ValueError("init_from_conv6 needs a 1x1 ConvLSTM and a 1x1 conv6")
    n = lstm.hidden_channels
    if conv6.out_channels != n or conv6.in_channels != lstm.in_channels:
        raise ValueError(f"conv6 {conv6.in_channels}->{conv6.out_channels} does not fit the ConvLSTM "
                         f"{lstm.in_channels}->{n}")
    w = conv6.weight - conv6.weight.mean(dim=0, keepdim=True)
    b = conv6.bias - conv6.bias.mean() if conv6.bias is not None else torch.zeros(n, device=w.device)
    lstm.reset_parameters()  # peepholes 0
    lstm.conv_x.weight.zero_()
    lstm.conv_h.weight.zero_()
    lstm.conv_x.weight[2 * n:3 * n].copy_(w * scale)
    bias = lstm.conv_x.bias
    bias[0:n].fill_(gate_bias)           # input gate
    bias[n:2 * n].fill_(-gate_bias)      # forget gate
    bias[2 * n:3 * n].copy_(b * scale)   # cell input
    bias[3 * n:4 * n].fill_(gate_bias)   # output gate


def auto_output_scale(score_std: float, gate_bias: float = GATE_BIAS) -> float:
    """``model.output_scale: auto``: the factor that gives the `init_from_conv6` start the FCN's own
    (centred) scores, CONV6_RANGE · std / σ(b)², so the converted model's loss starts at the FCN's."""
    return CONV6_RANGE * score_std / (1.0 / (1.0 + math.exp(-gate_bias))) ** 2


class ConvLSTMFCN(EncoderNet):
    """The ConvLSTM-FCN (Sect. 3.1, Fig. 1): the FCN with ``conv6`` replaced by a `ConvLSTM` of the same
    filter settings (1×1, C filters), between Reshape1 (B·T, c, h, w) -> (B, T, c, h, w) and Reshape2 back.

    Args:
        encoder, classes, encoder_weights, output_stride, encoder_depth: as `FCN`.
        peephole: the ConvLSTM's Hadamard peepholes (Eq. 1).
        output_scale: fixed factor on the scores; 1 (default) is the paper's model, whose scores are the
            ConvLSTM's h ∈ (−1, 1) (see the module docstring for what that bound does to the losses).

    Input (B, T, 3, H, W) float RGB in [0, 1]; output raw scores (B, T, C, H, W). The state starts at
    zero for every sequence. Layer-wise learning rates: `param_groups`; the paper's exploration with
    everything but the ConvLSTM frozen: `freeze_backbone`.
    """

    def __init__(self, encoder: str = "resnet50", classes: int = 5, encoder_weights: str | None = None,
                 output_stride: int = 16, peephole: bool = True, output_scale: float = 1.0, encoder_depth: int = 5):
        if not isinstance(output_scale, (int, float)):
            raise ValueError(f"output_scale must be a number here, got {output_scale!r} (`auto` is resolved by from_fcn)")
        super().__init__(encoder, classes, encoder_weights, output_stride, encoder_depth)
        self.convlstm = ConvLSTM(self.feature_channels, self.classes, kernel_size=1, peephole=peephole)
        self.output_scale = float(output_scale)
        self.backbone_frozen = False
        self.bn_frozen = False

    @classmethod
    def from_fcn(cls, fcn: FCN, peephole: bool = True, output_scale: float | str = 1.0,
                 init: str = "conv6", calibration=None) -> "ConvLSTMFCN":
        """A ConvLSTM-FCN holding a copy of every weight (and buffer) of `fcn` except ``conv6``.

        The ConvLSTM is new (Sect. 4.2: "keeping all the weights except the newly-added ConvLSTM layer");
        the paper does not say how it starts. `init`:

        * ``"glorot"``: Keras's ConvLSTM2D initialisation (`ConvLSTM.reset_parameters`), the authors'
          framework's default. The new layer then has to learn the classifier again through gates that
          start random, at ``lr`` while the encoder moves at ``lr·γ``.
        * ``"conv6"`` (`init_from_conv6`): the cell input starts as the FCN's classifier, so the new model
          starts from the FCN's predictions and the ConvLSTM learns what to add to them. `calibration`,
          a few training frames (float (N, 3, H, W) or uint8 (..., H, W, 3), run on the FCN's device in
          small batches by `conv6_score_std`), sets the scale: see `init_from_conv6`.

        `output_scale`: a number, or ``"auto"`` (`auto_output_scale` of the FCN's score spread on the
        calibration frames: the converted model's scores start as the FCN's); the model keeps the number.
        """
        if init not in ("conv6", "glorot"):
            raise ValueError(f"ConvLSTM init {init!r}; valid: conv6, glorot")
        fcn = getattr(fcn, "module", fcn)  # DDP-wrapped
        if not isinstance(fcn, FCN):
            raise TypeError(f"the ConvLSTM-FCN replaces the reference FCN's conv6, so it is built from model.arch: "
                            f"fcn only, not from a {type(fcn).__name__} (model.arch: fcn_vgg16 / deeplab_v2)")
        std = conv6_score_std(fcn, calibration) if calibration is not None else 1.0
        if output_scale == "auto":
            output_scale = auto_output_scale(std)
        model = cls(fcn.encoder_name, fcn.classes, None, fcn.output_stride, peephole=peephole,
                    output_scale=float(output_scale), encoder_depth=fcn.encoder_depth)
        shared = {k: v for k, v in fcn.state_dict().items() if not k.startswith("conv6.")}
        missing, unexpected = model.load_state_dict(shared, strict=False)
        if unexpected or any(not k.startswith("convlstm.") for k in missing):
            raise RuntimeError(f"FCN -> ConvLSTM-FCN transfer mismatch: missing {missing}, unexpected {unexpected}")
        if init == "conv6":
            init_from_conv6(model.convlstm, fcn.conv6, 1.0 / (CONV6_RANGE * std))
        return model.to(next(fcn.parameters()).device)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None, *,
                memory: bool = True, return_state: bool = False):
        """Scores (B, T, C, H, W) of sequences (B, T, 3, H, W).

        Args:
            state: the ConvLSTM's (H, C) to start from, each (B, C, h, w) (None: zero, as in training); a
                stream carries the state one window returns into the next (`facemask.inference.fusion`).
            memory: False runs every frame from the zero state: the same weights without the past (the
                memoryless control of Table 4 and of the memory checks).
            return_state: also return the state after the last frame.
        """
        if x.dim() != 5:
            raise ValueError(f"ConvLSTMFCN expects (B, T, 3, H, W) sequences, got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        f = self.features(x.reshape(b * t, *x.shape[2:]))          # (B·T, c, h, w)
        return self.head(f.reshape(b, t, *f.shape[1:]), x.shape[-2:], state, memory=memory,
                         return_state=return_state)

    def head(self, f: torch.Tensor, size, state: tuple[torch.Tensor, torch.Tensor] | None = None, *,
             memory: bool = True, return_state: bool = False):
        """Everything after the encoder: features (B, T, c, h, w) -> Reshape1 -> ConvLSTM -> Reshape2 ->
        bilinear resize to `size` -> scores (B, T, C, H, W) (and the last state with `return_state`). The
        head-only phase trains it on cached features (`facemask.training.head`)."""
        b, t = f.shape[:2]
        if not memory:  # every frame a sequence of its own
            if state is not None:
                raise ValueError("memory=False starts every frame from the zero state: pass no state")
            f = f.reshape(b * t, 1, *f.shape[2:])
        h, last = self.convlstm(f, state, return_state=True)       # (B, T, C, h, w)
        scores = self._resize(h.reshape(b * t, *h.shape[2:]), tuple(size))
        if self.output_scale != 1.0:
            scores = scores * self.output_scale
        scores = scores.reshape(b, t, *scores.shape[1:])
        return (scores, last) if return_state else scores

    def param_groups(self, lr: float, gamma: float) -> list[dict[str, Any]]:
        """Optimizer groups of Sect. 4.2: `lr` for the ConvLSTM, `lr`·`gamma` for every other layer.

        With the backbone frozen only the ConvLSTM's group is returned.
        """
        groups = [{"params": list(self.convlstm.parameters()), "lr": lr, "name": "convlstm"}]
        if not self.backbone_frozen:
            groups.append({"params": list(self.encoder.parameters()), "lr": lr * gamma, "name": "backbone"})
        return groups

    def freeze_backbone(self, frozen: bool = True) -> "ConvLSTMFCN":
        """Train the ConvLSTM alone (the paper's exploration, Tables 3 and 5).

        The encoder's weights stop taking gradients and its batch-norm layers stay in eval mode, so their
        running statistics do not drift either; `train()` keeps them there.
        """
        self.backbone_frozen = frozen
        unused = set(getattr(self.encoder, "unused_parameters", ()))  # never trained (`encoder.freeze_unused`)
        for name, p in self.encoder.named_parameters():
            p.requires_grad_(not frozen and name not in unused)
        return self.train(self.training)

    def freeze_bn(self, frozen: bool = True) -> "ConvLSTMFCN":
        """Keep the encoder's batch-norm statistics as the FCN left them (``train.convlstm.freeze_bn``).

        A ConvLSTM batch is N sequences of T consecutive frames (the paper: 2 × 5), i.e. 10 strongly
        correlated images of 2 faces: batch statistics over it are a poor estimate of the population's,
        and updating the running averages from them drifts the converted model away from its FCN. With
        `frozen` the batch-norm layers normalise with the FCN's running statistics in training too (their
        affine weights still learn at lr·γ). `train()` keeps them there.
        """
        self.bn_frozen = frozen
        return self.train(self.training)

    def train(self, mode: bool = True) -> "ConvLSTMFCN":
        super().train(mode)
        if self.backbone_frozen:
            self.encoder.eval()
        elif self.bn_frozen:
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


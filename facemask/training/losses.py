"""Losses of Sect. 3.2: the multi-class IoU loss (Eq. 3) and the Segmentation Loss (Eq. 7 with the
L_p / L_n of Eq. 8 or Eq. 9), beside torch's cross-entropy.

Every loss takes ``scores``, the model's raw output (N, C, H, W), and ``target``, class ids (N, H, W)
(long). Sequences (B, T, C, H, W) with targets (B, T, H, W) are accepted too and flattened to N = B·T
frames: every sum below then runs over all pixels of all frames of the batch. Half-precision scores
(autocast) are summed in float32.

Build one by name with `build_loss` (``ce`` | ``iou`` | ``segloss``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _frames(scores: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, C, H, W) / (B, T, H, W) -> (B·T, C, H, W) / (B·T, H, W); 4-D passes through; fp16/bf16 -> fp32."""
    if scores.dim() == 5:
        scores = scores.flatten(0, 1)
        target = target.flatten(0, 1)
    if scores.dim() != 4 or target.shape != scores.shape[:1] + scores.shape[2:]:
        raise ValueError(f"scores (N, C, H, W) and target (N, H, W) expected, got {tuple(scores.shape)} "
                         f"and {tuple(target.shape)}")
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    return scores, target.long()


def _per_pixel(scores: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores as (K, C) rows, one per pixel (K = N·H·W), the targets (K,) and their one-hot GT (K, C)."""
    scores, target = _frames(scores, target)
    c = scores.shape[1]
    s = scores.permute(0, 2, 3, 1).reshape(-1, c)
    y = target.reshape(-1)
    return s, y, F.one_hot(y, c).to(s.dtype)


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """torch's cross-entropy (mean over pixels), also taking (B, T, C, H, W) sequences."""

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(*_frames(scores, target))


class IoULoss(nn.Module):
    """The multiple-class IoU loss, Eq. 3::

        1 − (1/C) Σ_t  Σ_i PR_i^t GT_i^t / Σ_i (PR_i^t + GT_i^t − PR_i^t GT_i^t)

    with PR = softmax(scores) over the classes, GT the one-hot target and i running over every pixel of
    the batch (K = N·H·W samples). All C classes count, background included.
    """

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s, _, gt = _per_pixel(scores, target)
        pr = s.softmax(dim=1)
        inter = (pr * gt).sum(0)
        union = (pr + gt - pr * gt).sum(0)  # > 0: softmax is positive everywhere
        return 1.0 - (inter / union.clamp_min(1e-12)).mean()


class SegLoss(nn.Module):
    """The Segmentation Loss, Eq. 7, with the L_p / L_n of Eq. 9 (``lfun="eq9"``) or Eq. 8 (``"eq8"``)::

        SegLoss = Σ_t Σ_i (W_p^t I_1^t(x_i) L_p(x_i) + W_n^t I_0^t(x_i) L_n^t(x_i)) / (K Σ_t (W_p^t + W_n^t))

    For each class t: A_t = the pixels predicted t (arg-max of the scores, ``weights="hard"``, or the
    softmax probabilities, ``weights="soft"``), B_t = the pixels whose target is t;
    W_p^t = 1/|A_t ∪ B_t| and W_n^t = |A_t ∩ B_t| / |A_t ∪ B_t|² (from 1/f and g/f² of Eq. 5–6) are
    constants: computed without gradient. A class whose union is empty takes no part. The positives of t
    (I_1^t) are the pixels with target t, its negatives (I_0^t) the pixels of every other target. With
    s = the pixel's scores and y its target:

    * Eq. 9: L_p = −s_y;  L_n^t = 0 if s_y > s_t + g, else s_t.
    * Eq. 8: L_p = max(max_{c≠y} s_c − s_y + g, 0);  L_n^t = max(s_t − s_y + g, 0).

    **What s is** (``on``). The paper defines PR as "the output of Softmax" for the IoU loss (Eq. 3), but
    illustrates Eq. 8 with raw scores ("PR_i = [0.2, 0.6, 0.4]"), so both readings are defensible:
    ``on="scores"`` takes s = the model's raw scores; ``on="softmax"`` takes s = softmax(scores), so the
    L_p / L_n of Eq. 8 / 9 work on probabilities in [0, 1]. On raw scores Eq. 9's L_p = −s_y has no
    minimum: every class's score can rise together, which the arg-max does not see; on probabilities
    a rise of s_y is a fall of the others. The weights W_p, W_n do not depend on the reading (arg-max and
    softmax are the same either way).

    Args:
        lfun: ``"eq9"`` (the paper's choice) or ``"eq8"``.
        g: the margin g of Eq. 8 / 9 (paper: 0).
        weights: ``"hard"`` or ``"soft"`` A_t, see above.
        on: ``"scores"`` or ``"softmax"``, see above.
    """

    LFUNS = ("eq8", "eq9")
    WEIGHTS = ("hard", "soft")
    ONS = ("scores", "softmax")

    def __init__(self, lfun: str = "eq9", g: float = 0.0, weights: str = "hard", on: str = "scores"):
        super().__init__()
        if lfun not in self.LFUNS:
            raise ValueError(f"Unknown lfun {lfun!r}; valid: {list(self.LFUNS)}")
        if weights not in self.WEIGHTS:
            raise ValueError(f"Unknown weights {weights!r}; valid: {list(self.WEIGHTS)}")
        if on not in self.ONS:
            raise ValueError(f"Unknown SegLoss input {on!r}; valid: {list(self.ONS)}")
        self.lfun, self.g, self.weights, self.on = lfun, float(g), weights, on

    def class_weights(self, s: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W_p, W_n (C,) from per-pixel scores (K, C) and one-hot targets (K, C); no gradient."""
        with torch.no_grad():
            if self.weights == "hard":
                a = F.one_hot(s.argmax(dim=1), s.shape[1]).to(s.dtype)
            else:
                a = s.softmax(dim=1)
            inter = (a * gt).sum(0)
            union = (a + gt - a * gt).sum(0)
            present = union > 0
            safe = torch.where(present, union, torch.ones_like(union))
            w_p = torch.where(present, 1.0 / safe, torch.zeros_like(union))
            w_n = torch.where(present, inter / safe**2, torch.zeros_like(union))
        return w_p, w_n

    def pixel_losses(self, s: torch.Tensor, y: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L_p (K,) and L_n (K, C), column t being L_n^t, of Eq. 8 or Eq. 9."""
        s_y = s.gather(1, y[:, None])  # (K, 1): PR_i · GT_i
        if self.lfun == "eq9":
            l_p = -s_y[:, 0]
            l_n = torch.where(s_y > s + self.g, torch.zeros_like(s), s)
        else:
            other = s.masked_fill(gt.bool(), float("-inf")).amax(dim=1)  # max(PR_i ∘ GT_i⁻¹)
            l_p = (other - s_y[:, 0] + self.g).clamp_min(0)
            l_n = (s - s_y + self.g).clamp_min(0)
        return l_p, l_n

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s, y, gt = _per_pixel(scores, target)
        w_p, w_n = self.class_weights(s, gt)
        l_p, l_n = self.pixel_losses(s.softmax(dim=1) if self.on == "softmax" else s, y, gt)
        # Σ_t W_p^t Σ_{i: y_i = t} L_p(i)  +  Σ_t W_n^t Σ_{i: y_i ≠ t} L_n^t(i)
        num = (w_p[y] * l_p).sum() + ((1.0 - gt) * l_n * w_n).sum()
        return num / (s.shape[0] * (w_p + w_n).sum())

    def extra_repr(self) -> str:
        return f"lfun={self.lfun!r}, g={self.g}, weights={self.weights!r}, on={self.on!r}"


LOSSES = {"ce": CrossEntropyLoss, "iou": IoULoss, "segloss": SegLoss}


def build_loss(name: str, **kwargs) -> nn.Module:
    """The loss called `name` (``ce`` | ``iou`` | ``segloss``); `kwargs` go to its constructor
    (``lfun``, ``g``, ``weights``, ``on`` for ``segloss``)."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; valid: {list(LOSSES)}")
    return LOSSES[name](**kwargs)

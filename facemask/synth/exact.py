"""Pixel operations that give the same bits on every x86-64 CPU.

The synthetic benchmark must be byte-identical for a given seed on any machine (the data stages are
DVC-cached, and everything downstream, metrics included, follows from their bytes). OpenCV picks SIMD
kernels at run time (SSE4, AVX2, AVX-512) and some of them round differently: measured here by
switching OpenCV's optimisations off (`cv2.setUseOptimized(False)`), float ``cv2.resize``,
float ``cv2.GaussianBlur``, ``cv2.scaleAdd`` and ``cv2.addWeighted`` on uint8 changed ~1000 pixels
in 180 frames by up to 8 levels, which reached the MJPG bytes. BLAS picks its kernels by CPU too, so a
matrix product in a per-pixel path (normals · light) is another source.

The replacements below use only element-wise NumPy arithmetic (each operation correctly rounded by
IEEE 754, whatever the SIMD width) in a fixed order, or SciPy's ndimage filters (compiled C without
run-time CPU dispatch). OpenCV's drawing functions, LUT, uint8 GaussianBlur / INTER_AREA / INTER_LINEAR
resizing, filter2D on uint8 and the JPEG codec were measured bit-identical with and without its
optimisations and stay (`tests/test_synth.py` checks the whole generator that way).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def blend(layer: np.ndarray, alpha: float, img: np.ndarray, beta: float) -> None:
    """``img = round(alpha·layer + beta·img)`` in place for uint8 images (``cv2.addWeighted``'s job)."""
    a, b = np.float32(alpha), np.float32(beta)
    out = layer.astype(np.float32) * a + img.astype(np.float32) * b
    np.rint(out, out=out)
    img[:] = np.clip(out, 0, 255).astype(np.uint8)


def _axis_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and the weight of i1 for linear interpolation with pixel centres aligned
    (OpenCV's INTER_LINEAR mapping: x_src = (x_dst + ½)·n_in/n_out − ½, clamped to the image)."""
    x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (x - i0).astype(np.float32)


def resize_linear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float image (H, W[, C]) resized to ``size = (width, height)`` by linear interpolation."""
    w, h = size
    img = np.asarray(img, dtype=np.float32)
    y0, y1, fy = _axis_weights(h, img.shape[0])
    x0, x1, fx = _axis_weights(w, img.shape[1])
    fy = fy.reshape(-1, *([1] * (img.ndim - 1)))
    rows = img[y0] * (1 - fy) + img[y1] * fy
    fx = fx.reshape(1, -1, *([1] * (img.ndim - 2)))
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """A float image (H, W[, C]) blurred by a Gaussian of `sigma` pixels over H and W (mirrored border,
    as OpenCV's default BORDER_REFLECT_101)."""
    img = np.asarray(img, dtype=np.float32)
    sig = (sigma, sigma) + (0,) * (img.ndim - 2)
    return ndimage.gaussian_filter(img, sig, mode="mirror")


def dot3(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``v @ u`` for vectors along the last axis of `v` (…, 3) and a 3-vector `u`, summed in a fixed order."""
    u = np.asarray(u, dtype=v.dtype)
    return v[..., 0] * u[0] + v[..., 1] * u[1] + v[..., 2] * u[2]

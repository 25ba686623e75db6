"""What a run keeps for the statistics, and the statistics over the training seeds' runs.

A run records, per test subject (video), the confusion matrix summed over that subject's frames, for every
method and reference (the hold baseline, the ceiling), overall and per part of the test set (`PARTS`: frame
conditions, time steps of the window, probe kinds, the zoomed models' sub-datasets): `subject_cms` makes them,
`record_cms` lays them out for ``run.json`` (and the committed records of other seeds and experiments).
`seed_runs` reads them back from several runs as one method's `facemask.evaluation.stats.SeedRuns`, and
`compare_runs` gives a table's statistics: every method's mean over seeds with its interval, and its difference
from a baseline with a P value, Holm-adjusted over the table's comparisons (`facemask.evaluation.stats.compare`:
the one method behind every interval and P value; seeds and subjects resampled).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from facemask.core.errors import BadInputError
from facemask.evaluation.stats import SeedRuns, compare, subject_sums

#: Methods without a training seed: the same under every seed's run.
UNTRAINED = ("tracker", "mesh")


def subject_cms(videos: Sequence[str], cms: np.ndarray, names: Sequence[str],
                rows: np.ndarray | None = None) -> tuple[list[str], dict[str, list]]:
    """Per-frame confusion matrices (frames, methods, C, C) summed per subject over the frames `rows` (boolean;
    None: all): the sorted subjects and ``{name: (V, C, C) nested lists}`` (a subject without such frames: zeros)."""
    subjects = sorted(set(videos))
    videos, cms = np.asarray(videos), np.asarray(cms)
    if rows is not None:
        videos, cms = videos[rows], cms[rows]
    out = np.zeros((len(subjects), len(names), *cms.shape[2:]), np.int64)
    if len(videos):
        labels, sums = subject_sums(videos, cms)
        out[[subjects.index(v) for v in labels]] = sums
    return subjects, {n: out[:, i].tolist() for i, n in enumerate(names)}


def record_cms(meta, cms: np.ndarray, names: Sequence[str], parts: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
    """``run.json``'s ``cms``: ``{"subjects", "all": {name: (V, C, C)}, <part>: {<value>: {name: (V, C, C)}}}`` —
    every name's per-subject matrices over all frames, and over the frames of each value of each part
    (`parts`: ``{part: {value: boolean rows}}``, e.g. the frame conditions)."""
    subjects, all_ = subject_cms(meta["video"], cms, names)
    out = {"subjects": subjects, "all": all_}
    for part, values in parts.items():
        out[part] = {str(v): subject_cms(meta["video"], cms, names, rows)[1] for v, rows in values.items()}
    return out


def seed_runs(runs: Mapping[int, Mapping], method: str, *where: str) -> SeedRuns | None:
    """`method`'s per-subject matrices in every run that recorded them (``run["cms"][where...][method]``), as
    `SeedRuns`; an untrained method's from one run. None when no run recorded it."""
    seeds, cms, subjects = [], [], None
    for s in sorted(runs):
        node = runs[s].get("cms")
        for key in where or ("all",):
            node = (node or {}).get(key)
        if not node or method not in node:
            continue
        if subjects is None:
            subjects = runs[s]["cms"]["subjects"]
        elif runs[s]["cms"]["subjects"] != subjects:
            continue  # another test set: the caller filters records by test set first
        seeds.append(int(s))
        cms.append(np.asarray(node[method], np.int64))
    if not seeds:
        return None
    if method in UNTRAINED:
        return SeedRuns(method, np.stack(cms[:1]), None)
    return SeedRuns(method, np.stack(cms), tuple(seeds))


def compare_runs(runs: Mapping[int, Mapping], methods: Sequence[str], baseline: str = "fcn", where: Sequence[str] = (),
                 draws: int = 25_000, seed: int = 0) -> dict | None:
    """The statistics of `methods` against `baseline` over the runs' seeds and test subjects (`compare`), on the
    part `where` (e.g. ``("conditions", "degraded_with_clean_past")``; empty: all frames); methods no run recorded
    there, or whose matrices hold no facial class, are left out. None when the baseline is missing."""
    found = []
    for m in methods:
        try:
            r = seed_runs(runs, m, *where)
        except BadInputError:  # no facial class in that part for some seed: nothing to compare
            continue
        if r is not None:
            found.append(r)
    if baseline not in [r.name for r in found]:
        return None
    return compare(found, baseline, draws=draws, seed=seed)

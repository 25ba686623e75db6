"""Intervals and P values of the mIoU over training seeds and test subjects: a two-way bootstrap, Holm's adjustment.

The one statistical method behind every interval and P value of the tables. Seeds and subjects are its two
random factors: a result should hold for another training run and for other people's videos.

The estimand. A method's scores are `SeedRuns`: ``cms[s, v]``, the confusion matrix summed over the test
frames of subject (video) ``v`` under training seed ``s``. Seed s scores the paper's mIoU of the matrix summed
over the subjects (IoU per class from the summed matrix, mean over the classes 1.., background excluded,
classes with an empty union left out: `facemask.core.iou`), and the estimand is the mean over the seeds

    θ = (1/S) Σ_s mIoU(Σ_v cms[s, v])

— what the tables report as "mean over seeds". An untrained method (the landmark tracker) has one row, the
same under every seed. A difference θ_A − θ_B is taken over the seeds both methods ran (a seed one of them
lacks is left out of that pair, so it can differ from the difference of the two scores), an untrained
method's one row standing for every seed. `subject_sums` turns per-frame matrices into per-subject ones.

The bootstrap. Draw b resamples the S seeds and, independently, the V subjects with replacement (multinomial
counts ``w[b, s]`` and ``u[b, v]``, each summing to S and V), and recomputes the statistic on the resample:

    θ*_b = (1/S) Σ_s w[b, s] · mIoU(Σ_v u[b, v] · cms[s, v])

(the "pigeonhole" bootstrap of a crossed design, Owen, Ann. Appl. Stat. 2007). A difference uses the same
draws for both methods, d*_b = θ*_A,b − θ*_B,b. Subjects, not groups of clips, are resampled: the clips of
one video share its person, camera and light, so groups of contiguous clips that share subjects are not
independent samples. A class absent from the resampled matrix of a seed (empty union) is left out of that
seed's mIoU, as everywhere else; a draw whose statistic is undefined (no facial class at all) is left out.

Reading the results. The interval is the percentile interval of the draws (``level``, 95 % by default). The
two-sided P value of a difference is twice the smaller share of draws on one side of 0, each share counting
the draws at 0 and with one added to its count and to B,

    P = min(1, 2 · min(1 + #{d*_b ≤ 0}, 1 + #{d*_b ≥ 0}) / (B + 1)),

so it is never 0 (at least 2 / (B + 1)), a method against itself gets P = 1, and P < 1 − level about when 0
lies outside the interval. The default B = 25,000 holds P's Monte-Carlo error near P = 0.05 to about
±0.002 (2·sqrt(0.025·0.975/B)). A table that tests k methods against one baseline makes k comparisons; `holm`
adjusts their P values for the family (`compare` does both).

With one seed (or two untrained methods) only subjects are resampled (``resampled == "subjects"``) and the
interval speaks of new test subjects only, not of retraining.

Caveat. Seeds are few: a bootstrap over 3 seeds sees only 10 distinct seed multisets, and the bootstrap
variance of a mean of S values is (S − 1)/S of the usual unbiased estimate (2/3 for 3 seeds), so the seed
part of an interval is too narrow (its spread by about sqrt(2/3) ≈ 0.82); the subjects carry the same
factor, (V − 1)/V = 11/12 for 12. Resampling both factors counts their interaction more than once, which
errs the other way (Owen: mildly conservative). The intervals are rough ranges of where the mean over seeds
would fall with other seeds and other subjects, not exact 95 % coverage; read a P value near the threshold as
"not shown".
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facemask.core.errors import BadInputError
from facemask.core.iou import mean_iou

#: Bootstrap draws: P's Monte-Carlo standard error is about 0.002 near P = 0.05.
DRAWS = 25_000
#: Coverage of the percentile intervals.
LEVEL = 0.95
#: Independent random streams of the two factors (same `seed`, different draws).
SUBJECTS, SEEDS = 0, 1


@dataclass(frozen=True)
class SeedRuns:
    """One method's test scores.

    Args:
        name: the method, named in error messages.
        cms: (S, V, C, C) integer counts: per training seed and test subject (video), the confusion matrix
            summed over that subject's frames (row = ground truth, column = prediction). All methods
            compared must list the same subjects in the same order.
        seeds: the training seed of each row of `cms`; None for an untrained method (S = 1), whose one row
            holds under every seed.
    """
    name: str
    cms: np.ndarray
    seeds: tuple[int, ...] | None

    def __post_init__(self):
        cms = np.asarray(self.cms)
        if cms.ndim != 4 or cms.shape[2] != cms.shape[3] or min(cms.shape) < 1 or cms.shape[2] < 2:
            raise BadInputError(f"{self.name}: confusion matrices of shape {cms.shape}; "
                                "(seeds, subjects, C, C) with C >= 2 expected")
        if not np.issubdtype(cms.dtype, np.integer) or cms.min() < 0:
            raise BadInputError(f"{self.name}: confusion matrices must hold counts (non-negative integers)")
        seeds = None if self.seeds is None else tuple(int(s) for s in self.seeds)
        if seeds is None and len(cms) != 1:
            raise BadInputError(f"{self.name}: an untrained method (seeds None) has one row, not {len(cms)}")
        if seeds is not None and (len(seeds) != len(cms) or len(set(seeds)) != len(seeds)):
            raise BadInputError(f"{self.name}: seeds {seeds} do not label the {len(cms)} rows one to one")
        if not np.all(np.isfinite(mean_iou(cms.sum(1)))):
            raise BadInputError(f"{self.name}: a seed's test subjects hold no facial class: mIoU undefined")
        object.__setattr__(self, "cms", cms.astype(np.int64))
        object.__setattr__(self, "seeds", seeds)


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap result: the estimate (θ, or θ_A − θ_B), its percentile interval [low, high] at `level`,
    the two-sided P value (differences only), the finite draws behind them, the seeds used (() for untrained
    methods), the number of subjects, and what was resampled ("seeds and subjects" or "subjects")."""
    estimate: float
    low: float
    high: float
    p: float | None
    level: float
    draws: int
    seeds: tuple[int, ...]
    subjects: int
    resampled: str

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}


def subject_sums(subjects: Sequence, cms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame confusion matrices (N, ..., C, C) summed per subject: the sorted subject labels (V,) and
    the sums (V, ..., C, C) int64, so that every method and seed lists the subjects in the same order."""
    labels, index = np.unique(np.asarray(subjects), return_inverse=True)
    sums = np.zeros((len(labels), *np.shape(cms)[1:]), np.int64)
    np.add.at(sums, index.ravel(), np.asarray(cms, dtype=np.int64))
    return labels, sums


@functools.lru_cache(maxsize=16)
def resample_counts(draws: int, n: int, seed: int, factor: int) -> np.ndarray:
    """(draws, n) int64, read-only: how often each of `n` items is drawn in each resample of `n` with replacement.

    Deterministic for (`seed`, `factor`); `factor` (`SUBJECTS`, `SEEDS`) keeps the two factors' draws
    independent. Cached: a table's methods share their draws.
    """
    if draws < 1 or n < 1:
        raise ValueError(f"cannot draw {draws} resamples of {n} items")
    rng = np.random.default_rng([int(factor), int(seed)])
    out = rng.multinomial(n, np.full(n, 1.0 / n), size=int(draws))
    out.setflags(write=False)
    return out


def seed_replicates(cms: np.ndarray, subject_counts: np.ndarray) -> np.ndarray:
    """(B, S) mIoU of every seed's confusion matrix summed over each draw's subjects (`subject_counts`, (B, V))."""
    S, V, C, _ = cms.shape
    pooled = subject_counts.astype(np.float64) @ cms.transpose(1, 0, 2, 3).reshape(V, S * C * C)
    return mean_iou(pooled.reshape(-1, S, C, C))


def over_seeds(scores: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
    """(B,) mean over the resampled seeds, (1/S) Σ_s w[b, s] · scores[b, s]; NaN where a drawn seed's score is."""
    drawn = np.where(seed_counts > 0, seed_counts * np.nan_to_num(scores, nan=0.0), 0.0).sum(1)
    undefined = ((seed_counts > 0) & np.isnan(scores)).any(1)
    return np.where(undefined, np.nan, drawn / scores.shape[1])


def two_sided_p(d: np.ndarray) -> float:
    """P = min(1, 2 · min(1 + #{d ≤ 0}, 1 + #{d ≥ 0}) / (B + 1)) of the draws `d` of a difference."""
    below, above = np.count_nonzero(d <= 0), np.count_nonzero(d >= 0)
    return float(min(1.0, 2.0 * (1 + min(below, above)) / (d.size + 1)))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of k P values, in their order: the i-th smallest becomes
    max over j <= i of min(1, (k − j + 1) · p_(j)). Controls the family-wise error rate."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    out = np.empty_like(p)
    out[order] = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    return out


def replicates(a: SeedRuns, b: SeedRuns | None = None, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """(draws,) the bootstrap statistic of every draw: θ*_b of `a`, or with `b` the paired d*_b = θ*_A,b − θ*_B,b
    over the seeds both ran; NaN where undefined. The draws behind `bootstrap_score` and `bootstrap_difference`."""
    u = resample_counts(draws, a.cms.shape[1], seed, SUBJECTS)
    if b is None:
        return _over_drawn_seeds(_score_parts(a, seed_replicates(a.cms, u))[1], seed)
    _check_pair(a, b)
    return _over_drawn_seeds(_difference_parts(a, b, seed_replicates(a.cms, u), seed_replicates(b.cms, u))[1], seed)


def bootstrap_score(runs: SeedRuns, draws: int = DRAWS, seed: int = 0, level: float = LEVEL) -> Bootstrap:
    """θ of one method with its percentile interval (no P value)."""
    u = resample_counts(draws, runs.cms.shape[1], seed, SUBJECTS)
    return _summary(*_score_parts(runs, seed_replicates(runs.cms, u)), runs.cms.shape[1], seed, level, test=False)


def bootstrap_difference(a: SeedRuns, b: SeedRuns, draws: int = DRAWS, seed: int = 0,
                         level: float = LEVEL) -> Bootstrap:
    """θ_A − θ_B over the seeds both ran, with its percentile interval and two-sided P value (the same draws
    for both methods)."""
    _check_pair(a, b)
    u = resample_counts(draws, a.cms.shape[1], seed, SUBJECTS)
    parts = _difference_parts(a, b, seed_replicates(a.cms, u), seed_replicates(b.cms, u))
    return _summary(*parts, a.cms.shape[1], seed, level, test=True)


def compare(methods: Sequence[SeedRuns], baseline: str, draws: int = DRAWS, seed: int = 0,
            level: float = LEVEL) -> dict:
    """A table's statistics: every method's θ with its interval, and every other method's difference from
    `baseline` with its P value and the Holm-adjusted one over the family of k = len(methods) − 1 comparisons.

    The results are those of `bootstrap_score` and `bootstrap_difference` with the same arguments (the same
    draws), each method's per-draw scores computed once. JSON-ready.
    """
    names = [m.name for m in methods]
    by_name = dict(zip(names, methods))
    if len(by_name) != len(names):
        raise BadInputError(f"methods named twice: {sorted(n for n in by_name if names.count(n) > 1)}")
    if baseline not in by_name:
        raise BadInputError(f"baseline {baseline!r} is none of the methods {sorted(by_name)}")
    base = by_name[baseline]
    for m in methods:
        _check_pair(m, base)
    subjects = base.cms.shape[1]
    u = resample_counts(draws, subjects, seed, SUBJECTS)
    reps = {m.name: seed_replicates(m.cms, u) for m in methods}
    scores = {m.name: _summary(*_score_parts(m, reps[m.name]), subjects, seed, level, test=False) for m in methods}
    diffs = {m.name: _summary(*_difference_parts(m, base, reps[m.name], reps[baseline]), subjects, seed, level,
                              test=True) for m in methods if m.name != baseline}
    adjusted = holm([d.p for d in diffs.values()])
    return {"method": "two-way bootstrap over training seeds and test subjects", "draws": int(draws),
            "level": level, "rng_seed": int(seed), "baseline": baseline, "comparisons": len(diffs),
            "adjustment": "Holm", "scores": {k: v.to_dict() for k, v in scores.items()},
            "differences": {k: {**v.to_dict(), "p_holm": float(p)} for (k, v), p in zip(diffs.items(), adjusted)}}


def _check_pair(a: SeedRuns, b: SeedRuns) -> None:
    if a.cms.shape[1:] != b.cms.shape[1:]:
        raise BadInputError(f"{a.name} and {b.name}: (subjects, C, C) differ: {a.cms.shape[1:]} vs {b.cms.shape[1:]}")
    if a.seeds is not None and b.seeds is not None and not set(a.seeds) & set(b.seeds):
        raise BadInputError(f"{a.name} and {b.name} share no training seed ({a.seeds} vs {b.seeds})")


def _score_parts(runs: SeedRuns, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(S,) each seed's mIoU of the matrix summed over the subjects, the (B, S) replicates, the seeds."""
    return np.atleast_1d(mean_iou(runs.cms.sum(1))), reps, runs.seeds or ()


def _difference_parts(a: SeedRuns, b: SeedRuns, reps_a: np.ndarray,
                      reps_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """`_score_parts` of A − B over the seeds both ran (an untrained method's one row standing for every seed)."""
    if a.seeds is None or b.seeds is None:
        seeds = a.seeds or b.seeds or ()  # the trained method's; none for two untrained ones
    else:
        seeds = tuple(s for s in a.seeds if s in b.seeds)
    ra, rb = ([0] * max(len(seeds), 1) if m.seeds is None else [m.seeds.index(s) for s in seeds] for m in (a, b))
    point = _score_parts(a, reps_a)[0][ra] - _score_parts(b, reps_b)[0][rb]
    return point, reps_a[:, ra] - reps_b[:, rb], seeds


def _over_drawn_seeds(reps: np.ndarray, seed: int) -> np.ndarray:
    """(B,) θ*_b: per-seed replicates (B, S) averaged over each draw's resample of the seeds."""
    return over_seeds(reps, resample_counts(len(reps), reps.shape[1], seed, SEEDS))


def _summary(point: np.ndarray, reps: np.ndarray, seeds: tuple[int, ...], subjects: int, seed: int,
             level: float, test: bool) -> Bootstrap:
    """Estimate, interval and (with `test`) P from per-seed point scores (S,) and per-seed replicates (B, S)."""
    if not 0 < level < 1:
        raise ValueError(f"level {level} is not in (0, 1)")
    stats = _over_drawn_seeds(reps, seed)
    stats = stats[np.isfinite(stats)]
    if not stats.size:
        raise BadInputError("no bootstrap draw has a defined mIoU: too few subjects hold a facial class")
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Bootstrap(estimate=float(point.mean()), low=float(low), high=float(high),
                     p=two_sided_p(stats) if test else None, level=float(level), draws=int(stats.size),
                     seeds=tuple(seeds), subjects=int(subjects),
                     resampled="seeds and subjects" if len(seeds) > 1 else "subjects")

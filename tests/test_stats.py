"""The two-way bootstrap over training seeds and test subjects, and Holm's adjustment, against independent routes:
hand-computed mIoUs, a loop over the same draws, an exact enumeration of every resample of a tiny case."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from facemask.core.errors import BadInputError
from facemask.evaluation.stats import (SEEDS, SUBJECTS, SeedRuns, bootstrap_difference, bootstrap_score, compare,
                                       holm, replicates, resample_counts, subject_sums, two_sided_p)


def loop_miou(cm) -> float:
    """mIoU over the classes 1.. of one matrix, written out; classes with an empty union left out."""
    ious = []
    for k in range(1, len(cm)):
        tp = cm[k][k]
        union = sum(cm[k]) + sum(row[k] for row in cm) - tp
        if union > 0:
            ious.append(tp / union)
    return sum(ious) / len(ious) if ious else float("nan")


def loop_statistic(cms, seed_idx, subject_idx) -> float:
    """θ* of one resample given as drawn seed rows and drawn subject columns (with repetition)."""
    total = 0.0
    for s in seed_idx:
        pooled = sum(np.asarray(cms[s][v], dtype=np.int64) for v in subject_idx)
        total += loop_miou(pooled.tolist())
    return total / len(seed_idx)


def as_indices(counts) -> list[int]:
    return [i for i, c in enumerate(counts) for _ in range(int(c))]


def random_cms(rng, S, V, C=3, n=60) -> np.ndarray:
    """(S, V, C, C) counts with class C-1 absent from subject 0 (empty union there)."""
    cms = rng.integers(0, n, (S, V, C, C))
    cms[:, 0, C - 1, :] = 0
    cms[:, 0, :, C - 1] = 0
    return cms


# Two seeds, two subjects, C = 2 (background and one class: mIoU = IoU of class 1), worked by hand:
# seed 0: subject 0 TP 1 FN 1 (IoU 1/2), subject 1 TP 3 FP 1 (3/4); pooled TP 4 FN 1 FP 1: 4/6.
# seed 1: subject 0 TP 2 (1), subject 1 TP 1 FP 3 (1/4); pooled TP 3 FP 3: 3/6.
HAND = np.array([[[[10, 0], [1, 1]], [[10, 1], [0, 3]]],
                 [[[10, 0], [0, 2]], [[10, 3], [0, 1]]]])


def test_estimate_is_the_mean_over_seeds_of_the_pooled_miou():
    r = bootstrap_score(SeedRuns("m", HAND, (0, 1)), draws=200)
    assert r.estimate == pytest.approx((4 / 6 + 3 / 6) / 2)  # not the mean of per-subject IoUs, (1/2+3/4+1+1/4)/4
    assert r.seeds == (0, 1) and r.subjects == 2 and r.resampled == "seeds and subjects" and r.p is None


def test_empty_union_class_is_left_out_of_the_estimate():
    cms = np.zeros((1, 1, 3, 3), np.int64)
    cms[0, 0] = [[5, 0, 0], [1, 3, 0], [0, 0, 0]]  # class 2 nowhere: mIoU = IoU of class 1 = 3/4
    assert bootstrap_score(SeedRuns("m", cms, (0,)), draws=10).estimate == pytest.approx(3 / 4)


def test_replicates_match_a_loop_over_the_same_draws():
    rng = np.random.default_rng(3)
    cms = random_cms(rng, S=2, V=3)
    draws, seed = 300, 11
    got = replicates(SeedRuns("m", cms, (4, 7)), draws=draws, seed=seed)
    w, u = resample_counts(draws, 2, seed, SEEDS), resample_counts(draws, 3, seed, SUBJECTS)
    want = [loop_statistic(cms, as_indices(w[b]), as_indices(u[b])) for b in range(draws)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_paired_difference_with_an_untrained_method_matches_a_loop():
    rng = np.random.default_rng(4)
    a, b = random_cms(rng, S=3, V=3), random_cms(rng, S=1, V=3)
    draws, seed = 200, 5
    got = replicates(SeedRuns("a", a, (0, 1, 2)), SeedRuns("tracker", b, None), draws=draws, seed=seed)
    w, u = resample_counts(draws, 3, seed, SEEDS), resample_counts(draws, 3, seed, SUBJECTS)
    want = [loop_statistic(a, as_indices(w[i]), as_indices(u[i])) - loop_statistic(b, [0], as_indices(u[i]))
            for i in range(draws)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_bootstrap_distribution_matches_exact_enumeration():
    """All 2^2 seed resamples x 3^3 subject resamples, equally likely: the exact mean and variance of θ*."""
    cms = random_cms(np.random.default_rng(5), S=2, V=3)
    exact = np.array([loop_statistic(cms, s, v) for s in itertools.product(range(2), repeat=2)
                      for v in itertools.product(range(3), repeat=3)])
    draws = 100_000
    got = replicates(SeedRuns("m", cms, (0, 1)), draws=draws, seed=1)
    assert got.mean() == pytest.approx(exact.mean(), abs=5 * exact.std() / np.sqrt(draws))
    assert got.var() == pytest.approx(exact.var(), rel=0.05)


def test_interval_is_the_percentile_interval_of_the_replicates():
    runs = SeedRuns("m", random_cms(np.random.default_rng(6), S=3, V=5), (0, 1, 2))
    r = bootstrap_score(runs, draws=1000, seed=2, level=0.9)
    reps = replicates(runs, draws=1000, seed=2)
    assert (r.low, r.high) == pytest.approx(tuple(np.quantile(reps, [0.05, 0.95])))
    assert r.low < r.estimate < r.high and r.draws == 1000


def test_method_against_itself_differs_by_zero_with_p_one():
    runs = SeedRuns("m", random_cms(np.random.default_rng(7), S=3, V=4), (0, 1, 2))
    r = bootstrap_difference(runs, runs, draws=500)
    assert (r.estimate, r.low, r.high, r.p) == (0.0, 0.0, 0.0, 1.0)


def test_method_better_on_every_seed_and_subject_gets_the_minimum_p():
    rng = np.random.default_rng(8)
    worse = random_cms(rng, S=3, V=4)
    better = worse.copy()
    better[..., 1, 1] += 1000  # more true positives of class 1 everywhere: every resample's IoU rises
    draws = 999
    r = bootstrap_difference(SeedRuns("b", better, (0, 1, 2)), SeedRuns("w", worse, (0, 1, 2)), draws=draws)
    assert r.p == pytest.approx(2 / (draws + 1)) and 0 < r.low < r.estimate
    flipped = bootstrap_difference(SeedRuns("w", worse, (0, 1, 2)), SeedRuns("b", better, (0, 1, 2)), draws=draws)
    assert flipped.p == r.p and flipped.estimate == pytest.approx(-r.estimate)


def test_two_sided_p_by_hand():
    # 1 draw <= 0 and 3 draws >= 0 of 4: P = 2 * (1 + 1) / 5
    assert two_sided_p(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(0.8)
    assert two_sided_p(np.array([0.0, 0.0, 1.0])) == 1.0  # draws at 0 count on both sides


def test_missing_seeds_pair_on_the_common_ones():
    a = np.stack([HAND[0], HAND[1], HAND[0]])   # seeds 0, 1, 2 with pooled mIoU 4/6, 3/6, 4/6
    b = np.stack([HAND[1], HAND[1]])            # seeds 0, 2 with 3/6 each
    r = bootstrap_difference(SeedRuns("a", a, (0, 1, 2)), SeedRuns("b", b, (2, 0)), draws=100)
    assert r.seeds == (0, 2) and r.estimate == pytest.approx(4 / 6 - 3 / 6)
    with pytest.raises(BadInputError, match="a and c share no training seed"):
        bootstrap_difference(SeedRuns("a", a, (0, 1, 2)), SeedRuns("c", b, (5, 6)), draws=10)


def test_one_seed_resamples_subjects_only():
    cms = random_cms(np.random.default_rng(9), S=1, V=4)
    draws, seed = 200, 3
    r = bootstrap_score(SeedRuns("m", cms, (0,)), draws=draws, seed=seed)
    assert r.resampled == "subjects" and r.seeds == (0,)
    u = resample_counts(draws, 4, seed, SUBJECTS)
    np.testing.assert_allclose(replicates(SeedRuns("m", cms, (0,)), draws=draws, seed=seed),
                               [loop_miou(np.einsum("v,vij->ij", u[b], cms[0]).tolist()) for b in range(draws)])
    both_untrained = bootstrap_difference(SeedRuns("t", cms, None), SeedRuns("t2", cms[:, ::-1], None), draws=50)
    assert both_untrained.resampled == "subjects" and both_untrained.seeds == ()


def test_deterministic_for_a_seed():
    runs = SeedRuns("m", random_cms(np.random.default_rng(10), S=3, V=6), (0, 1, 2))
    np.testing.assert_array_equal(replicates(runs, draws=400, seed=1), replicates(runs, draws=400, seed=1))
    assert not np.array_equal(replicates(runs, draws=400, seed=1), replicates(runs, draws=400, seed=2))


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # 2 * 0.5 = 1, capped; 0.6 raised to it
    np.testing.assert_allclose(holm([0.2]), [0.2])


def test_compare_is_the_single_results_with_holm_over_the_family():
    rng = np.random.default_rng(11)
    methods = [SeedRuns("fcn", random_cms(rng, S=3, V=5), (0, 1, 2)),
               SeedRuns("lstm", random_cms(rng, S=3, V=5), (0, 1, 2)),
               SeedRuns("zoom", random_cms(rng, S=2, V=5), (1, 2)),
               SeedRuns("tracker", random_cms(rng, S=1, V=5), None)]
    out = compare(methods, "fcn", draws=300, seed=4)
    assert out["comparisons"] == 3 and list(out["differences"]) == ["lstm", "zoom", "tracker"]
    for m in methods:
        assert out["scores"][m.name] == bootstrap_score(m, draws=300, seed=4).to_dict()
    p = []
    for m in methods[1:]:
        single = bootstrap_difference(m, methods[0], draws=300, seed=4).to_dict()
        assert {k: v for k, v in out["differences"][m.name].items() if k != "p_holm"} == single
        p.append(single["p"])
    assert [out["differences"][m]["p_holm"] for m in ("lstm", "zoom", "tracker")] == pytest.approx(holm(p))
    assert out["differences"]["zoom"]["seeds"] == [1, 2]


@pytest.mark.parametrize("cms, seeds, message", [
    (np.zeros((2, 3, 3)), (0, 1), "shape"),
    (np.full((1, 2, 3, 3), 0.5), (0,), "counts"),
    (-np.ones((1, 2, 3, 3), np.int64), (0,), "counts"),
    (np.ones((2, 2, 3, 3), np.int64), None, "untrained"),
    (np.ones((2, 2, 3, 3), np.int64), (0, 0), "one to one"),
    (np.eye(3, dtype=np.int64)[None, None] * [1, 0, 0], (0,), "no facial class"),
])
def test_bad_input_names_the_method_and_the_reason(cms, seeds, message):
    with pytest.raises(BadInputError, match=f"^fcn: .*{message}"):
        SeedRuns("fcn", cms, seeds)


def test_pairs_must_share_subjects_and_classes():
    a = SeedRuns("a", np.ones((1, 3, 3, 3), np.int64), (0,))
    with pytest.raises(BadInputError, match="a and b: .*differ"):
        bootstrap_difference(a, SeedRuns("b", np.ones((1, 4, 3, 3), np.int64), (0,)), draws=10)
    with pytest.raises(BadInputError, match="baseline 'x' is none of the methods"):
        compare([a], "x", draws=10)
    with pytest.raises(BadInputError, match=r"methods named twice: \['a'\]"):
        compare([a, a], "a", draws=10)


def test_subject_sums_add_each_subjects_frames_in_sorted_order():
    cms = np.arange(4 * 2 * 2 * 2).reshape(4, 2, 2, 2)  # 4 frames, 2 methods
    labels, sums = subject_sums(["b", "a", "b", "a"], cms)
    assert labels.tolist() == ["a", "b"]
    np.testing.assert_array_equal(sums, [cms[1] + cms[3], cms[0] + cms[2]])


def test_three_seeds_give_ten_multisets_and_two_thirds_of_the_variance():
    """The module's caveat: one subject, seeds scoring 1/2, 1/3, 1/5 (sums of three of 15, 10, 6 thirtieths are
    all distinct); the bootstrap variance of their mean is (S - 1)/S of the unbiased s^2 / S."""
    cms = np.array([[[[10, 0], [1, 1]]], [[[10, 1], [1, 1]]], [[[10, 2], [2, 1]]]])
    reps = replicates(SeedRuns("m", cms, (0, 1, 2)), draws=40_000, seed=0)
    assert len(np.unique(np.round(reps, 12))) == 10
    scores = np.array([1 / 2, 1 / 3, 1 / 5])
    assert reps.var() == pytest.approx(2 / 3 * scores.var(ddof=1) / 3, rel=0.05)

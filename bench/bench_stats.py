"""Speed and Monte-Carlo stability of `facemask.evaluation.stats.compare`, the tables' bootstrap.

    python bench/bench_stats.py                       # 15 methods, 3 seeds, 12 subjects, 5 classes, default draws
    python bench/bench_stats.py --methods 15 --seeds 3 --subjects 12 --repeats 20

On synthetic confusion matrices (one method untrained, the others trained with `--seeds` seeds, each a little
better than the baseline), times one `compare` call (wall and CPU of the process, best of `--repeats`), then
reruns it with `--repeats` different random seeds and reports the standard deviation of each difference's P
value across them: the P values' Monte-Carlo error at this number of draws. The 1-minute load average is
printed before and after (the machine may be shared: the CPU time is the steadier figure).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from facemask.evaluation.stats import DRAWS, SeedRuns, compare


def synthetic(methods: int, seeds: int, subjects: int, classes: int, rng) -> list[SeedRuns]:
    """`methods` methods: ``m0`` the baseline, ``m1``.. a little better each, the last one untrained."""
    subject_skill = rng.normal(0, 0.05, subjects)
    out = []
    for i in range(methods):
        trained = i < methods - 1
        rows = seeds if trained else 1
        skill = 0.6 + 0.002 * i + subject_skill[None] + rng.normal(0, 0.02, subjects) + rng.normal(0, 0.01, (rows, 1))
        n = 20_000
        tp = (np.clip(skill, 0.05, 0.95)[..., None] * n).astype(np.int64)  # (rows, V, 1)
        cms = np.zeros((rows, subjects, classes, classes), np.int64)
        cms[..., 0, 0] = 10 * n
        for k in range(1, classes):
            cms[..., k, k] = tp[..., 0]
            cms[..., k, 0] = (n - tp[..., 0]) // 2
            cms[..., 0, k] = (n - tp[..., 0]) - (n - tp[..., 0]) // 2
        out.append(SeedRuns(f"m{i}", cms, tuple(range(seeds)) if trained else None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--draws", type=int, default=DRAWS)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    methods = synthetic(args.methods, args.seeds, args.subjects, args.classes, np.random.default_rng(0))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    walls, cpus, ps = [], [], []
    for r in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        out = compare(methods, "m0", draws=args.draws, seed=r)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        ps.append([d["p"] for d in out["differences"].values()])
    ps = np.array(ps)
    print(f"compare: {args.methods} methods, {args.seeds} seeds, {args.subjects} subjects, {args.classes} classes, "
          f"{args.draws} draws: wall {min(walls) * 1000:.0f} ms, CPU {min(cpus) * 1000:.0f} ms "
          f"(best of {args.repeats}; median wall {np.median(walls) * 1000:.0f} ms)")
    print(f"P over {args.repeats} random seeds: mean, standard deviation per comparison")
    for name, mean, sd in zip(out["differences"], ps.mean(0), ps.std(0, ddof=1)):
        print(f"  {name} - m0: P {mean:.4f} ± {sd:.4f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Run the pipeline with other training seeds and record them for the evaluate stage's seed table.

    python scripts/seeds.py                  # seeds 1 and 2 (the workspace's run is seed 0)
    python scripts/seeds.py --seeds 1 2 3 -j 1
    dvc repro                                # evaluate then writes metrics/eval/seeds.csv / seeds.json

Each seed is a queued experiment ``dvc exp run --queue -S seed=N``: only the stages that read ``seed``
rerun (the six training stages, fuse, evaluate; the data stages read ``data.seed`` and come from the
cache). When the queue is done, each experiment's ``metrics/eval/run.json`` (committed in its
experiment ref, as metrics are) is copied to ``metrics/seeds/seed_<N>.json`` with the commit it ran on.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import finished, queue_command, run_queue  # noqa: E402

SEEDS = Path("metrics/seeds")


def _dvc(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", *args], check=True, capture_output=True, text=True).stdout


def experiment_revs(base: str = "HEAD") -> dict[str, str]:
    """{experiment name: its commit} for the finished experiments (`sweep.finished`) of the commit `base`
    (default: the workspace's)."""
    out = {}
    for row in json.loads(_dvc("exp", "show", "--json", "--rev", base)):
        for exp in row.get("experiments") or []:
            if not finished(exp):
                continue
            for rev in exp.get("revs") or []:
                name = rev.get("name") or exp.get("name")
                if name and rev.get("rev"):
                    out[name] = rev["rev"]
    return out


def record(name: str, rev: str, seed: int, base: str) -> Path:
    run = json.loads(subprocess.run(["git", "show", f"{rev}:metrics/eval/run.json"], check=True,
                                    capture_output=True, text=True).stdout)
    if int(run["seed"]) != seed:
        raise SystemExit(f"experiment {name} ({rev[:7]}) ran seed {run['seed']}, not {seed}")
    SEEDS.mkdir(parents=True, exist_ok=True)
    path = SEEDS / f"seed_{seed}.json"
    path.write_text(json.dumps({**run, "rev": base, "experiment": name}, indent=2) + "\n")
    return path


def parse(ap: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, str, dict[str, str]]:
    """Add the options of a script that queues experiments and records them (this one,
    `scripts/baselines.py`), parse `argv`, and return the args, the base commit (short) and the extra
    ``-S`` overrides."""
    ap.add_argument("-j", "--jobs", type=int, default=1, help="queue workers")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra -S override for every experiment (repeatable)")
    ap.add_argument("--collect-only", action="store_true", help="record finished experiments, queue nothing")
    ap.add_argument("--base", default="HEAD", help="with --collect-only: the commit the experiments ran on")
    args = ap.parse_args(argv)
    if args.base != "HEAD" and not args.collect_only:
        ap.error("--base goes with --collect-only (new experiments run on HEAD)")
    base = subprocess.run(["git", "rev-parse", "--short", args.base], check=True, capture_output=True,
                          text=True).stdout.strip()
    return args, base, dict(kv.split("=", 1) for kv in args.set)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args, base, extra = parse(ap, argv)
    names = {f"seed{s}-{base}": s for s in args.seeds}
    run_and_record({name: {"seed": str(s), **extra} for name, s in names.items()}, args, base,
                   lambda name, rev: record(name, rev, names[name], base))


def run_and_record(runs: dict[str, dict[str, str]], args: argparse.Namespace, base: str,
                   write: Callable[[str, str], Path]) -> None:
    """Queue one experiment per name with its ``-S`` overrides (replacing one of that name; nothing with
    ``--collect-only``), run the queue, then ``write(name, commit)`` each experiment's record."""
    if not args.collect_only:
        existing = experiment_revs()
        for name, overrides in runs.items():
            if name in existing:
                _dvc("exp", "remove", name)
            subprocess.run(queue_command(name, overrides), check=True, stdout=subprocess.DEVNULL)
        run_queue(args.jobs)
    revs = experiment_revs(base)
    for name in runs:
        if name not in revs:
            raise SystemExit(f"no experiment {name}: did it fail? (dvc queue logs {name})")
        print(f"{name} -> {write(name, revs[name])}")

if __name__ == "__main__":
    main()

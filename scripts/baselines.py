#!/usr/bin/env python
"""Train Table 2's VGG-16 baselines as experiments and commit their records for metrics/tables/table2.md.

    python scripts/baselines.py deeplab_v2              # one experiment per arch, then its record
    python scripts/baselines.py fcn_vgg16 --set baselines.batch_norm=false
    python scripts/baselines.py deeplab_v2 --collect-only [--base <commit>]
    python scripts/exp_tables.py --out metrics/tables --only table2

Each arch is a queued experiment ``dvc exp run --queue -n t2-<arch>-<commit> -S 'baselines.archs=[<arch>]'``:
only ``train_baselines``, ``fuse`` and ``evaluate`` rerun. Experiment refs live only in the repository that
ran them (a clone of main has none), so the table's evidence is committed: the experiment's
``metrics/eval/run.json`` (each method's IoUs and per-group mIoUs) is copied to
``metrics/baselines/<experiment>.json`` with the experiment's params (flat) and the commit it ran on, and
``scripts/exp_tables.py`` reads those records beside ``dvc exp show``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_tables import RECORDS  # noqa: E402
from records import record_experiment, show_file  # noqa: E402
from seeds import parse, run_and_record  # noqa: E402

ARCHS = ("fcn_vgg16", "deeplab_v2")


def record(name: str, rev: str, arch: str, base: str) -> Path:
    """Write ``metrics/baselines/<name>.json`` from the experiment commit `rev` (which must hold `arch`)."""
    run = json.loads(show_file(rev, "metrics/eval/run.json"))
    if arch not in run.get("eval", {}):
        raise SystemExit(f"experiment {name} ({rev[:7]}) scored no {arch} (methods: {sorted(run.get('eval', {}))})")
    return record_experiment(name, rev, base, RECORDS, run)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archs", nargs="+", choices=ARCHS)
    args, base, extra = parse(ap, argv)
    names = {f"t2-{a}-{base}": a for a in args.archs}
    run_and_record({name: {"baselines.archs": f"[{a}]", **extra} for name, a in names.items()}, args, base,
                   lambda name, rev: record(name, rev, names[name], base))

if __name__ == "__main__":
    main()

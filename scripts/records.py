#!/usr/bin/env python
"""Commit the records of finished experiments, so that the tables rebuild on any clone (experiment refs
stay in the repository that ran them).

    python scripts/records.py 't3-*' 't5-*' 'recipe-*'      # the experiments of HEAD whose names match
    python scripts/records.py --base b30710d 'recipe-*'      # ... of the commit they ran on
    python scripts/exp_tables.py --out metrics/tables

Each matching experiment's ``metrics/eval/run.json`` (each method's IoUs, per-group mIoUs, per-condition
scores, memory checks) is copied to ``metrics/experiments/<name>.json`` with the experiment's params (flat,
as `dvc exp show` names them), its name and the commit it ran on. `scripts/exp_tables.py` reads these
records beside ``dvc exp show`` and keeps those made on the workspace's test set.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_tables import EXPERIMENTS, flat  # noqa: E402
from seeds import experiment_revs  # noqa: E402


def show_file(rev: str, path: str) -> str:
    """The text of `path` in the commit `rev`."""
    return subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout


def record_experiment(name: str, rev: str, base: str, folder: Path = EXPERIMENTS, run: dict | None = None) -> Path:
    """Write ``<folder>/<name>.json`` (atomically): the experiment commit `rev`'s run.json (or `run`), its
    params (flat), its name and `base`, the commit it ran on."""
    run = json.loads(show_file(rev, "metrics/eval/run.json")) if run is None else run
    params = flat(yaml.safe_load(show_file(rev, "params.yaml")))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**run, "rev": base, "experiment": name, "params": params}, indent=2) + "\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="+", help="experiment names or shell patterns ('t3-*')")
    ap.add_argument("--base", default="HEAD", help="the commit the experiments ran on (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=EXPERIMENTS, help="folder of the records (default: %(default)s)")
    args = ap.parse_args(argv)
    base = subprocess.run(["git", "rev-parse", "--short", args.base], check=True, capture_output=True,
                          text=True).stdout.strip()
    revs = experiment_revs(args.base)
    names = sorted(n for n in revs if any(fnmatch.fnmatchcase(n, p) for p in args.patterns))
    if not names:
        raise SystemExit(f"no experiment of {base} matches {' '.join(args.patterns)} (dvc exp show --rev {base})")
    for name in names:
        print(f"{name} -> {record_experiment(name, revs[name], base, args.out)}")


if __name__ == "__main__":
    main()

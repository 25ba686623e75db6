"""A copy of this project in a temp folder, for tests that run the real pipeline with DVC (slow tests)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


#: Committed records under metrics/ that stages read (evaluate: the seeds; tables: all three): kept in a copy.
RECORDS = ("metrics/seeds/", "metrics/experiments/", "metrics/baselines/", "metrics/benchmarks/")


def copy_project(repo: Path) -> Path:
    """The files git tracks or would track, without pipeline outputs (data, models, dvc.lock, the metrics
    the pipeline writes; the committed records under metrics/, `RECORDS`, are kept)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if f.startswith(("data/", "models/", "dvc.lock")) or not (ROOT / f).is_file() or \
                (f.startswith("metrics/") and not f.startswith(RECORDS)):
            continue
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, repo / f)
    return repo


def set_params(path: Path, overrides: dict) -> None:
    """Write dotted-key `overrides` ("train.fcn.epochs": 1) into the params file at `path`."""
    p = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        d = p
        *parents, last = key.split(".")
        for k in parents:
            d = d[k]
        d[last] = value
    path.write_text(yaml.safe_dump(p, sort_keys=False))

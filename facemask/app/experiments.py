"""DVC experiments of this repository: queue and run them, find the finished ones, commit their records.

Experiment refs (``refs/exps``) stay in the repository that ran them; what a clone has are the records: a
finished experiment's ``metrics/eval/run.json`` copied to ``metrics/experiments/<name>.json`` (the sweeps,
`facemask.app.sweeps`), ``metrics/seeds/seed_<N>.json`` (the default's other training seeds) or
``metrics/baselines/<name>.json`` (Table 2's VGG-16 baselines), with the experiment's params (flat, as
`dvc exp show` names them), its name and the commit it ran on. The ``tables`` stage of dvc.yaml reads them
(`facemask.evaluation.tables`); `live_records` reads this machine's finished experiments from
`dvc exp show` for a look before they are recorded. Everything here runs ``python -m dvc`` and ``git`` in the
current folder (the project's root).
"""
from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import yaml

from facemask.core import errors
from facemask.core.io import atomic_write_json
from facemask.evaluation.tables import flat, record

SEEDS = Path("metrics/seeds")
EXPERIMENTS = Path("metrics/experiments")
BASELINES = Path("metrics/baselines")
RUN_JSON = "metrics/eval/run.json"
#: `dvc exp show`'s metric files and the run.json keys that hold the same numbers.
METRIC_FILES = {"metrics/eval.json": "eval", "metrics/zoomed.json": "zoomed", "metrics/eval/timestep.json": "timestep"}
#: Table 2's VGG-16 baselines (``baselines.archs``).
ARCHS = ("fcn_vgg16", "deeplab_v2")


class ExperimentError(errors.FacemaskError):
    """An experiment that failed or is missing, or a dvc or git command that did not run; the message names it."""


def _call(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ExperimentError(f"{' '.join(cmd[2:5] if cmd[0] == sys.executable else cmd[:3])}: exit status "
                              f"{res.returncode}: {last}")
    return res.stdout


def dvc(*args: str) -> str:
    """``python -m dvc ARGS`` (this interpreter's DVC) in the current folder; its stdout."""
    return _call([sys.executable, "-m", "dvc", *args])


def git(*args: str) -> str:
    return _call(["git", *args])


def short_rev(rev: str) -> str:
    return git("rev-parse", "--short", rev).strip()


def run_json(rev: str) -> dict:
    """The run.json of a commit or experiment `rev`, or of the workspace; {} where it has none."""
    if rev == "workspace":
        path = Path(RUN_JSON)
        return json.loads(path.read_text()) if path.is_file() else {}
    res = subprocess.run(["git", "show", f"{rev}:{RUN_JSON}"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else {}


def finished(exp: dict) -> bool:
    """Whether an experiment of `dvc exp show --json` ran to the end: a queued, running or failed one's row
    is the queue's snapshot of the workspace, with the base's metrics. One run without the queue has no
    executor and counts as finished."""
    return (exp.get("executor") or {}).get("state", "success") == "success"


def experiment_revs(base: str = "HEAD") -> dict[str, str]:
    """{experiment name: its commit} for the finished experiments (`finished`) of the commit `base`."""
    out = {}
    for row in json.loads(dvc("exp", "show", "--json", "--rev", base)):
        for exp in row.get("experiments") or []:
            if not finished(exp):
                continue
            for rev in exp.get("revs") or []:
                name = rev.get("name") or exp.get("name")
                if name and rev.get("rev"):
                    out[name] = rev["rev"]
    return out


def queue_command(name: str, overrides: dict[str, str]) -> list[str]:
    """``python -m dvc exp run --queue -n NAME -S KEY=VALUE ...``."""
    cmd = [sys.executable, "-m", "dvc", "exp", "run", "--queue", "-n", name]
    for k, v in overrides.items():
        cmd += ["-S", f"{k}={v}"]
    return cmd


def run_queue(jobs: int, poll: float = 5.0, stalled: int = 3) -> None:
    """Start `jobs` queue workers and wait until nothing is queued or running.

    DVC's workers sometimes stop while experiments are still queued (treeverse/dvc#10562: nothing running, no
    worker left); after `stalled` polls in a row with experiments queued and none running, the workers are
    started again.

    Raises:
        ExperimentError: an experiment failed (its name in the queue's status).
    """
    dvc("queue", "start", "-j", str(jobs))
    idle = 0
    while True:
        status = dvc("queue", "status")
        rows = [ln.split() for ln in status.splitlines()]
        states = [r[-1] for r in rows if len(r) >= 2]
        if "Queued" not in states and "Running" not in states:
            break
        idle = idle + 1 if "Running" not in states else 0
        if idle >= stalled:
            dvc("queue", "start", "-j", str(jobs))
            idle = 0
        time.sleep(poll)
    failed = [r for r in rows if r and r[-1] == "Failed"]
    if failed:
        raise ExperimentError(f"{len(failed)} experiment(s) failed (dvc queue logs NAME): "
                              + ", ".join(r[1] if len(r) > 1 else r[0] for r in failed))


def record_experiment(name: str, rev: str, base: str, folder: Path = EXPERIMENTS, run: dict | None = None) -> Path:
    """Write ``<folder>/<name>.json`` (atomically): the experiment commit `rev`'s run.json (or `run`), its
    params (flat), its name and `base`, the commit it ran on."""
    run = json.loads(git("show", f"{rev}:{RUN_JSON}")) if run is None else run
    params = flat(yaml.safe_load(git("show", f"{rev}:params.yaml")))
    path = Path(folder) / f"{name}.json"
    atomic_write_json(path, {**run, "rev": base, "experiment": name, "params": params})
    return path


def record_seed(name: str, rev: str, seed: int, base: str, folder: Path = SEEDS) -> Path:
    """Write ``<folder>/seed_<seed>.json`` from the experiment commit `rev` (which must have run `seed`):
    its run.json, `base` and its name; its params are the default's (the workspace's)."""
    run = json.loads(git("show", f"{rev}:{RUN_JSON}"))
    if int(run["seed"]) != seed:
        raise ExperimentError(f"experiment {name} ({rev[:7]}) ran seed {run['seed']}, not {seed}")
    path = Path(folder) / f"seed_{seed}.json"
    atomic_write_json(path, {**run, "rev": base, "experiment": name})
    return path


def record_baseline(name: str, rev: str, arch: str, base: str, folder: Path = BASELINES) -> Path:
    """Write ``<folder>/<name>.json`` from the experiment commit `rev`, which must have scored `arch`."""
    run = json.loads(git("show", f"{rev}:{RUN_JSON}"))
    if arch not in run.get("eval", {}):
        raise ExperimentError(f"experiment {name} ({rev[:7]}) scored no {arch} "
                              f"(methods: {', '.join(sorted(run.get('eval', {})))})")
    return record_experiment(name, rev, base, folder, run)


def run_and_record(runs: dict[str, dict[str, str]], write: Callable[[str, str], Path], jobs: int = 1,
                   collect_only: bool = False, base: str = "HEAD") -> list[Path]:
    """Queue one experiment per name with its ``-S`` overrides (replacing one of that name), run the queue,
    then ``write(name, commit)`` each experiment's record; with `collect_only` only the last step, for the
    experiments of the commit `base`.

    Raises:
        ExperimentError: an experiment failed or is missing.
    """
    if not collect_only:
        existing = experiment_revs()
        for name, overrides in runs.items():
            if name in existing:
                dvc("exp", "remove", name)
            _call(queue_command(name, overrides))
        run_queue(jobs)
    revs = experiment_revs(base)
    missing = [name for name in runs if name not in revs]
    if missing:
        raise ExperimentError(f"no finished experiment {', '.join(missing)} of {base}: did it fail? "
                              f"(dvc queue logs NAME)")
    return [write(name, revs[name]) for name in runs]


def record_matching(patterns: list[str], base: str = "HEAD", folder: Path = EXPERIMENTS) -> list[Path]:
    """Record (`record_experiment`) every finished experiment of `base` whose name matches a shell pattern.

    Raises:
        ExperimentError: no experiment matches.
    """
    short = short_rev(base)
    revs = experiment_revs(base)
    names = sorted(n for n in revs if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    if not names:
        raise ExperimentError(f"no experiment of {short} matches {' '.join(patterns)} (dvc exp show --rev {short})")
    return [record_experiment(name, revs[name], short, folder) for name in names]


def _show_record(entry: dict, name: str | None) -> dict | None:
    """A record (`facemask.evaluation.tables.record`) of one row of `dvc exp show --json`: its params, and its
    run.json (from git; the workspace's file) with the row's metrics over it."""
    data = entry.get("data") or {}
    if entry.get("error") or not data:
        return None
    params = {}
    for f in (data.get("params") or {}).values():
        params.update(flat(f.get("data") or {}))
    metrics = {METRIC_FILES[p]: f["data"] for p, f in (data.get("metrics") or {}).items()
               if f.get("data") and p in METRIC_FILES}
    rev = entry.get("rev")
    return record(name or entry.get("name") or str(rev or "")[:7], params, {**run_json(rev), **metrics}, rev)


def live_records(show: list[dict]) -> Iterator[dict]:
    """One record per finished row of `dvc exp show --json` (`show`): the experiments of each commit, then
    the commit (or the workspace) itself. A queued, running or failed experiment is left out."""
    for base in show:
        for exp in base.get("experiments") or []:
            if not finished(exp):
                continue
            for rev in exp.get("revs") or []:
                if (rev.get("data") or {}).get("rev") == "workspace":  # still running: shows the workspace's metrics
                    continue
                r = _show_record(rev, rev.get("name") or exp.get("name"))
                if r:
                    yield r
        r = _show_record(base, base.get("name") or base.get("rev"))
        if r:
            yield r

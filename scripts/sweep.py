#!/usr/bin/env python
"""Queue the paper's experiment sweeps with `dvc exp run --queue` (Tables 3, 5, 6, 7 and 8).

    python scripts/sweep.py                      # queue every table's experiments
    python scripts/sweep.py table3 table5        # only these tables
    python scripts/sweep.py --seeds 0 1 2        # every experiment with three training seeds
    python scripts/sweep.py --dry-run            # print the commands, queue nothing
    python scripts/sweep.py table5 --g 0 --lfuns eq9   # a smaller grid
    python scripts/sweep.py table3 --set train.convlstm.epochs=1   # extra overrides for every experiment
    dvc queue start -j 2                          # run the queue (or: python scripts/sweep.py --run)
    dvc queue status; dvc exp show
    python scripts/exp_tables.py                 # the tables in markdown

Every experiment sets all the keys that define it (not just the one that varies), so it means the
same whatever the workspace's params.yaml holds, and `scripts/exp_tables.py` recognises it by its
params alone. An experiment asked for by two tables (Table 3's Adam run is Table 5's cross-entropy
run) is queued once. Each `-S` key changes only the stages that declare it in dvc.yaml:
the ConvLSTM keys rerun ``train_convlstm@*``, ``fuse`` and ``evaluate``; ``regions.eyes.gamma`` only
``train_convlstm@eyes``, ``fuse`` and ``evaluate``; the FCNs and the data stages come from the run-cache.

The sweeps (Sect. 4.3):

* Table 3 — ConvLSTM alone trained (the rest of the converted FCN frozen), cross-entropy, Adam vs RMSprop.
* Table 5 — same freezing, Adam: cross-entropy vs the multi-class IoU loss (Eq. 3) vs SegLoss (Eq. 7)
  with the L_p / L_n of Eq. 8 or Eq. 9 for g in `G_VALUES`, on the raw scores or the softmax (`READINGS`).
* Tables 6, 7, 8 — the full ConvLSTM-FCN (layer-wise learning rates) with SegLoss Eq. 9, g = 0 (or the
  loss `--full-loss` names), and γ in `GAMMAS` for the primary (face), eye and mouth models respectively.

With ``--seeds 0 1 2`` every experiment is queued once per training seed (``-S seed=N``); the tables then
show mean ± std over the seeds (scripts/exp_tables.py).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time

G_VALUES = (0.0, 0.5)
READINGS = ("scores", "softmax")
GAMMAS = (0.01, 0.02, 0.05, 0.1)
LFUNS = ("eq8", "eq9")

_FROZEN = {"train.convlstm.freeze_backbone": "true"}
#: Tables 6-8: the full ConvLSTM-FCN (layer-wise learning rates) with the paper's loss, SegLoss Eq. 9, g = 0
#: (on the raw scores, as the paper's example); `--full-loss` picks another (e.g. the best of Table 5).
FULL_LOSSES = {
    "paper": {"train.convlstm.loss": "segloss", "train.convlstm.lfun": "eq9", "train.convlstm.g": "0.0",
              "train.convlstm.segloss_on": "scores"},
    "softmax": {"train.convlstm.loss": "segloss", "train.convlstm.lfun": "eq9", "train.convlstm.g": "0.0",
                "train.convlstm.segloss_on": "softmax"},
    "ce": {"train.convlstm.loss": "ce"},
}


def _num(x: float) -> str:
    return f"{x:g}"


def sweeps(full_loss: str = "paper", g_values=G_VALUES, readings=READINGS, gammas=GAMMAS,
           lfuns=LFUNS) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Table -> [(experiment name, {param key: value})], without the seed; the grids default to the
    module's constants (the paper's), smaller ones make a cheaper sweep."""
    t3 = [(f"t3-{opt}", {**_FROZEN, "train.convlstm.loss": "ce", "train.convlstm.optimizer": opt})
          for opt in ("adam", "rmsprop")]
    adam = {**_FROZEN, "train.convlstm.optimizer": "adam"}
    t5 = [("t5-ce", {**adam, "train.convlstm.loss": "ce"}), ("t5-iou", {**adam, "train.convlstm.loss": "iou"})]
    t5 += [(f"t5-{lfun}-g{_num(g)}-{on}", {**adam, "train.convlstm.loss": "segloss", "train.convlstm.lfun": lfun,
                                           "train.convlstm.g": _num(g), "train.convlstm.segloss_on": on})
           for lfun in lfuns for g in g_values for on in readings]
    out = {"table3": t3, "table5": t5}
    full = {"train.convlstm.freeze_backbone": "false", "train.convlstm.optimizer": "adam", **FULL_LOSSES[full_loss]}
    for table, region in (("table6", "face"), ("table7", "eyes"), ("table8", "mouth")):
        out[table] = [(f"t{table[-1]}-{region}-gamma{_num(g)}-{full_loss}", {**full, f"regions.{region}.gamma": _num(g)})
                      for g in gammas]
    return out


def experiments(tables: list[str], extra: dict[str, str] | None = None, seeds: list[int] | None = None,
                full_loss: str = "paper", **grids) -> list[tuple[str, dict[str, str]]]:
    """The experiments of `tables` for each of `seeds` (default: the workspace's seed only), each once (the
    first name wins), with `extra` overrides added; `grids` as `sweeps`."""
    all_sweeps = sweeps(full_loss, **grids)
    unknown = [t for t in tables if t not in all_sweeps]
    if unknown:
        raise SystemExit(f"unknown table(s) {unknown}; valid: {sorted(all_sweeps)}")
    seen, out = set(), []
    for seed in seeds if seeds is not None else [None]:
        for table in tables:
            for name, overrides in all_sweeps[table]:
                key = (seed, tuple(sorted(overrides.items())))
                if key in seen:
                    continue
                seen.add(key)
                if seed is not None:
                    name, overrides = f"{name}-s{seed}", {**overrides, "seed": str(seed)}
                out.append((name, {**overrides, **(extra or {})}))
    return out


def queue_command(name: str, overrides: dict[str, str]) -> list[str]:
    cmd = [sys.executable, "-m", "dvc", "exp", "run", "--queue", "-n", name]
    for k, v in overrides.items():
        cmd += ["-S", f"{k}={v}"]
    return cmd


def finished(exp: dict) -> bool:
    """Whether an experiment of `dvc exp show --json` ran to the end: a queued, running or failed one's row
    is the queue's snapshot of the workspace, with the base's metrics. One run without the queue has no
    executor and counts as finished."""
    return (exp.get("executor") or {}).get("state", "success") == "success"


def run_queue(jobs: int, poll: float = 5.0) -> None:
    """Start `jobs` queue workers and wait until nothing is queued or running."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(dvc + ["queue", "start", "-j", str(jobs)], check=True)
    while True:
        status = subprocess.run(dvc + ["queue", "status"], check=True, capture_output=True, text=True).stdout
        rows = [ln.split() for ln in status.splitlines()]
        busy = [r for r in rows if len(r) >= 2 and r[-1] in ("Queued", "Running")]
        if not busy:
            break
        time.sleep(poll)
    failed = [r for r in rows if r and r[-1] == "Failed"]
    if failed:
        raise SystemExit(f"{len(failed)} experiment(s) failed (dvc queue logs <name>):\n{status}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="*", help=f"tables to queue (default: all of {sorted(sweeps())})")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                    help="queue every experiment for each of these training seeds (default: the workspace's)")
    ap.add_argument("--full-loss", choices=sorted(FULL_LOSSES), default="paper",
                    help="the loss of Tables 6-8 (default: the paper's, SegLoss Eq. 9, g = 0, raw scores)")
    ap.add_argument("--g", type=float, nargs="+", default=list(G_VALUES), help="Table 5's g values")
    ap.add_argument("--readings", nargs="+", choices=READINGS, default=list(READINGS),
                    help="Table 5's SegLoss readings (raw scores, softmax)")
    ap.add_argument("--lfuns", nargs="+", choices=LFUNS, default=list(LFUNS), help="Table 5's L_p/L_n (Eq. 8, Eq. 9)")
    ap.add_argument("--gammas", type=float, nargs="+", default=list(GAMMAS), help="Tables 6-8's γ values")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra -S override for every experiment (repeatable)")
    ap.add_argument("--dry-run", action="store_true", help="print the dvc commands only")
    ap.add_argument("--run", action="store_true", help="then run the queue and wait for it")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="queue workers with --run")
    args = ap.parse_args(argv)
    extra = {}
    for kv in args.set:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"--set {kv!r}: expected KEY=VALUE")
        extra[key] = value
    grids = dict(g_values=args.g, readings=args.readings, gammas=args.gammas, lfuns=args.lfuns)
    for name, overrides in experiments(args.tables or list(sweeps()), extra, args.seeds, args.full_loss, **grids):
        cmd = queue_command(name, overrides)
        print(shlex.join(["dvc"] + cmd[3:]), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    if args.run and not args.dry_run:
        run_queue(args.jobs)


if __name__ == "__main__":
    main()

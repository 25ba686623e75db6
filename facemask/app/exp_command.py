"""``facemask exp``: the paper's experiments as DVC experiments, their committed records, the tables, the hold oracle.

    facemask exp sweep table3 table5 --seeds 0 1 2 --run   # queue a table's sweep, run the queue
    facemask exp record 't3-*' 't5-*'                      # commit the finished experiments' records
    facemask exp seeds --seeds 1 2                         # the default with other training seeds, recorded
    facemask exp baselines deeplab_v2 fcn_vgg16            # Table 2's VGG-16 baselines, recorded
    dvc repro                                              # the tables stage: metrics/tables/ from the records
    facemask exp tables                                    # the same tables with this machine's experiments
    facemask exp hold-oracle --split val                   # the FCN against the hold oracle, per condition

Each subcommand is a pair ``(add_arguments(parser), run(args) -> exit code)`` in `SUBCOMMANDS`; the
workflow itself is `facemask.app.experiments` (dvc and git), `facemask.app.sweeps` (the grids),
`facemask.evaluation.tables` (the markdown) and `facemask.app.hold_oracle`.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Callable

from facemask.app import experiments as E
from facemask.app import hold_oracle
from facemask.app.sweeps import FULL_LOSSES, GAMMAS, G_VALUES, LFUNS, READINGS, experiments, sweeps
from facemask.core import errors
from facemask.core.io import atomic_write_json, atomic_write_text
from facemask.core.paramfile import load_params
from facemask.evaluation import conditions
from facemask.evaluation.tables import committed_records, tables


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise errors.BadInputError(f"--set {kv!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _queue_options(p: argparse.ArgumentParser, collect: bool = True) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra -S override for every experiment (repeatable)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (default: %(default)s)")
    if collect:
        p.add_argument("--collect-only", action="store_true", help="record finished experiments, queue nothing")
        p.add_argument("--base", default="HEAD", help="with --collect-only: the commit the experiments ran on")


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tables", nargs="*", help=f"tables to queue (default: all of {', '.join(sorted(sweeps()))})")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                   help="queue every experiment for each of these training seeds (default: the workspace's)")
    p.add_argument("--full-loss", choices=sorted(FULL_LOSSES), default="paper",
                   help="the loss of Tables 6-8 (default: the paper's, SegLoss Eq. 9, g = 0, raw scores)")
    p.add_argument("--g", type=float, nargs="+", default=list(G_VALUES), help="Table 5's g values")
    p.add_argument("--readings", nargs="+", choices=READINGS, default=list(READINGS),
                   help="Table 5's SegLoss readings (raw scores, softmax)")
    p.add_argument("--lfuns", nargs="+", choices=LFUNS, default=list(LFUNS), help="Table 5's L_p/L_n (Eq. 8, Eq. 9)")
    p.add_argument("--gammas", type=float, nargs="+", default=list(GAMMAS), help="Tables 6-8's γ values")
    p.add_argument("--dry-run", action="store_true", help="print the dvc commands only")
    p.add_argument("--run", action="store_true", help="then run the queue and wait for it")
    _queue_options(p, collect=False)


def _sweep_run(args: argparse.Namespace) -> int:
    grids = dict(g_values=args.g, readings=args.readings, gammas=args.gammas, lfuns=args.lfuns)
    exps = experiments(args.tables or list(sweeps()), _overrides(args.set), args.seeds, args.full_loss, **grids)
    for name, overrides in exps:
        cmd = E.queue_command(name, overrides)
        print(shlex.join(["dvc"] + cmd[3:]), flush=True)
        if not args.dry_run:
            E.dvc(*cmd[3:])
    if args.run and not args.dry_run:
        E.run_queue(args.jobs)
    return 0


def _seeds_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], metavar="N",
                   help="training seeds (default: %(default)s; the workspace's run is its own seed)")
    _queue_options(p)


def _base(args: argparse.Namespace) -> str:
    if args.base != "HEAD" and not args.collect_only:
        raise errors.BadInputError(f"--base {args.base}: goes with --collect-only (new experiments run on HEAD)")
    return E.short_rev(args.base)


def _seeds_run(args: argparse.Namespace) -> int:
    base, extra = _base(args), _overrides(args.set)
    names = {f"seed{s}-{base}": s for s in args.seeds}
    paths = E.run_and_record({n: {"seed": str(s), **extra} for n, s in names.items()},
                             lambda n, rev: E.record_seed(n, rev, names[n], base), args.jobs, args.collect_only,
                             args.base)
    print("\n".join(f"{n} -> {p}" for n, p in zip(names, paths)))
    return 0


def _baselines_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("archs", nargs="+", choices=E.ARCHS, help="Table 2's VGG-16 baselines to train")
    _queue_options(p)


def _baselines_run(args: argparse.Namespace) -> int:
    base, extra = _base(args), _overrides(args.set)
    names = {f"t2-{a}-{base}": a for a in args.archs}
    paths = E.run_and_record({n: {"baselines.archs": f"[{a}]", **extra} for n, a in names.items()},
                             lambda n, rev: E.record_baseline(n, rev, names[n], base), args.jobs,
                             args.collect_only, args.base)
    print("\n".join(f"{n} -> {p}" for n, p in zip(names, paths)))
    return 0


def _record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("patterns", nargs="+", help="experiment names or shell patterns ('t3-*')")
    p.add_argument("--base", default="HEAD", help="the commit the experiments ran on (default: %(default)s)")
    p.add_argument("--out", type=Path, default=E.EXPERIMENTS, help="folder of the records (default: %(default)s)")


def _record_run(args: argparse.Namespace) -> int:
    for path in E.record_matching(args.patterns, args.base, args.out):
        print(f"{path.stem} -> {path}")
    return 0


def _tables_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exp-show", type=Path, metavar="JSON",
                   help="output of `dvc exp show --json` (default: run it here)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write <table>.md into DIR (not metrics/tables: the tables stage writes that)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these tables (e.g. table3 table4)")


def _tables_run(args: argparse.Namespace) -> int:
    show = json.loads(args.exp_show.read_text() if args.exp_show else E.dvc("exp", "show", "--json"))
    recs = list(E.live_records(show))
    ws = next((r for r in recs if r["name"] == "workspace"), None)
    if ws is not None:
        recs += committed_records(ws, E.SEEDS, (E.BASELINES, E.EXPERIMENTS), [r["name"] for r in recs])
    for name, text in tables(recs).items():
        if args.only and name not in args.only:
            continue
        print(text)
        if args.out:
            atomic_write_text(args.out / f"{name}.md", text)
    return 0


def _hold_oracle_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=["train", "val", "test"], default="val",
                   help="the split scored (default: %(default)s; the test set is for verdicts, not calibration)")
    p.add_argument("--model", type=Path, default=Path("models/face/fcn.pt"), help="the face FCN")
    p.add_argument("--clips", type=Path, default=Path("data/clips"), help="the clips stage's folder")
    p.add_argument("--masks", type=Path, default=Path("data/300VW-Mask"), help="the masks stage's folder")
    p.add_argument("--record", type=Path, default=Path("data/raw/300VW/frames.csv"),
                   help="the synthetic generator's per-frame record")
    p.add_argument("--window", type=int, default=None, help="frames per window (default: params clips.window)")
    p.add_argument("--threshold", type=float, default=conditions.OCCLUSION_THRESHOLD,
                   help="occluded share of the face that makes a frame degraded (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--json", type=Path, help="write the reports here")
    p.add_argument("--frames", type=Path, help="write one row per frame here (CSV)")


def _hold_oracle_run(args: argparse.Namespace) -> int:
    window = args.window or load_params().clips.window
    meta, cms = hold_oracle.score_frames(args.model, args.clips, args.masks, args.record, args.split, window,
                                         args.threshold, args.device)
    report = hold_oracle.report(meta, cms, args.split, window, args.threshold, args.model)
    if args.json:
        atomic_write_json(args.json, report)
    if args.frames:
        atomic_write_text(args.frames, meta.to_csv(index=False, float_format="%.5f"))
    print(hold_oracle.summary(report))
    return 0


#: name -> (help, add_arguments, run)
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "sweep": ("queue the paper's sweeps (Tables 3, 5-8) as DVC experiments", _sweep_arguments, _sweep_run),
    "record": ("commit finished experiments' records (metrics/experiments/)", _record_arguments, _record_run),
    "seeds": ("run the default with other training seeds and record them (metrics/seeds/)",
              _seeds_arguments, _seeds_run),
    "baselines": ("train Table 2's VGG-16 baselines as experiments and record them (metrics/baselines/)",
                  _baselines_arguments, _baselines_run),
    "tables": ("print the tables from the records and this machine's finished experiments",
               _tables_arguments, _tables_run),
    "hold-oracle": ("the face FCN and the hold oracle on a split, per frame condition",
                    _hold_oracle_arguments, _hold_oracle_run),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``facemask exp`` subcommands (`SUBCOMMANDS`)."""
    sub = p.add_subparsers(dest="exp_command", required=True, metavar="SUBCOMMAND")
    for name, (help_, add, run_) in SUBCOMMANDS.items():
        q = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        add(q)
        q.set_defaults(_exp_run=run_)


def run(args: argparse.Namespace) -> int:
    return args._exp_run(args)


EPILOG = __doc__.split("\n\n")[1]

#!/usr/bin/env python
"""The paper's experiment tables (3, 4, 5, 6, 7, 8) in markdown, from `dvc exp show --json`.

    python scripts/exp_tables.py                  # runs `dvc exp show --json` here
    dvc exp show --json > exps.json && python scripts/exp_tables.py exps.json
    python scripts/exp_tables.py --out results/tables.md

Experiments are recognised by their params (see `scripts/sweep.py`), so the workspace, commits and
experiments queued by hand all count; where several share the row's setting, the first listed wins.
IoUs are shown in percent, as in the paper. Sources:

* Tables 3, 5, 6 — the primary (face) ConvLSTM-FCN on the test set: ``metrics/eval.json`` → ``primary``;
  the baseline FCN row is ``fcn`` of the same file.
* Table 4 — the primary model's mIoU minus the FCN's at each of the T frames of a window:
  ``metrics/eval/timestep.json``.
* Tables 7, 8 — the eye and mouth models on their test sub-datasets: ``metrics/zoomed.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

EVAL = "metrics/eval.json"
TIMESTEP = "metrics/eval/timestep.json"
ZOOMED = "metrics/zoomed.json"
FACE_COLS = ("skin", "eyes", "lips", "inner_mouth", "miou")
ZOOM_COLS = {"eyes": ("eye", "miou"), "mouth": ("lips", "inner_mouth", "miou")}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def records(show: list[dict]) -> Iterator[dict]:
    """One ``{"name", "params" (flat), "metrics" {file: data}}`` per row of `dvc exp show --json`."""

    def one(entry: dict, name: str | None):
        data = entry.get("data") or {}
        if entry.get("error") or not data:
            return None
        params = {}
        for f in (data.get("params") or {}).values():
            params.update(_flat(f.get("data") or {}))
        metrics = {path: f["data"] for path, f in (data.get("metrics") or {}).items() if f.get("data")}
        return {"name": name or entry.get("name") or str(entry.get("rev", ""))[:7], "params": params, "metrics": metrics}

    for base in show:
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                r = one(rev, rev.get("name") or exp.get("name"))
                if r:
                    yield r
        r = one(base, base.get("name") or base.get("rev"))
        if r:
            yield r


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}" if isinstance(x, (int, float)) else "–"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _is(p: dict, want: dict) -> bool:
    """Whether the flat params `p` hold every value of `want` (compared as lower-case strings)."""
    return all(str(p.get(k)).lower() == str(v).lower() for k, v in want.items())


C = "train.convlstm."
FROZEN_CE = {C + "freeze_backbone": True, C + "loss": "ce"}                 # Tables 3, 4
FROZEN_ADAM = {C + "freeze_backbone": True, C + "optimizer": "adam"}        # Table 5
FULL = {C + "freeze_backbone": False, C + "optimizer": "adam", C + "loss": "segloss", C + "lfun": "eq9"}  # 6-8


def _pick(recs: list[dict], match, key, source: str) -> dict:
    """{row key: record} for the records that `match` and have `source`; the first per key."""
    rows = {}
    for r in recs:
        if match(r["params"]) and source in r["metrics"] and key(r["params"]) not in rows:
            rows[key(r["params"])] = r
    return rows


def _fcn_row(recs: list[dict]) -> list[str] | None:
    for r in recs:
        fcn = r["metrics"].get(EVAL, {}).get("fcn")
        if fcn:
            return ["baseline FCN", "–"] + [_pct(fcn.get(c)) for c in FACE_COLS]
    return None


def _face_table(recs, match, key, label, title) -> str:
    rows = _pick(recs, match, key, EVAL)
    body = [r for r in [_fcn_row(recs)] if r]
    for k, r in sorted(rows.items(), key=lambda kv: str(kv[0])):
        prim = r["metrics"][EVAL].get("primary", {})
        body.append([label(k), r["name"]] + [_pct(prim.get(c)) for c in FACE_COLS])
    if len(body) <= 1 and not rows:
        return f"### {title}\n\n(no experiment with these settings)\n"
    return f"### {title}\n\n" + _table(["setting", "experiment", *FACE_COLS], body) + "\n"


def tables(recs: list[dict]) -> str:
    def frozen_ce(p):
        return _is(p, FROZEN_CE)

    def frozen_adam(p):
        return _is(p, FROZEN_ADAM)

    def full(p):
        return _is(p, FULL) and float(p.get(C + "g", -1)) == 0.0

    def loss_key(p):
        loss = p.get(C + "loss")
        if loss == "segloss":
            return f"SegLoss {p.get(C + 'lfun')}, g={float(p.get(C + 'g')):g}"
        return {"ce": "cross-entropy", "iou": "IoU loss (Eq. 3)"}.get(loss, str(loss))

    def opt(p):
        return p.get(C + "optimizer")

    out = ["## Experiment tables (IoU %, test set)\n"]
    out.append(_face_table(recs, frozen_ce, opt, str,
                           "Table 3 — optimiser, ConvLSTM layer alone trained, cross-entropy"))
    # Table 4: per time step improvement, for the Table 3 runs
    rows = _pick(recs, frozen_ce, opt, TIMESTEP)
    if rows:
        body, steps = [], None
        for k, r in sorted(rows.items()):
            d = r["metrics"][TIMESTEP].get("primary_minus_fcn", {})
            steps = steps or sorted(d, key=lambda s: int(str(s).lstrip("t")))
            body.append([k, r["name"]] + [_pct(d.get(s)) for s in steps])
        out.append("### Table 4 — mIoU improvement over the baseline FCN at each time step (points)\n\n"
                   + _table(["optimiser", "experiment", *steps], body) + "\n")
    out.append(_face_table(recs, frozen_adam, loss_key, str,
                           "Table 5 — loss, ConvLSTM layer alone trained, Adam"))
    out.append(_face_table(recs, full, lambda p: float(p.get("regions.face.gamma")), lambda g: f"γ = {g:g}",
                           "Table 6 — primary model, γ (SegLoss Eq. 9, g = 0)"))
    for num, region in (("7", "eyes"), ("8", "mouth")):
        cols = ZOOM_COLS[region]
        rows = _pick(recs, full, lambda p, region=region: float(p.get(f"regions.{region}.gamma")), ZOOMED)
        body = []
        for r in recs:
            fcn = r["metrics"].get(ZOOMED, {}).get(region, {}).get("fcn")
            if fcn:
                body.append(["baseline FCN", "–"] + [_pct(fcn.get(c)) for c in cols])
                break
        for g, r in sorted(rows.items()):
            d = r["metrics"][ZOOMED].get(region, {}).get("convlstm", {})
            body.append([f"γ = {g:g}", r["name"]] + [_pct(d.get(c)) for c in cols])
        title = f"### Table {num} — {'eye' if region == 'eyes' else 'mouth'} model on its test sub-dataset, γ\n\n"
        out.append(title + (_table(["setting", "experiment", *cols], body) if body else "(no experiment)") + "\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="?", help="output of `dvc exp show --json` (default: run it here)")
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args(argv)
    if args.json:
        show = json.loads(Path(args.json).read_text())
    else:
        res = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], check=True,
                             capture_output=True, text=True)
        show = json.loads(res.stdout)
    md = tables(list(records(show)))
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md + "\n")


if __name__ == "__main__":
    main()

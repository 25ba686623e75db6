#!/usr/bin/env python
"""The paper's experiment tables (2-9) in markdown, from the DVC experiments, with the seeds' spread.

    python scripts/exp_tables.py                       # runs `dvc exp show --json` here
    python scripts/exp_tables.py --out metrics/tables  # also writes metrics/tables/table<N>.md
    dvc exp show --json > exps.json && python scripts/exp_tables.py exps.json

Experiments are recognised by their params (see `scripts/sweep.py`), so the workspace, commits and
experiments queued by hand all count, and so do the committed records of experiments run elsewhere
(``metrics/seeds/``, ``metrics/baselines/``: `file_records`; experiment refs stay on the machine that ran them). Runs that differ only in ``seed`` form one row: each cell is the
mean ± standard deviation over those seeds (n in the last column; one seed: the value alone). P is the
paper's test (Sect. 4.2): a paired t-test over the groups of test sequences, here on each group's mIoU
averaged over the row's seeds, against the baseline FCN's averaged over the same seeds (per-group values
from each experiment's ``metrics/eval/run.json``). IoUs in percent, as in the paper. Sources:

* Table 2 — the five baselines: the landmark tracker, the ResNet FCN and FCN + temporal smoothing from the
  default's runs (``metrics/eval.json`` → ``tracker``, ``fcn``, ``fcn_smooth``; and beside the paper's tracker the
  face-mesh landmarks, ``mesh``, not in the paper), the VGG-16 FCN-8s and
  DeepLab-V2 from the experiments that trained them (``baselines.archs``, `scripts/baselines.py`; their
  ``eval.json`` → ``fcn_vgg16``, ``deeplab_v2``, committed in ``metrics/baselines/``), P against the same
  runs' ResNet FCN.
* Tables 3, 5, 6 — the primary (face) ConvLSTM-FCN on the test set: ``metrics/eval.json`` → ``primary``;
  the baseline FCN row is ``fcn`` of the same runs.
* Table 4 — the primary model's mIoU minus the FCN's at each of the T frames of a window (Table 3's runs):
  ``metrics/eval/timestep.json``.
* Tables 7, 8 — the eye and mouth models on their test sub-datasets: ``metrics/zoomed.json``.
* Table 9 — the key techniques: the FCN, FCN + temporal smoothing, the ConvLSTM alone trained with CE
  (Table 3, Adam), and the default run's primary and cascade.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from facemask.evaluation.metrics import paired_tests
from sweep import finished

EVAL = "metrics/eval.json"
TIMESTEP = "metrics/eval/timestep.json"
ZOOMED = "metrics/zoomed.json"
FACE_COLS = ("skin", "eyes", "lips", "inner_mouth", "miou")
ZOOM_COLS = {"eyes": ("eye", "miou"), "mouth": ("lips", "inner_mouth", "miou")}
C = "train.convlstm."
#: Committed records of experiments (refs live only where they ran): seed runs (`scripts/seeds.py`),
#: Table 2's VGG-16 baselines (`scripts/baselines.py`) and any other (`scripts/records.py`).
SEEDS = Path("metrics/seeds")
RECORDS = Path("metrics/baselines")
EXPERIMENTS = Path("metrics/experiments")
#: The paper's numbers where its text gives them (mIoU %).
PAPER = {"fcn": 54.50, "cascade": 63.76, "tracker": 60.09}
#: Table 2's rows: (method in eval.json, label), in the paper's order.
TABLE2 = (("tracker", "landmark tracker (dlib 68 points)"),
          ("mesh", "face-mesh landmarks (MediaPipe -> 68 points; not in the paper)"),
          ("deeplab_v2", "DeepLab-V2 ({trunk}, ASPP)"),
          ("fcn_vgg16", "FCN-8s ({trunk})"), ("fcn", "FCN (ResNet; the baseline FCN)"),
          ("fcn_smooth", "FCN (ResNet) + temporal smoothing"))


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the params' keys as `dvc exp show` and ``-S`` name them."""
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def records(show: list[dict]) -> Iterator[dict]:
    """One ``{"name", "rev", "params" (flat), "metrics" {file: data}}`` per row of `dvc exp show --json`."""

    def one(entry: dict, name: str | None):
        data = entry.get("data") or {}
        if entry.get("error") or not data:
            return None
        params = {}
        for f in (data.get("params") or {}).values():
            params.update(flat(f.get("data") or {}))
        metrics = {path: f["data"] for path, f in (data.get("metrics") or {}).items() if f.get("data")}
        return {"name": name or entry.get("name") or str(entry.get("rev", ""))[:7], "rev": entry.get("rev"),
                "params": params, "metrics": metrics}

    for base in show:
        for exp in base.get("experiments") or []:
            if not finished(exp):
                continue
            for rev in exp.get("revs") or []:
                if (rev.get("data") or {}).get("rev") == "workspace":  # still running: shows the workspace's metrics
                    continue
                r = one(rev, rev.get("name") or exp.get("name"))
                if r:
                    yield r
        r = one(base, base.get("name") or base.get("rev"))
        if r:
            yield r


def file_records(recs: list[dict], folders: tuple[Path, ...] = (SEEDS, RECORDS, EXPERIMENTS)) -> list[dict]:
    """The committed records (``metrics/seeds/seed_<N>.json``, ``metrics/baselines/<experiment>.json``,
    ``metrics/experiments/<experiment>.json``) as records like `records`', except experiments already in
    `recs` (by name) and those made on another test set than the workspace's (a record of an earlier
    benchmark: its run.json's ``test_set`` differs). A baseline's or an experiment's record carries its params;
    a seed record is a run of the default, so it takes the workspace's params with its seed. Each keeps its
    ``metrics/eval/run.json`` under ``run`` (the per-group mIoUs for P)."""
    ws = next((r for r in recs if r["name"] == "workspace"), None)
    have = {r["name"] for r in recs}
    ws_run = Path("metrics/eval/run.json")
    test_set = json.loads(ws_run.read_text()).get("test_set") if ws_run.is_file() else None
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            run = json.loads(path.read_text())
            name = run.get("experiment") or path.stem
            params = run.get("params") or ({**ws["params"], "seed": run.get("seed")} if ws else None)
            if name in have or params is None or "eval" not in run:
                continue
            if test_set and run.get("test_set") != test_set:
                continue
            metrics = {EVAL: run["eval"], **({ZOOMED: run["zoomed"]} if run.get("zoomed") else {}),
                       **({TIMESTEP: run["timestep"]} if run.get("timestep") else {})}
            out.append({"name": name, "rev": run.get("rev"), "params": params, "metrics": metrics, "run": run,
                        "default": folder == SEEDS})
    return out


def _run(rec: dict) -> dict:
    """A record's ``metrics/eval/run.json``: its own (a committed record) or its commit's."""
    return rec["run"] if "run" in rec else run_record(rec["rev"])


@lru_cache(maxsize=None)
def run_record(rev: str | None) -> dict:
    """``metrics/eval/run.json`` of the commit or experiment `rev` (per-group mIoUs); {} if absent."""
    if not rev or rev == "workspace":
        path = Path("metrics/eval/run.json")
        return json.loads(path.read_text()) if path.is_file() else {}
    res = subprocess.run(["git", "show", f"{rev}:metrics/eval/run.json"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else {}


def _is(p: dict, want: dict) -> bool:
    """Whether the flat params `p` hold every value of `want` (compared as lower-case strings)."""
    return all(str(p.get(k)).lower() == str(v).lower() for k, v in want.items())


def _rows(recs: list[dict], match: Callable, key: Callable, source: str) -> dict[Any, list[dict]]:
    """{row key: [one record per seed]} for the records that `match` and have `source`."""
    rows: dict[Any, dict[Any, dict]] = {}
    for r in recs:
        if match(r["params"]) and source in r["metrics"]:
            rows.setdefault(key(r["params"]), {}).setdefault(r["params"].get("seed"), r)
    return {k: list(v.values()) for k, v in rows.items()}


def _cell(values: list) -> str:
    v = [100 * x for x in values if isinstance(x, (int, float))]
    if not v:
        return "–"
    return f"{np.mean(v):.2f}" if len(v) == 1 else f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"


def _p(runs: list[dict], method: str, get_groups: Callable[[dict, str], list | None], base: str = "fcn") -> str:
    a, b = [], []
    for r in runs:
        rec = _run(r)
        ga, gb = get_groups(rec, method), get_groups(rec, base)
        if ga and gb and None not in ga and None not in gb:
            a.append(ga)
            b.append(gb)
    if not a:
        return "n/a"
    p = paired_tests(np.mean(a, axis=0), np.mean(b, axis=0))["p_ttest"]
    return "n/a" if p is None else f"{p:.2g}"


def _face_groups(rec: dict, method: str):
    return (rec.get("group_miou") or {}).get(method)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _method_row(label: str, runs: list[dict], method: str, p: str = "–") -> list[str]:
    return [label] + [_cell([r["metrics"][EVAL].get(method, {}).get(c) for r in runs]) for c in FACE_COLS] + \
        [p, str(len(runs))]


def _face_table(title: str, rows: dict[Any, list[dict]], label: Callable[[Any], str], note: str = "") -> str:
    if not rows:
        return f"### {title}\n\n(no experiment with these settings)\n"
    every = [r for runs in rows.values() for r in runs]
    fcn_runs = list({r["params"].get("seed"): r for r in every}.values())
    body = [_method_row("baseline FCN", fcn_runs, "fcn")]
    for k, runs in sorted(rows.items(), key=lambda kv: str(kv[0])):
        body.append(_method_row(label(k), runs, "primary", _p(runs, "primary", _face_groups)))
    head = ["setting", *FACE_COLS, "P vs FCN", "seeds"]
    return f"### {title}\n\n" + _table(head, body) + "\n" + (f"\n{note}\n" if note else "")


def _is_default(rec: dict) -> bool:
    """A run of the default settings: the workspace's own, a seed record (``metrics/seeds/``, whatever the
    experiment it came from) or a seed experiment (`scripts/seeds.py`)."""
    return rec.get("default", False) or rec["name"] == "workspace" or str(rec["name"]).startswith("seed")


def _loss_key(p: dict) -> str:
    loss = p.get(C + "loss")
    if loss == "segloss":
        return f"SegLoss {p.get(C + 'lfun')}, g = {float(p.get(C + 'g')):g}, on {p.get(C + 'segloss_on', 'scores')}"
    return {"ce": "cross-entropy", "iou": "IoU loss (Eq. 3)"}.get(loss, str(loss))


def tables(recs: list[dict]) -> dict[str, str]:
    frozen_ce = lambda p: _is(p, {C + "freeze_backbone": True, C + "loss": "ce"})  # noqa: E731
    frozen_adam = lambda p: _is(p, {C + "freeze_backbone": True, C + "optimizer": "adam"})  # noqa: E731
    full = lambda p: _is(p, {C + "freeze_backbone": False, C + "optimizer": "adam"})  # noqa: E731
    out = {}
    t3 = _rows(recs, frozen_ce, lambda p: p.get(C + "optimizer"), EVAL)
    out["table3"] = _face_table("Table 3 — optimiser, ConvLSTM layer alone trained, cross-entropy (IoU %, test set)",
                                t3, str)
    default = [r for r in recs if _is_default(r)]
    default = list({r["params"].get("seed"): r for r in default if EVAL in r["metrics"]}.values())
    out["table4"] = table4([r for r in default if TIMESTEP in r["metrics"]],
                           _rows(recs, frozen_ce, lambda p: p.get(C + "optimizer"), TIMESTEP))
    out["table5"] = _face_table("Table 5 — loss, ConvLSTM layer alone trained, Adam (IoU %, test set)",
                                _rows(recs, frozen_adam, _loss_key, EVAL), str)
    losses = {}
    for num, region in (("6", "face"), ("7", "eyes"), ("8", "mouth")):
        key = lambda p, region=region: (_loss_key(p), float(p.get(f"regions.{region}.gamma")))  # noqa: E731
        rows = _rows(recs, full, key, EVAL if region == "face" else ZOOMED)
        losses[region] = sorted({k[0] for k in rows})
        if region == "face":
            out["table6"] = _face_table("Table 6 — primary model: γ, all layers trained (IoU %, test set)", rows,
                                        lambda k: f"{k[0]}, γ = {k[1]:g}")
            continue
        cols = ZOOM_COLS[region]
        groups = lambda rec, arch, region=region: ((rec.get("zoomed_group_miou") or {}).get(region) or {}).get(arch)  # noqa: E731
        every = [r for runs in rows.values() for r in runs]
        # per seed one FCN; the default's own runs win (a gamma experiment may have retrained the FCN)
        every.sort(key=_is_default)
        fcn_runs = list({r["params"].get("seed"): r for r in every}.values())
        zoom = lambda runs, arch, c, region=region: _cell([r["metrics"][ZOOMED][region][arch].get(c) for r in runs])  # noqa: E731
        body = [["baseline FCN"] + [zoom(fcn_runs, "fcn", c) for c in cols] + ["–", str(len(fcn_runs))]] if rows else []
        for k, runs in sorted(rows.items(), key=lambda kv: str(kv[0])):
            body.append([f"{k[0]}, γ = {k[1]:g}"] + [zoom(runs, "convlstm", c) for c in cols]
                        + [_p(runs, "convlstm", groups), str(len(runs))])
        what = "eye" if region == "eyes" else "mouth"
        out[f"table{num}"] = (f"### Table {num} — {what} model on its test sub-dataset: γ (IoU %)\n\n"
                              + (_table(["setting", *cols, "P vs FCN", "seeds"], body) if body else "(no experiment)")
                              + "\n")
    # Table 9: the key techniques. The default's runs: no sweep key changed from params.yaml's defaults.
    frozen = t3.get("adam", [])
    rows9 = []
    if default:
        rows9.append(_method_row("baseline FCN", default, "fcn"))
        rows9.append(_method_row("FCN + temporal smoothing", default, "fcn_smooth", _p(default, "fcn_smooth", _face_groups)))
    if frozen:
        rows9.append(_method_row("ConvLSTM-FCN, ConvLSTM alone trained, CE (Table 3)", frozen, "primary",
                                 _p(frozen, "primary", _face_groups)))
    if default:
        rows9.append(_method_row("primary ConvLSTM-FCN (the default's loss)", default, "primary",
                                 _p(default, "primary", _face_groups)))
        rows9.append(_method_row("primary + zoomed eye/mouth models (cascade)", default, "cascade",
                                 _p(default, "cascade", _face_groups)))
    out["table2"] = table2(recs, default)
    out["memory"] = table_memory(recs, default)
    out["table9"] = ("### Table 9 — key techniques against the baseline FCN (IoU %, test set)\n\n"
                     + (_table(["method", *FACE_COLS, "P vs FCN", "seeds"], rows9) if rows9 else "(no runs)") + "\n"
                     + f"\nThe paper: baseline FCN {PAPER['fcn']:.2f}, cascade {PAPER['cascade']:.2f} mIoU.\n")
    return out


def _steps(runs: list[dict], key: str) -> list[str]:
    return sorted({s for r in runs for s in r["metrics"][TIMESTEP].get(key, {})}, key=lambda s: int(str(s)[1:]))


def _gain(r: dict, key: str, step: str):
    return (r["metrics"][TIMESTEP].get(key) or {}).get(step)


def _ci(values: list) -> str:
    """Mean and the 95 % confidence interval of the mean (Student's t over the seeds), in points."""
    v = [100 * x for x in values if isinstance(x, (int, float))]
    if len(v) < 2:
        return _cell([x / 100 for x in v])
    half = stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))
    return f"{np.mean(v):+.2f} [{np.mean(v) - half:+.2f}, {np.mean(v) + half:+.2f}]"


def table4(default: list[dict], frozen: dict[Any, list[dict]]) -> str:
    """Table 4 with its memoryless control: each method's mIoU minus the FCN's at frame t of the window, for
    the default's runs (one per seed): the primary, the same weights with the state reset at every frame, what
    the memory adds (the two's difference, per seed, with a 95 % confidence interval), the primary with the
    state carried across windows; and Table 3's runs (the paper's exploration)."""
    title = ("### Table 4 — mIoU minus the FCN's at each frame t of a window (points), with the memoryless "
             "control\n\n")
    rows = []
    if default:
        steps = _steps(default, "primary_minus_fcn")
        for label, key in (("primary ConvLSTM-FCN (the default)", "primary_minus_fcn"),
                           ("same weights, state reset every frame", "primary_reset_minus_fcn"),
                           ("primary, state carried across windows", "primary_stream_minus_fcn")):
            if any(_gain(r, key, steps[0]) is not None for r in default):
                rows.append([label] + [_cell([_gain(r, key, s) for r in default]) for s in steps] + [str(len(default))])
        memory = [[None if None in (_gain(r, "primary_minus_fcn", s), _gain(r, "primary_reset_minus_fcn", s))
                   else _gain(r, "primary_minus_fcn", s) - _gain(r, "primary_reset_minus_fcn", s) for r in default]
                  for s in steps]
        if any(v is not None for m in memory for v in m):
            rows.append(["memory: primary minus reset, 95 % CI"] + [_ci(m) for m in memory] + [str(len(default))])
    for k, runs in sorted(frozen.items()):
        steps = _steps(runs, "primary_minus_fcn")
        rows.append([f"ConvLSTM alone trained, CE, {k} (Table 3)"]
                    + [_cell([_gain(r, "primary_minus_fcn", s) for r in runs]) for s in steps] + [str(len(runs))])
    if not rows:
        return title + "(no run)\n"
    n = max(len(r) for r in rows) - 2
    return title + _table(["method", *[f"t = {i + 1}" for i in range(n)], "seeds"], rows) + "\n"


#: The ConvLSTM recipe's keys (DESIGN.md, "Memory: a head-only phase and corrupted windows", "Fine-tuning the
#: ConvLSTM-FCN"): what is trained, the loss, the head-only phase, the corrupted windows; each combination run
#: is a row of `table_memory`.
RECIPE = (C + "freeze_backbone", C + "loss", C + "head_steps", C + "corrupt")
CONDITION_COLS = (("all", "all"), ("clean", "clean"), ("degraded_with_clean_past", "degraded, clean past"),
                  ("degraded_without_clean_past", "degraded, no clean past"))
LOSS_LABELS = {"ce": "cross-entropy", "iou": "IoU loss (Eq. 3)", "segloss": "SegLoss"}


def _recipe_label(key: tuple) -> str:
    frozen, loss, steps, corrupt = key
    steps, corrupt = int(float(steps or 0)), float(corrupt or 0)
    parts = ["ConvLSTM alone" if str(frozen).lower() == "true" else "all layers",
             LOSS_LABELS.get(str(loss), str(loss)),
             f"head-only phase {steps} steps" if steps else "no head-only phase",
             f"corruption {corrupt:g}" if corrupt else "no corruption"]
    return ", ".join(parts)


def _memory_cells(runs: list[dict], method: str) -> list[str]:
    """mIoU per frame condition, on the black and the noise probe, and the pixels its memory changes."""
    recs = [_run(r) for r in runs]
    cond = [_cell([((rec.get("conditions") or {}).get(c) or {}).get(method, {}).get("miou") for rec in recs])
            for c, _ in CONDITION_COLS]
    probes = [_cell([(((rec.get("memory") or {}).get("probes") or {}).get(k) or {}).get("miou", {}).get(method)
                     for rec in recs]) for k in ("black", "noise")]
    passes = [sum(bool(((((rec.get("memory") or {}).get("probes") or {}).get(k) or {}).get("checks") or {})
                       .get(method, {}).get("pass")) for rec in recs) for k in ("black", "noise")]
    changed = _cell([((((rec.get("memory") or {}).get("ablation") or {}).get("methods") or {}).get(method) or {})
                     .get("changed_share") for rec in recs])
    return cond + probes + [f"{passes[0]} / {passes[1]} of {len(recs)}", changed]


def table_memory(recs: list[dict], default: list[dict]) -> str:
    """Each departure from the paper's ConvLSTM recipe as its own row (`RECIPE`): the primary's mIoU per frame
    condition and on the memory probes, over the runs whose settings are the default's but for the seed and
    the recipe's keys; the FCN and the memoryless control of the default's runs for scale."""
    title = "### Memory recipe — the primary ConvLSTM-FCN per frame condition and on the memory probes (IoU %)\n\n"
    ref = next((r for r in default if r["name"] == "workspace"), default[0] if default else None)
    if ref is None:
        return title + "(no run of the default)\n"
    rows = _rows([r for r in recs if _same_setting(r["params"], ref["params"], RECIPE)], lambda p: True,
                 lambda p: tuple(p.get(k) for k in RECIPE), EVAL)
    ours = tuple(ref["params"].get(k) for k in RECIPE)
    body = [["baseline FCN", *_memory_cells(default, "fcn")[:6], "–", "–", str(len(default))],
            ["default, state reset every frame (memoryless)", *_memory_cells(default, "primary_reset")[:6], "–", "–",
             str(len(default))],
            ["hold oracle (a ceiling, not a method)", *_memory_cells(default, "hold")[:6], "–", "–", str(len(default))]]
    for k, runs in sorted(rows.items(), key=lambda kv: (kv[0] != ours, str(kv[0]))):
        label = _recipe_label(k) + (" — the default" if k == ours else "")
        body.append([label, *_memory_cells(runs, "primary"), str(len(runs))])
    head = ["recipe", *[c for _, c in CONDITION_COLS], "black frame", "noise frame", "probes passed (black / noise)",
            "pixels memory changes (%)", "seeds"]
    return (title + _table(head, body) + "\n\nConditions and probes: DESIGN.md (\"Degraded frames\", \"Memory checks\"); "
            "a probe is passed at >= FCN + 20 points and >= hold - 10 points on the replaced frame. Pixels memory "
            "changes: on the degraded frames with a clean past, the share whose label the state reset changes.\n")


def _setting(p: dict) -> dict:
    """The params that define a run's setting for Table 2: all but the training seed and `baselines.*`."""
    return {k: v for k, v in p.items() if k != "seed" and not k.startswith("baselines.")}


def _same_setting(p: dict, ref: dict, ignore=()) -> bool:
    """Whether the params `p` of a run give the setting of `ref` (`_setting`, but the keys in `ignore`), on
    the keys both hold: a key that one of them lacks was added to params.yaml after that run, which could
    therefore not vary it."""
    a, b = _setting(p), _setting(ref)
    return all(a[k] == b[k] for k in (a.keys() & b.keys()) - set(ignore))


def _trunk(p: dict) -> str:
    """The VGG-16 baselines' trunk in a run's params: VGG-16-BN with ``baselines.batch_norm`` (its default
    since the key exists), VGG-16 without (runs from before the key were all plain VGG-16)."""
    return "VGG-16-BN" if p.get("baselines.batch_norm", False) else "VGG-16"


def table2(recs: list[dict], default: list[dict]) -> str:
    """The paper's Table 2: the five baselines. The tracker, the ResNet FCN and its smoothing come from the
    default's runs (one per seed); each VGG-16 baseline from the runs holding it whose setting is the
    default's apart from `baselines.*` (the default's own runs first, then experiments), one per seed, in a
    row per trunk (`_trunk`: VGG-16 or VGG-16-BN, the default's trunk first)."""
    ref = next((r for r in default if r["name"] == "workspace"), default[0] if default else None)
    body = []
    for method, label in TABLE2:
        if method in ("tracker", "mesh", "fcn", "fcn_smooth"):
            groups = {label: [r for r in default if method in r["metrics"][EVAL]]}
        else:
            held = [r for r in recs if method in r["metrics"].get(EVAL, {})
                    and ref is not None and _same_setting(r["params"], ref["params"])]
            held.sort(key=lambda r: not _is_default(r))
            mine = _trunk(ref["params"]) if ref is not None else "VGG-16"
            groups = {label.format(trunk=t): [] for t in sorted({mine, *(_trunk(r["params"]) for r in held)},
                                                              key=lambda t: t != mine)}
            for r in reversed(held):  # one run per seed, the default's own first
                runs = groups[label.format(trunk=_trunk(r["params"]))]
                runs[:] = [x for x in runs if x["params"].get("seed") != r["params"].get("seed")] + [r]
        for name, runs in groups.items():
            body.append(_table2_row(method, name, runs))
    return ("### Table 2 — the baselines (IoU %, test set)\n\n"
            + _table(["method", *FACE_COLS, "paper mIoU", "P vs ResNet FCN", "seeds"], body) + "\n"
            + "\nOne seed: the value alone, no spread; the ResNet FCN's standard deviation over its seeds is the "
              "scale a one-seed difference must beat. P: paired t-test of the per-group mIoU (averaged over the "
              "row's seeds) against the same runs' ResNet FCN. VGG-16-BN: VGG-16 with batch norm after each "
              "convolution (`baselines.batch_norm`), how the embedded default trains it from scratch.\n")


def _table2_row(method: str, label: str, runs: list[dict]) -> list[str]:
    if not runs:
        return [label] + ["–"] * (len(FACE_COLS) + 1) + ["not run", "0"]
    p = "–" if method == "fcn" else _p(runs, method, _face_groups)
    # the landmark methods are not trained: their cells are one run's (the same in every seed's); P over the seeds
    untrained = method in ("tracker", "mesh")
    row = _method_row(label, runs[:1] if untrained else runs, method, p)
    row.insert(len(FACE_COLS) + 1, f"{PAPER[method]:.2f}" if method in PAPER else "–")
    if untrained:
        row[-1] = "– (not trained)"
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="?", help="output of `dvc exp show --json` (default: run it here)")
    ap.add_argument("--out", type=Path, help="also write table<N>.md into this folder")
    ap.add_argument("--only", nargs="+", help="write only these tables (e.g. table3 table4)")
    args = ap.parse_args(argv)
    if args.json:
        show = json.loads(Path(args.json).read_text())
    else:
        res = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], check=True,
                             capture_output=True, text=True)
        show = json.loads(res.stdout)
    recs = list(records(show))
    md = tables(recs + file_records(recs))
    for name, text in md.items():
        if args.only and name not in args.only:
            continue
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.md").write_text(text)


if __name__ == "__main__":
    main()

"""The paper's experiment tables (2-9) and the memory-recipe table in markdown, from records of finished runs.

A *record* is one run of the pipeline: ``{"name", "rev", "params", "run", "default"}`` — its params flat, as
`dvc exp show` names them (`flat`), and ``run``, what the evaluate stage wrote to ``metrics/eval/run.json``
(``eval``: each method's IoUs; ``cms``: the per-subject confusion matrices, for the statistics; ``zoomed``,
``timestep``, ``conditions``, ``memory``, ``test_set``, ``val``: the models' validation scores). ``default`` marks a run of the default settings that
is not the workspace's own (a seed record). Experiments are recognised by their params, so the rows are
whatever the records hold (the sweeps of `facemask.app.experiments`). Runs that differ only in ``seed`` form
one row: each cell is the mean ± standard deviation over those seeds (n in the last column; one seed: the
value alone). Each difference from the baseline, its 95 % interval and its P value come from the one
statistical method of the reports (`facemask.evaluation.evidence`: a bootstrap over the row's training seeds and
the test subjects, on the per-subject confusion matrices its records hold), P Holm-adjusted over the table's
comparisons (their number is in the table's note). IoUs in percent, as in the paper. Sources, by table:

* Table 2 — the five baselines: the landmark tracker, the ResNet FCN and FCN + temporal smoothing of the
  default's runs (``eval`` → ``tracker``, ``fcn``, ``fcn_smooth``; beside the paper's tracker the face-mesh
  landmarks, ``mesh``, not in the paper), the VGG-16 FCN-8s and DeepLab-V2 from the runs that trained them
  (``baselines.archs``; ``eval`` → ``fcn_vgg16``, ``deeplab_v2``), P against the same runs' ResNet FCN.
* Tables 3, 5, 6 — the primary (face) ConvLSTM-FCN on the test set: ``eval`` → ``primary``; the baseline FCN
  row is ``fcn`` of the same runs.
* Table 4 — the primary model's mIoU minus the FCN's at each of the T frames of a window: ``timestep``.
* Tables 7, 8 — the eye and mouth models on their test sub-datasets: ``zoomed``.
* Table 9 — the key techniques: the FCN, FCN + temporal smoothing, the ConvLSTM alone trained with CE
  (Table 3, Adam), and the default's primary and cascade.
* memory — each departure from the paper's ConvLSTM recipe (`RECIPE`): ``conditions`` and ``memory``.

`workspace_record` and `committed_records` read the records (what the ``tables`` stage of dvc.yaml does);
`tables` writes the markdown, `readme` the folder's README. Nothing here runs DVC or git.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from facemask.core import errors
from facemask.core.methods import PROBES
from facemask.core.params import DEFAULTS
from facemask.evaluation.evidence import compare_runs
from facemask.evaluation.stats import holm

FACE_COLS = ("skin", "eyes", "lips", "inner_mouth", "miou")
ZOOM_COLS = {"eyes": ("eye", "miou"), "mouth": ("lips", "inner_mouth", "miou")}
C = "train.convlstm."
#: The paper's numbers where its text gives them (mIoU %).
PAPER = {"fcn": 54.50, "cascade": 63.76, "tracker": 60.09}
#: Table 2's rows: (method in ``eval``, label), in the paper's order.
TABLE2 = (("tracker", "landmark tracker (dlib 68 points)"),
          ("mesh", "face-mesh landmarks (MediaPipe -> 68 points; not in the paper)"),
          ("deeplab_v2", "DeepLab-V2 ({trunk}, ASPP)"),
          ("fcn_vgg16", "FCN-8s ({trunk})"), ("fcn", "FCN (ResNet; the baseline FCN)"),
          ("fcn_smooth", "FCN (ResNet) + temporal smoothing"))
#: The files of `tables`, in the order they are written.
NAMES = ("table3", "table4", "table5", "table6", "table7", "table8", "table2", "memory", "table9", "benchmarks")


# ---------------------------------------------------------------------------------------------------
# Records


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the params' keys as `dvc exp show` and ``-S`` name them."""
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def record(name: str, params: dict, run: dict, rev: str | None = None, default: bool = False,
           source: str | None = None) -> dict:
    """A record (see the module's docstring) of a run's flat `params` and its run.json `run`; `source`: the
    file it was read from."""
    return {"name": name, "rev": rev, "params": params, "run": run, "default": default, "source": source}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.BadInputError(f"{path}: not a readable JSON record ({e})") from None
    if not isinstance(data, dict):
        raise errors.BadInputError(f"{path}: not a JSON object")
    return data


def workspace_record(run: Path, params: dict) -> dict:
    """The workspace's own run: its run.json (the evaluate stage's) and its params (params.yaml as a mapping).

    Raises:
        BadInputError: `run` is not a JSON object.
    """
    return record("workspace", flat(params), _read_json(Path(run)), "workspace")


def committed_records(workspace: dict, seeds: Path, others: Iterable[Path], known: Iterable[str] = ()) -> list[dict]:
    """The committed records made on the `workspace` record's test set: ``<seeds>/seed_<N>.json`` (runs of the
    default: the workspace's params with their seed) and ``<folder>/<experiment>.json`` of each of `others`
    (their own params), in that order, each folder by file name. A record whose ``test_set`` differs from the
    workspace run's (a run of an earlier benchmark) is left out, and so is an experiment named in `known`
    (already among the caller's records).

    Raises:
        BadInputError: a record that is not a JSON object.
    """
    known = set(known) | {workspace["name"]}
    test_set = workspace["run"].get("test_set")
    out = []
    for folder in (seeds, *others):
        out += committed(folder, workspace["params"], test_set, folder == seeds, known)
    return out


def committed(folder: Path, ws_params: dict, test_set: dict | None, seeds: bool, known: set[str]) -> list[dict]:
    """The records of one folder (see `committed_records`), by file name."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        run = _read_json(path)
        name = run.get("experiment") or path.stem
        params = run.get("params") or {**ws_params, "seed": run.get("seed")}
        if name in known or "eval" not in run or (test_set and run.get("test_set") != test_set):
            continue
        out.append(record(name, params, run, run.get("rev"), default=seeds, source=str(path)))
    return out


# ---------------------------------------------------------------------------------------------------
# Cells, rows, P


def _is(p: dict, want: dict) -> bool:
    """Whether the flat params `p` hold every value of `want` (compared as lower-case strings)."""
    return all(str(p.get(k)).lower() == str(v).lower() for k, v in want.items())


def _rows(recs: list[dict], match: Callable, key: Callable, source: str) -> dict[Any, list[dict]]:
    """{row key: [one record per seed]} for the records that `match` and hold `source` (a run.json key)."""
    rows: dict[Any, dict[Any, dict]] = {}
    for r in recs:
        if match(r["params"]) and r["run"].get(source):
            rows.setdefault(key(r["params"]), {}).setdefault(r["params"].get("seed"), r)
    return {k: list(v.values()) for k, v in rows.items()}


def _cell(values: list) -> str:
    v = [100 * x for x in values if isinstance(x, (int, float))]
    if not v:
        return "–"
    return f"{np.mean(v):.2f}" if len(v) == 1 else f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"


def bootstrap_settings(recs: list[dict]) -> dict:
    """The bootstrap's draws and seed (`facemask.evaluation.stats`): the workspace's ``evaluate.draws`` and
    ``evaluate.stats_seed``, as the evaluate stage uses them (the settings' defaults without a workspace)."""
    ws = next((r["params"] for r in recs if r["name"] == "workspace"), {})
    return {"draws": int(ws.get("evaluate.draws", DEFAULTS.evaluate.draws)),
            "seed": int(ws.get("evaluate.stats_seed", DEFAULTS.evaluate.stats_seed))}


def _diff(runs: list[dict], method: str, stats: dict, base: str = "fcn", where: tuple = ()) -> dict | None:
    """`method` minus `base` over `runs` (one per seed) and the test subjects (`compare_runs`; `stats`: draws and
    seed): estimate, 95 % interval, P; None when the runs do not hold the per-subject matrices."""
    by_seed = {r["params"].get("seed"): r["run"] for r in runs}
    found = compare_runs(by_seed, [base, method], baseline=base, where=where, **stats)
    return None if found is None else found["differences"].get(method)


def _holm_cells(diffs: list[dict | None]) -> list[tuple[str, str]]:
    """(difference [interval], P (Holm-adjusted)) per row, the adjustment over the table's comparisons."""
    ps = [d["p"] for d in diffs if d is not None]
    adjusted = iter(holm(ps)) if ps else iter(())
    out = []
    for d in diffs:
        if d is None:
            out.append(("n/a", "n/a"))
        else:
            out.append((f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]",
                        f"{d['p']:.2g} ({next(adjusted):.2g})"))
    return out


def _note(comparisons: int) -> str:
    return (f"Differences from the baseline with 95 % intervals and P: bootstrap over training seeds and test subjects "
            f"(facemask/evaluation/stats.py); {comparisons} comparison{'s' * (comparisons != 1)}, P Holm-adjusted in "
            f"brackets.")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _method_row(label: str, runs: list[dict], method: str, stat: tuple[str, str] = ("–", "–")) -> list[str]:
    return [label] + [_cell([r["run"]["eval"].get(method, {}).get(c) for r in runs]) for c in FACE_COLS] + \
        [*stat, str(len(runs))]


def _one_per_seed(runs: Iterable[dict]) -> list[dict]:
    """One record per seed (the last given for it), in the order the seeds first appear."""
    return list({r["params"].get("seed"): r for r in runs}.values())


def _is_default(rec: dict) -> bool:
    """A run of the default settings: the workspace's own, a seed record (whatever the experiment it came
    from) or a seed experiment (``seed<N>-<commit>``)."""
    return rec.get("default", False) or rec["name"] == "workspace" or str(rec["name"]).startswith("seed")


def _loss_key(p: dict) -> str:
    loss = p.get(C + "loss")
    if loss == "segloss":
        return f"SegLoss {p.get(C + 'lfun')}, g = {float(p.get(C + 'g')):g}, on {p.get(C + 'segloss_on', 'scores')}"
    return {"ce": "cross-entropy", "iou": "IoU loss (Eq. 3)"}.get(loss, str(loss))


# ---------------------------------------------------------------------------------------------------
# The tables


def tables(recs: list[dict], benchmarks: list[dict] = ()) -> dict[str, str]:
    """{name: markdown} of every table (`NAMES`) from the records `recs` (earlier ones win a seed's place) and the
    records of the default on other benchmark instances (`benchmarks`, any test set)."""
    frozen_ce = lambda p: _is(p, {C + "freeze_backbone": True, C + "loss": "ce"})  # noqa: E731
    frozen_adam = lambda p: _is(p, {C + "freeze_backbone": True, C + "optimizer": "adam"})  # noqa: E731
    optimizer = lambda p: p.get(C + "optimizer")  # noqa: E731
    t3 = _rows(recs, frozen_ce, optimizer, "eval")
    default = _one_per_seed(r for r in recs if _is_default(r) and r["run"].get("eval"))
    stats = bootstrap_settings(recs)
    out = {"table3": _face_table("Table 3 — optimiser, ConvLSTM layer alone trained, cross-entropy (IoU %, test set)",
                                 t3, str, stats),
           "table4": table4([r for r in default if r["run"].get("timestep")],
                            _rows(recs, frozen_ce, optimizer, "timestep"), stats),
           "table5": _face_table("Table 5 — loss, ConvLSTM layer alone trained, Adam (IoU %, test set)",
                                 _rows(recs, frozen_adam, _loss_key, "eval"), str, stats)}
    out.update(gamma_tables(recs, stats))
    out["table2"] = table2(recs, default, stats)
    out["memory"] = table_memory(recs, default)
    out["table9"] = table9(default, t3.get("adam", []), stats)
    out["benchmarks"] = benchmarks_table(default, list(benchmarks), stats)
    return {name: out[name] for name in NAMES}


def _face_table(title: str, rows: dict[Any, list[dict]], label: Callable[[Any], str], stats: dict, note: str = "") -> str:
    if not rows:
        return f"### {title}\n\n(no experiment with these settings)\n"
    fcn_runs = _one_per_seed(r for runs in rows.values() for r in runs)
    ordered = sorted(rows.items(), key=lambda kv: str(kv[0]))
    stats = _holm_cells([_diff(runs, "primary", stats) for _, runs in ordered])
    body = [_method_row("baseline FCN", fcn_runs, "fcn") + ["–"]]
    body += [_method_row(label(k), runs, "primary", s) + [_kept(runs)] for (k, runs), s in zip(ordered, stats)]
    head = ["setting", *FACE_COLS, "− FCN [95 % interval]", "P (Holm)", "seeds", "face model kept†"]
    return (f"### {title}\n\n" + _table(head, body) + "\n\n" + _note(len(ordered)) + "\n\n" + KEPT_NOTE + "\n"
            + (f"\n{note}\n" if note else ""))


#: What the tables' ``face model kept`` column says.
KEPT_NOTE = ("† What training kept of the face ConvLSTM-FCN in each seed (`facemask.training.guard`): `converted` is "
             "the FCN converted before any step, kept because every phase of this setting's training fell far below "
             "it on validation; such a row measures the conversion, not the setting.")


def _kept(runs: list[dict]) -> str:
    """Per seed, which state of the face ConvLSTM-FCN training kept (the record's validation scores), counted:
    ``converted ×2, epoch 2``; ``–`` where the records do not say."""
    kept = [_dig(r["run"], "val", "face", "convlstm", "kept") for r in runs]
    counts = Counter(k for k in kept if k)
    return ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in sorted(counts.items())) or "–"


#: Why Tables 6-8 may hold no run: what their sweep costs and what it could show here.
GAMMA_NOTE = ("The paper's final recipe trains every layer, the ConvLSTM at lr and the others at lr x γ; the default "
              "trains the ConvLSTM alone (chosen on validation: the docs, \"What the ConvLSTM-FCN trains\"), where "
              "γ has no effect. A γ sweep in the paper's recipe is `facemask exp sweep table6 table7 table8 --seeds 0 "
              "1 2 --run` (36 runs); its rows appear here once recorded.")


def gamma_tables(recs: list[dict], stats: dict) -> dict[str, str]:
    """Tables 6, 7, 8: γ of the primary (face), eye and mouth models, the paper's recipe (all layers trained, Adam,
    no head-only phase, no corrupted windows)."""
    full = lambda p: _is(p, {C + "freeze_backbone": False, C + "optimizer": "adam", C + "head_steps": 0,  # noqa: E731
                             C + "corrupt": 0.0})
    out = {}
    for num, region in (("6", "face"), ("7", "eyes"), ("8", "mouth")):
        key = lambda p, region=region: (_loss_key(p), float(p.get(f"regions.{region}.gamma")))  # noqa: E731
        rows = _rows(recs, full, key, "eval" if region == "face" else "zoomed")
        if region == "face":
            out["table6"] = _face_table("Table 6 — primary model: γ, all layers trained (IoU %, test set)", rows,
                                        lambda k: f"{k[0]}, γ = {k[1]:g}", stats)
        else:
            out[f"table{num}"] = _zoomed_table(num, region, rows, stats)
        out[f"table{num}"] += f"\n{GAMMA_NOTE}\n"
    return out


def _zoomed_table(num: str, region: str, rows: dict[Any, list[dict]], stats: dict) -> str:
    """Table 7 (eyes) or 8 (mouth): the zoomed model against its FCN on the region's test sub-dataset."""
    cols = ZOOM_COLS[region]

    def zoom(runs: list[dict], arch: str, c: str) -> str:
        return _cell([r["run"]["zoomed"][region][arch].get(c) for r in runs])

    # per seed one FCN; the default's own runs win (a gamma experiment may have retrained the FCN)
    every = sorted((r for runs in rows.values() for r in runs), key=_is_default)
    fcn_runs = _one_per_seed(every)
    ordered = sorted(rows.items(), key=lambda kv: str(kv[0]))
    stats = _holm_cells([_diff(runs, "convlstm", stats, "fcn", ("zoomed", region)) for _, runs in ordered])
    body = [["baseline FCN"] + [zoom(fcn_runs, "fcn", c) for c in cols] + ["–", "–", str(len(fcn_runs))]] if rows else []
    for (k, runs), s in zip(ordered, stats):
        body.append([f"{k[0]}, γ = {k[1]:g}"] + [zoom(runs, "convlstm", c) for c in cols] + [*s, str(len(runs))])
    what = "eye" if region == "eyes" else "mouth"
    return (f"### Table {num} — {what} model on its test sub-dataset: γ (IoU %)\n\n"
            + (_table(["setting", *cols, "− FCN [95 % interval]", "P (Holm)", "seeds"], body) + "\n\n"
               + _note(len(ordered)) if body else "(no experiment)") + "\n")


def table9(default: list[dict], frozen: list[dict], stats: dict) -> str:
    """Table 9: the key techniques against the baseline FCN; `frozen`: Table 3's Adam runs."""
    compared = []  # (label, runs, method)
    if default:
        compared.append(("FCN + temporal smoothing", default, "fcn_smooth"))
    if frozen:
        compared.append(("ConvLSTM-FCN, ConvLSTM alone trained, CE (Table 3)", frozen, "primary"))
    if default:
        compared += [("primary ConvLSTM-FCN (the default's loss)", default, "primary"),
                     ("primary + zoomed eye/mouth models (cascade)", default, "cascade")]
    stats = _holm_cells([_diff(runs, method, stats) for _, runs, method in compared])
    rows = [_method_row("baseline FCN", default, "fcn")] if default else []
    rows += [_method_row(label, runs, method, s) for (label, runs, method), s in zip(compared, stats)]
    return ("### Table 9 — key techniques against the baseline FCN (IoU %, test set)\n\n"
            + (_table(["method", *FACE_COLS, "− FCN [95 % interval]", "P (Holm)", "seeds"], rows) + "\n\n"
               + _note(len(compared)) if rows else "(no runs)") + "\n"
            + f"\nThe paper: baseline FCN {PAPER['fcn']:.2f}, cascade {PAPER['cascade']:.2f} mIoU.\n")


def _steps(runs: list[dict], key: str) -> list[str]:
    return sorted({s for r in runs for s in r["run"]["timestep"].get(key, {})}, key=lambda s: int(str(s)[1:]))


def _gain(r: dict, key: str, step: str):
    return (r["run"]["timestep"].get(key) or {}).get(step)


def _memory_gain(default: list[dict], steps: list[str], stats: dict) -> list[str]:
    """Per step t: what the memory adds, the primary minus its state-reset control on the frames at t (bootstrap
    over seeds and subjects, `_diff`), as ``+d [low, high]``."""
    out = []
    for s in steps:
        d = _diff(default, "primary", stats, "primary_reset", ("timestep", s))
        out.append("n/a" if d is None else f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]")
    return out


def table4(default: list[dict], frozen: dict[Any, list[dict]], stats: dict) -> str:
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
        memory = _memory_gain(default, steps, stats)
        if any(v != "n/a" for v in memory):
            rows.append(["memory: primary minus reset [95 % interval]"] + memory + [str(len(default))])
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


def _dig(d: dict | None, *keys):
    """``d[k0][k1]...``, None where a level is missing."""
    for k in keys:
        d = (d or {}).get(k)
    return d


def _memory_cells(runs: list[dict], method: str, kinds: tuple[str, ...] = PROBES) -> list[str]:
    """mIoU per frame condition, on each memory probe, how many runs passed each probe, and the pixels its memory
    changes."""
    recs = [r["run"] for r in runs]
    cond = [_cell([_dig(rec, "conditions", c, method, "miou") for rec in recs]) for c, _ in CONDITION_COLS]
    probes = [_cell([_dig(rec, "memory", "probes", k, "miou", method) for rec in recs]) for k in kinds]
    passes = [str(sum(bool(_dig(rec, "memory", "probes", k, "checks", method, "pass")) for rec in recs))
              if any(_dig(rec, "memory", "probes", k) for rec in recs) else "–" for k in kinds]
    changed = _cell([_dig(rec, "memory", "ablation", "methods", method, "changed_share") for rec in recs])
    return cond + probes + [" / ".join(passes) + f" of {len(recs)}", changed]


def _reference(default: list[dict]) -> dict | None:
    """The default's run that defines its setting: the workspace's, else the first."""
    return next((r for r in default if r["name"] == "workspace"), default[0] if default else None)


def table_memory(recs: list[dict], default: list[dict]) -> str:
    """Each departure from the paper's ConvLSTM recipe as its own row (`RECIPE`): the primary's mIoU per frame
    condition and on the memory probes, over the runs whose settings are the default's but for the seed and
    the recipe's keys; the FCN and the memoryless control of the default's runs for scale."""
    title = "### Memory recipe — the primary ConvLSTM-FCN per frame condition and on the memory probes (IoU %)\n\n"
    ref = _reference(default)
    if ref is None:
        return title + "(no run of the default)\n"
    rows = _rows([r for r in recs if _same_setting(r["params"], ref["params"], RECIPE)], lambda p: True,
                 lambda p: tuple(p.get(k) for k in RECIPE), "eval")
    ours = tuple(ref["params"].get(k) for k in RECIPE)
    n, k = str(len(default)), len(CONDITION_COLS) + len(PROBES)
    body = [[label, *_memory_cells(default, m)[:k], "–", "–", n] for label, m in (
        ("baseline FCN", "fcn"), ("default, state reset every frame (memoryless)", "primary_reset"),
        ("hold baseline (the FCN's labels of the last clean frame, held)", "hold"),
        ("ceiling (the ground truth of the last clean frame, held)", "ceiling"))]
    for key, runs in sorted(rows.items(), key=lambda kv: (kv[0] != ours, str(kv[0]))):
        label = _recipe_label(key) + (" — the default" if key == ours else "")
        body.append([label, *_memory_cells(runs, "primary"), str(len(runs))])
    head = ["recipe", *[c for _, c in CONDITION_COLS], *(f"{p} probe" for p in PROBES),
            f"probes passed ({' / '.join(PROBES)})", "pixels memory changes (%)", "seeds"]
    return (title + _table(head, body) + "\n\nConditions and probes: the docs (\"Degraded frames\", \"Memory "
            "checks\"); a held probe (black, noise, bars, checker) is passed at >= FCN + 20 points and >= hold - 10 "
            "points on the replaced frame, the cut (another subject's frame) at >= FCN - 5 points. Pixels memory "
            "changes: on the degraded frames with a clean past, the share whose label the state reset changes.\n")


def _setting(p: dict) -> dict:
    """The params that define a run's setting for Table 2: all but the training seed, `baselines.*` and
    `evaluate.*` (how a run is scored, not what it trains)."""
    return {k: v for k, v in p.items() if k != "seed" and not k.startswith(("baselines.", "evaluate."))}


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


def _vgg_rows(recs: list[dict], method: str, label: str, ref: dict | None) -> dict[str, list[dict]]:
    """{row label: runs} of one VGG-16 baseline: the runs holding it whose setting is the default's apart
    from `baselines.*` (the default's own runs first, then experiments), one per seed, a row per trunk (the
    default's trunk first)."""
    held = [r for r in recs if method in r["run"].get("eval", {})
            and ref is not None and _same_setting(r["params"], ref["params"])]
    held.sort(key=lambda r: not _is_default(r))
    mine = _trunk(ref["params"]) if ref is not None else "VGG-16"
    groups = {label.format(trunk=t): [] for t in sorted({mine, *(_trunk(r["params"]) for r in held)},
                                                      key=lambda t: t != mine)}
    for r in reversed(held):  # one run per seed, the default's own first
        runs = groups[label.format(trunk=_trunk(r["params"]))]
        runs[:] = [x for x in runs if x["params"].get("seed") != r["params"].get("seed")] + [r]
    return groups


def table2(recs: list[dict], default: list[dict], stats: dict) -> str:
    """The paper's Table 2: the five baselines. The tracker, the ResNet FCN and its smoothing come from the
    default's runs (one per seed); each VGG-16 baseline from the runs that trained it (`_vgg_rows`)."""
    ref = _reference(default)
    rows = []
    for method, label in TABLE2:
        if method in ("tracker", "mesh", "fcn", "fcn_smooth"):
            groups = {label: [r for r in default if method in r["run"]["eval"]]}
        else:
            groups = _vgg_rows(recs, method, label, ref)
        rows += [(method, name, runs) for name, runs in groups.items()]
    tested = [(m, runs) for m, _, runs in rows if m != "fcn" and runs]
    stats = dict(zip([id(runs) for _, runs in tested], _holm_cells([_diff(runs, m, stats) for m, runs in tested])))
    body = [_table2_row(m, name, runs, stats.get(id(runs), ("–", "–"))) for m, name, runs in rows]
    return ("### Table 2 — the baselines (IoU %, test set)\n\n"
            + _table(["method", *FACE_COLS, "paper mIoU", "− ResNet FCN [95 % interval]", "P (Holm)", "seeds"], body)
            + "\n\n" + _note(len(tested)) + " One seed: the value alone, no spread; the ResNet FCN's standard "
              "deviation over its seeds is the scale a one-seed difference must beat. VGG-16-BN: VGG-16 with batch "
              "norm after each convolution (`baselines.batch_norm`), how the embedded default trains it from "
              "scratch.\n")


def _table2_row(method: str, label: str, runs: list[dict], stat: tuple[str, str]) -> list[str]:
    if not runs:
        return [label] + ["–"] * (len(FACE_COLS) + 2) + ["not run", "0"]
    # the landmark methods are not trained: their cells are one run's (the same in every seed's)
    untrained = method in ("tracker", "mesh")
    row = _method_row(label, runs[:1] if untrained else runs, method, stat)
    row.insert(len(FACE_COLS) + 1, f"{PAPER[method]:.2f}" if method in PAPER else "–")
    if untrained:
        row[-1] = "– (not trained)"
    return row


def readme(test_set: dict | None, run: Path, seeds: Path, experiments: Path, baselines: Path,
           counted: list[str], left_out: list[str]) -> str:
    """The README of the tables' folder: where they come from, and which record files counted (`counted`) and
    which were left out (`left_out`: made on another test set), per folder."""
    where = ("" if not test_set else f"\n({test_set.get('clips')} clips, {test_set.get('frames')} frames)")

    def names(files: list[str], folder: Path) -> str:
        mine = [f"`{Path(f).name}`" for f in files if Path(f).parent == Path(folder)]
        return ", ".join(mine) if mine else "none"
    listing = "\n".join(f"* `{folder}/`: {names(counted, folder)}; left out: {names(left_out, folder)}"
                        for folder in (seeds, experiments, baselines))
    return f"""# The paper's Tables 2–9 and the memory-recipe table

Written by the `tables` stage of dvc.yaml (`dvc repro`; `facemask.evaluation.tables`): do not edit, the
stage rewrites this folder whenever a record, params.yaml or the workspace's run changes (`dvc status` says
when these files are stale). Its sources are the workspace's run (`{run}`, with params.yaml) and the
committed records of runs made elsewhere (experiment refs stay in the repository that ran them):

* `{seeds}/seed_<N>.json` — the default's other training seeds (`facemask exp seeds`);
* `{experiments}/<experiment>.json` — the sweeps' experiments (`facemask exp sweep`, then
  `facemask exp record`); which runs they are and where they ran: `{experiments}/README.md`;
* `{baselines}/<experiment>.json` — Table 2's VGG-16 baselines (`facemask exp baselines`).

A record counts only when it was made on the workspace's test set{where}:
its run.json's `test_set` equals the workspace's, so a record of an earlier benchmark drops out instead of
mixing in. IoU in % on the test set; runs that differ only in the training seed form one row (mean ±
standard deviation over the seeds); differences from the baseline with 95 % intervals and P values: a
bootstrap over the row's training seeds and the test subjects (`facemask.evaluation.stats`), P Holm-adjusted
over each table's comparisons. `facemask exp tables` prints the same tables with this machine's finished DVC
experiments added.

The record files, counted or left out (made on another test set):

{listing}
"""


# ---------------------------------------------------------------------------------------------------
# Benchmark instances

#: The benchmarks table's comparisons: (label, method, baseline) — each a claim of the paper or of this project.
CLAIMS = (("primary − FCN", "primary", "fcn"), ("cascade − primary", "cascade", "primary"),
          ("streamed − primary", "primary_stream", "primary"), ("smoothing − FCN", "fcn_smooth", "fcn"),
          ("FCN via predict − FCN", "predict_fcn", "fcn"), ("cascade via predict − FCN via predict", "predict_cascade",
                                                              "predict_fcn"))


def benchmark_records(folder: Path) -> list[dict]:
    """The records of the default on other benchmark instances (``metrics/benchmarks/*.json``: their own params,
    their own test sets), by file name."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        run = _read_json(path)
        if "eval" in run:
            out.append(record(run.get("experiment") or path.stem, run.get("params") or {}, run, run.get("rev"),
                              source=str(path)))
    return out


def _instance_rows(runs: list[dict], stats: dict) -> list[str]:
    """One instance's cells: the methods' mIoU (mean ± std over seeds), each claim's difference [interval] and P
    (Holm over the instance's claims), the probes passed, the pixels the memory changes."""
    miou = lambda m: _cell([(r["run"]["eval"].get(m) or {}).get("miou") for r in runs])  # noqa: E731
    cond = lambda m, c: _cell([_dig(r["run"], "conditions", c, m, "miou") for r in runs])  # noqa: E731
    diffs = _holm_cells([_diff(runs, m, stats, base) for _, m, base in CLAIMS])
    passed = [str(sum(bool(_dig(r["run"], "memory", "probes", k, "checks", "primary", "pass")) for r in runs))
              if any(_dig(r["run"], "memory", "probes", k) for r in runs) else "–" for k in PROBES]
    changed = _cell([_dig(r["run"], "memory", "ablation", "methods", "primary", "changed_share") for r in runs])
    return [miou("fcn"), miou("primary"), miou("primary_stream"), miou("cascade"), miou("predict_cascade"),
            cond("hold", "degraded_with_clean_past"), cond("ceiling", "degraded_with_clean_past"),
            cond("primary", "degraded_with_clean_past"), *(f"{d}, P {p}" if p != "n/a" else d for d, p in diffs),
            " / ".join(passed) + f" of {len(runs)}", changed]


def benchmarks_table(default: list[dict], others: list[dict], stats: dict) -> str:
    """The default's verdicts per benchmark instance (``data.seed``): the workspace's instance (its runs of the
    default) and each other instance's recorded runs."""
    instances = {_instance(default[0]["params"]): default} if default else {}
    for r in others:
        instances.setdefault(_instance(r["params"]), [])
        runs = instances[_instance(r["params"])]
        runs[:] = [x for x in runs if x["params"].get("seed") != r["params"].get("seed")] + [r]
    title = "### The default on several benchmark instances (IoU %, test set of each)\n\n"
    if not instances:
        return title + "(no run)\n"
    head = ["data.seed", "seeds", "FCN", "primary", "primary, streamed", "cascade", "cascade via predict",
            "hold baseline¹", "ceiling¹", "primary¹", *(c for c, _, _ in CLAIMS),
            f"probes passed ({' / '.join(PROBES)})", "pixels memory changes (%)"]
    body = [[str(k), str(len(runs)), *_instance_rows(runs, stats)] for k, runs in sorted(instances.items())]
    verdicts = _verdicts({k: [_diff(runs, m, stats, base) for _, m, base in CLAIMS] for k, runs in instances.items()})
    return (title + _table(head, body) + "\n\n" + verdicts + "\n\n¹ on the degraded frames with a clean frame earlier in their window. "
            "Differences: mean over the instance's training seeds [95 % interval] (P, Holm-adjusted over the "
            f"instance's {len(CLAIMS)} comparisons); bootstrap over training seeds and test subjects "
            "(facemask/evaluation/stats.py). The development instance is data.seed 0 (every choice was made on its "
            "validation split); data.seed 1 is where a collapse was found and fixed; the others were looked at "
            "only for these verdicts.\n")


def _instance(params: dict) -> int:
    return int(params.get("data.seed", 0) or 0)


def _verdicts(diffs: dict[int, list[dict | None]]) -> str:
    """Per claim, where it holds: on an instance, the difference is above 0 with P < 0.05 after Holm's adjustment
    over that instance's comparisons (`CLAIMS`); the reverse when below 0 with such P; else not shown."""
    lines = ["Verdicts (P < 0.05 after Holm's adjustment over each instance's comparisons):", ""]
    for i, (label, _, _) in enumerate(CLAIMS):
        kinds: dict[str, list[str]] = {"holds": [], "the reverse": [], "not shown": [], "not run": []}
        for k in sorted(diffs):
            ps = [d["p"] for d in diffs[k] if d is not None]
            adjusted = dict(zip([j for j, d in enumerate(diffs[k]) if d is not None], holm(ps) if ps else []))
            d = diffs[k][i]
            if d is None:
                kinds["not run"].append(str(k))
            elif adjusted[i] < 0.05:
                kinds["holds" if d["estimate"] > 0 else "the reverse"].append(str(k))
            else:
                kinds["not shown"].append(str(k))
        said = "; ".join(f"{v} on data.seed {', '.join(ks)}" for v, ks in kinds.items() if ks)
        everywhere = kinds["holds"] and not any(kinds[v] for v in ("the reverse", "not shown", "not run"))
        lines.append(f"* {label} > 0: " + ("**holds on every instance**" if everywhere else said))
    return "\n".join(lines)

"""The paper's experiment sweeps (Sect. 4.3) as DVC experiments: which ``-S`` overrides define each table's runs.

Every experiment sets all the keys that define it (not just the one that varies), so it means the same
whatever the workspace's params.yaml holds, and `facemask.evaluation.tables` recognises it by its params
alone. An experiment asked for by two tables (Table 3's Adam run is Table 5's cross-entropy run) is listed
once. Each ``-S`` key changes only the stages that declare it in dvc.yaml: the ConvLSTM keys rerun
``train_convlstm@*``, ``fuse`` and ``evaluate``; ``regions.eyes.gamma`` only ``train_convlstm@eyes``,
``fuse`` and ``evaluate``; the FCNs and the data stages come from the run-cache.

* Table 3 — ConvLSTM alone trained (the rest of the converted FCN frozen), cross-entropy, Adam vs RMSprop.
* Table 5 — same freezing, Adam: cross-entropy vs the multi-class IoU loss (Eq. 3) vs SegLoss (Eq. 7)
  with the L_p / L_n of Eq. 8 or Eq. 9 for g in `G_VALUES`, on the raw scores or the softmax (`READINGS`).
* Tables 6, 7, 8 — the full ConvLSTM-FCN (layer-wise learning rates) with SegLoss Eq. 9, g = 0 (or another
  of `FULL_LOSSES`), and γ in `GAMMAS` for the primary (face), eye and mouth models respectively.
* memory — each departure from the paper's ConvLSTM recipe alone and together (`RECIPES`; the memory table).
* benchmarks — the default on other benchmark instances (`BENCHMARKS`: ``data.seed`` values that nobody looked at
  while developing), recorded in ``metrics/benchmarks/`` (the benchmarks table).

With seeds, every experiment is listed once per training seed (``-S seed=N``, name suffix ``-s<N>``); the
tables then show mean ± std over the seeds.
"""
from __future__ import annotations

from facemask.core import errors

G_VALUES = (0.0, 0.5)
READINGS = ("scores", "softmax")
GAMMAS = (0.01, 0.02, 0.05, 0.1)
LFUNS = ("eq8", "eq9")

_FROZEN = {"train.convlstm.freeze_backbone": "true"}
#: Tables 6-8: the full ConvLSTM-FCN (layer-wise learning rates) with the paper's loss, SegLoss Eq. 9, g = 0
#: (on the raw scores, as the paper's example); another may be chosen (e.g. the best of Table 5).
FULL_LOSSES = {
    "paper": {"train.convlstm.loss": "segloss", "train.convlstm.lfun": "eq9", "train.convlstm.g": "0.0",
              "train.convlstm.segloss_on": "scores"},
    "softmax": {"train.convlstm.loss": "segloss", "train.convlstm.lfun": "eq9", "train.convlstm.g": "0.0",
                "train.convlstm.segloss_on": "softmax"},
    "ce": {"train.convlstm.loss": "ce"},
}

#: Benchmark instances for the verdicts: ``data.seed`` values that no choice was made on (0 is the development
#: instance every choice was made on, 1 the one a reviewer's collapse was found and fixed on).
BENCHMARKS = (2, 3)
#: The memory table's departures from the paper's ConvLSTM recipe (all layers, cross-entropy, no head-only phase,
#: no corrupted windows), one at a time and together; the default (the ConvLSTM alone, the IoU loss, both) and
#: the ConvLSTM alone with cross-entropy (Tables 3 and 5) are runs of their own sweeps.
RECIPES = {"paper": ("false", "ce", "0", "0.0"), "head": ("false", "ce", "1500", "0.0"),
           "corrupt": ("false", "ce", "0", "0.5"), "both": ("false", "ce", "1500", "0.5"),
           "alone-iou-nohead": ("true", "iou", "0", "0.5")}

Experiment = tuple[str, dict[str, str]]


def _num(x: float) -> str:
    return f"{x:g}"


def sweeps(full_loss: str = "paper", g_values=G_VALUES, readings=READINGS, gammas=GAMMAS,
           lfuns=LFUNS) -> dict[str, list[Experiment]]:
    """Table -> [(experiment name, {param key: value})], without the seed; the grids default to the
    module's constants (the paper's), smaller ones make a cheaper sweep."""
    t3 = [(f"t3-{opt}", {**_FROZEN, "train.convlstm.loss": "ce", "train.convlstm.optimizer": opt})
          for opt in ("adam", "rmsprop")]
    adam = {**_FROZEN, "train.convlstm.optimizer": "adam"}
    t5 = [("t5-ce", {**adam, "train.convlstm.loss": "ce"}), ("t5-iou", {**adam, "train.convlstm.loss": "iou"})]
    t5 += [(f"t5-{lfun}-g{_num(g)}-{on}", {**adam, "train.convlstm.loss": "segloss", "train.convlstm.lfun": lfun,
                                           "train.convlstm.g": _num(g), "train.convlstm.segloss_on": on})
           for lfun in lfuns for g in g_values for on in readings]
    keys = ("train.convlstm.freeze_backbone", "train.convlstm.loss", "train.convlstm.head_steps",
            "train.convlstm.corrupt")
    out = {"table3": t3, "table5": t5,
           "memory": [(f"recipe-{name}", {"train.convlstm.optimizer": "adam", **dict(zip(keys, values))})
                      for name, values in RECIPES.items()],
           "benchmarks": [(f"bench-d{d}", {"data.seed": str(d)}) for d in BENCHMARKS]}
    full = {"train.convlstm.freeze_backbone": "false", "train.convlstm.optimizer": "adam", "train.convlstm.head_steps": "0",
            "train.convlstm.corrupt": "0.0", **FULL_LOSSES[full_loss]}
    for table, region in (("table6", "face"), ("table7", "eyes"), ("table8", "mouth")):
        out[table] = [(f"t{table[-1]}-{region}-gamma{_num(g)}-{full_loss}",
                       {**full, f"regions.{region}.gamma": _num(g)}) for g in gammas]
    return out


def experiments(tables: list[str], extra: dict[str, str] | None = None, seeds: list[int] | None = None,
                full_loss: str = "paper", **grids) -> list[Experiment]:
    """The experiments of `tables` for each of `seeds` (default: the workspace's seed only), each once (the
    first name wins), with `extra` overrides added; `grids` as `sweeps`.

    Raises:
        BadInputError: a table without a sweep.
    """
    all_sweeps = sweeps(full_loss, **grids)
    unknown = [t for t in tables if t not in all_sweeps]
    if unknown:
        raise errors.BadInputError(f"unknown table(s) {', '.join(unknown)}; tables with a sweep: "
                                   f"{', '.join(sorted(all_sweeps))}")
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

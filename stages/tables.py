"""Stage `tables`: the paper's Tables 2-9 and the memory-recipe table (markdown) from the committed records.

    python -m stages.tables --run metrics/eval/run.json --seeds metrics/seeds --experiments metrics/experiments \\
        --baselines metrics/baselines --benchmarks metrics/benchmarks --out metrics/tables

Reads the workspace's run (``--run``: the evaluate stage's run.json; its params from params.yaml) and the
records of runs made elsewhere (``--seeds``: the default's other seeds; ``--experiments``, ``--baselines``:
experiments with their params), keeps those made on the workspace's test set, and writes, with the records
of the default on other benchmark instances (``--benchmarks``, each on its own test set),
``--out``/{table2..table9, memory, benchmarks, README}.md (`facemask.evaluation.tables`), the folder replaced as a whole.
"""
from __future__ import annotations

from facemask.core.io import atomic_dir
from facemask.evaluation.tables import benchmark_records, committed_records, readme, tables, workspace_record
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("tables", "run", "seeds", "experiments", "baselines", "benchmarks", "out", argv=argv)
    log = setup_logging()
    folders = (args.seeds, args.baselines, args.experiments)
    workspace = workspace_record(args.run, load_params().model_dump())
    recs = [workspace, *committed_records(workspace, folders[0], folders[1:])]
    counted = [r["source"] for r in recs if r["source"]]
    left_out = sorted(str(p) for f in folders for p in f.glob("*.json") if str(p) not in counted)
    md = tables(recs, benchmark_records(args.benchmarks))
    with atomic_dir(args.out) as out:
        for name, text in md.items():
            (out / f"{name}.md").write_text(text)
        (out / "README.md").write_text(readme(workspace["run"].get("test_set"), args.run, args.seeds,
                                              args.experiments, args.baselines, counted, left_out))
    log.info("tables: %d tables from %d records (%d left out: another test set) -> %s", len(md), len(recs),
             len(left_out), args.out)


if __name__ == "__main__":
    run_stage(main)

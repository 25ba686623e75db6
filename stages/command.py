"""A DVC stage's command exactly as dvc.yaml gives it, its ``${...}`` filled in (dvc.yaml's ``vars``, params.yaml,
the matrix item): what `dvc repro` runs, for running a stage by hand or on a second node.

    python -m stages.command train_convlstm@face
    python -m stages.command train_fcn@eyes --launcher "torchrun --nnodes 2 --nproc_per_node 4 ..."
"""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _lookup(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def stage_spec(stage: str, launcher: str | None = None, root: Path = ROOT) -> dict:
    """dvc.yaml's entry of `stage` (``name`` or ``name@item`` of a matrix stage) with every ``${...}`` of its
    cmd, deps and outs filled in; `launcher` replaces ``train.launcher``."""
    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    name, _, item = stage.partition("@")
    if name not in dvc["stages"]:
        raise SystemExit(f"python -m stages.command: no stage {name!r} in dvc.yaml; stages: {', '.join(dvc['stages'])}")
    spec = dvc["stages"][name]
    values = {k: v for d in dvc.get("vars", []) for k, v in d.items()}
    if "matrix" in spec:
        (key, items), = spec["matrix"].items()
        if item not in items:
            raise SystemExit(f"python -m stages.command: {name} takes @{'|'.join(map(str, items))}, got {stage!r}")
        values["item"] = {key: item}
    if launcher is not None:
        values["train"] = {**params.get("train", {}), "launcher": launcher}

    def fill(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(_lookup({**params, **values}, m.group(1))), text)

    paths = lambda entries: [fill(e if isinstance(e, str) else next(iter(e))) for e in entries]  # noqa: E731
    return {"cmd": fill(spec["cmd"]), "deps": paths(spec.get("deps", [])), "outs": paths(spec.get("outs", []))}


def stages(root: Path = ROOT) -> list[str]:
    """Every stage of dvc.yaml, a matrix stage once per item (``train_fcn@face``, ...)."""
    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    out = []
    for name, spec in dvc["stages"].items():
        (_, items), = spec["matrix"].items() if "matrix" in spec else ((None, [None]),)
        out += [name if item is None else f"{name}@{item}" for item in items]
    return out


def render(stage: str, launcher: str | None = None, root: Path = ROOT) -> str:
    """The cmd of `stage` with its ``${...}`` filled in (`stage_spec`)."""
    return stage_spec(stage, launcher, root)["cmd"]


def module_args(stage: str, launcher: str | None = None, root: Path = ROOT) -> list[str]:
    """``-m stages.<script> <args...>``: the stage's command after its launcher."""
    words = shlex.split(render(stage, launcher, root))
    return words[words.index("-m"):]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.command", description=__doc__.splitlines()[0])
    ap.add_argument("stage", help="a stage of dvc.yaml: download, masks, clips, train_fcn@face, ..., fuse, evaluate")
    ap.add_argument("--launcher", help="instead of params.yaml's train.launcher")
    args = ap.parse_args(argv)
    print(render(args.stage, args.launcher))


if __name__ == "__main__":
    main()

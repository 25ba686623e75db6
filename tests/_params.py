"""The project's params.yaml with a few keys changed, for tests that run a stage in a folder of their own.

Stages check the whole file against `facemask.core.params` (every section is required), so a test starts
from the real one rather than writing the few keys its stage reads.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from facemask.core import paramfile
from facemask.core.params import Params

ROOT = Path(__file__).resolve().parent.parent
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
#: A change's value that removes the key.
DELETE = object()


def params(**changes) -> dict:
    """The project's params with ``{"a.b.c": value}`` changes (dotted keys; `DELETE` removes one)."""
    p = copy.deepcopy(PARAMS)
    for key, value in changes.items():
        *path, last = key.split(".")
        tree = p
        for k in path:
            tree = tree[k]
        if value is DELETE:
            del tree[last]
        else:
            tree[last] = value
    return p


def write_params(folder: Path, **changes) -> Path:
    """`params` written to ``folder/params.yaml``; returns its path."""
    path = Path(folder) / "params.yaml"
    path.write_text(yaml.safe_dump(params(**changes), sort_keys=False))
    return path


def config_dict(config: str = "params.yaml") -> dict:
    """A project configuration as a complete params mapping: ``params.yaml``, or an overlay such as
    ``configs/paper.yaml`` applied to the defaults (as `facemask params apply` writes it)."""
    path = ROOT / config
    return (paramfile.load_params(path) if config == "params.yaml" else paramfile.load_overlay(path)).model_dump()


def typed(p: dict | None = None, **changes) -> Params:
    """`p` (default: the project's params with `changes`) validated: what a stage receives."""
    return paramfile.validate(params(**changes) if p is None else p, "test params")

"""The project's scripts and docstrings, read as text: what they name exists, and nothing patches the import path.

* The package is installed (editable, ``pip install -e .``), so no script, benchmark or test puts a folder on
  ``sys.path`` by hand: a script runs with the installed package, a test imports its helpers (``tests/_*.py``)
  through pytest's rootdir.
* Every module or name written as ``facemask.<layer>.<module>[.<name>]`` in the package, the stages, the
  scripts and the benchmarks exists, and so does every project file a path names (``scripts/x.py``,
  ``facemask/core/params.py``): a module renamed or removed leaves no reader pointed at nothing.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Files of a change that is not in yet, per check: each must still fail it (strict), then its mark goes.
PENDING_PATH: set[str] = set()
PENDING_NAMES: set[str] = set()
DOTTED = re.compile(r"\bfacemask(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(r"\b(?:facemask|stages|scripts|bench|tests)/[\w/]+\.(?:py|sh)\b")


def _files(*folders: str, suffixes=(".py", ".sh")) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for f in folders for p in (ROOT / f).rglob("*")
                  if p.suffix in suffixes and "__pycache__" not in p.parts)


def _param(path: str, pending: set[str]):
    return pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="pending")) if path in pending else path


@pytest.mark.parametrize("path", [_param(p, PENDING_PATH) for p in _files("bench", "scripts", "tests")])
def test_no_script_or_test_patches_the_import_path(path):
    if path == "tests/test_sources.py":
        return
    lines = [f"{path}:{i}: {ln.strip()}" for i, ln in enumerate((ROOT / path).read_text().splitlines(), 1)
             if re.search(r"\bsys\s*\.\s*path\b", ln)]
    assert not lines, "\n".join(lines)


def resolves(dotted: str) -> bool:
    """Whether ``facemask.a.b.c`` is a module, or a name (an attribute chain) in one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_the_name_check_finds_a_missing_module_and_a_missing_name():
    assert resolves("facemask.core.paramfile.load_params") and resolves("facemask.evaluation.tables")
    assert not resolves("facemask.mp68") and not resolves("facemask.core.params.no_such_name")


@pytest.mark.parametrize("path", [_param(p, PENDING_NAMES) for p in _files("facemask", "stages", "scripts", "bench")])
def test_every_module_and_file_a_source_names_exists(path):
    text = (ROOT / path).read_text()
    names = sorted({m.rstrip(".") for m in DOTTED.findall(text)})
    missing = [n for n in names if "X" not in n.split(".") and not resolves(n)]   # X: a placeholder
    missing += [p for p in sorted(set(PATH.findall(text))) if not (ROOT / p).exists()]
    assert not missing, f"{path} names what does not exist: {missing}"

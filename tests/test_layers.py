"""The package's layering, its imports, and the DVC stages' dependencies, read from the source.

* Layers (`facemask.LAYERS`): a module imports only from its own layer or those before it; no project import
  sits inside a function (where it would hide an import circle); there are no import circles; no module
  imports another module's private (underscored) name; every subpackage declares ``__all__`` (its modules).
* DVC: for every stage of dvc.yaml, the project modules its command imports, transitively (package
  ``__init__`` files included: they run too), are covered by the stage's ``deps`` (a folder covers its
  files). A module missing from a stage's deps would let DVC serve outputs the code on main would no
  longer produce.
* Short functions: none in ``facemask/`` over `MAX_LINES` lines.
"""
from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest

import facemask
from stages.command import stage_spec, stages

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("facemask", "stages")
MAX_LINES = 80


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (a package's ``__init__.py``), or None when it is not one."""
    path = root / module.replace(".", "/")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, root: Path = ROOT) -> list[tuple[ast.AST, str]]:
    """(import node, imported project module) of a file: ``from a.b import c`` gives ``a.b``, and ``a.b.c``
    when that is a module; every package above a module counts too (its ``__init__`` runs first)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES and module_file(name, root):
                parts = name.split(".")
                out += [(node, ".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return out


def imported_files(module: str, root: Path = ROOT) -> set[Path]:
    """Every project file that running `module` (``python -m module``) imports, transitively."""
    parts = module.split(".")
    todo, seen = [".".join(parts[:i]) for i in range(1, len(parts) + 1)], set()
    while todo:
        name = todo.pop()
        path = module_file(name, root)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += [m for _, m in project_imports(path, root)]
    return seen


def package_files() -> list[Path]:
    return sorted((ROOT / "facemask").rglob("*.py"))


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return facemask.LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in facemask.LAYERS else None


# ---------------------------------------------------------------------------------------------------
# Layers


def test_every_module_imports_only_its_own_layer_or_those_before_it():
    wrong = []
    for path in package_files():
        mod, layer = module_name(path), layer_of(module_name(path))
        for _, imported in project_imports(path):
            other = layer_of(imported)
            if layer is not None and other is not None and other > layer:
                wrong.append(f"{mod} ({facemask.LAYERS[layer]}) imports {imported} ({facemask.LAYERS[other]})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_project_import_is_hidden_in_a_function():
    hidden = []
    for path in [*package_files(), *sorted((ROOT / "stages").glob("*.py"))]:
        top = {n.lineno for n in ast.parse(path.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))}
        hidden += [f"{module_name(path)}:{node.lineno} imports {m}" for node, m in project_imports(path)
                   if node.lineno not in top]
    assert not hidden, "\n".join(sorted(set(hidden)))


def test_no_import_circles():
    graph = {module_name(p): {m for _, m in project_imports(p) if m != module_name(p)} for p in package_files()}
    state: dict[str, int] = {}
    circles = []

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                circles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert not circles, "\n".join(circles)


def test_no_private_name_is_imported_from_another_module():
    private = []
    for path in [*package_files(), *sorted((ROOT / "stages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "facemask":
                private += [f"{module_name(path)}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert not private, "\n".join(private)


def test_every_subpackage_declares_its_modules_in_all():
    for init in sorted((ROOT / "facemask").rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        declared = [n for n in tree.body if isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
        assert declared, f"{init}: no __all__"
        if init.parent.name == "facemask":
            continue
        modules = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"} | \
                  {p.name for p in init.parent.iterdir() if (p / "__init__.py").is_file()}
        assert set(ast.literal_eval(declared[0].value)) == modules, init
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], \
            f"{init} imports: importing one module would load its whole layer"


def test_no_function_in_the_package_is_long():
    long = []
    for path in package_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_LINES:
                long.append(f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, "\n".join(long)


# ---------------------------------------------------------------------------------------------------
# DVC: deps that match the imports


def uncovered(specs: dict[str, dict], root: Path = ROOT) -> dict[str, list[str]]:
    """Per stage (``{stage: {"cmd", "deps"}}``), the project files its command imports that none of its deps covers."""
    missing = {}
    for name, spec in specs.items():
        words = shlex.split(spec["cmd"])
        files = imported_files(words[words.index("-m") + 1], root)
        covered = [root / d for d in spec["deps"]]
        gaps = sorted(str(f.relative_to(root)) for f in files
                      if not any(f == d or d in f.parents for d in covered))
        if gaps:
            missing[name] = gaps
    return missing


def test_every_stage_depends_on_the_modules_its_command_imports():
    missing = uncovered({stage: stage_spec(stage) for stage in stages()})
    assert not missing, "dvc.yaml deps miss modules the stage imports:\n" + "\n".join(
        f"  {stage}: {', '.join(files)}" for stage, files in missing.items())


def test_the_deps_check_finds_a_module_left_out(tmp_path):
    """The check itself: a stage whose deps lack one module its script imports (through another), and a
    folder dep that covers them all."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "facemask" / "core").mkdir(parents=True)
    (tmp_path / "stages" / "__init__.py").write_text("")
    (tmp_path / "stages" / "s.py").write_text("from facemask.core.a import f\n")
    (tmp_path / "facemask" / "__init__.py").write_text("")
    (tmp_path / "facemask" / "core" / "__init__.py").write_text("")
    (tmp_path / "facemask" / "core" / "a.py").write_text("from facemask.core import b\n\ndef f():\n    return b\n")
    (tmp_path / "facemask" / "core" / "b.py").write_text("X = 1\n")
    spec = {"cmd": "python -m stages.s", "deps": [
        "stages/__init__.py", "stages/s.py", "facemask/__init__.py", "facemask/core/__init__.py", "facemask/core/a.py"]}
    assert uncovered({"s": spec}, tmp_path) == {"s": ["facemask/core/b.py"]}
    spec["deps"][3:] = ["facemask/core"]
    assert uncovered({"s": spec}, tmp_path) == {}


@pytest.mark.parametrize("stage", ["train_fcn@face", "train_convlstm@face", "train_baselines"])
def test_the_training_stages_import_no_inference_or_app_code(stage):
    """What the layering buys DVC: a change to the cascade or to `facemask predict` reruns no training."""
    words = shlex.split(stage_spec(stage)["cmd"])
    files = imported_files(words[words.index("-m") + 1])
    assert not [f for f in files if f.parent.name in ("inference", "app", "evaluation")]

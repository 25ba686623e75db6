"""Models and data travel through a DVC remote: `dvc push` here, `dvc repro --pull` in a fresh clone restores
every unchanged stage's outputs instead of rerunning it (no retraining), with the project's `.dvc/config`
(cache links). A local directory stands for S3 / GCS / Azure (the `.[s3]`, `.[gs]`, `.[azure]` extras)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _project import copy_project, set_params

ROOT = Path(__file__).resolve().parent.parent

#: A stand-in for the pipeline's shape: a data stage, then a "training" that counts its runs in $RUNS.
TOY_DVC = {"stages": {
    "clips": {"cmd": "python make.py", "deps": ["make.py"], "params": ["n"], "outs": ["data/clips"]},
    "train": {"cmd": "python train.py", "deps": ["train.py", "data/clips"], "outs": ["models/face/fcn.pt"],
              "metrics": [{"metrics/train.json": {"cache": False}}]},
}}
MAKE = """import os, yaml
n = yaml.safe_load(open("params.yaml"))["n"]
os.makedirs("data/clips/face/train", exist_ok=True)
open("data/clips/face/train/crops_jpg.npy", "wb").write(bytes(range(256)) * n)
"""
TRAIN = """import json, os
open(os.environ["RUNS"], "a").write("trained\\n")
data = open("data/clips/face/train/crops_jpg.npy", "rb").read()
os.makedirs("models/face", exist_ok=True); os.makedirs("metrics", exist_ok=True)
open("models/face/fcn.pt", "wb").write(data[::-1])
json.dump({"loss": len(data)}, open("metrics/train.json", "w"))
"""


def _env(**extra) -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_TEST="true", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t", **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cmd, cwd, env=None, timeout=600) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def _dvc(*args, cwd, env=None, timeout=600) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd, env, timeout)


def _push_clone_pull(repo: Path, tmp: Path, env: dict, timeout: int = 600) -> tuple[Path, str]:
    """Commit `repo`'s results, push outputs and run-cache to a directory remote, clone, `dvc repro --pull`."""
    remote = tmp / "remote"
    _dvc("remote", "add", "-d", "store", str(remote), cwd=repo, env=env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "results"], repo, env)
    _dvc("push", cwd=repo, env=env, timeout=timeout)
    _dvc("push", "--run-cache", cwd=repo, env=env, timeout=timeout)
    clone = tmp / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp, env)
    out = _dvc("repro", "--pull", cwd=clone, env=env, timeout=timeout)
    return clone, out


def _linked(path: Path) -> bool:
    """A workspace file DVC linked to its cache (hard link or symlink), as `.dvc/config`'s cache.type asks."""
    return path.is_symlink() or path.stat().st_nlink > 1


def test_project_config_links_the_cache():
    config = (ROOT / ".dvc" / "config").read_text()
    assert "type = reflink,hardlink,symlink" in config  # no copies: one copy of the data on disk


@pytest.mark.parametrize("url, extra", [("s3://bucket/facemask", "s3"), ("gs://bucket/dvc", "gs"),
                                        ("azure://container/dvc", "azure"), ("/mnt/shared/dvc", ""), ("", "")])
def test_remote_urls_map_to_the_extras_with_their_plugins(url, extra):
    got = _run(["bash", str(ROOT / "scripts" / "remote_extra.sh"), url], ROOT).strip()
    assert got == extra
    if extra:  # the extra exists and pins DVC's plugin for that storage
        import tomllib

        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        (pin,) = extras[extra]
        assert pin.startswith(f"dvc-{extra}==")


def test_pr_workflow_installs_the_remotes_plugin():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pr-metrics.yml").read_text())
    setup = next(s for s in wf["jobs"]["metrics"]["steps"] if s.get("name", "").startswith("Set up"))
    assert "scripts/remote_extra.sh \"$DVC_REMOTE_URL\"" in setup["run"] and 'pip install -q -e ".[$extra]"' in setup["run"]
    assert setup["env"]["DVC_REMOTE_URL"] == "${{ secrets.DVC_REMOTE_URL }}"


def test_push_then_repro_pull_in_a_fresh_clone_does_not_retrain(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    runs = tmp_path / "runs.txt"
    env = _env(RUNS=str(runs))
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    _dvc("init", "-q", cwd=repo, env=env)
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(TOY_DVC, sort_keys=False))
    (repo / "params.yaml").write_text("n: 3\n")
    (repo / "make.py").write_text(MAKE)
    (repo / "train.py").write_text(TRAIN)
    _dvc("repro", cwd=repo, env=env)
    assert runs.read_text() == "trained\n"
    assert _linked(repo / "models" / "face" / "fcn.pt")

    clone, out = _push_clone_pull(repo, tmp_path, env)
    assert runs.read_text() == "trained\n", out           # restored from the remote, not retrained
    assert "Running stage" not in out, out
    for f in ("models/face/fcn.pt", "data/clips/face/train/crops_jpg.npy"):
        assert (clone / f).read_bytes() == (repo / f).read_bytes(), f
        assert _linked(clone / f), f
    assert "Data and pipelines are up to date" in _dvc("status", cwd=clone, env=env)

    (clone / "params.yaml").write_text("n: 4\n")            # a changed input: reruns what depends on it
    out = _dvc("repro", "--pull", cwd=clone, env=env)
    assert runs.read_text() == "trained\ntrained\n" and "Running stage 'train'" in out


@pytest.mark.slow
def test_the_real_pipeline_restores_from_a_remote_without_retraining(tmp_path):
    """The whole pipeline at a tiny size, pushed; a fresh clone's `dvc repro --pull` runs no stage."""
    repo = copy_project(tmp_path / "repo")
    env = _env(PYTHONPATH=str(repo))
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    set_params(repo / "params.yaml", {
        "data.synthetic.videos": 8, "data.synthetic.frames": 30, "clips.input_size": 32, "train.fcn.epochs": 1,
        "train.fcn.batch_size": 4, "train.fcn.max_steps_per_epoch": 2, "train.convlstm.epochs": 1,
        "train.convlstm.max_steps_per_epoch": 2, "evaluate.examples": 2})
    _dvc("repro", cwd=repo, env=env, timeout=3000)
    models = sorted((repo / "models").rglob("*.pt"))
    assert len(models) == 6 and all(_linked(m) for m in models)

    clone, out = _push_clone_pull(repo, tmp_path, env, timeout=3000)
    assert "Running stage" not in out, out
    for m in models:
        assert (clone / m.relative_to(repo)).read_bytes() == m.read_bytes()
    assert (clone / "metrics" / "eval.json").read_text() == (repo / "metrics" / "eval.json").read_text()

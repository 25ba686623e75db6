"""Experiments: the paper's configuration, params that `dvc exp run -S` can change, the queued
sweeps, the tables made from `dvc exp show`, and the metric/param diff posted on pull requests."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import exp_tables  # noqa: E402
import sweep  # noqa: E402
from _project import copy_project, set_params  # noqa: E402

from facemask.core.paramfile import load_overlay  # noqa: E402


def _leaves(d, prefix=""):
    """{"a.b.c": value} for every leaf of a nested mapping."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_leaves(v, key) if isinstance(v, dict) else {key: v})
    return out


def _env():
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_TEST="true", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cmd, cwd, **kw):
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _dvc(*args, cwd):
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _run(["git", "init", "-q", "-b", "main"], path)
    _dvc("init", "-q", cwd=path)
    return path


# ---------------------------------------------------------------------------------------------------
# The paper's configuration


def test_paper_config_names_only_keys_whose_values_differ():
    """configs/paper.yaml is an overlay: every key it names exists and differs from params.yaml's value."""
    params = _leaves(yaml.safe_load((ROOT / "params.yaml").read_text()))
    paper = _leaves(yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text()))
    assert paper and set(paper) <= set(params)
    assert [k for k, v in paper.items() if v == params[k]] == []


def test_paper_config_holds_the_papers_hyper_parameters():
    p = _leaves(load_overlay(ROOT / "configs" / "paper.yaml").model_dump())
    expected = {
        "data.source": "300vw",                  # real 300VW (Sect. 4.1)
        "masks.crop_scale": 1.3,                 # the authors' crop
        "clips.length": 30,                      # 1-s sequences at 30 fps
        "clips.fraction": 0.1,                   # 10 % of each video's 1-s sequences
        "clips.split": [93, 9, 12],              # train / val / test videos
        "clips.input_size.face": 320, "clips.input_size.eyes": 320,   # "resized to 320 by 320"
        "clips.input_size.mouth": 320,
        "clips.window": 5,                       # zoom box fixed for every 5 frames
        "model.encoder": "resnet50",             # FCN on ResNet-50
        "model.output_stride": 16,
        "model.peephole": True,                  # Eq. 1
        "train.fcn.epochs": 80,
        "train.fcn.batch_size": 16,
        "train.fcn.lr": 0.001,                   # with linear decay
        "train.convlstm.epochs": 60,
        "train.convlstm.T": 5,
        "train.convlstm.N": 2,
        "train.convlstm.lr": 0.001,              # ConvLSTM; others 0.001 * gamma
        "train.convlstm.optimizer": "adam",
        "train.convlstm.freeze_backbone": False,
        "train.convlstm.loss": "segloss",
        "train.convlstm.lfun": "eq9",
        "train.convlstm.g": 0.0,
        "regions.face.classes": 5,
        "regions.eyes.classes": 2,
        "regions.mouth.classes": 3,
        "regions.face.gamma": 0.05,              # the primary model of the final predictions
        "regions.eyes.gamma": 0.02,
        "regions.mouth.gamma": 0.02,
        "fuse.smooth_sigma": 0.6,                # temporal smoothing baseline
        "evaluate.groups": 10,                   # 80 test sequences in 10 groups
    }
    for key, value in expected.items():
        assert p[key] == value, f"configs/paper.yaml {key} = {p[key]!r}, the paper's is {value!r}"
    assert p["clips.window"] == p["train.convlstm.T"]


# ---------------------------------------------------------------------------------------------------
# Params and dvc.yaml


def _declared(dvc_yaml: dict) -> dict[str, set[str]]:
    """Stage name -> the params.yaml keys it declares (matrix/foreach expanded), and ${} keys of its cmd."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        items = [{}]
        if "matrix" in stage:
            (var, values), = stage["matrix"].items()
            items = [{var: v} for v in values]
        for item in items:
            keys = set()
            for p in stage.get("params", []):
                for k in (p if isinstance(p, dict) else [p]):
                    if isinstance(p, dict):
                        keys.update(p[k])
                    else:
                        keys.add(k)
            keys |= {m for m in re.findall(r"\$\{([\w.]+)\}", stage["cmd"]) if not m.startswith("item.")}
            expanded = {re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), k) for k in keys}
            out[f"{name}@{'-'.join(map(str, item.values()))}" if item else name] = expanded
    return out


def _covered(key: str, declared: set[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def test_every_param_is_declared_by_a_stage():
    """A key no stage declares would be ignored by `dvc exp run -S` (or read behind DVC's back)."""
    params = _leaves(yaml.safe_load((ROOT / "params.yaml").read_text()))
    declared = set().union(*_declared(yaml.safe_load((ROOT / "dvc.yaml").read_text())).values())
    orphans = [k for k in params if not _covered(k, declared)]
    assert not orphans, f"params no stage declares: {orphans}"


def test_sweep_keys_exist_and_reach_only_their_stages():
    params = _leaves(yaml.safe_load((ROOT / "params.yaml").read_text()))
    stages = _declared(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    exps = sweep.experiments(list(sweep.sweeps()))
    # Table 5: CE, IoU, SegLoss Eq. 8 / Eq. 9 x g x reading; its CE run is Table 3's Adam run
    assert len(exps) == 2 + 2 + 2 * len(sweep.G_VALUES) * len(sweep.READINGS) - 1 + 3 * len(sweep.GAMMAS)
    seeded = sweep.experiments(["table3"], seeds=[0, 1, 2])
    assert len(seeded) == 6 and {o["seed"] for _, o in seeded} == {"0", "1", "2"}
    assert len({n for n, _ in seeded}) == 6
    for name, overrides in exps:
        for key in overrides:
            assert key in params, f"{name}: -S {key} is not in params.yaml"
    # gamma of the eye model changes train_convlstm@eyes only (then fuse/evaluate through its output)
    direct = {s for s, keys in stages.items() if _covered("regions.eyes.gamma", keys)}
    assert direct == {"train_fcn@eyes", "train_convlstm@eyes"} or direct == {"train_convlstm@eyes"}


def test_sweep_commands():
    cmds = {name: sweep.queue_command(name, o) for name, o in sweep.experiments(["table3"], {"train.fcn.epochs": "1"})}
    assert set(cmds) == {"t3-adam", "t3-rmsprop"}
    cmd = cmds["t3-rmsprop"]
    assert cmd[1:6] == ["-m", "dvc", "exp", "run", "--queue"]
    sets = {cmd[i + 1] for i, a in enumerate(cmd) if a == "-S"}
    assert sets == {"train.convlstm.freeze_backbone=true", "train.convlstm.loss=ce",
                    "train.convlstm.optimizer=rmsprop", "train.fcn.epochs=1"}
    t5 = dict(sweep.experiments(["table5"]))
    e = t5["t5-eq8-g0.5-softmax"]
    assert (e["train.convlstm.lfun"], e["train.convlstm.g"], e["train.convlstm.segloss_on"]) == ("eq8", "0.5", "softmax")
    with pytest.raises(SystemExit):
        sweep.experiments(["table9"])


# ---------------------------------------------------------------------------------------------------
# The PR report: dvc metrics diff / dvc params diff between two commits


def _eval(miou_cascade: float) -> dict:
    row = {"skin": 0.8, "eyes": 0.4, "lips": 0.5, "inner_mouth": 0.3, "miou": 0.5}
    return {"fcn": row, "fcn_smooth": row, "primary": row, "cascade": dict(row, miou=miou_cascade)}


def test_metrics_report_between_two_commits(tmp_path):
    repo = _git_repo(tmp_path / "repo")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": {
        "cmd": "true", "params": ["regions.face.gamma"], "metrics": [{"metrics/eval.json": {"cache": False}}]}}}))
    (repo / "params.yaml").write_text("regions:\n  face:\n    gamma: 0.05\n")
    (repo / "metrics").mkdir()
    (repo / "metrics" / "eval.json").write_text(json.dumps(_eval(0.5)))
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "main"], repo)
    _run(["git", "checkout", "-qb", "feature"], repo)
    (repo / "params.yaml").write_text("regions:\n  face:\n    gamma: 0.02\n")
    (repo / "metrics" / "eval.json").write_text(json.dumps(_eval(0.625)))
    _run(["git", "commit", "-qam", "feature"], repo)

    report = _run(["bash", str(ROOT / "scripts" / "metrics_report.sh"), "main"], repo)
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in report.splitlines() if ln.startswith("|")]
    assert ["metrics/eval.json", "cascade.miou", "0.5", "0.625", "0.125"] in rows
    assert ["params.yaml", "regions.face.gamma", "0.05", "0.02"] in rows
    # unchanged metrics are not listed
    assert not any(r[1] == "fcn.miou" for r in rows)
    # nothing changed: said so
    same = _run(["bash", str(ROOT / "scripts" / "metrics_report.sh"), "feature"], repo)
    assert "No metric changed." in same and "No param changed." in same


def test_pr_workflow_posts_the_report():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pr-metrics.yml").read_text())
    assert "pull_request" in wf[True]  # YAML 1.1 reads the key `on` as True
    steps = wf["jobs"]["metrics"]["steps"]
    text = "\n".join(str(s.get("run", "")) + str(s.get("with", "")) for s in steps)
    assert "make setup" in text and "dvc repro --pull" in text and "dvc repro" in text
    assert "scripts/metrics_report.sh" in text
    assert any(s.get("uses", "").startswith("actions/github-script") for s in steps)
    assert wf["permissions"]["pull-requests"] == "write"


def _show_entry(name, params, eval_miou, zoomed=None):
    """One row of `dvc exp show --json` (DVC 3 layout)."""
    row = lambda m: {c: m for c in ("skin", "eyes", "lips", "inner_mouth", "miou")}  # noqa: E731
    metrics = {"metrics/eval.json": {"data": {"fcn": row(0.5), "primary": row(eval_miou)}}}
    if zoomed:
        metrics["metrics/zoomed.json"] = {"data": zoomed}
    return {"rev": name, "name": name, "error": None, "experiments": None,
            "data": {"rev": name, "params": {"params.yaml": {"data": params}}, "metrics": metrics}}


def test_exp_tables_from_exp_show_json(monkeypatch):
    monkeypatch.setattr(exp_tables, "run_record", lambda rev: {})  # no run.json (whatever this repo's main holds)

    def conv(seed=0, **kw):
        return {"seed": seed, "train": {"convlstm": {"freeze_backbone": True, "loss": "ce", "optimizer": "adam",
                                                     "lfun": "eq9", "g": 0.0, "segloss_on": "scores", **kw}},
                "regions": {"face": {"gamma": 0.05}}}

    base = _show_entry("main", conv(freeze_backbone=False, loss="segloss"), 0.58)
    base["experiments"] = [
        {"revs": [_show_entry("t3-rmsprop", conv(optimizer="rmsprop"), 0.56)], "name": "t3-rmsprop"},
        {"revs": [_show_entry("t5-eq8-g0.5", conv(loss="segloss", lfun="eq8", g=0.5), 0.57)], "name": "t5-eq8-g0.5"},
        {"revs": [_show_entry("t3-adam", conv(), 0.55)], "name": "t3-adam"},
        {"revs": [_show_entry("t3-adam-s1", conv(seed=1), 0.57)], "name": "t3-adam-s1"},
        {"revs": [{"rev": "x", "name": "broken", "error": {"msg": "failed"}, "data": {}}], "name": "broken"},
    ]
    running = _show_entry("running", conv(optimizer="rmsprop"), 0.99)  # a queued run still going: DVC shows
    running["data"]["rev"] = "workspace"                                # the workspace's metrics in its row
    base["experiments"].append({"revs": [running], "name": "running"})
    queued = _show_entry("queued", conv(optimizer="rmsprop"), 0.98)  # a queued run: its row is the queue's
    base["experiments"].append({"revs": [queued], "name": "queued",  # snapshot, with the base's metrics
                                "executor": {"state": "queued", "name": "dvc-task"}})
    recs = list(exp_tables.records([base]))
    assert [r["name"] for r in recs] == ["t3-rmsprop", "t5-eq8-g0.5", "t3-adam", "t3-adam-s1", "main"]
    md = "\n".join(exp_tables.tables(recs).values())
    rows = {tuple(c.strip() for c in ln.strip("|").split("|")) for ln in md.splitlines() if ln.startswith("|")}
    # seeds 0 and 1 of one setting: mean ± sample std of 55 and 57 = 56.00 ± 1.41 (no run.json here: P n/a)
    assert ("adam", *["56.00 ± 1.41"] * 5, "n/a", "2") in rows
    assert ("rmsprop", *["56.00"] * 5, "n/a", "1") in rows
    assert ("baseline FCN", *["50.00 ± 0.00"] * 5, "–", "2") in rows  # Tables 3, 5: seeds 0 and 1
    # Table 5: the Adam / CE runs again, and SegLoss Eq. 8 with g = 0.5 on the raw scores
    assert ("cross-entropy", *["56.00 ± 1.41"] * 5, "n/a", "2") in rows
    assert ("SegLoss eq8, g = 0.5, on scores", *["57.00"] * 5, "n/a", "1") in rows
    # Table 6: the workspace's own run (all layers trained, SegLoss Eq. 9, g = 0, gamma 0.05)
    assert ("SegLoss eq9, g = 0, on scores, γ = 0.05", *["58.00"] * 5, "n/a", "1") in rows


def test_exp_tables_table2_rows(monkeypatch):
    """Table 2: tracker, ResNet FCN and smoothing from the default's runs (workspace and seed experiments),
    each VGG-16 baseline from the experiments whose eval.json holds it, P against those runs' own FCN."""
    groups = {"s0": {"fcn": [0.50, 0.40, 0.30], "fcn_vgg16": [0.45, 0.36, 0.28], "fcn_smooth": [0.50, 0.40, 0.30]},
              "vgg": {"fcn": [0.50, 0.40, 0.30], "fcn_vgg16": [0.44, 0.35, 0.26]}}
    monkeypatch.setattr(exp_tables, "run_record", lambda rev: {"group_miou": groups.get(rev, {})})
    row = lambda m: {c: m for c in ("skin", "eyes", "lips", "inner_mouth", "miou")}  # noqa: E731

    def entry(name, seed, methods, archs=(), **baselines):
        e = _show_entry(name, {"seed": seed, "baselines": {"archs": list(archs), **baselines}}, 0.6)
        e["data"]["metrics"]["metrics/eval.json"]["data"] = {m: row(v) for m, v in methods.items()}
        return e

    base = entry("workspace", 0, {"fcn": 0.50, "fcn_smooth": 0.50, "tracker": 0.40, "mesh": 0.45, "deeplab_v2": 0.55},
                 ["deeplab_v2"])
    base["rev"] = base["data"]["rev"] = "s0"
    other = entry("t3-rmsprop", 0, {"fcn": 0.50, "fcn_vgg16": 0.99, "deeplab_v2": 0.99}, ["fcn_vgg16"])
    other["data"]["params"]["params.yaml"]["data"]["train"] = {"convlstm": {"optimizer": "rmsprop"}}
    base["experiments"] = [
        {"name": "seed1-x", "revs": [entry("seed1-x", 1, {"fcn": 0.52, "fcn_smooth": 0.54, "tracker": 0.40,
                                                           "mesh": 0.45})]},
        {"name": "t2-vgg16", "revs": [entry("vgg", 0, {"fcn": 0.50, "fcn_vgg16": 0.37}, ["fcn_vgg16"])]},
        {"name": "t3-rmsprop", "revs": [other]},   # another setting: not a Table 2 run
        # baselines.batch_norm: a row of its own (VGG-16-BN), after the default's trunk
        {"name": "t2-deeplab", "revs": [entry("bn", 0, {"fcn": 0.50, "deeplab_v2": 0.58}, ["deeplab_v2"],
                                              batch_norm=True)]},
    ]
    md = exp_tables.tables(list(exp_tables.records([base])))["table2"]
    rows = {r[0]: r[1:] for r in (tuple(c.strip() for c in ln.strip("|").split("|")) for ln in md.splitlines()
                                  if ln.startswith("|"))}
    assert rows["landmark tracker (dlib 68 points)"] == (*["40.00"] * 5, "60.09", "n/a", "– (not trained)")
    # the face mesh, beside the paper's tracker: not trained either, no paper value
    assert rows["face-mesh landmarks (MediaPipe -> 68 points; not in the paper)"] == (
        *["45.00"] * 5, "–", "n/a", "– (not trained)")
    assert list(rows).index("face-mesh landmarks (MediaPipe -> 68 points; not in the paper)") == \
        list(rows).index("landmark tracker (dlib 68 points)") + 1
    assert rows["FCN (ResNet; the baseline FCN)"] == (*["51.00 ± 1.41"] * 5, "54.50", "–", "2")
    assert rows["FCN (ResNet) + temporal smoothing"][:5] == ("52.00 ± 2.83",) * 5
    # the default's own run holds DeepLab-V2 (as under configs/paper.yaml, whose baselines.archs names both)
    assert rows["DeepLab-V2 (VGG-16, ASPP)"] == (*["55.00"] * 5, "–", "n/a", "1")
    # the experiment's own groups: differences 0.06, 0.05, 0.04 -> scipy's paired t-test
    from scipy import stats
    want = stats.ttest_rel([0.44, 0.35, 0.26], [0.50, 0.40, 0.30]).pvalue
    assert rows["FCN-8s (VGG-16)"] == (*["37.00"] * 5, "–", f"{want:.2g}", "1")
    assert rows["DeepLab-V2 (VGG-16-BN, ASPP)"][:5] == ("58.00",) * 5 and "FCN-8s (VGG-16-BN)" not in rows
    labels = [r for r in rows if r.startswith(("DeepLab", "FCN-8s"))]
    assert labels == ["DeepLab-V2 (VGG-16, ASPP)", "DeepLab-V2 (VGG-16-BN, ASPP)", "FCN-8s (VGG-16)"]

    # a default on VGG-16-BN that has trained no baseline: a "not run" row per arch, named by its trunk
    bare = entry("workspace", 0, {"fcn": 0.50, "fcn_smooth": 0.50, "tracker": 0.40}, batch_norm=True)
    md = exp_tables.tables(list(exp_tables.records([bare])))["table2"]
    assert "| DeepLab-V2 (VGG-16-BN, ASPP) | – | – | – | – | – | – | not run | 0 |" in md
    assert "| FCN-8s (VGG-16-BN) | – | – | – | – | – | – | not run | 0 |" in md
    assert "| face-mesh landmarks (MediaPipe -> 68 points; not in the paper) | – | – | – | – | – | – | not run | 0 |" in md


def test_table2_from_committed_records(tmp_path, monkeypatch):
    """Experiment refs stay where they ran: Table 2 is rebuilt from the committed records (seed runs and
    `scripts/baselines.py`'s), P from each record's own per-group mIoUs; an experiment also in
    `dvc exp show` counts once."""
    monkeypatch.chdir(tmp_path)
    import baselines
    row = lambda m: {c: m for c in ("skin", "eyes", "lips", "inner_mouth", "miou")}  # noqa: E731
    params = {"seed": 0, "baselines": {"archs": [], "batch_norm": True}, "train": {"fcn": {"epochs": 4}}}
    ws = _show_entry("workspace", params, 0.6)
    ws["data"]["metrics"]["metrics/eval.json"]["data"] = {m: row(0.5) for m in ("fcn", "fcn_smooth", "tracker")}
    groups = {"fcn": [0.50, 0.40, 0.30], "fcn_smooth": [0.50, 0.40, 0.30], "tracker": [0.5, 0.4, 0.3]}
    (tmp_path / "metrics/eval").mkdir(parents=True)
    (tmp_path / "metrics/eval/run.json").write_text(json.dumps({"group_miou": groups}))
    seeds = tmp_path / "metrics/seeds"
    seeds.mkdir()
    (seeds / "seed_1.json").write_text(json.dumps(
        {"seed": 1, "eval": {"fcn": row(0.54), "fcn_smooth": row(0.54)}, "group_miou": groups, "rev": "abc",
         "experiment": "t5-iou-s1"}))  # a sweep's run whose settings are the default's: a seed record all the same
    # a baseline experiment, recorded by scripts/baselines.py from a real git commit
    subprocess.run(["git", "init", "-q", "exp"], check=True)
    exp = tmp_path / "exp"
    run = {"seed": 0, "eval": {"fcn": row(0.5), "deeplab_v2": row(0.58)},
           "group_miou": {"fcn": [0.50, 0.40, 0.30], "deeplab_v2": [0.56, 0.47, 0.38]}}
    (exp / "metrics/eval").mkdir(parents=True)
    (exp / "metrics/eval/run.json").write_text(json.dumps(run))
    exp_params = {**params, "baselines": {"archs": ["deeplab_v2"], "batch_norm": True}}
    (exp / "params.yaml").write_text(yaml.safe_dump(exp_params))
    git = ["git", "-C", str(exp), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "exp"], check=True)
    rev = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(exp)
    with pytest.raises(SystemExit, match="scored no fcn_vgg16"):
        baselines.record("t2-fcn", rev, "fcn_vgg16", "abc")
    path = baselines.record("t2-deeplab_v2-abc", rev, "deeplab_v2", "abc")
    saved = json.loads(path.read_text())
    assert saved["params"]["baselines.archs"] == ["deeplab_v2"] and saved["params"]["train.fcn.epochs"] == 4
    assert saved["rev"] == "abc" and saved["group_miou"] == run["group_miou"]
    (tmp_path / "metrics/baselines").mkdir()
    path.rename(tmp_path / "metrics/baselines" / path.name)
    monkeypatch.chdir(tmp_path)

    recs = list(exp_tables.records([ws]))
    extra = exp_tables.file_records(recs)
    assert sorted(r["name"] for r in extra) == ["t2-deeplab_v2-abc", "t5-iou-s1"]
    assert next(r for r in extra if r["name"] == "t5-iou-s1")["params"]["baselines.batch_norm"] is True
    rows = {r[0]: r[1:] for r in (tuple(c.strip() for c in ln.strip("|").split("|"))
                                  for ln in exp_tables.tables(recs + extra)["table2"].splitlines()
                                  if ln.startswith("|"))}
    from scipy import stats
    want = stats.ttest_rel([0.56, 0.47, 0.38], [0.50, 0.40, 0.30]).pvalue
    assert rows["DeepLab-V2 (VGG-16-BN, ASPP)"] == (*["58.00"] * 5, "–", f"{want:.2g}", "1")
    assert rows["FCN (ResNet; the baseline FCN)"] == (*["52.00 ± 2.83"] * 5, "54.50", "–", "2")
    assert rows["FCN-8s (VGG-16-BN)"][-2:] == ("not run", "0")
    # the same experiment in `dvc exp show` (this machine ran it): its record is not counted twice
    assert [r["name"] for r in exp_tables.file_records(recs + extra)] == []


def _memory_run(test_set, primary, fcn=0.3, black=0.5, passed=True):
    """A run.json with per-condition scores and memory checks (evaluate's layout), made-up values."""
    cond = lambda v: {m: {"miou": x} for m, x in (("primary", v), ("fcn", fcn), ("primary_reset", fcn + 0.01),  # noqa: E731
                                                    ("hold", 0.6))}
    probe = {"miou": {"primary": black, "fcn": fcn, "primary_reset": fcn, "hold": 0.6},
             "checks": {"primary": {"pass": passed}}}
    return {"seed": 0, "test_set": test_set, "eval": {"fcn": {"miou": fcn}, "primary": {"miou": primary}},
            "conditions": {c: cond(primary) for c in ("all", "clean", "degraded_with_clean_past",
                                                       "degraded_without_clean_past")},
            "memory": {"probes": {"black": probe, "noise": probe},
                       "ablation": {"methods": {"primary": {"changed_share": 0.05}}}}}


def test_memory_table_from_recorded_experiments(tmp_path, monkeypatch):
    """scripts/records.py commits an experiment's run.json with its params; the memory table has a row per
    recipe (freeze_backbone, loss, head_steps, corrupt) whose other settings are the default's; a record of another test set (an
    earlier benchmark) and a run of another setting are left out."""
    import records
    params = {"seed": 0, "train": {"fcn": {"epochs": 4}, "convlstm": {"freeze_backbone": True, "loss": "iou",
                                                                   "head_steps": 1500, "corrupt": 0.5}},
              "fuse": {"mesh": {"refine": True}}}  # a key added to params.yaml after the experiments ran
    ws = _show_entry("workspace", params, 0.6)
    (tmp_path / "metrics/eval").mkdir(parents=True)
    (tmp_path / "metrics/eval/run.json").write_text(json.dumps(_memory_run({"labels": "new"}, 0.55)))
    subprocess.run(["git", "init", "-q", str(tmp_path / "exp")], check=True)
    exp = tmp_path / "exp"
    git = ["git", "-C", str(exp), "-c", "user.name=t", "-c", "user.email=t@t"]
    paper = {"freeze_backbone": False, "loss": "ce", "head_steps": 0, "corrupt": 0.0}
    runs = {"recipe-paper": (paper, 4, _memory_run({"labels": "new"}, 0.50, black=0.2, passed=False)),
            "recipe-old": (paper, 4, _memory_run({"labels": "old"}, 0.99)),
            "other-fcn": (paper, 8, _memory_run({"labels": "new"}, 0.98))}
    monkeypatch.chdir(exp)
    for name, (recipe, epochs, run) in runs.items():
        (exp / "metrics/eval").mkdir(parents=True, exist_ok=True)
        (exp / "metrics/eval/run.json").write_text(json.dumps(run))
        (exp / "params.yaml").write_text(yaml.safe_dump({"seed": 0, "train": {"fcn": {"epochs": epochs},
                                                                               "convlstm": recipe}}))
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", name], check=True)
        rev = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        path = records.record_experiment(name, rev, "abc", tmp_path / "metrics/experiments")
        saved = json.loads(path.read_text())
        assert saved["params"]["train.convlstm.head_steps"] == recipe["head_steps"] and saved["rev"] == "abc"
    monkeypatch.chdir(tmp_path)
    exp_tables.run_record.cache_clear()  # the workspace's run.json is read from the folder the tables run in
    recs = list(exp_tables.records([ws]))
    extra = exp_tables.file_records(recs)
    assert sorted(r["name"] for r in extra) == ["other-fcn", "recipe-paper"]  # recipe-old: another test set
    md = exp_tables.tables(recs + extra)["memory"]
    rows = {r[0]: r[1:] for r in (tuple(c.strip() for c in ln.strip("|").split("|")) for ln in md.splitlines()
                                  if ln.startswith("|"))}
    assert rows["ConvLSTM alone, IoU loss (Eq. 3), head-only phase 1500 steps, corruption 0.5 — the default"] == (
        *["55.00"] * 4, "50.00", "50.00", "1 / 1 of 1", "5.00", "1")
    assert rows["all layers, cross-entropy, no head-only phase, no corruption"] == (
        *["50.00"] * 4, "20.00", "20.00", "0 / 0 of 1", "5.00", "1")
    assert rows["baseline FCN"][:6] == ("30.00",) * 6 and rows["baseline FCN"][-1] == "1"
    assert rows["default, state reset every frame (memoryless)"][:4] == ("31.00",) * 4
    assert rows["hold oracle (a ceiling, not a method)"][:6] == ("60.00",) * 6
    assert not any("98.00" in v for r in rows.values() for v in r)  # another FCN setting: not a recipe row


def test_exp_tables_p_value_averages_the_groups_over_seeds(monkeypatch):
    # two seeds of one setting; per-group mIoUs of the primary and the FCN in each seed's run.json
    groups = {"s0": {"fcn": [0.50, 0.40, 0.30], "primary": [0.52, 0.43, 0.31]},
              "s1": {"fcn": [0.48, 0.42, 0.30], "primary": [0.50, 0.43, 0.33]}}
    monkeypatch.setattr(exp_tables, "run_record", lambda rev: {"group_miou": groups[rev]})
    runs = [{"rev": "s0"}, {"rev": "s1"}]
    # by hand: seed-averaged differences per group = (0.02, 0.02, 0.02): the same everywhere, so t is
    # infinite and P = 0 (facemask.evaluation.metrics.paired_tests)
    assert exp_tables._p(runs, "primary", exp_tables._face_groups) == "0"
    groups["s1"]["primary"] = [0.50, 0.45, 0.33]  # differences (0.02, 0.03, 0.02): scipy's paired t-test
    from scipy import stats
    want = stats.ttest_rel([0.51, 0.44, 0.32], [0.49, 0.41, 0.30]).pvalue
    assert exp_tables._p(runs, "primary", exp_tables._face_groups) == f"{want:.2g}"


# ---------------------------------------------------------------------------------------------------
# A queued sweep and the tables (a stand-in pipeline: fast; the real one is the slow test below)

TOY = '''\
import json, os, yaml
p = yaml.safe_load(open("params.yaml"))
c, r = p["train"]["convlstm"], p["regions"]
bonus = 0.01 if c["optimizer"] == "rmsprop" else 0.0
row = lambda m: {"skin": m, "eyes": m, "lips": m, "inner_mouth": m, "miou": m}
os.makedirs("metrics/eval", exist_ok=True)
json.dump({"fcn": row(0.5), "fcn_smooth": row(0.5), "primary": row(0.5 + r["face"]["gamma"] + bonus),
           "cascade": row(0.6)}, open("metrics/eval.json", "w"))
json.dump({"primary_minus_fcn": {f"t{t}": t / 1000 + bonus for t in range(1, 6)}},
          open("metrics/eval/timestep.json", "w"))
json.dump({"eyes": {"fcn": {"eye": 0.7, "miou": 0.7}, "convlstm": {"eye": 0.7 + r["eyes"]["gamma"], "miou": 0.7 + r["eyes"]["gamma"]}},
           "mouth": {"fcn": {"lips": 0.6, "inner_mouth": 0.6, "miou": 0.6},
                     "convlstm": {"lips": 0.6, "inner_mouth": 0.6, "miou": 0.6 + r["mouth"]["gamma"]}}},
          open("metrics/zoomed.json", "w"))
'''


def test_queued_sweep_to_tables(tmp_path):
    repo = _git_repo(tmp_path / "repo")
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    (repo / "toy.py").write_text(TOY)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({
        "stages": {"evaluate": {"cmd": "python toy.py", "deps": ["toy.py"], "params": ["train.convlstm", "regions"],
                                "metrics": [{"metrics/eval.json": {"cache": False}},
                                            {"metrics/zoomed.json": {"cache": False}}],
                                "outs": [{"metrics/eval": {"cache": False}}]}},
        "metrics": ["metrics/eval/timestep.json"]}, sort_keys=False))
    _dvc("repro", "-q", cwd=repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "baseline"], repo)

    _run([sys.executable, str(ROOT / "scripts" / "sweep.py"), "table3", "table7", "--run", "-j", "2"], repo,
         timeout=600)
    show = json.loads(_dvc("exp", "show", "--json", cwd=repo))
    names = {r["name"] for r in exp_tables.records(show)}
    assert {"t3-adam", "t3-rmsprop", "t7-eyes-gamma0.01-paper", "t7-eyes-gamma0.1-paper"} <= names
    md = "\n".join(exp_tables.tables(list(exp_tables.records(show))).values())
    rows = {tuple(c.strip() for c in ln.strip("|").split("|")) for ln in md.splitlines() if ln.startswith("|")}
    # Table 3: primary mIoU = 0.5 + face gamma (0.05 in params.yaml) + 0.01 for RMSprop, in percent
    assert ("rmsprop", *["56.00"] * 5, "n/a", "1") in rows
    assert ("adam", *["55.00"] * 5, "n/a", "1") in rows
    assert ("baseline FCN", *["50.00"] * 5, "–", "1") in rows
    # Table 4: per time step, for the two optimisers
    assert ("ConvLSTM alone trained, CE, rmsprop (Table 3)", "1.10", "1.20", "1.30", "1.40", "1.50", "1") in rows
    # Table 7: eye model, gamma 0.1 -> 0.8
    assert ("SegLoss eq9, g = 0, on scores, γ = 0.1", "80.00", "80.00", "n/a", "1") in rows
    assert ("baseline FCN", "70.00", "70.00", "–", "1") in rows


@pytest.mark.slow
def test_queued_sweep_of_the_real_pipeline_at_tiny_size(tmp_path):
    """Table 3's sweep through the whole pipeline (download ... evaluate) at a tiny size."""
    repo = copy_project(tmp_path / "repo")
    _run(["git", "init", "-q", "-b", "main"], repo)
    if not (repo / ".dvc").is_dir():
        _dvc("init", "-q", cwd=repo)
    set_params(repo / "params.yaml", {
        "data.synthetic.videos": 8, "data.synthetic.frames": 30, "clips.fraction": 1.0, "clips.input_size": 32,
        "train.fcn.epochs": 1, "train.fcn.batch_size": 4, "train.convlstm.epochs": 1, "evaluate.examples": 2})
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "tiny"], repo)
    _run([sys.executable, str(ROOT / "scripts" / "sweep.py"), "table3", "--run"], repo, timeout=3000)
    show = json.loads(_dvc("exp", "show", "--json", cwd=repo))
    md = exp_tables.tables(list(exp_tables.records(show)))
    assert "| adam |" in md["table3"] and "| rmsprop |" in md["table3"]

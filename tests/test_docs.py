"""The docs site and the README: the site builds in strict mode, its pages hold no development history, the
README is short, with a table of contents that resolves and headline results copied from `metrics/`.

* `mkdocs build --strict` (mkdocs.yml): a broken link or anchor, a page left out of the nav or a missing
  include (`--8<--`, pymdownx.snippets) fails the build; a build of a copy with such faults shows that the
  configuration catches each.
* No page, nor a file it includes, names an issue number, a commit or the project's own history.
* README.md: at most `README_MAX_LINES` lines, a table of contents whose links resolve to its headings (the
  slugs GitHub gives them), relative links to files that exist, and the results block that
  `scripts/readme_results.py` writes from `metrics/eval/results.md`.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 200
#: a table of contents: at least this many consecutive list items linking into the page
TOC_MIN_ENTRIES = 4


def _script(name: str):
    """A script of ``scripts/`` loaded as a module by its path (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_results = _script("readme_results")

#: pymdownx.snippets' include line: --8<-- "path from the repository root"
SNIPPET = re.compile(r'^\s*-{1,}8<-{1,}\s+"([^"]+)"\s*$', re.M)
#: What user docs must not say: issue and pull-request numbers, commits, the project's own history.
HISTORY = [
    (r"\b(?:issues?|PR|pull request)\s*#?\d+", "an issue or pull-request number"),
    (r"(?<![\w&/#])#\d+\b", "an issue number"),
    (r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", "a commit"),
    (r"\bgit show\b", "an old commit's file"),
    (r"\b(?:previous|earlier|old|first|former) (?:default|benchmark)s?\b", "development history"),
    (r"\b(?:previous|earlier|former) (?:version|recipe|run)s?\b", "development history"),
    (r"\b(?:this|last|next) session\b", "development history"),
    (r"\b(?:than|as|to|until) before\b|\bbefore (?:issue|the change|this change)\b", "development history"),
    (r"\b(?:no longer|used to|so far|not remeasured|was lost)\b", "development history"),
]


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}     # Material's end-of-life banner, not a warning of ours
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, env=env, timeout=300)


def warnings_of(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if "WARNING" in line or "ERROR" in line]


def test_site_builds_strict(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0 and not warnings_of(result), result.stdout + result.stderr
    page = (tmp_path / "site" / "results" / "index.html").read_text()
    first_row = readme_results.first_table((ROOT / "metrics/eval/results.md").read_text()).splitlines()[2]
    method = first_row.split("|")[1].strip()
    assert f"<td>{method}</td>" in page, "results.md's table is not included in the results page"


@pytest.fixture
def docs_copy(tmp_path):
    """A copy of mkdocs.yml and docs/ beside links to what the pages include (metrics/, params.yaml, ...)."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs", symlinks=True)
    included = {m.split("/")[0] for page in DOCS.rglob("*.md") for m in SNIPPET.findall(page.read_text())}
    for top in sorted(included):
        (tmp_path / top).symlink_to(ROOT / top)
    return tmp_path


def test_strict_build_catches_broken_links_anchors_and_pages_outside_the_nav(docs_copy):
    (docs_copy / "docs" / "orphan.md").write_text("# Not in the nav\n")
    with open(docs_copy / "docs" / "index.md", "a") as f:
        f.write("\n[gone](no-such-page.md) and [no heading](results.md#no-such-heading)\n")
    result = build(docs_copy / "mkdocs.yml", docs_copy / "site")
    text = "\n".join(warnings_of(result))
    assert result.returncode != 0
    for name in ("no-such-page.md", "no-such-heading", 'not included in the "nav"'):
        assert name in text, f"{name}: no warning in\n{text}"
    assert "- orphan.md" in result.stdout + result.stderr           # the page, on the line after its warning


def test_strict_build_fails_on_a_missing_include(docs_copy):
    with open(docs_copy / "docs" / "results.md", "a") as f:
        f.write('\n--8<-- "metrics/eval/no_such_table.md"\n')
    result = build(docs_copy / "mkdocs.yml", docs_copy / "site")
    assert result.returncode != 0
    assert "no_such_table.md" in result.stdout + result.stderr


def with_includes(page: Path) -> str:
    """A page's markdown followed by every file it includes."""
    text = page.read_text()
    return "\n".join([text] + [(ROOT / m).read_text() for m in SNIPPET.findall(text) if (ROOT / m).is_file()])


def history_in(text: str) -> list[str]:
    """'line N: what (the words)' for every line of `text` that names an issue, a commit or past states."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        for pattern, what in HISTORY:
            m = re.search(pattern, line, re.I if "a-f" not in pattern else 0)
            if m:
                found.append(f"line {n}: {what} ({m.group(0)!r})")
    return found


@pytest.mark.parametrize("text, flagged", [
    ("Measured on the benchmark before issue 23.", True),
    ("See #23 for the trials.", True),
    ("the records of b30710d's experiments", True),
    ("Under the previous default (all layers trained)", True),
    ("the first default's geometry", True),
    ("it was measured in this session", True),
    ("`git show e2675e2:metrics/tables/table5.md`", True),
    ("Issue the command twice; see [Results](results.md#conditions).", False),
    ("1500 steps, σ(−3), the colour #ff0000 of a palette and 0xdeadbeef", False),
    ("before the end-to-end epochs, the ConvLSTM alone trains", False),
])
def test_history_detector(text, flagged):
    """The detector flags what it is meant to, and lets ordinary prose through."""
    assert bool(history_in(text)) == flagged, history_in(text)


def test_docs_hold_no_issue_numbers_or_history():
    found = [f"{page.relative_to(ROOT)} (with its includes), {hit}"
             for page in sorted(DOCS.rglob("*.md")) for hit in history_in(with_includes(page))]
    assert not found, "\n".join(found)


def test_every_decision_has_a_stable_anchor():
    """Each decision is a heading with an explicit id (`## Title {#id}`), so links to it survive a new title."""
    pages = sorted((DOCS / "design" / "decisions").glob("*.md"))
    assert pages
    bare = [f"{p.name}: {line}" for p in pages for line in p.read_text().splitlines()
            if re.match(r"#{2,3} ", line) and not re.search(r"\{#[\w-]+\}\s*$", line)]
    assert not bare, "\n".join(bare)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_github_slug():
    assert github_slug("The paper's setup on 300VW and GPUs") == "the-papers-setup-on-300vw-and-gpus"
    assert github_slug("`facemask predict`: masks for any video") == "facemask-predict-masks-for-any-video"
    assert github_slug("Tables 6–8: γ") == "tables-68-γ"


def readme_problems(path: Path) -> list[str]:
    """What keeps the README at `path` from the rules of this module, one line each."""
    text = path.read_text()
    lines = text.splitlines()
    problems = [] if len(lines) <= README_MAX_LINES else [f"{len(lines)} lines (at most {README_MAX_LINES})"]
    body = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)          # no headings inside code blocks
    slugs = {github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", body, re.M)}
    toc = max((len(m.group(0).splitlines()) for m in re.finditer(r"(?:^\s*[-*] \[[^\]]+\]\(#[^)]+\)\n)+", body, re.M)),
              default=0)
    if toc < TOC_MIN_ENTRIES:
        problems.append(f"no table of contents (a list of at least {TOC_MIN_ENTRIES} links to its headings)")
    for target in re.findall(r"\]\(([^)\s]+)\)", body):
        if target.startswith("#") and target[1:] not in slugs:
            problems.append(f"link {target}: no such heading")
        elif not re.match(r"[a-z]+:", target) and not target.startswith("#") and \
                not (path.parent / target.split("#")[0]).exists():
            problems.append(f"link {target}: no such file")
    try:
        now, expected = readme_results.expected_readme(path, ROOT / "metrics/eval/results.md")
        if now != expected:
            problems.append("results block out of date: python scripts/readme_results.py")
    except readme_results.BadInputError as e:
        problems.append(str(e))
    return problems


def test_readme_is_short_with_a_table_of_contents():
    assert not readme_problems(ROOT / "README.md"), "\n".join(readme_problems(ROOT / "README.md"))


def test_readme_checks_catch_a_long_readme_a_dead_link_and_a_stale_table(tmp_path):
    table = readme_results.first_table((ROOT / "metrics/eval/results.md").read_text())
    toc = "".join(f"- [Part {i}](#part-{i})\n" for i in range(TOC_MIN_ENTRIES))
    parts = "".join(f"## Part {i}\n\ntext\n\n" for i in range(TOC_MIN_ENTRIES))
    good = (f"# t\n\n{toc}\n{parts}[results](#part-1) [file](mkdocs.yml)\n\n{readme_results.START}\n{table}"
            f"{readme_results.END}\n")
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    readme.write_text(good)
    assert readme_problems(readme) == []
    readme.write_text(good.replace("[results](#part-1)", "[results](#part-9)").replace("(mkdocs.yml)", "(gone.yml)"))
    assert readme_problems(readme) == ["link #part-9: no such heading", "link gone.yml: no such file"]
    readme.write_text(good.replace(table.splitlines()[2], "| baseline FCN | 1 |") + "x\n" * README_MAX_LINES)
    assert readme_problems(readme) == [f"{len(readme.read_text().splitlines())} lines (at most {README_MAX_LINES})",
                                       "results block out of date: python scripts/readme_results.py"]
    readme.write_text(parts)
    assert len(readme_problems(readme)) == 2          # no table of contents, no results block


#: A layer's line of DESIGN.md's map: two spaces, the layer, then its modules (continued on lines after a `│`).
LAYER_LINE = re.compile(r"^  ([a-z]+) {2,}(.*)$")


def layer_map(design: str) -> dict[str, set[str]]:
    """{layer: its modules} as DESIGN.md's layer map names them: ``name · name · sub/ (a, b) · ...``, a
    subpackage's modules as ``sub/name``."""
    block = next(b for b in re.findall(r"^```\n(.*?)^```", design, re.M | re.S) if "\n  core " in b)
    texts: dict[str, str] = {}
    layer = None
    for line in block.splitlines():
        m = LAYER_LINE.match(line)
        if m:
            layer = m.group(1)
            texts[layer] = m.group(2)
        elif layer and re.match(r"^\s+│\s{2,}\S", line):
            texts[layer] += " " + line.split("│", 1)[1].strip()
    out = {}
    for layer, text in texts.items():
        subs = {f"{sub}/{name.strip()}" for sub, names in re.findall(r"(\w+)/\s*\(([^)]*)\)", text)
                for name in names.split(",")}
        rest = re.sub(r"\w+/\s*\([^)]*\)", "", text)
        out[layer] = subs | {w.strip() for w in rest.split("·") if w.strip()}
    return out


def package_modules() -> dict[str, set[str]]:
    """{layer: its modules} of `facemask/`: ``name`` for ``facemask/<layer>/name.py``, ``sub/name`` in a subpackage."""
    out: dict[str, set[str]] = {}
    for path in (ROOT / "facemask").rglob("*.py"):
        parts = path.relative_to(ROOT / "facemask").with_suffix("").parts
        if len(parts) > 1 and parts[-1] != "__init__":
            out.setdefault(parts[0], set()).add("/".join(parts[1:]))
    return out


def test_design_layer_map_names_every_module():
    """DESIGN.md's layer map names each module of `facemask/` in its layer, and no module that is not there."""
    drawn, real = layer_map((ROOT / "DESIGN.md").read_text()), package_modules()
    assert sorted(drawn) == sorted(real), "layers drawn / in facemask/"
    wrong = {layer: {"missing": sorted(real[layer] - drawn[layer]), "not a module": sorted(drawn[layer] - real[layer])}
             for layer in real if drawn[layer] != real[layer]}
    assert not wrong, wrong


def test_the_layer_map_reader_sees_a_missing_and_an_extra_module():
    design = (ROOT / "DESIGN.md").read_text()
    drawn = layer_map(design)
    assert "clips/loaders" in drawn["data"] and "guard" in drawn["training"]
    changed = layer_map(design.replace(" · guard", "").replace("(draw, build)", "(draw, build, paint)"))
    assert drawn["training"] - changed["training"] == {"guard"}
    assert changed["data"] - drawn["data"] == {"masks/paint"}

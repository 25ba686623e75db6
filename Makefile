# `make repro`: set up .venv and run the whole pipeline on the embedded default.
# `make test`:  run the test suite (sets up first if needed).
# `make docs`:  build the docs site into site/ (strict: a broken link or a missing include fails).
VENV   := .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test test-slow bench report docs
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps "mediapipe==0.10.14; python_version < '3.13'"
	touch $@

repro: setup
	dvc repro
	dvc metrics show

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

report: setup
	bash scripts/metrics_report.sh main

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

docs: setup
	$(PY) -m mkdocs build --strict

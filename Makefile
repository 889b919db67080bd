# `make demo` and `make test` work on a fresh machine: they create .venv and install segue first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest

demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

# Speed and memory against a baseline, each in one run with the ratio (minutes; not part of CI).
bench: setup
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/score.py
	$(PY) benchmarks/models.py
	$(PY) benchmarks/train_meanvar.py
	$(PY) benchmarks/serve.py

clean:
	rm -rf demo-data .pytest_cache

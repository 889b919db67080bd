# `make demo` and `make test` work on a fresh machine: they create .venv and install segue first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup test demo bench full-scale clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# hnswlib (segue serve --ann) has no wheel for every Python and builds with a C++ compiler: best effort here, so
# `make demo` never needs a compiler; .ci/run installs g++, so CI runs its test (it skips where hnswlib is missing)
$(VENV)/.ann: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[ann]' || echo "note: hnswlib could not be installed (no C++ compiler?); the --ann test will skip"
	touch $@

test: setup $(VENV)/.ann
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
	$(PY) benchmarks/als_fit.py

# The whole pipeline at one size, step by step, time and peak memory per step (resumable; hours at 1M).
# `make full-scale PLAYLISTS=100000` for a point of the scaling curve.
PLAYLISTS ?= 1000000
full-scale: setup
	$(PY) benchmarks/full_scale.py --playlists $(PLAYLISTS) --dir runs/full-scale-$(PLAYLISTS)

clean:
	rm -rf demo-data .pytest_cache

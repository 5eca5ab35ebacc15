# Set-up, reproduction and tests. Every target creates the virtual environment if it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= default
STAMP := $(VENV)/.installed

.PHONY: setup reproduce test lint benchmark clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(VENV)/bin/nbstripout --install --attributes .gitattributes 2>/dev/null || true
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(PY) run_all.py --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests benchmarks run_all.py notebooks

benchmark: $(STAMP)
	$(PY) benchmarks/bench_hernquist.py
	$(PY) benchmarks/bench_clusters.py
	$(PY) benchmarks/bench_balrog.py
	$(PY) benchmarks/bench_galforge.py

clean:
	rm -rf data/runs data/metrics

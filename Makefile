# Set-up, reproduction and tests. Every target creates the virtual environment if it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= default
STAMP := $(VENV)/.installed
# Extra package index for torch, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU-only
# wheel on Linux (PyPI's Linux wheel of the same version is the CUDA build).
TORCH_INDEX ?=

.PHONY: setup reproduce test lint benchmark benchmark-sbi clean

# Exact reproduction: every package at the version in requirements.lock, then astrogen itself.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e ".[dev]"
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

# fit_posterior against sbi's NPE on sbibm (about 3 h on 2 cores); torch stays at its pin.
benchmark-sbi: $(STAMP)
	$(PY) -m pip install --quiet -c requirements.lock -e ".[sbi-benchmark]"
	$(PY) -m pip install --quiet --no-deps sbibm==1.1.0
	$(PY) benchmarks/bench_sbi.py

clean:
	rm -rf data/runs data/metrics

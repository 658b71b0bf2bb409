# make run: start HailWhale on an embedded Redis. make test: the whole suite.
# make bench: the benchmark suite (bench/run.py); report in bench/results/report.json.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input

.PHONY: run test lint bench clean

# Stamps live in the venv, so a deleted venv means a fresh install.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-install: setup.py | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.stamp-test: setup.py | $(BIN)/python
	$(PIP) install -e '.[test]'
	@touch $@

run: $(VENV)/.stamp-install
	exec $(BIN)/hailwhale serve

test: $(VENV)/.stamp-test
	@echo "screenshots: tests/screenshots/ (the browser tests save them there)"
	$(BIN)/python -m pytest -q

bench: $(VENV)/.stamp-install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

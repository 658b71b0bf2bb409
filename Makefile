# make run: start HailWhale on an embedded Redis. make test: the whole suite.
# make bench: the benchmark suite (bench/run.py); report in bench/results/report.json.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input

.PHONY: run test lint bench clean fuzz

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
	$(BIN)/python -m pytest -q -n 2

$(VENV)/.stamp-bench: setup.py | $(BIN)/python
	$(PIP) install -e '.[bench]'
	@touch $@

# Etsy's StatsD daemon, the baseline of bench/statsd.py (on Debian's node and npm;
# without them the other scenarios still run, and the statsd one says what is missing),
# and Graphite's carbon-cache behind it (Debian's graphite-carbon, installed as root;
# the bench runs its own, in a temp dir: the package's system daemon is not started).
STATSD_JS := bench/.node/node_modules/statsd/stats.js
CARBON := /usr/bin/carbon-cache
$(STATSD_JS):
	-npm install --silent --prefix bench/.node statsd@0.9.0

$(CARBON):
	-[ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends graphite-carbon python3-whisper

bench: $(VENV)/.stamp-bench $(STATSD_JS) $(CARBON)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# make fuzz: the property tests (hypothesis) with fresh randomness, FUZZ_EXAMPLES
# examples each, run again and again until FUZZ_SECONDS have passed (0: once). The
# suite itself always draws the same examples; pin what fuzzing finds there with
# @example (a failure prints the example and a @reproduce_failure blob).
FUZZ_EXAMPLES ?= 1000
FUZZ_SECONDS ?= 0
FUZZ_TESTS ?= tests

fuzz: $(VENV)/.stamp-test
	@end=$$(( $$(date +%s) + $(FUZZ_SECONDS) )); \
	while :; do \
		FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m hypothesis \
			--hypothesis-profile=fuzz --timeout=0 -p no:cacheprovider $(FUZZ_TESTS) || exit 1; \
		[ $$(date +%s) -lt $$end ] || break; \
	done

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Two commands: `make run` serves chargers, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install prereqs bench bench-reports demo clean smoke

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: apply migrations and serve OCPP (ws://0.0.0.0:9000/ocpp/{id}) and the API (http://0.0.0.0:8000)
run: install
	$(BIN)/csms demo offer
	$(BIN)/csms serve

## test: install everything the tests need and run the whole suite
##       (system packages nginx, docker-compose, Chromium when missing: needs root or sudo;
##        without them those tests skip; the nginx/compose ones fail instead under CI=true)
test: install prereqs
	$(BIN)/python -m pytest -q

prereqs:
	-bash deploy/ci-prereqs.sh
	-bash deploy/ci-browser-prereqs.sh

## smoke: embedded-database path end to end (used by CI)
smoke: install
	$(BIN)/python .ci/smoke_embedded.py

## bench: throughput/latency/RSS against the reference central system, then 2.0.1 and 2.1 against 1.6
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --compare-versions 1.6,2.0.1,2.1 --rounds 5 --duration 8

## demo: fill the database with a synthetic Yangquan (marked synthetic) for real-looking reports
demo: install
	$(BIN)/csms demo seed

## bench-reports: targets report over ~7,000 piles and 10 million sessions (several minutes to build)
bench-reports: install
	$(BIN)/python bench/report_targets.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

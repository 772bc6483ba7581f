# Two commands on a fresh clone: `make test` and `make demo`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_DIR := .node
POUCHDB := $(NODE_DIR)/node_modules/.bin/pouchdb-server
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install test demo dev bench bench-targets clean chromium

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# CouchDB-compatible server for the status-store tests, kept out of git.
$(POUCHDB):
	mkdir -p $(NODE_DIR)
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error pouchdb-server@4.2.0

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Debian's Chromium for the browser test (Playwright drives it; it never downloads a browser),
# and b3sum, so the fault suite checks sidecars with the real `b3sum -c`.
chromium:
	command -v chromium >/dev/null && command -v b3sum >/dev/null || (apt-get update && apt-get install -y chromium b3sum)

test: $(STAMP) $(POUCHDB) chromium
	DROPSYNC_POUCHDB_BIN=$(CURDIR)/$(POUCHDB) $(PY) -m pytest -n 2 -q dropsync_dagster_tests

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dropsync demo

# Settings: ./.env (make demo writes the demo's), loaded by dagster dev into the code location.
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml

# Benchmarks take minutes and GBs of scratch space under ./.bench; results go to BENCHMARKS.md by hand.
bench: $(STAMP)
	$(PY) -m benchmarks.targets
	$(PY) -m benchmarks.plan
	$(PY) -m benchmarks.integrity
	$(PY) -m benchmarks.archive
	$(PY) -m benchmarks.status
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/ingest.py --encrypt
	$(PY) -m benchmarks.labkey
	$(PY) -m benchmarks.sensor
	$(PY) -m benchmarks.planning_scale
	$(PY) -m benchmarks.plan_io
	$(PY) -m benchmarks.backfill
	$(PY) -m benchmarks.run_overhead

# Issue 15's targets against their baselines in one run: .bench/targets-result.{json,md} (benchmarks/README.md).
bench-targets: $(STAMP)
	$(PY) -m benchmarks.targets

clean:
	rm -rf $(VENV) $(NODE_DIR) .dropsync .demo .bench .screenshots

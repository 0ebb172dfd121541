# The newcomer's path: `make lab` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: lab test test-slow test-ui extension check bench bench-scale bench-spark bench-serve soak clean venv node

# An editable install leaves out the wheel's data-files, among them the prebuilt
# JupyterLab extension, so the same folder is made here: links to the build in
# allsource_lab/labextension (live across rebuilds) and install.json beside them, which
# is what makes `jupyter labextension list` say "(python, allsource-lab)". A symlink of the
# whole folder (`jupyter labextension develop`) would lack install.json: every build
# deletes and rewrites allsource_lab/labextension.
LABEXT := $(VENV)/share/jupyter/labextensions/allsource-lab-extension
BUILT := $(CURDIR)/allsource_lab/labextension

$(STAMP): pyproject.toml install.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook]'
	rm -rf $(LABEXT) && mkdir -p $(LABEXT)
	ln -s $(BUILT)/package.json $(LABEXT)/package.json
	ln -s $(BUILT)/static $(LABEXT)/static
	cp install.json $(LABEXT)/install.json
	@touch $(STAMP)

venv: $(STAMP)

# Jupyter refuses to run as root unless told; containers often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# A demo store (a generated shop) is built once and is what `%allsource open` opens
# when given no path.
DEMO := $(CURDIR)/demo.events

# LAB_ARGS go to `jupyter lab` as they are: headless and remote machines need
# `make lab LAB_ARGS="--no-browser --port 8899 --ip 0.0.0.0"`.
LAB_ARGS ?=

lab: $(STAMP)
	@test -d $(DEMO) || $(BIN)/allsource demo $(DEMO)
	ALLSOURCE_DEFAULT_STORE=$(DEMO) $(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) \
		notebooks/01-quickstart.ipynb

# Node.js (20) is needed for the extension's jest tests and builds, never by Python.
NPM_CHECK = @command -v npm >/dev/null 2>&1 || { \
	echo "error: npm not found. The JupyterLab extension's tests and build need Node.js 20"; \
	echo "  with npm (Debian/Ubuntu: apt-get install nodejs npm, or https://nodejs.org)."; \
	echo "  The Python tests alone: $(BIN)/python -m pytest"; exit 1; }

# npm ci wipes and reinstalls node_modules, so it runs again only when the lock changes
# (the stamp lives inside node_modules: deleting that folder also reruns it).
NODE_STAMP := extension/node_modules/.npm-ci-stamp
$(NODE_STAMP): extension/package-lock.json
	$(NPM_CHECK)
	cd extension && npm ci --no-audit --no-fund
	@touch $@

node: $(NODE_STAMP)

# Rebuild the prebuilt extension (allsource_lab/labextension, committed) from extension/.
extension: $(NODE_STAMP)
	$(NPM_CHECK)
	cd extension && npm run build

# Every test but the long torture runs, the doctests, and the example notebooks (nbval,
# strict: every output compared, after notebooks/nbval_sanitize.cfg's substitutions);
# then the extension's jest tests, which render the fixtures the Python tests check.
test: $(STAMP) $(NODE_STAMP)
	$(NPM_CHECK)
	$(BIN)/python -m pytest -q -m "not slow" --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider tests allsource_lab notebooks
	cd extension && npm test

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -p no:cacheprovider tests

# The browser test: a real JupyterLab with the extension, driven by Playwright in the
# system's Chromium (Playwright's own browser download is skipped: CI has no route to it).
# One JupyterLab serves every spec: the timeline, and each example notebook run with
# Run All and checked for errors, drawn results, charts, widgets that answer a click and
# a drag, and the dark theme. Screenshots land in ui-tests/test-results/.
UI_STAMP := ui-tests/node_modules/.npm-ci-stamp
$(UI_STAMP): ui-tests/package-lock.json
	$(NPM_CHECK)
	cd ui-tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

test-ui: $(STAMP) $(UI_STAMP)
	$(NPM_CHECK)
	@if command -v chromium >/dev/null 2>&1; then \
		echo "using $$(command -v chromium)"; \
	else \
		echo "chromium not found: installing the Debian package (apt-get install chromium)"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi
	cd ui-tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx playwright test

# Lint, format, strict types, and the import contracts (layers; features reach the store
# only through allsource_lab._feed): see docs/architecture.md.
check: $(STAMP)
	$(BIN)/ruff check allsource_lab tests
	$(BIN)/ruff format --check allsource_lab tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m allsource_lab.bench

# How each cost grows with the history: a store built and read at each of SCALE_SIZES
# events (`make bench-scale SCALE_SIZES=1M,10M`), in BENCH_SCALE_DIR or a temporary folder;
# a size the machine's memory or disk cannot hold is skipped, saying why. Writes the
# figures to bench-results/scale-<date>.json.
SCALE_SIZES ?= 1M,10M,100M
bench-scale: $(STAMP)
	$(BIN)/python -m allsource_lab.bench.scale --sizes $(SCALE_SIZES)

# The history exported to Delta Lake and queried on Spark (local[2], Java 17): export rate,
# table size against the segments, and states(as_of) and a window on Spark against the
# store's own time, over SPARK_EVENTS events (`make bench-spark SPARK_EVENTS=1M`). Writes
# the figures to bench-results/spark-<date>.json.
SPARK_EVENTS ?= 10M
bench-spark: $(STAMP)
	$(BIN)/python -m allsource_lab.bench.spark --events $(SPARK_EVENTS)

# The server under load on loopback (allsource serve, default settings): single-event
# POSTs a second with p50/p99 from wrk (Debian's package, installed here if missing; a
# Python load generator otherwise), batch POSTs of 10K events, and a WebSocket fan-out to
# 10 clients. Writes the figures to bench-results/serve-<date>.json.
bench-serve: $(STAMP)
	command -v wrk >/dev/null || (command -v apt-get >/dev/null && apt-get install -y wrk) || true
	$(BIN)/python -m allsource_lab.bench.serve --json bench-results/serve-$$(date +%F).json

# Continuous ingest with checkpoints, compactions, snapshots, reopens and verify() for
# DURATION seconds, failing on lost events, damage or memory growth past its bound
# (`make soak DURATION=3600`); the default test run has a 20 s version.
DURATION ?= 600
soak: $(STAMP)
	$(BIN)/python -m allsource_lab.bench.soak --duration $(DURATION) --report soak-report.json

clean:
	rm -rf $(VENV) build *.egg-info extension/node_modules ui-tests/node_modules

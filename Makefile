# The newcomer's path: `make lab` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: lab test test-slow check bench clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook]'
	@touch $(STAMP)

venv: $(STAMP)

# Jupyter refuses to run as root unless told; containers often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# A demo store (a generated shop) is built once and is what `%allsource open` opens
# when given no path.
DEMO := $(CURDIR)/demo.events

lab: $(STAMP)
	@test -d $(DEMO) || $(BIN)/allsource demo $(DEMO)
	ALLSOURCE_DEFAULT_STORE=$(DEMO) $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-quickstart.ipynb

# Every test but the long torture runs, the doctests, and the example notebooks (nbval,
# strict: every output compared, after notebooks/nbval_sanitize.cfg's substitutions).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --nbval --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider tests allsource_lab notebooks

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -p no:cacheprovider tests

check: $(STAMP)
	$(BIN)/ruff check allsource_lab tests
	$(BIN)/ruff format --check allsource_lab tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m allsource_lab.bench

clean:
	rm -rf $(VENV) build *.egg-info

# Set-up and entry points for a fresh machine: `make run` and `make test` (see README).
export KEDRO_DISABLE_TELEMETRY := 1
export PIP_PROGRESS_BAR := off

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint viz mlflow-ui benchmark demo

# Re-installs only when the dependencies change. uv installs what pip would, from where pip would
# (scripts/install.py says how): on 2 cores a fresh .venv took about 94 s with pip and compileall,
# and about 25 s this way.
$(INSTALLED): pyproject.toml scripts/install.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.9"
	$(BIN)/python scripts/install.py -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(BIN)/kedro run

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

viz: install
	$(BIN)/kedro viz run --no-browser

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

# Silent, with the install's commands and messages on stderr, so that stdout is the one JSON
# document (make echoes a recipe's command there, as on a fresh clone's first install).
benchmark:
	@$(MAKE) --no-print-directory install >&2
	@$(BIN)/python benchmarks/run_all.py

# A local web page for a registered person (README "Serving a trained person"): champion by default.
demo: install
	MLFLOW_TRACKING_URI=sqlite:///mlflow.db $(BIN)/python -m audio2photoreal_pipelines.demo

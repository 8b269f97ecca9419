# tml_cloudremoval: set-up, main job, tests and benchmarks. Needs only Python 3.11 on the machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
KEDRO_ENV ?= demo

export KEDRO_DISABLE_TELEMETRY := 1
# mlflow (kedro-mlflow, README "Tracked runs") sends usage telemetry unless told not to.
export MLFLOW_DISABLE_TELEMETRY := true
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Wider log lines from Kedro's rich handler when output is not a terminal (CI, files).
export COLUMNS ?= 140

.PHONY: install run sample-data ablation test lint bench viz clean-data

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,backends]"
	touch $@

install: $(INSTALLED) ## create .venv and install the project with its test tools

sample-data: $(INSTALLED) ## write the synthetic SEN12MS-CR sample and TML scene (skipped when present)
	$(BIN)/kedro run --pipelines sample_data

run: sample-data ## the default pipeline end to end on the sample data (demo settings)
	$(BIN)/kedro run --env $(KEDRO_ENV)

ablation: sample-data ## every variant of conf/base/parameters_ablation.yml trained and compared (demo settings)
	$(BIN)/kedro run --env $(KEDRO_ENV) --pipelines data_processing,ablation

test: $(INSTALLED) ## the test suite (CPU, tiny models)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(INSTALLED) ## every benchmark, figures side by side (slow on a CPU)
	$(BIN)/python benchmarks/run_all.py

viz: $(INSTALLED) ## pipeline lineage in the browser
	$(BIN)/kedro viz run

clean-data: ## remove generated data, models and reports (keeps the folder layout)
	find data -mindepth 2 ! -name .gitkeep -delete

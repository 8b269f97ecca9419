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

.PHONY: install run sample-data ablation test lint bench viz clean-data gpu-wheels

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

# Test processes (pytest-xdist): one per usable core, at most 8 (each imports TensorFlow; the
# largest process peaked at 1.8 GB); most tests use one core, so 2 on 2 cores halve the time.
# TEST_WORKERS=0: one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; \
	print(min(8, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()))")

test: $(INSTALLED) ## the test suite (CPU, tiny models), in TEST_WORKERS processes
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(INSTALLED) ## every benchmark, figures side by side (slow on a CPU)
	$(BIN)/python benchmarks/run_all.py

# Wheels for benchmarks/gpu_check.sh on a GPU machine that has Python 3.12, numpy, pandas, scipy,
# h5py, rich, ml-dtypes, click, attrs, certifi, pyparsing, pyyaml, tqdm and a backend (the
# device's image: docs/gpu.md) but no keras or rasterio: keras (+ namex, optree), rasterio
# (+ affine, cligj, click-plugins), the project; the versions of this .venv; about 30 MB.
GPU_WHEELS := .whl
GPU_PLATFORMS := $(foreach n,2_28 2_27 2_17,--platform manylinux_$(n)_x86_64) \
	--platform manylinux2014_x86_64
GPU_NEEDS := keras rasterio namex optree affine cligj click-plugins

gpu-wheels: $(INSTALLED) ## wheels for benchmarks/gpu_check.sh on a GPU machine (into .whl/)
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(GPU_PLATFORMS) -d $(GPU_WHEELS) \
		$$($(BIN)/python -c "import importlib.metadata as m; \
		print(' '.join(f'{p}=={m.version(p)}' for p in '$(GPU_NEEDS)'.split()))")
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(GPU_WHEELS) .
	du -sh $(GPU_WHEELS) && ls $(GPU_WHEELS)

viz: $(INSTALLED) ## pipeline lineage in the browser
	$(BIN)/kedro viz run

clean-data: ## remove generated data, models and reports (keeps the folder layout)
	find data -mindepth 2 ! -name .gitkeep -delete

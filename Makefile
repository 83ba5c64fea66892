# The two commands: `make demo` and `make test`. Each creates .venv and installs into it when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/glasscity demo

test: $(STAMP)
	$(BIN)/python -m pytest

# the peers measured beside glasscity (quixstreams, confluent-kafka, river): only `make bench` needs them.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $(BENCH_STAMP)

# `make bench DAIAD=path/to/swm_trialA.zip` replays the real DAIAD year; BENCH_ARGS="--quick --only KEY" for a short run
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench.py $(if $(DAIAD),--daiad '$(DAIAD)') $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-output .pytest_cache

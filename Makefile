# The two commands: `make demo` and `make test`. Each creates .venv and installs into it when needed.
# Every install uses constraints.txt, so a fresh clone gets the same versions every time;
# `make lock` refreshes that file (the newest releases that satisfy pyproject.toml) - commit the result.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
CONSTRAINTS := constraints.txt
# every extra, so that the pins of `make test` and `make bench` are resolved together
LOCK_EXTRAS := broker,test,bench

.PHONY: demo test bench lock clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[broker,test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/glasscity demo

test: $(STAMP)
	$(BIN)/python -m pytest

# the peers measured beside glasscity (quixstreams, confluent-kafka, river): only `make bench` needs them.
$(BENCH_STAMP): $(STAMP) pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[bench]'
	@touch $(BENCH_STAMP)

# `make bench DAIAD=path/to/swm_trialA.zip` replays the real DAIAD year; BENCH_ARGS="--quick --only KEY" for a short run
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench.py $(if $(DAIAD),--daiad '$(DAIAD)') $(BENCH_ARGS)

# Resolve pyproject.toml (all extras) afresh in a throwaway venv and pin everything it installed,
# pip and setuptools included. Run it with the Python of production (3.11) after changing a
# dependency or to take upgrades, then `make test` (the stamp depends on the file) and commit it.
lock:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or python3 on PATH)"; exit 1; }
	@rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip setuptools
	$(VENV)-lock/bin/python -m pip install --quiet -e '.[$(LOCK_EXTRAS)]'
	{ echo "# Pinned versions of every package glasscity installs, all extras, Python $$($(VENV)-lock/bin/python -c 'import platform; print(platform.python_version())')."; \
	  echo "# Used by every pip install of the Makefile and docker/Dockerfile (-c $(CONSTRAINTS)). Do not edit: run make lock."; \
	  $(VENV)-lock/bin/python -m pip freeze --all --exclude-editable; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(VENV)-lock
	@echo "$(CONSTRAINTS) rewritten: review with git diff, run make test, commit it"

clean:
	rm -rf $(VENV) $(VENV)-lock demo-output .pytest_cache

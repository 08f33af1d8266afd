# potlab: two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Install torch first from its exact pin (CPU build), then the rest; re-run only when
# the requirement files change, so `make setup` is idempotent and fast.
$(STAMP): $(BIN)/python requirements*.txt pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/potlab demo --out runs/demo

# two pytest workers, one thread each (each test file stays on one worker, so its module
# fixtures are built once); tests that start their own processes give them one thread too
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 tests

clean:
	rm -rf $(VENV) runs

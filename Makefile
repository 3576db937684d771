# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_SDK := tests/node_interop/node_modules/.package-lock.json
# pip shows setuptools' "Editable installation" banner on every editable install as a warning:
# that one warning is silenced; errors and any other warning still show
PIP_INSTALL := $(BIN)/python -W "ignore:Editable installation" -m pip install -q
# pytest-xdist workers: one per core (`make test TEST_WORKERS=0` runs in this process)
TEST_WORKERS ?= auto

.PHONY: run test test-fast demo bench lint diagram sandbox clean node-sdk

run: $(STAMP)
	$(BIN)/pos-terminal run --config config/terminal.yaml

test: $(STAMP) node-sdk
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# the quick subset while working: everything but the tests marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

demo: $(STAMP)
	$(BIN)/pos-terminal demo --config config/terminal.yaml

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks
	$(BIN)/python -m tests.benchmarks.bench_receipts
	$(BIN)/python -m tests.benchmarks.bench_scanning
	$(BIN)/python -m tests.benchmarks.bench_notify

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

diagram: $(STAMP)
	$(BIN)/pos-terminal diagram

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "python3-venv is missing: installing it with apt-get"; \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python3 cannot create a virtual environment: install python3-venv (sudo apt-get install python3-venv)"; exit 1; \
	  fi; }
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e '.[dev]'
	@$(PIP_INSTALL) -e '.[hid]' 2>/dev/null || \
	  echo "note: evdev could not be built (it needs gcc and the Linux and Python headers: apt-get install gcc python3-dev); HID keypad and scanner drivers are off, mock input still works"
	@touch $(STAMP)

# The Node SDK that tests/test_node_interop.py runs: installed once, offline afterwards.
node-sdk:
	@if command -v npm >/dev/null; then $(MAKE) -s --no-print-directory $(NODE_SDK); \
	  else echo "note: npm is missing (apt-get install nodejs npm): the Node SDK test will skip"; fi

$(NODE_SDK): tests/node_interop/package-lock.json
	cd tests/node_interop && npm ci

clean:
	rm -rf $(VENV) var tests/node_interop/node_modules

# Everything a newcomer needs: `make run` starts the registry, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The test and lint tools (pytest, moto, ruff, mypy, ...), which `make run` does without.
DEV_STAMP := $(VENV)/.installed-dev

# Tests run in parallel processes (pytest-xdist): each test server has its own loopback port,
# data dir and database. A module runs whole in one process, so its shared servers start once.
TEST_PROCESSES ?= 2
PYTEST = $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope

.PHONY: run test test-sqlite test-postgresql lint bench system-packages clean

$(STAMP): pyproject.toml
	scripts/install-system-packages python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/moorage serve

system-packages:
	scripts/install-system-packages test

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Lint, then the whole suite on each metadata database the registry supports.
test: system-packages $(DEV_STAMP) lint
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgresql

test-sqlite: system-packages $(DEV_STAMP)
	MOORAGE_TEST_DATABASE=sqlite $(PYTEST)

# Each test server on its own database in a PostgreSQL cluster the run starts and stops.
test-postgresql: system-packages $(DEV_STAMP)
	MOORAGE_TEST_DATABASE=postgresql $(PYTEST)

bench: system-packages $(DEV_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data

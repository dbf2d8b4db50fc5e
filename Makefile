# Everything a newcomer needs: `make run` starts the registry, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-postgresql lint bench system-packages clean

$(STAMP): pyproject.toml
	scripts/install-system-packages python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/moorage serve

system-packages:
	scripts/install-system-packages test

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: system-packages $(STAMP) lint
	$(BIN)/pytest

# The database-heavy suites again, each test server on its own PostgreSQL database.
test-postgresql: system-packages $(STAMP)
	MOORAGE_TEST_DATABASE=postgresql $(BIN)/pytest tests/registry tests/content tests/accounts \
		tests/api tests/test_gc.py tests/test_fsck.py

bench: system-packages $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data

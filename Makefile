# Two entry points for a fresh Debian 12/13 machine (as root or with sudo):
#   make run   sets up and runs PacketTotal (web console + API on http://127.0.0.1:8000/)
#   make test  sets up and runs the test-suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint setup setup-test bench clean

$(BIN)/packettotal: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set, Python would otherwise recompile the
# package on every start (~0.2 s per `packettotal` command).
setup:
	bash scripts/setup-system.sh run
	@$(MAKE) --no-print-directory $(BIN)/packettotal
	bash scripts/setup-geo.sh $(VENV)/share/packettotal/geo $(BIN)/python
	@$(BIN)/python -m compileall -q src

setup-test:
	bash scripts/setup-system.sh test
	@$(MAKE) --no-print-directory $(BIN)/packettotal
	bash scripts/setup-geo.sh $(VENV)/share/packettotal/geo $(BIN)/python
	@$(BIN)/python -m compileall -q src

run: setup
	$(BIN)/packettotal serve --host $(HOST) --port $(PORT)

# ruff's and mypy's settings are in pyproject.toml.
lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The suite twice: on the embedded SQLite database, then with every test's database on PostgreSQL
# (and the broker on Redis), both started on loopback by scripts/setup-services.sh.
TEST_DATABASE_URL ?= postgresql://pt:pt@127.0.0.1:5432/postgres
TEST_BROKER_URL   ?= redis://127.0.0.1:6379/0
test: setup-test
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest
	bash scripts/setup-services.sh
	PACKETTOTAL_TEST_DATABASE_URL=$(TEST_DATABASE_URL) PACKETTOTAL_TEST_BROKER_URL=$(TEST_BROKER_URL) $(BIN)/pytest

bench: setup-test
	bash scripts/setup-system.sh bench
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) build src/*.egg-info

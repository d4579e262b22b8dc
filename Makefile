# Eventdesk: `make run` to try it, `make test` to test it. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.installed-bench-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test test-quick lint format typecheck check db-status db-stop clean bench bench-quick

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## setup: virtual environment, dependencies, embedded PostgreSQL up, migrations (idempotent)
setup: $(STAMP)
	$(BIN)/python manage.py pg_start
	$(BIN)/python manage.py migrate --noinput

## run: set up, then serve the console at http://$(HOST):$(PORT)/admin/
run: setup
	@bash scripts/run.sh $(HOST) $(PORT)

## test: set up, then run the whole test suite
test: setup
	$(BIN)/python -m pytest

## test-quick: the suite without the heaviest fault and load loops
test-quick: setup
	$(BIN)/python -m pytest -m "not slow"

# The benchmark extras: the eventsourcing library (the peer) and profilers.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

## bench: the benchmark harness, full sizes (see benchmarks/README.md), on a private
## PostgreSQL cluster so that nothing else on the shared server skews the figures
## (BENCH_ARGS="--only catchup" and the like pass options through)
bench: setup $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --isolated $(BENCH_ARGS)

## bench-quick: the benchmark harness, reduced sizes (a few minutes on 2 cores)
bench-quick: setup $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick --isolated $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benchmarks are type-checked too, against the peer library they import.
typecheck: $(BENCH_STAMP)
	$(BIN)/mypy .

check: lint typecheck test

db-status: $(STAMP)
	$(BIN)/python manage.py pg_status

db-stop: $(STAMP)
	$(BIN)/python manage.py pg_stop

clean: db-stop
	rm -rf .data

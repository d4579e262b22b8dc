# Eventdesk: `make run` to try it, `make test` to test it. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.installed-bench-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test test-quick test-pg15 lint format typecheck check db-status db-stop clean bench bench-quick

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

# The tests whose outcome depends on PostgreSQL's SQL semantics (xid8 and the snapshot
# horizon, SKIP LOCKED, advisory locks, LISTEN/NOTIFY, the ordering and compare-and-set
# queries): the event store's contract, the horizon and ordering tests, the subscriber
# worker's integration tests, and the dismissal's. The HTTP, admin, browser and
# alert tests are left out: they would run the same SQL again through other doors.
SQL_TESTS := \
	tests/contract/test_event_store_contract.py \
	tests/integration/test_append_contention.py \
	tests/integration/test_event_visibility_pg.py \
	tests/integration/test_horizon_order.py \
	tests/integration/test_horizon_exemption.py \
	tests/integration/test_reaction_horizon.py \
	tests/integration/test_horizon_holders.py \
	tests/integration/test_out_of_order_at_scale.py \
	tests/integration/test_dismissal_horizon.py \
	tests/integration/test_dismissal_horizon_property.py \
	tests/integration/test_worker_projections.py \
	tests/integration/test_worker_reactions.py \
	tests/integration/test_worker_wakeup.py \
	tests/integration/test_typed_wakeups.py \
	tests/integration/test_wakeup_check.py \
	tests/integration/test_projection_batch_path.py \
	tests/integration/test_replay_savepoints.py \
	tests/integration/test_worker_connections.py \
	tests/integration/test_reaction_leases.py \
	tests/integration/test_stream_leases.py \
	tests/integration/test_stream_reactions.py \
	tests/integration/test_stream_reactions_live.py \
	tests/integration/test_stream_intake_pause.py \
	tests/property/test_stream_reaction_properties.py \
	tests/integration/test_dismissal_pg.py \
	tests/reliability/test_dismissal.py \
	tests/unit/test_dismissal_handler.py
PG15_BIN ?= /usr/lib/postgresql/15/bin

## test-pg15: SQL_TESTS on PostgreSQL 15 (Debian's postgresql-15), in a throwaway
## cluster the run starts on a free port and removes (tests/other_postgres.py)
test-pg15: $(STAMP)
	$(BIN)/python -m tests.other_postgres --bindir $(PG15_BIN) --major 15 -- $(SQL_TESTS)

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

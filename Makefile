# Two commands do all set-up on a fresh machine: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck fmt schema migrate bench bench-content bench-publish bench-generation bench-ingest bench-dashboard bench-versus bench-subscriptions clean

$(STAMP): pyproject.toml scripts/portable_pgvector.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	bash scripts/portable_pgvector.sh $(BIN)/python
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/smartcontent dev

# Two test processes by default (each with its own embedded Postgres and Redis); files
# stay whole on one process (--dist loadfile). PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app schema resolvers workers tests bench migrations
	$(BIN)/mypy app schema resolvers workers

fmt: $(STAMP)
	$(BIN)/ruff format app schema resolvers workers tests bench migrations
	$(BIN)/ruff check --fix .

schema: $(STAMP)
	$(BIN)/smartcontent export-schema schema.graphql

migrate: $(STAMP)
	$(BIN)/smartcontent migrate

bench: $(STAMP)
	$(BIN)/python bench/graphql_health.py

bench-content: $(STAMP)
	$(BIN)/python bench/content_bench.py

bench-publish: $(STAMP)
	$(BIN)/python bench/publish_bench.py

bench-generation: $(STAMP)
	$(BIN)/python bench/generation_bench.py

# EVENTS=100000 for a quick run.
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest_bench.py $(if $(EVENTS),--events $(EVENTS))

# 10,000,000 events (cached in /tmp/bench-dashboard-smartcontent); EVENTS=1000000 for a quick run.
bench-dashboard: $(STAMP)
	$(BIN)/python bench/dashboard_bench.py $(if $(EVENTS),--events $(EVENTS))

# Needs Node (npx) for PostGraphile; DURATION=5 for a short run, ARGS='--reuse' to skip seeding.
bench-versus: $(STAMP)
	$(BIN)/python bench/versus_postgraphile.py $(if $(DURATION),--duration $(DURATION)) $(ARGS)

# N='100 1000 3000' (the default) chooses the subscriber counts; ARGS='--quick' (N=100,1000,
# short phases, under 3 minutes), '--replicas 2', '--scenarios B', '--rate 1000'.
bench-subscriptions: $(STAMP)
	$(BIN)/python bench/subscriptions.py $(if $(N),--subscribers $(N)) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

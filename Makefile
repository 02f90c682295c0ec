# The two commands a newcomer needs: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: install dev-install browser run migrate test lint typecheck test-sdk-alone test-sqlite test-postgres compiled-sdk lock clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The SDK is installed editable and as plain Python here (a compiled module would shadow the source
# being edited); `pip install ./sdk` (Docker, test-sdk-alone, the engine benchmark) compiles its hot path.
$(VENV)/.installed: $(BIN)/python pyproject.toml sdk/pyproject.toml sdk/setup.py constraints.txt
	FLAGSVC_SDK_COMPILE=0 $(BIN)/pip install --quiet -c constraints.txt -e ./sdk -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	FLAGSVC_SDK_COMPILE=0 $(BIN)/pip install --quiet -c constraints.txt -e ./sdk -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed

# The engine production installs: ./sdk built by mypyc into its own directory, which test-postgres
# puts first on PYTHONPATH so that the server's tests (and the gunicorn processes the e2e tests
# start) import it instead of the editable source. Rebuilt when a source of the SDK changes.
SDK_COMPILED := .sdk-compiled
SDK_SOURCES := $(wildcard sdk/flagsvc_sdk/*.py sdk/flagsvc_sdk/*/*.py) sdk/setup.py sdk/pyproject.toml
$(SDK_COMPILED)/.built: $(VENV)/.installed $(SDK_SOURCES) constraints.txt
	rm -rf $(SDK_COMPILED)
	$(BIN)/pip install --quiet --no-deps --target $(SDK_COMPILED) -c constraints.txt ./sdk
	PYTHONPATH=$(CURDIR)/$(SDK_COMPILED) $(BIN)/python scripts/require_compiled_engine.py $(SDK_COMPILED)
	touch $@
compiled-sdk: $(SDK_COMPILED)/.built

# Playwright drives Debian's Chromium; no browser is ever downloaded.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the admin browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

migrate: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

# Serves on SQLite by default with gunicorn; honours PORT, DATABASE_URL, REDIS_URL, JWT_SECRET.
run: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(BIN)/python manage.py seed --if-empty
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@# The event stream (GET /v1/events, ADR 0012) on PORT + 1 and the worker (webhooks, retention)
	@# next to gunicorn; Ctrl-C stops all three.
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(BIN)/python -m flagsvc.stream & stream=$$!; \
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py run_worker & worker=$$!; \
	trap 'kill $$stream 2>/dev/null; kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	DEBUG=$${DEBUG:-1} PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py flagsvc.wsgi

lint: dev-install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: dev-install
	DEBUG=1 $(BIN)/mypy flagsvc kernel tenancy flags segments audit evaluation webhooks usage sdk/flagsvc_sdk

# The end-to-end tests start their own servers on databases of their own (SQLite and PostgreSQL), so
# they run once, in test-postgres, on the compiled engine production installs. Without them the SQLite
# run is in-process only and takes both cores (-n 2: 3 min instead of 5).
test-sqlite: dev-install browser
	@$(BIN)/python scripts/require_services.py "$(PG_TEST_URL)" "$(TEST_REDIS_URL)"
	TEST_REDIS_URL=$(TEST_REDIS_URL) DEBUG=0 JWT_SECRET=test-only-jwt-secret-of-at-least-32-bytes SECRET_KEY=test-only-secret-key DATABASE_URL= $(BIN)/pytest -n 2 --ignore=tests/e2e $(PYTEST_ARGS)

# On the compiled engine (compiled-sdk); tests/conftest.py stops the run if it is not the one imported.
# The in-process tests on both cores (a test database per worker); then the end-to-end tests, one at a
# time, since each starts its own servers and some measure how fast a change arrives.
PG_TEST_ENV = PYTHONPATH=$(CURDIR)/$(SDK_COMPILED) FLAGSVC_REQUIRE_COMPILED_ENGINE=1 TEST_REDIS_URL=$(TEST_REDIS_URL) \
	DEBUG=0 JWT_SECRET=test-only-jwt-secret-of-at-least-32-bytes SECRET_KEY=test-only-secret-key DATABASE_URL=$(PG_TEST_URL)
test-postgres: dev-install browser compiled-sdk
	@$(BIN)/python scripts/require_services.py "$(PG_TEST_URL)" "$(TEST_REDIS_URL)"
	$(PG_TEST_ENV) $(BIN)/pytest -p no:cacheprovider -n 2 --ignore=tests/e2e $(PYTEST_ARGS) tests
	$(PG_TEST_ENV) $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS) tests/e2e

# The SDK installs and passes its tests alone, in a virtual environment without Django, as the
# mypyc-compiled build a user gets from `pip install` (test-sqlite runs the same tests on the source).
test-sdk-alone:
	$(PYTHON) -m venv .venv-sdk
	.venv-sdk/bin/pip install --quiet -c constraints.txt ./sdk pytest hypothesis
	@! .venv-sdk/bin/python -c "import django" 2>/dev/null || { echo "Django leaked into the SDK environment"; exit 1; }
	cd sdk/tests && ../../.venv-sdk/bin/python -c "import sys, flagsvc_sdk.engine as e; \
		sys.exit(0 if e.COMPILED else 'flagsvc-sdk installed without its compiled engine')"
	cd sdk && ../.venv-sdk/bin/pytest -q -p no:cacheprovider -c /dev/null -ra tests
	.venv-sdk/bin/python scripts/check_sdk_fallback.py

test: lint typecheck test-sdk-alone test-sqlite test-postgres

bench: dev-install
	$(BIN)/python benchmarks/run_all.py

# Re-pin every dependency after changing pyproject.toml (commit constraints.txt).
lock: $(BIN)/python
	FLAGSVC_SDK_COMPILE=0 $(BIN)/pip install --quiet -e ./sdk -e ".[dev]"
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .venv-sdk $(SDK_COMPILED) .pytest_cache .mypy_cache .ruff_cache staticfiles sdk/build

# Mimamori: `make run` (the demo) and `make test` (every test). Nothing else is
# needed on a fresh machine: these targets create the virtual environment,
# install what is missing and set up the database.

VENV      ?= .venv
PY        := $(VENV)/bin/python
FLASK     := $(VENV)/bin/flask --app portal
PG_TEST_URL ?= postgresql://postgres@localhost/test
export MIMAMORI_INSTANCE ?= $(CURDIR)/instance

.PHONY: run test install install-browser translations compile-translations lint security-scan test-sqlite test-postgres bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

compile-translations: install
	$(PY) scripts/i18n.py compile

## translations: extract messages from the code, merge them into ja/en, compile
translations: install
	$(PY) scripts/i18n.py update
	$(PY) scripts/i18n.py check

## run: the demo on SQLite with demo data, served on http://127.0.0.1:5000
run: compile-translations
	$(FLASK) db upgrade
	$(FLASK) demo load
	@echo ""
	@echo "Serving Mimamori on http://127.0.0.1:5000  (Ctrl-C to stop)"
	$(FLASK) run --host 127.0.0.1 --port 5000

install-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .

## security-scan: bandit (medium and high findings fail) and pip-audit on the installed packages
security-scan: install
	$(VENV)/bin/bandit -q -r portal backoffice consent surveys resources --severity-level medium
	$(PY) scripts/audit_deps.py

test-sqlite: install compile-translations
	env -u DATABASE_URL $(PY) -m pytest

test-postgres: install compile-translations
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(PG_TEST_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "== PostgreSQL at $(PG_TEST_URL) =="; \
	  DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest; \
	else echo "== no PostgreSQL answers at $(PG_TEST_URL): skipping the PostgreSQL run =="; fi

## test: ruff, bandit and pip-audit, then the whole suite on SQLite, then on PostgreSQL when one answers
test: install install-browser lint security-scan
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

clean:
	rm -rf $(VENV) instance

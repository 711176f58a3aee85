# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench check browser mutate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: start web, worker and clock on embedded defaults (SQLite, embedded Redis, console SMS)
run: install
	$(PY) -m bot.dev

# The browser tests drive Debian's Chromium (Playwright's own browser download is not
# reachable); install it from the distribution when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## test: install everything and run the whole suite
test: install browser
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

check: install
	$(VENV)/bin/flask --app bot flows check

bench: install
	$(PY) -m bench

## mutate: mutation testing of the invariant modules (slow; not part of CI; see bench/README.md)
mutate: install
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/python -m bench.mutation_score

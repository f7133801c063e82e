# The README's commands. Only Python 3.11+ is needed: everything else is installed into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint format docs bench fuzz clean lock env-example openapi contract screenshots events-doc rule-words-doc

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole system on the embedded default (SQLite, local Redis, web, worker, beat, Flower).
run: $(STAMP)
	$(BIN)/followup run

## Run the tests (DATABASE_URL / REDIS_URL when set; else SQLite and a private Redis).
## Bytecode caches on (a machine may turn them off): the suite starts hundreds of worker and web
## processes, and without them each one compiles the project's modules again.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The documentation site (mkdocs.yml, docs/) into site/, in strict mode: a broken link fails it. Offline.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## The docs' pictures of every staff page at a phone's and a desk's width (docs/screenshots/), taken in
## Debian's Chromium by the every-page check as the role each page is for; never by hand.
screenshots: $(STAMP)
	mkdir -p docs/screenshots
	FOLLOWUP_SCREENSHOTS=$(CURDIR)/docs/screenshots FOLLOWUP_TEST_REQUIRE=chromium \
		$(BIN)/python -m pytest -q tests/console/test_every_page.py
	$(BIN)/python -m app.devtools.screenshots_doc > docs/screenshots.md.new && mv docs/screenshots.md.new docs/screenshots.md

## Run the benchmarks under bench/ (each prints a table).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## schemathesis against a local server on a fresh database: every phase, every check (a long run).
fuzz: $(STAMP)
	$(BIN)/python -m bench fuzz $(FUZZ_ARGS)

## requirements.lock (what the Docker image installs, hashes checked) from pyproject.toml's
## dependencies; tests/test_lock.py fails while it is stale.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'uv>=0.4,<1'
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--generate-hashes --custom-compile-command "make lock" -o requirements.lock

## .env.example (docker-compose's env_file template) from app/platform/config.py; tests/test_compose.py checks it.
env-example: $(STAMP)
	$(BIN)/python -m app.devtools.env_example > .env.example

## openapi.json (the API contract) from the code: sorted keys, fixed indentation, the same bytes for
## the same code; tests/test_openapi_contract.py fails while it is stale.
openapi: $(STAMP)
	$(BIN)/python -m app.devtools.openapi > openapi.json.tmp
	mv openapi.json.tmp openapi.json

## docs/architecture/events.md from the event types (app/handlers.py EVENTS); tests/events/test_event_types.py
## fails while it is stale.
events-doc: $(STAMP)
	$(BIN)/python -m app.devtools.events_doc > docs/architecture/events.md.tmp
	mv docs/architecture/events.md.tmp docs/architecture/events.md

## The rule builder's words in docs/guides/rules-and-sequences.md, from app/console/wording_rules.py;
## tests/console/test_rule_words.py fails while they are stale.
rule-words-doc: $(STAMP)
	$(BIN)/python -m app.devtools.rule_words_doc

## Lint openapi.json (Spectral, Redocly) and type-check the TypeScript example against it, with the npm
## packages pinned in contract/package-lock.json (needs Node and the npm registry).
contract:
	cd contract && npm ci --no-audit --no-fund
	cd contract && npm run --silent lint && npm run --silent typecheck

clean:
	rm -rf $(VENV) var site .pytest_cache .ruff_cache

# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migration bench lock container-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Every dependency at the exact version of requirements.lock (the same set the image and CI use).
$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/infranet run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .

# Writes the next migration from the models: make migration MESSAGE="what it does"
migration: $(STAMP)
	$(BIN)/python scripts/new_migration.py "$(MESSAGE)"

bench: $(STAMP)
	$(BIN)/python bench/calendar.py
	$(BIN)/python bench/bot.py
	$(BIN)/python bench/newsletter.py
	$(BIN)/python bench/feed_memory.py
	$(BIN)/python bench/api_stall.py
	$(BIN)/python bench/bounces.py
	$(BIN)/python bench/ics_import.py
	$(BIN)/python bench/sources.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/insight.py

# After changing dependencies in pyproject.toml: install them, then write the new lock file.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	{ sed -n '/^#/p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Builds the image and checks it as an operator uses it (root, several minutes; not run by CI).
container-check:
	bash scripts/container-check.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

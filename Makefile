# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migration bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/infranet run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff check --fix .

# Writes the next migration from the models: make migration MESSAGE="what it does"
migration: $(STAMP)
	$(BIN)/python scripts/new_migration.py "$(MESSAGE)"

bench: $(STAMP)
	$(BIN)/python bench/calendar.py
	$(BIN)/python bench/bot.py
	$(BIN)/python bench/newsletter.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

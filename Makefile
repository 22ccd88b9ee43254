# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv with everything it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench install clean

$(BIN)/interlock: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/interlock

demo: install
	$(BIN)/interlock demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check daemon components config tests bench
	@# The `interlock` package as mypy must see it (see [tool.mypy] in pyproject.toml).
	rm -rf build/typecheck && mkdir -p build/typecheck/interlock
	ln -s $(CURDIR)/daemon/* $(CURDIR)/components $(CURDIR)/config build/typecheck/interlock/
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/gtfs_load.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

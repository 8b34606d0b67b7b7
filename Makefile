# Loom developer entry points. `make test` works on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint contracts unit bench clean demo venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint contracts unit

bench: $(STAMP)
	@command -v haproxy >/dev/null && command -v nginx >/dev/null && command -v wrk >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx-light wrk gcc util-linux >/dev/null; }
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/proxy_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info src/*.egg-info

demo: $(STAMP)
	$(BIN)/loom up examples/bookstore

# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc -a -x /usr/bin/pdftoppm || { apt-get update -qq && apt-get install -y -qq fonts-noto-cjk poppler-utils; }  # PDFs (docs/procedures.md)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot.demo

test: $(STAMP)
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } || echo "make test: Debian's chromium is missing and this user cannot install it (run: sudo apt-get install chromium); the console browser tests will be skipped, or fail under CI=true" >&2  # docs/console.md
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; } || echo "make bench: Debian's wrk is missing (sudo apt-get install wrk)" >&2
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

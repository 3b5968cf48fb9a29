# Every target installs what it needs first: `make test` on a fresh clone just works.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install up demo test bench lint docs clean

install: $(STAMP)

# Reinstall only when the dependency list changes (the stamp is newer than pyproject.toml).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

up: install
	$(BIN)/toolqueue up

demo: install
	$(BIN)/toolqueue demo

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass. mkdocs runs
# without --quiet: with it, mkdocs 1.6 drops the warnings that --strict turns into a failure.
test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(VENV)/site
	@rc=0; $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

bench: install
	@set -e; found=0; \
	for f in bench/*.py; do \
		case "$$(basename $$f)" in _*) continue;; esac; \
		[ -f "$$f" ] || continue; \
		found=1; echo "== $$f"; $(BIN)/python "$$f"; \
	done; \
	if [ $$found -eq 0 ]; then echo "no benchmarks in bench/" >&2; exit 1; fi

lint: install
	$(BIN)/ruff check .

# The docs site with live reload at http://127.0.0.1:8200 (mkdocs.yml); `make test` builds it --strict.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Keeps .toolqueue/ (local Redis data, generated secret key): deleting it loses jobs and tokens.
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -path ./.git -prune -o -type d -name __pycache__ -exec rm -rf {} +

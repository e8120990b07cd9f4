# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/relink demo

# The suite mostly waits (sandbox latency, leases running out, killed processes, rate windows):
# six workers on two cores keep it near 8 minutes (README); the slowest 15 are printed.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 6 --durations=15

# Debian's chromium, for the audit report's browser test (tests/test_audit_report.py): installed
# when missing (as root, or through sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	    sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    $$sudo apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Everything but the slow scenarios (crashes, faults, leases, long fuzz): about 1½ minutes.
test-fast: $(STAMP)
	$(BIN)/pytest -n 4 -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache

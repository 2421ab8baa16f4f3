# The two commands of the README. Both are idempotent; run them as root from the
# repository root of a fresh clone on Debian or Ubuntu.

SHELL := /bin/bash
VENV := .venv

.PHONY: run test

# Install what is missing, make sure an engine socket answers, then serve the dashboard
# on 127.0.0.1 (the URL is printed) until Ctrl-C.
run:
	bash scripts/setup.sh --engine
	$(VENV)/bin/ghostpanel up

# Install what is missing, then run the whole test suite. A failing pytest (exit code 1,
# or 5 when no test was collected) fails make: nothing here masks its status.
test:
	bash scripts/setup.sh
	$(VENV)/bin/python -m pytest -q tests

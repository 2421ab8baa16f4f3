# The two commands of the README. Both are idempotent; run them as root from the
# repository root of a fresh clone on Debian or Ubuntu.

SHELL := /bin/bash
VENV := .venv

.PHONY: run test

# Install what is missing, make sure an engine socket answers, then show its containers.
run:
	bash scripts/setup.sh --engine
	$(VENV)/bin/ghostpanel ps

# Install what is missing, then run the whole test suite. A failing pytest (exit code 1,
# or 5 when no test was collected) fails make: nothing here masks its status.
test:
	bash scripts/setup.sh
	$(VENV)/bin/python -m pytest -q tests

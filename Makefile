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
# Two workers (pytest-xdist): most tests wait on an engine, a browser or a kernel, so two
# of them share two cores well. --dist loadfile keeps each module on one worker, since
# servers and engines are module- and session-scoped; --durations lists the slowest
# tests in CI's log.
test:
	bash scripts/setup.sh
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --durations=30 tests

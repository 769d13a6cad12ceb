# Two commands on a fresh Debian 12 machine (root or sudo):
#   make demo   bring the lab up, run the compliance suites and a failover game day, write reports
#   make test   the project's own tests (what CI runs): the fast tier, then the lab tier
#   make test-fast  only the tests that need no lab
SHELL := /bin/bash
PY := .venv/bin/python
PGPROOF := .venv/bin/pgproof

.PHONY: setup demo test test-fast lint down clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	@bash scripts/test.sh

test-fast: setup  # the tests that need no lab: the loop while you edit
	@bash scripts/test.sh fast

lint: setup  # ruff on everything; mypy on pgproof/ (its settings: [tool.mypy] in pyproject.toml)
	@.venv/bin/ruff check .
	@.venv/bin/mypy

down:
	@$(PGPROOF) lab down

clean: down
	rm -rf .pgproof

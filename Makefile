# Two commands on a fresh Debian 12 machine (root or sudo):
#   make demo   bring the lab up, run the compliance suites and a failover game day, write reports
#   make test   the project's own tests (what CI runs)
SHELL := /bin/bash
PY := .venv/bin/python
PGPROOF := .venv/bin/pgproof

.PHONY: setup demo test lint down clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	@bash scripts/test.sh

lint: setup
	@.venv/bin/ruff check .

down:
	@$(PGPROOF) lab down

clean: down
	rm -rf .pgproof

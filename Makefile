# telephonist: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
TEL   := $(BIN)/telephonist
DEMO  := demo/telephonist.toml
PYTHON ?= python3

.PHONY: setup system venv broker postgres run pbx-up pbx-down call test check fmt clean bench-ivr bench-acd bench-dialer bench-dialer-live bench-import bench-report soak

## setup: system packages (apt) + virtualenv with telephonist installed
setup: system venv

system:
	@scripts/ensure-system.sh

venv: $(BIN)/.installed

# The product's folders as the one import name `telephonist` (see pyproject's
# [tool.setuptools]): .venv/src/telephonist/<folder> links to ./<folder>, on the venv's path.
PACKAGES := acd agi_handlers asterisk_conf bench callbacks cli core demo dialer ivr reports serve

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	mkdir -p $(VENV)/src/telephonist
	for p in $(PACKAGES); do ln -sfn ../../../$$p $(VENV)/src/telephonist/$$p; done
	echo "$(CURDIR)/$(VENV)/src" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/telephonist-src.pth"
	@touch $@

broker:
	@scripts/ensure-broker.sh

postgres:
	@scripts/ensure-postgres.sh

## run: set up, start the sandbox PBX and a broker, serve the demo centre
run: setup broker
	$(TEL) --config $(DEMO) pbx up
	@echo
	@echo "  telephonist is starting. Place a test call to line 100 from another shell:"
	@echo "      make call"
	@echo "  (or any SIP phone / sipp to sip:100@127.0.0.1:15060, UDP, no registration)."
	@echo "  Watch the events:  mosquitto_sub -v -t 'telephonist/#'"
	@echo "  Health:            curl -s http://127.0.0.1:18080/healthz"
	@echo "  Stop with Ctrl-C;  make pbx-down stops the PBX."
	@echo
	$(TEL) --config $(DEMO) serve

pbx-up: venv
	$(TEL) --config $(DEMO) pbx up

pbx-down: venv
	$(TEL) --config $(DEMO) pbx down

## call: one real SIP call (sipp) to the demo line 100
call:
	sipp 127.0.0.1:15060 -sf bench/sipp/call_hangup_by_pbx.xml -s 100 -m 1 -key caller 5550100 \
	  -i 127.0.0.1 -p 25070 -mp 36070 -timeout 30s -timeout_error -nostdin -trace_err

## test: the same set-up, then the whole suite (real Asterisk, sipp, Mosquitto, PostgreSQL)
test: setup broker postgres
	$(BIN)/pytest

## bench-ivr: telephonist's IVR against the same menu in plain dialplan (prints numbers)
bench-ivr: setup broker
	$(TEL) ivr bench

## bench-dialer: every pacing policy on every scenario of the seeded simulator, SEEDS (0-29)
## seed-days each: occupancy, mean and worst day's abandon rate, days over the cap (prints numbers)
bench-dialer: setup
	$(TEL) dialer bench --seeds $${SEEDS:-0-29}

## bench-dialer-live: a predictive campaign on the sandbox PBX against the simulator (prints numbers)
bench-dialer-live: setup broker postgres
	LIVE_RUN_MINUTES=$${LIVE_RUN_MINUTES:-10} $(BIN)/pytest -s -q \
		tests/scenarios/test_dialer.py -k agrees_with_the_simulator

## bench-acd: agents on real SIP phones, callers at a fixed rate (prints numbers)
bench-acd: setup broker
	$(TEL) queue bench

## bench-import: a generated contact list (ROWS, default 1 million) imported (prints numbers)
bench-import: setup
	$(TEL) contacts bench --rows $${ROWS:-1000000}

## bench-report: every report for a month and a year of 1 million synthetic calls, SQLite and PostgreSQL
bench-report: setup postgres
	$(TEL) report bench --calls $${REPORT_CALLS:-1000000}

## soak: mixed traffic for SOAK_MINUTES (10) while faults are injected (prints numbers)
soak: setup broker
	$(BIN)/python -m tests.soak.run --minutes $${SOAK_MINUTES:-10}

## check: lint, format check and types
check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p telephonist -p tests
	$(BIN)/lint-imports --no-cache

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var build *.egg-info

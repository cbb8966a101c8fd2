# Two set-up commands (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# A charge point that is not our code (npm ocpp-rpc, strict schema mode) for the OCPP tests.
NODE_TP := tests/ops/third_party
STAMP_NODE := $(NODE_TP)/node_modules/.package-lock.json

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/fleetcharge plan examples/portland-delivery-50/scenario.yaml --out out/portland-delivery-50
	$(BIN)/fleetcharge v2g examples/school-buses-v2g/scenario.yaml --out out/school-buses-v2g
	$(BIN)/fleetcharge v2g examples/delivery-vans-v2g/scenario.yaml --out out/delivery-vans-v2g
	$(BIN)/fleetcharge dr examples/portland-delivery-50/scenario.yaml --events examples/dr-events/events.csv --out out/dr-study

$(STAMP_NODE): $(NODE_TP)/package.json $(NODE_TP)/package-lock.json
	npm ci --prefix $(NODE_TP) --no-audit --no-fund

test: $(STAMP_DEV) $(STAMP_NODE)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP_RUN)
	$(BIN)/python benchmarks/bench_unmanaged.py
	cd benchmarks && ../$(BIN)/python bench_optimal.py
	cd benchmarks && ../$(BIN)/python bench_v2g.py

clean:
	rm -rf $(VENV) out .pytest_cache $(NODE_TP)/node_modules

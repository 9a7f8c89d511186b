# deploycc: `make demo` sets up and runs the main job on the bundled default; `make test` sets up
# and runs the test suite. Both create .venv when missing and install the pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deploycc-installed
DEMO_DIR := build/demo

.PHONY: setup demo test test-all bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

demo: setup
	mkdir -p $(DEMO_DIR)
	$(BIN)/deploycc export mac_small -o $(DEMO_DIR)/mac_small.onnx
	$(BIN)/deploycc inspect $(DEMO_DIR)/mac_small.onnx --no-layers
	$(BIN)/deploycc build $(DEMO_DIR)/mac_small.onnx --target cpu -o $(DEMO_DIR)/mac_small.cpu
	$(BIN)/deploycc build $(DEMO_DIR)/mac_small.onnx --target cpu-ort -o $(DEMO_DIR)/mac_small.cpu-ort
	$(BIN)/deploycc bench $(DEMO_DIR)/mac_small.cpu-ort --max-repeats 10

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_zoo.py

clean:
	rm -rf build .pytest_cache .hypothesis

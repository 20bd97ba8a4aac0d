# PINK: one entry point for installing, linting, testing, benchmarking and running.
#
#   make install    .venv with pinned tools, generated protos, the pink_kernel extension
#   make test       install, lint, rust-test, verify, py-test (in that order)
#   make run        the platform (BingX simulator, venue, kernel) and a short paper-trading session
#   make chaos      the kernel crash test alone (SIGKILL under load), CHAOS_RUNS=500 runs
#
# Needs python3.11, cargo (with rustfmt and clippy) and access to PyPI and crates.io.
# Work already done is remembered by stamp files under .stamps/, keyed on their inputs,
# so a second `make install` does nothing.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
CARGO ?= cargo
CARGO_MANIFEST := --manifest-path kernel-rs/Cargo.toml
PIP := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
GO ?= go
GRPCURL_VERSION := v1.9.4
TOOLS_BIN := .tools/bin

PROTOS := $(sort $(wildcard protos/pink/v1/*.proto))
PROTO_OUT := $(patsubst protos/pink/v1/%.proto,services/common/proto/%_pb2.py,$(PROTOS))
# Regenerate when a generated module is missing even if the stamp is fresh.
PROTO_MISSING := $(filter-out $(wildcard $(PROTO_OUT)),$(PROTO_OUT))
KERNEL_INPUTS := kernel-rs/Cargo.toml kernel-rs/Cargo.lock $(PROTOS) \
	kernel-rs/pink-core/Cargo.toml kernel-rs/pink-core/build.rs \
	kernel-rs/pink-kernel-py/Cargo.toml kernel-rs/pink-kernel-py/pyproject.toml kernel-rs/pink-kernel-py/pink_kernel.pyi \
	$(shell find kernel-rs/pink-core/src kernel-rs/pink-kernel-py/src -type f -name '*.rs' 2>/dev/null)

.PHONY: help install protos kernel lint rust-test verify py-test test bench run chaos clean FORCE

help:
	@echo "targets: install protos kernel lint rust-test verify py-test test bench run chaos clean"

install: $(STAMPS)/venv $(STAMPS)/protos $(STAMPS)/kernel $(STAMPS)/grpcurl-$(GRPCURL_VERSION)

protos: $(STAMPS)/protos

kernel: $(STAMPS)/kernel

# --- install steps ------------------------------------------------------------------------

$(VENV)/pyvenv.cfg:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/venv: $(VENV)/pyvenv.cfg requirements/dev.txt requirements/runtime.txt $(CONSTRAINTS) pyproject.toml
	$(PIP) install --quiet -c $(CONSTRAINTS) pip setuptools
	$(PIP) install --quiet -r requirements/dev.txt -r requirements/runtime.txt -c $(CONSTRAINTS)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/protos: protos/pink/v1 $(PROTOS) tools/gen_protos.py $(STAMPS)/venv $(if $(PROTO_MISSING),FORCE)
	$(BIN)/python tools/gen_protos.py
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/kernel: $(KERNEL_INPUTS) $(STAMPS)/venv
	VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/maturin develop --release --quiet -m kernel-rs/pink-kernel-py/Cargo.toml
	$(BIN)/python -c 'import pink_kernel; print("pink_kernel", pink_kernel.__version__, "installed")'
	@mkdir -p $(STAMPS) && touch $@

# grpcurl: the operators' gRPC client (server reflection); the ops tests call it.
$(STAMPS)/grpcurl-$(GRPCURL_VERSION):
	GOBIN="$(abspath $(TOOLS_BIN))" GOFLAGS=-mod=mod $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	$(TOOLS_BIN)/grpcurl -version
	@mkdir -p $(STAMPS) && touch $@

FORCE:

# --- checks -------------------------------------------------------------------------------

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(CARGO) fmt $(CARGO_MANIFEST) --all --check
	$(CARGO) clippy $(CARGO_MANIFEST) --workspace --all-targets --features pink-core/testkit -- -D warnings
	$(BIN)/buf lint
	@baseline="$$(sed -e 's/#.*//' protos/BASELINE | tr -d '[:space:]')"; \
	if [ -z "$$baseline" ]; then \
		echo "buf breaking: skipped (protos/BASELINE names no landed main commit yet)"; \
	else \
		against="$$(mktemp -d)"; trap 'rm -rf "$$against"' EXIT; \
		git archive "$$baseline" protos | tar -x -C "$$against"; \
		cp buf.yaml "$$against/"; \
		echo "buf breaking --against $$baseline (protos/BASELINE)"; \
		$(BIN)/buf breaking --against "$$against"; \
	fi

rust-test:
	$(CARGO) test $(CARGO_MANIFEST) --workspace

verify:
	$(CARGO) run $(CARGO_MANIFEST) --release -p pink-core --features testkit --bin pink-verify

py-test: install
	PINK_GRPCURL="$(abspath $(TOOLS_BIN))/grpcurl" $(BIN)/pytest

# The crash test of the kernel service (tests/kernel_service/test_crash.py) alone, with many
# more seeded runs than the 50 of py-test. A failure names its seed: PINK_CHAOS_SEED=<n> repeats it.
CHAOS_RUNS ?= 500
chaos: install
	PINK_CHAOS_RUNS=$(CHAOS_RUNS) $(BIN)/pytest tests/kernel_service/test_crash.py -q

# Sequential on purpose (even under make -j): each step needs the previous one.
test:
	$(MAKE) install
	$(MAKE) lint
	$(MAKE) rust-test
	$(MAKE) verify
	$(MAKE) py-test

bench: install
	@mkdir -p bench/results $(STAMPS)
	$(CARGO) run $(CARGO_MANIFEST) --release -p pink-core --features testkit --bin pink-bench -- \
		--out bench/results/kernel_rust.json --export $(STAMPS)/bench_inputs.bin
	$(BIN)/python -m bench.pyo3_bench --inputs $(STAMPS)/bench_inputs.bin --out bench/results/kernel_pyo3.json
	$(BIN)/python -m bench.kernel_service --out bench/results/kernel_service.json
	$(BIN)/python -m bench.venue --out bench/results/venue.json
	$(BIN)/python -m bench.e2e --out bench/results/e2e.json
	$(CARGO) run $(CARGO_MANIFEST) --release -p pink-core --features testkit --bin pink-verify -- \
		--record bench/results/model_check.json

run: install
	$(BIN)/python -m services.launcher

clean:
	rm -rf $(VENV) $(STAMPS) .tools .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
	rm -f services/common/proto/*_pb2.py services/common/proto/*_pb2.pyi \
		services/common/proto/*_pb2_grpc.py services/common/proto/*_pb2_grpc.pyi
	find . -name __pycache__ -type d -not -path './kernel-rs/target/*' -prune -exec rm -rf {} +
	$(CARGO) clean $(CARGO_MANIFEST)

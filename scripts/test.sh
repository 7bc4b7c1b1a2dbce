#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing (see scripts/install-peers.sh),
# checks formatting, lints and the API docs, builds the binaries the end-to-end tests start,
# runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
df -h . | tail -1 | awk '{print "disk: " $4 " free for the build"}'
# No incremental state (CI builds from clean).
export CARGO_INCREMENTAL=0
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# One build of every target with the features the tests use, so `cargo test` rebuilds nothing.
cargo build --workspace --bins --tests --examples
cargo test --workspace

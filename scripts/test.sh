#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing (mosquitto and socat from
# Debian, pymodbus from PyPI), builds the binaries the end-to-end tests start, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
df -h . | tail -1 | awk '{print "disk: " $4 " free for the build"}'
# One build of every target with the features the tests use, so `cargo test` rebuilds nothing;
# no incremental state (CI builds from clean): about 1.5 GB of target/debug.
export CARGO_INCREMENTAL=0
cargo build --workspace --bins --tests --examples
cargo test --workspace

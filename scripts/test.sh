#!/usr/bin/env bash
# The whole test suite: installs the real peers when missing (mosquitto and socat from
# Debian, pymodbus from PyPI), builds the binaries the end-to-end tests start, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
cargo build --workspace --bins
cargo test --workspace

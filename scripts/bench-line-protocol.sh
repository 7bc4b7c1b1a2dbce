#!/usr/bin/env bash
# Line-protocol decoding, side by side in one run: InfluxData's parser alone against
# eitwatch's decode (parser + mapping to readings), on 1 000 factories x 10 parameters.
# Prints points/s for each and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p eitwatch-config --bench decode

#!/usr/bin/env bash
# Builds the agent as shipped to factories and prints the binary's path:
# target/x86_64-unknown-linux-gnu/agent-release/eitwatch-agent.
#
# - Profile agent-release (root Cargo.toml): fat LTO, opt-level "s", panic = abort, no
#   debug info; agent/build.rs links the functions that run together (link-order.txt) and
#   packs the relocations.
# - glibc linked statically (static PIE, `crt-static`): the agent then maps only the libc
#   code it calls, next to its own, instead of libc, libm, libgcc_s and the loader whole
#   (≈ 2 MB of its RSS at 1 000 readings/s, half of it), and needs no glibc of any version
#   on the box. Name resolution goes through glibc's built-in "files" and "dns" sources
#   (/etc/hosts, /etc/resolv.conf); NSS modules loaded at run time (mdns, systemd-resolved's
#   "resolve", LDAP) are not used, the lookup goes on to the next source.
#   agent/shipped/check-names.sh proves both sources work.
# - `--target` given explicitly, so that the flag reaches only the agent's code and not
#   the build scripts and proc-macros of the build machine.
#
#   bash agent/shipped/build.sh [more cargo flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --profile agent-release --target "$target" -p eitwatch-agent --bin eitwatch-agent "$@"
echo "target/$target/agent-release/eitwatch-agent"

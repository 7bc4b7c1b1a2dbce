#!/usr/bin/env bash
# Builds the release binaries and the Debian packages of eitwatch (docs/release.md):
#
#   <out>/eitwatch-server_<version>_<arch>.deb         the server, its unit, /etc/eitwatch/server.toml
#   <out>/eitwatch-agent_<version>_<arch>.deb          the agent as shipped, its unit, /etc/eitwatch/agent.toml
#   <out>/eitwatch-{server,agent}-dbgsym_<version>_<arch>.deb   what strip took out
#   <out>/SHA256SUMS
#
# <out> is target/release-packages unless OUT is set. The version is the workspace's
# (Cargo.toml [workspace.package]), the architecture dpkg's.
#
# - The server: `cargo build --release -p eitwatch-server`. The agent as shipped:
#   agent/shipped/build.sh (profile agent-release, glibc linked statically: its package
#   depends on no library).
# - Each binary is stripped as Debian's dh_strip does; its debug info and symbol table go,
#   compressed, to /usr/lib/debug/.build-id/<xx>/<rest>.debug in the -dbgsym package (gdb,
#   perf and debuginfod clients find it by the binary's build id; the binary also names it
#   in .gnu_debuglink).
# - Packages are built by `dpkg-deb --build --root-owner-group` from a staged tree
#   (every file owned by root; the user and the modes that need it are set by postinst).
#   Not cargo-deb: installing it is a build of a few hundred crates of its own on a 2-core
#   machine, for what this script does with dpkg's own tools.
# - Depends: from dpkg-shlibdeps (package dpkg-dev) when present, else from the binary's
#   NEEDED libraries and the newest GLIBC_ symbol version it uses (objdump -T); adduser for
#   postinst.
# - Maintainer scripts and units: packaging/deb/. Archive times are SOURCE_DATE_EPOCH (the
#   last commit's time unless set), so the same tree gives the same packages.
#
#   bash scripts/release.sh              # build, package, print sizes
#   OUT=/tmp/pkgs bash scripts/release.sh
#   CARGO_FLAGS=--locked bash scripts/release.sh   # passed to both cargo builds
#   SERVER_BIN=… AGENT_BIN=… bash scripts/release.sh   # package these binaries, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_INCREMENTAL=0
umask 022

out=${OUT:-$root/target/release-packages}
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "release.sh: no version in Cargo.toml [workspace.package]" >&2; exit 1; }
arch=$(dpkg --print-architecture)
maintainer="eitwatch maintainers <maintainers@eitwatch.invalid>"
# Only for dpkg-deb: ring's build script reruns when SOURCE_DATE_EPOCH changes, so exported
# to cargo it would rebuild ring and all that depends on it after every commit.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
# shellcheck disable=SC2086 # CARGO_FLAGS is a list of flags
read -r -a cargo_flags <<<"${CARGO_FLAGS:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/eitwatch-release.XXXXXX")
trap 'rm -rf "$work"' EXIT

build_binaries() {
    if [ -n "${SERVER_BIN:-}" ] && [ -n "${AGENT_BIN:-}" ]; then
        server_bin=$(realpath "$SERVER_BIN")
        agent_bin=$(realpath "$AGENT_BIN")
        return
    fi
    cargo build --release -p eitwatch-server --bin eitwatch-server "${cargo_flags[@]}" >&2
    server_bin=$root/target/release/eitwatch-server
    agent_bin=$root/$(bash agent/shipped/build.sh "${cargo_flags[@]}" | tail -n 1)
}

build_id() {
    readelf -n "$1" | awk '/Build ID:/ { print $3 }'
}

# The Depends: of a staged binary's libraries, "" for a static one.
shlib_depends() {
    local bin=$1 dynamic
    # Read whole: `grep -q` would close the pipe early, and pipefail would take objdump's SIGPIPE for "none".
    dynamic=$(objdump -p "$bin")
    if ! grep -q NEEDED <<<"$dynamic"; then
        return
    fi
    if command -v dpkg-shlibdeps >/dev/null; then
        local dir
        dir=$(mktemp -d "$work/shlibdeps.XXXXXX")
        # dpkg-shlibdeps wants a debian/control in its directory and the binary in a
        # staged tree (a DEBIAN directory above it).
        mkdir "$dir/debian"
        printf 'Source: eitwatch\n\nPackage: eitwatch\nArchitecture: any\n' >"$dir/debian/control"
        (cd "$dir" && dpkg-shlibdeps -O "$bin") | sed -n 's/^shlibs:Depends=//p'
        return
    fi
    local glibc deps=()
    glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    deps+=("libc6 (>= $glibc)")
    if grep -q 'NEEDED *libgcc_s' <<<"$dynamic"; then
        deps+=("libgcc-s1")
    fi
    (IFS=,; echo "${deps[*]}" | sed 's/,/, /g')
}

# stage_strip <binary> <stage> <dbgsym stage>: /usr/bin/<name> stripped, its debug file by build id.
stage_strip() {
    local bin=$1 stage=$2 dbg=$3 name id debug
    name=$(basename "$bin")
    id=$(build_id "$bin")
    [ -n "$id" ] || { echo "release.sh: $bin has no build id (--build-id)" >&2; exit 1; }
    debug=$dbg/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
    install -d -m 0755 "$stage/usr/bin" "$(dirname "$debug")"
    objcopy --only-keep-debug --compress-debug-sections "$bin" "$debug"
    chmod 0644 "$debug"
    # dh_strip's flags for an executable: every symbol and the .comment/.note sections
    # (the build id's .note.gnu.build-id stays).
    strip --remove-section=.comment --remove-section=.note -o "$stage/usr/bin/$name" "$bin"
    objcopy --add-gnu-debuglink="$debug" "$stage/usr/bin/$name"
    chmod 0755 "$stage/usr/bin/$name"
    echo "$id"
}

installed_size_kib() {
    # Each file rounded up to KiB, as dpkg-gencontrol counts.
    find "$1" -path "$1/DEBIAN" -prune -o -type f -printf '%s\n' \
        | awk '{ kib += int(($1 + 1023) / 1024) } END { print kib + 0 }'
}

md5sums() {
    (cd "$1" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
        >"$1/DEBIAN/md5sums"
    chmod 0644 "$1/DEBIAN/md5sums"
}

# fill <template> <dest> <package> <user> <datadir> <config> <extra groups>
fill() {
    sed -e "s|@PACKAGE@|$3|g" -e "s|@USER@|$4|g" -e "s|@DATADIR@|$5|g" -e "s|@CONFIG@|$6|g" \
        -e "s|@UNIT@|$3.service|g" -e "s|@EXTRA_GROUPS@|$7|g" "$1" >"$2"
    chmod 0755 "$2"
}

# package <name> <binary> <example config> <user> <datadir> <extra groups> <section> <summary> <description>
package() {
    local name=$1 bin=$2 example=$3 user=$4 datadir=$5 groups=$6 section=$7 summary=$8 description=$9
    local stage=$work/$name dbg=$work/$name-dbgsym config=/etc/eitwatch/${name#eitwatch-}.toml
    local id depends doc
    install -d -m 0755 "$stage/DEBIAN" "$dbg/DEBIAN"
    id=$(stage_strip "$bin" "$stage" "$dbg")
    install -d -m 0755 "$stage/etc/eitwatch" "$stage/usr/lib/systemd/system"
    install -m 0640 "$example" "$stage$config"
    install -m 0644 "packaging/deb/$name.service" "$stage/usr/lib/systemd/system/$name.service"
    doc=$stage/usr/share/doc/$name
    install -d -m 0755 "$doc" "$dbg/usr/share/doc"
    install -m 0644 packaging/deb/copyright "$doc/copyright"
    install -m 0644 docs/operations.md docs/configuration.md "$doc/"
    ln -s "$name" "$dbg/usr/share/doc/$name-dbgsym"

    for script in postinst prerm postrm; do
        fill "packaging/deb/$script" "$stage/DEBIAN/$script" "$name" "$user" "$datadir" "$config" "$groups"
    done
    echo "$config" >"$stage/DEBIAN/conffiles"
    chmod 0644 "$stage/DEBIAN/conffiles"
    depends=$(shlib_depends "$stage/usr/bin/$(basename "$bin")")
    depends="adduser${depends:+, $depends}"
    cat >"$stage/DEBIAN/control" <<EOF
Package: $name
Source: eitwatch
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size_kib "$stage")
Depends: $depends
Section: $section
Priority: optional
Description: $summary
$(echo "$description" | fold -s -w 78 | sed 's/ *$//; s/^/ /')
EOF
    find "$stage" "$dbg" -type d -exec chmod 0755 {} +
    md5sums "$stage"

    cat >"$dbg/DEBIAN/control" <<EOF
Package: $name-dbgsym
Source: eitwatch
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size_kib "$dbg")
Depends: $name (= $version)
Section: debug
Priority: optional
Description: debug symbols for $name
Auto-Built-Package: debug-symbols
Build-Ids: $id
EOF
    md5sums "$dbg"

    SOURCE_DATE_EPOCH=$epoch dpkg-deb --build --root-owner-group -Zxz "$stage" "$out/${name}_${version}_$arch.deb" >&2
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --build --root-owner-group -Zxz "$dbg" "$out/${name}-dbgsym_${version}_$arch.deb" >&2
}

main() {
    build_binaries
    rm -rf "$out"
    install -d "$out"
    package eitwatch-server "$server_bin" config/examples/server.toml eitwatch /var/lib/eitwatch "" net \
        "eitwatch provincial server: ingest, store, compliance, alerts" \
        "Authenticated InfluxDB-compatible ingest of factories' effluent and stack-emission readings, an embedded append-only store, continuous judgement against Thailand's industrial effluent and emission standards, alerts (board, SSE, webhooks, e-mail, LINE), the EIT assessment's environmental indicators and an HTTP API. Runs as the system user eitwatch with its data in /var/lib/eitwatch; edit /etc/eitwatch/server.toml, then systemctl enable --now eitwatch-server."
    package eitwatch-agent "$agent_bin" config/examples/agent.toml eitwatch-agent /var/lib/eitwatch-agent dialout net \
        "eitwatch factory agent: Modbus and MQTT readings to the server" \
        "Reads effluent and emission sensors over Modbus TCP, RTU and MQTT, converts them to the catalog's units, keeps them in a durable on-disk outbox and delivers them to an eitwatch server (or any InfluxDB v2 write API). Statically linked. Runs as the system user eitwatch-agent (in the group dialout, for serial ports) with its outbox in /var/lib/eitwatch-agent; edit /etc/eitwatch/agent.toml, then systemctl enable --now eitwatch-agent."
    (cd "$out" && sha256sum ./*.deb | sed 's| \./| |' >SHA256SUMS)

    echo "binaries (built → packaged):"
    for pair in "$server_bin:$work/eitwatch-server/usr/bin/eitwatch-server" \
        "$agent_bin:$work/eitwatch-agent/usr/bin/eitwatch-agent"; do
        printf '  %-16s %10d → %10d bytes\n' "$(basename "${pair%%:*}")" \
            "$(stat -c %s "${pair%%:*}")" "$(stat -c %s "${pair#*:}")"
    done
    echo "packages in $out (size, Installed-Size):"
    for deb in "$out"/*.deb; do
        printf '  %-44s %10d bytes  %7s KiB installed\n' "$(basename "$deb")" "$(stat -c %s "$deb")" \
            "$(dpkg-deb --field "$deb" Installed-Size)"
    done
}

main "$@"

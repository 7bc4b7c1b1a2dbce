#!/usr/bin/env bash
# Installs the real peers the test suite talks to, when they are missing:
#   mosquitto (MQTT broker), socat (serial pty pairs), openssl (test certificates),
#   victoria-metrics (a real store taking the InfluxDB v2 write API), promtool (Prometheus's
#   own checker of /metrics scrapes, rules and scrape configs; Debian's prometheus package,
#   whose server is never started), from Debian;
#   pymodbus (a Modbus server none of us wrote), influxdb-client (InfluxData's Python
#   client, the writer the ingest tests prove compatibility with) and schemathesis (fuzzes the
#   API against its generated OpenAPI document), openpyxl (reads the indicators workbook
#   back), pyarrow (reads the Parquet export back) and aiosmtpd (an SMTP server that receives
#   the alert e-mails), from PyPI, into .peers/venv.
#   chromium (headless, for the board's browser tests) and Node.js from Debian;
#   playwright-core (drives that chromium), axe-core (accessibility checks in the board's
#   browser tests), uplot (the board's charts, vendored from it into dashboards/board/vendor/)
#   and @influxdata/flux-lsp-browser (checks the Grafana dashboards' Flux) from npm, `npm ci`
#   from tests/browser/package-lock.json (exact versions in tests/browser/package.json).
#   For the package test (tests/tests/package.rs, scripts/release.sh): dpkg-dev
#   (dpkg-shlibdeps), binutils (objcopy, strip, readelf), systemd (systemd-analyze) and
#   adduser, from Debian.
# Idempotent: a second run with everything present does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need_apt+=(victoria-metrics)
# The MQTT TLS test makes its CA and certificates with the openssl command.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# promtool (/usr/bin/promtool) checks the /metrics scrapes; the package's Prometheus server is
# not started (no service manager runs in a container; where one does, it is stopped below).
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# The board's browser tests: Debian's chromium (launched at /usr/bin/chromium), Thai fonts so
# the Thai labels render in screenshots, Node.js and npm for playwright-core.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# grep reads the whole list (not -q): under pipefail, fc-list killed by SIGPIPE reads as missing.
fc-list 2>/dev/null | grep -i garuda >/dev/null || need_apt+=(fonts-thai-tlwg)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The Debian packages: built (scripts/release.sh) and installed (tests/tests/package.rs).
command -v dpkg-shlibdeps >/dev/null 2>&1 || need_apt+=(dpkg-dev)
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
[ -x /usr/sbin/adduser ] || need_apt+=(adduser)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-peers: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [[ " ${need_apt[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
    && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

venv=.peers/venv
if ! "$venv/bin/python" -c 'import pymodbus, serial' >/dev/null 2>&1; then
  echo "install-peers: pip install pymodbus into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "pymodbus[serial]==3.16.1"
fi
if ! "$venv/bin/python" -c 'import influxdb_client' >/dev/null 2>&1; then
  echo "install-peers: pip install influxdb-client into $venv"
  "$venv/bin/python" -m pip install -q "influxdb-client==1.49.0"
fi
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "install-peers: pip install schemathesis into $venv"
  "$venv/bin/python" -m pip install -q "schemathesis==4.32.5"
fi
if ! "$venv/bin/python" -c 'import openpyxl' >/dev/null 2>&1; then
  echo "install-peers: pip install openpyxl into $venv"
  "$venv/bin/python" -m pip install -q "openpyxl==3.1.5"
fi
# The Parquet export's round-trip test reads files back as analysts do (pandas, DuckDB).
if ! "$venv/bin/python" -c 'import pyarrow' >/dev/null 2>&1; then
  echo "install-peers: pip install pyarrow into $venv"
  "$venv/bin/python" -m pip install -q "pyarrow==26.0.1"
fi
if ! "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "install-peers: pip install aiosmtpd into $venv"
  "$venv/bin/python" -m pip install -q "aiosmtpd==1.4.6"
fi
if [ ! -f tests/browser/node_modules/playwright-core/package.json ] \
  || [ ! -f tests/browser/node_modules/@influxdata/flux-lsp-browser/package.json ] \
  || [ ! -f tests/browser/node_modules/axe-core/package.json ] \
  || [ ! -f tests/browser/node_modules/uplot/package.json ]; then
  echo "install-peers: npm ci in tests/browser (playwright-core, axe-core, uplot, @influxdata/flux-lsp-browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "install-peers: ready (mosquitto: $(command -v mosquitto || echo /usr/sbin/mosquitto), promtool: $(command -v promtool), pymodbus, influxdb-client, schemathesis, openpyxl, pyarrow and aiosmtpd: $venv, chromium: /usr/bin/chromium, playwright-core: tests/browser/node_modules)"

#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (idempotently),
# then runs every unit, property, integration and end-to-end test of the workspace.
# Integration tests start and stop their own peers (snmpd, InfluxDB, VictoriaMetrics, the
# panoptes binary) on loopback ports they pick themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need_apt+=(snmpd)
command -v snmpbulkwalk >/dev/null 2>&1 || need_apt+=(snmp)
# The InfluxDB sink's tests write to real servers, which they start themselves on free
# loopback ports with temporary data directories.
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need_apt+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || need_apt+=(influxdb)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's snmpd, influxdb and victoria-metrics packages may start system services (on
# 161, 8086, 8428); our tests never use them.

echo "==> building"
cargo build --workspace --all-targets --locked

if cargo nextest --version >/dev/null 2>&1; then
  echo "==> tests (cargo nextest)"
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "==> tests (cargo test)"
  cargo test --workspace --locked --no-fail-fast
fi

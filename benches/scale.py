#!/usr/bin/env python3
"""How the cost grows: `panoptes bench` at several fleet sizes and port counts, one table.

    cargo build --release
    python3 benches/scale.py                                  # the README's table
    python3 benches/scale.py --runs 100x48,1000x8 --duration 3m

Each run is `panoptes bench --devices D --interfaces I --interval 60s --duration T --json`
(the default plugins: enrichment, interface polling with rates, topic log; the simulator
in its own process, not counted), one after the other on the same machine. Printed as a
Markdown table: steady CPU per poll and per varbind, collector cores, p99 latency, the RSS
mean over the steady part (10 s samples), RSS at the end with its breakdown (rate state,
rest of the heap, allocator retention, files), devices polled in the first interval, and the machine's load average around the runs.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RUNS = "100x48,1000x48,10000x48,30000x48,1000x8,1000x384"


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run(args, devices, interfaces):
    cmd = [args.panoptes, "bench", "--devices", str(devices), "--interfaces", str(interfaces),
           "--interval", args.interval, "--duration", args.duration, "--max-data-mb", str(args.max_data_mb),
           "--json"]
    print("+", " ".join(cmd), file=sys.stderr)
    before = load()
    env = dict(os.environ, PANOPTES__LOG__LEVEL="warn")
    # A run that stops early still prints its report (with `aborted`) before failing.
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env).stdout
    try:
        r = json.loads(out)
    except ValueError:
        print("  no report from %dx%d" % (devices, interfaces), file=sys.stderr)
        return None
    r["_load"] = (before, load())
    r["_interfaces"] = interfaces
    return r


def fmt(v, spec, unit=""):
    return "-" if v is None else (spec % v) + unit


def row(r):
    s = r.get("steady") or {}
    m = {k: (v / 1048576 if v is not None else None) for k, v in r["memory_bytes"].items()}
    polls = s.get("device_polls") or 0
    varbinds = s.get("snmp_varbinds") or 0
    return "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %.0f = %.0f rate state + %s other heap + %s retained + %.0f files | %d / %d (all by %s) | %s |" % (
        r["devices"], r["_interfaces"],
        fmt(s.get("cpu_ms_per_poll"), "%.2f", " ms"),
        fmt(s.get("cpu_us_per_varbind"), "%.2f", " µs"),
        fmt(varbinds / polls if polls else None, "%.0f"),
        fmt(s.get("collector_cpu_cores"), "%.3f"),
        fmt(r["latency_ms"]["p99"], "%.0f", " ms"),
        "%d / %d / %d" % (r["missed_intervals"], r["timeouts"], r["errors"]),
        fmt(s.get("rss_mb_mean"), "%.0f"),
        m["rss"], m["rate_state"], fmt(m.get("heap_other"), "%.0f"), fmt(m.get("allocator_retained"), "%.0f"),
        m["rss_file"],
        r["first_interval_devices_polled"], r["devices"], fmt(r.get("all_devices_polled_by_s"), "%.0f", " s"),
        "%s → %s" % r["_load"],
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=DEFAULT_RUNS, help="DEVICESxINTERFACES, comma-separated")
    p.add_argument("--interval", default="60s")
    p.add_argument("--duration", default="3m")
    p.add_argument("--panoptes", default=os.path.join(ROOT, "target/release/panoptes"))
    p.add_argument("--max-data-mb", type=int, default=4096, help="passed to panoptes bench")
    args = p.parse_args()
    if not os.access(args.panoptes, os.X_OK):
        raise SystemExit("%s is not there: build with `cargo build --release`" % args.panoptes)
    print("\n%s interval, %s per run (steady: after the first interval)\n" % (args.interval, args.duration))
    print("| devices | ports | CPU per poll | CPU per varbind | varbinds per poll | collector cores | p99 poll "
          "| missed / timeouts / errors | RSS steady mean, MB | RSS at the end, MB | first interval polled | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    # Each row as soon as its run ends, so a long series shows what it has so far.
    for spec in args.runs.split(","):
        d, _, i = spec.partition("x")
        r = run(args, int(d), int(i or 48))
        if r is None:
            print("| %s | %s | no report |" % (d, i or 48), flush=True)
            continue
        print(row(r) + (" stopped early: %s" % r["aborted"] if r.get("aborted") else ""), flush=True)


if __name__ == "__main__":
    main()

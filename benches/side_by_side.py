#!/usr/bin/env python3
"""Side by side: panoptes and Prometheus snmp_exporter polling the same simulated fleet.

    cargo build --release
    apt-get install prometheus-snmp-exporter      # Debian's package, 0.21
    python3 benches/side_by_side.py --devices 200 --interval 30 --duration 120

Both collectors poll N copies of the same 48-port recording, served by `panoptes simulate`
(one thread, its own process, not counted) at the same interval:

- panoptes: `panoptes bench --recording REC --plugin P --json` for each P of --plugins:
  `interface` (discovery, enrichment, interface polling with rates, JSON, topic log) and
  `if-mib` (the same 39 ifTable/ifXTable columns as the exporter's module, by a Generic
  SNMP document, no enrichment, no rates: the like-for-like cost per varbind) -- the bench
  starts its own simulator of the same recording;
- snmp_exporter: its `if_mib` module (written below, the upstream generator's output for
  IF-MIB: walks ifTable and ifXTable, 39 columns, with ifAlias/ifDescr/ifName lookups),
  scraped once per interval per device by a small driver that spreads the scrapes evenly
  over the interval with at most --concurrency scrapes in flight.

Only each collector's own process CPU is counted (utime + stime from /proc/PID/stat); the
simulator and the driver are not. Prints device polls per CPU-second, CPU per poll and per
varbind, and RSS (peak and end) for both, as a Markdown table.
"""

import argparse
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")

IFT = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
COLUMNS = [
    ("ifIndex", IFT + "1", "gauge"), ("ifType", IFT + "3", "gauge"), ("ifMtu", IFT + "4", "gauge"),
    ("ifSpeed", IFT + "5", "gauge"), ("ifPhysAddress", IFT + "6", "PhysAddress48"),
    ("ifAdminStatus", IFT + "7", "gauge"), ("ifOperStatus", IFT + "8", "gauge"),
    ("ifLastChange", IFT + "9", "gauge"), ("ifInOctets", IFT + "10", "counter"),
    ("ifInUcastPkts", IFT + "11", "counter"), ("ifInNUcastPkts", IFT + "12", "counter"),
    ("ifInDiscards", IFT + "13", "counter"), ("ifInErrors", IFT + "14", "counter"),
    ("ifInUnknownProtos", IFT + "15", "counter"), ("ifOutOctets", IFT + "16", "counter"),
    ("ifOutUcastPkts", IFT + "17", "counter"), ("ifOutNUcastPkts", IFT + "18", "counter"),
    ("ifOutDiscards", IFT + "19", "counter"), ("ifOutErrors", IFT + "20", "counter"),
    ("ifInMulticastPkts", IFX + "2", "counter"), ("ifInBroadcastPkts", IFX + "3", "counter"),
    ("ifOutMulticastPkts", IFX + "4", "counter"), ("ifOutBroadcastPkts", IFX + "5", "counter"),
    ("ifHCInOctets", IFX + "6", "counter"), ("ifHCInUcastPkts", IFX + "7", "counter"),
    ("ifHCInMulticastPkts", IFX + "8", "counter"), ("ifHCInBroadcastPkts", IFX + "9", "counter"),
    ("ifHCOutOctets", IFX + "10", "counter"), ("ifHCOutUcastPkts", IFX + "11", "counter"),
    ("ifHCOutMulticastPkts", IFX + "12", "counter"), ("ifHCOutBroadcastPkts", IFX + "13", "counter"),
    ("ifLinkUpDownTrapEnable", IFX + "14", "gauge"), ("ifHighSpeed", IFX + "15", "gauge"),
    ("ifPromiscuousMode", IFX + "16", "gauge"), ("ifConnectorPresent", IFX + "17", "gauge"),
    ("ifCounterDiscontinuityTime", IFX + "19", "gauge"),
]
LOOKUPS = """    lookups:
    - labels: [ifIndex]
      labelname: ifAlias
      oid: 1.3.6.1.2.1.31.1.1.1.18
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifDescr
      oid: 1.3.6.1.2.1.2.2.1.2
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifName
      oid: 1.3.6.1.2.1.31.1.1.1.1
      type: DisplayString"""


def snmp_yml(community):
    """snmp_exporter 0.21's `if_mib` module, as its generator writes it for IF-MIB (Debian
    ships no snmp.yml and no MIB text to generate one offline)."""
    s = ["if_mib:", "  walk:", "  - 1.3.6.1.2.1.2", "  - 1.3.6.1.2.1.31.1.1", "  get:",
         "  - 1.3.6.1.2.1.1.3.0", "  metrics:", "  - name: sysUpTime", "    oid: 1.3.6.1.2.1.1.3",
         "    type: gauge", "    help: sysUpTime",
         "  - name: ifNumber\n    oid: 1.3.6.1.2.1.2.1\n    type: gauge\n    help: ifNumber"]
    for name, oid, typ in COLUMNS:
        s.append("  - name: %s\n    oid: %s\n    type: %s\n    help: %s\n    indexes:\n"
                 "    - labelname: ifIndex\n      type: gauge\n%s" % (name, oid, typ, name, LOOKUPS))
    s += ["  version: 2", "  max_repetitions: 25", "  retries: 3", "  timeout: 5s", "  auth:",
          "    community: %s" % community]
    return "\n".join(s) + "\n"


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_panoptes(args, plugin):
    cmd = [args.panoptes, "bench", "--devices", str(args.devices), "--interval", "%ds" % args.interval,
           "--duration", "%ds" % args.duration, "--recording", args.recording, "--plugin", plugin, "--json"]
    print("+", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=sys.stderr, text=True).stdout
    r = json.loads(out)
    s = r.get("steady") or {}
    # Steady state (after the first interval, which carries every device's enrichment)
    # when the run has one, as snmp_exporter has nothing like it.
    polls = s.get("device_polls") or r["device_polls"]
    cpu = (s["collector_cpu_cores"] * (r["duration_s"] - s["from_s"])) if s else r["collector_cpu_s"]
    varbinds_per_poll = s["snmp_varbinds"] / max(polls, 1) if s else r["snmp_varbinds"] / max(polls, 1)
    names = {
        "interface": "panoptes (interface plugins: 21 columns, enrichment, rates, topic log)",
        "if-mib": "panoptes (if-mib: the exporter's 39 columns, Generic SNMP, topic log)",
    }
    return {
        "name": names.get(plugin, "panoptes (%s)" % plugin),
        "polls": polls, "cpu_s": cpu, "errors": r["errors"] + r["timeouts"],
        "varbinds_per_poll": varbinds_per_poll,
        "rss_peak": r["rss_mb"]["peak"], "rss_end": r["rss_mb"]["end"],
        "p99_ms": r["latency_ms"]["p99"],
        "note": "steady window from %ss; whole run %.2f ms/poll" % (s.get("from_s", 0), r["cpu_ms_per_poll"] or 0),
    }


def start_simulator(args):
    cmd = [args.panoptes, "simulate", "--devices", str(args.devices), "--listen", "127.0.0.1:0",
           "--community", "public", "--threads", "1", "--print-addresses", args.recording]
    env = dict(os.environ, PANOPTES__LOG__LEVEL="warn")
    sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    addrs = []
    for line in sim.stdout:
        line = line.strip()
        if line == "ready":
            return sim, addrs
        addrs.append(line)
    raise SystemExit("the simulator exited before it was ready")


def run_exporter(args):
    sim, addrs = start_simulator(args)
    tmp = tempfile.mkdtemp(prefix="side-by-side-")
    yml = os.path.join(tmp, "snmp.yml")
    with open(yml, "w") as f:
        f.write(snmp_yml("public"))
    port = free_port()
    exp = subprocess.Popen([args.exporter, "--config.file=" + yml, "--web.listen-address=127.0.0.1:%d" % port,
                            "--log.level=warn"], stdin=subprocess.DEVNULL)
    try:
        base = "http://127.0.0.1:%d" % port
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/metrics", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        jobs = queue.Queue(maxsize=args.concurrency * 2)
        lock = threading.Lock()
        stats = {"polls": 0, "errors": 0, "varbinds": 0, "lat": []}

        def worker():
            while True:
                target = jobs.get()
                if target is None:
                    return
                t0 = time.monotonic()
                try:
                    body = urllib.request.urlopen("%s/snmp?module=if_mib&target=%s" % (base, target),
                                                  timeout=args.interval).read().decode()
                    pdus = [l for l in body.splitlines() if l.startswith("snmp_scrape_pdus_returned ")]
                    ok = bool(pdus)
                    with lock:
                        stats["polls"] += 1
                        stats["lat"].append(time.monotonic() - t0)
                        if ok:
                            stats["varbinds"] += float(pdus[0].split()[1])
                        else:
                            stats["errors"] += 1
                except OSError:
                    with lock:
                        stats["polls"] += 1
                        stats["errors"] += 1

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        cpu0, started = cpu_s(exp.pid), time.monotonic()
        peak = rss_mb(exp.pid)
        # Each device at its own offset in the interval, like a jittered scheduler.
        n = len(addrs)
        due = [(started + args.interval * i / n, a) for i, a in enumerate(addrs)]
        end = started + args.duration
        i = 0
        last_rss = 0
        while True:
            t, a = due[i % n]
            t += args.interval * (i // n)
            if t >= end:
                break
            now = time.monotonic()
            if t > now:
                time.sleep(t - now)
            if time.monotonic() - last_rss > 1:
                peak, last_rss = max(peak, rss_mb(exp.pid)), time.monotonic()
            jobs.put(a)
            i += 1
        while time.monotonic() < end:
            time.sleep(0.5)
            peak = max(peak, rss_mb(exp.pid))
        cpu = cpu_s(exp.pid) - cpu0
        end_rss = rss_mb(exp.pid)
        for _ in threads:
            jobs.put(None)
        lat = sorted(stats["lat"]) or [0]
        return {
            "name": "snmp_exporter 0.21 (if_mib)",
            "polls": stats["polls"], "cpu_s": cpu, "errors": stats["errors"],
            "varbinds_per_poll": stats["varbinds"] / max(stats["polls"] - stats["errors"], 1),
            "rss_peak": peak, "rss_end": end_rss,
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "note": "scrapes issued %d, %d in flight at most" % (i, args.concurrency),
        }
    finally:
        exp.terminate()
        sim.terminate()
        exp.wait()
        sim.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--interval", type=int, default=30, help="seconds")
    p.add_argument("--duration", type=int, default=120, help="seconds, per collector")
    p.add_argument("--concurrency", type=int, default=16, help="scrapes in flight (snmp_exporter)")
    p.add_argument("--recording", default=os.path.join(ROOT, "resources/demo/switch48.snmprec"))
    p.add_argument("--panoptes", default=os.path.join(ROOT, "target/release/panoptes"))
    p.add_argument("--exporter", default="/usr/bin/prometheus-snmp-exporter")
    p.add_argument("--plugins", default="interface,if-mib",
                   help="panoptes runs, comma-separated: interface (the default plugins), if-mib (the "
                        "same 39 columns as the exporter's if_mib module, for a like-for-like cost per varbind)")
    args = p.parse_args()
    for path in (args.panoptes, args.exporter):
        if not os.access(path, os.X_OK):
            raise SystemExit("%s is not there: build with `cargo build --release`, install snmp_exporter with "
                             "`apt-get install prometheus-snmp-exporter`" % path)
    with open("/proc/loadavg") as f:
        load0 = f.read().split()[:3]
    rows = [run_exporter(args)] + [run_panoptes(args, p) for p in args.plugins.split(",") if p]
    with open("/proc/loadavg") as f:
        load1 = f.read().split()[:3]
    print("\n%d devices x 48 ports, %d s interval, %d s per collector; load average %s before, %s after\n"
          % (args.devices, args.interval, args.duration, " ".join(load0), " ".join(load1)))
    print("| collector | device polls | polls per CPU-second | CPU per poll | varbinds per poll | CPU per varbind "
          "| p99 poll | errors | RSS peak / end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        per_poll = 1000 * r["cpu_s"] / max(r["polls"], 1)
        print("| %s | %d | %.0f | %.2f ms | %.0f | %.2f us | %.0f ms | %d | %.0f / %.0f MB |" % (
            r["name"], r["polls"], r["polls"] / max(r["cpu_s"], 1e-9), per_poll, r["varbinds_per_poll"],
            1000 * per_poll / max(r["varbinds_per_poll"], 1), r["p99_ms"], r["errors"], r["rss_peak"],
            r["rss_end"]))
    for r in rows:
        print("- %s: %s" % (r["name"], r["note"]))
    # Ratios against the exporter, same run: how many times less CPU per poll and per varbind.
    base = rows[0]
    b_poll = base["cpu_s"] / max(base["polls"], 1)
    b_vb = b_poll / max(base["varbinds_per_poll"], 1)
    for r in rows[1:]:
        poll = r["cpu_s"] / max(r["polls"], 1)
        vb = poll / max(r["varbinds_per_poll"], 1)
        print("- %s: %.1fx less CPU per poll, %.1fx less per varbind than %s"
              % (r["name"], b_poll / max(poll, 1e-12), b_vb / max(vb, 1e-12), base["name"]))


if __name__ == "__main__":
    main()

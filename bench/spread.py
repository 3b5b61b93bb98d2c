#!/usr/bin/env python3
"""spread.py: how evenly herd's workers share new connections, and what
that costs under load, for one or more herd binaries side by side.

For each binary and mode (shared, passfd by default), herd -w 2 runs pinned
to one CPU and the clients to another (taskset), and each round measures:

  spread     four clients opening a new connection per /whoami request,
             400 in all: the busiest worker's answers over the idlest's
  keepalive  wrk -c 50 for --duration s: requests/s and the server's CPU
             microseconds per request (utime+stime of the master and its
             workers, from /proc)
  close      the same with `Connection: close`: a new connection each

Rounds alternate the binaries; medians of --rounds rounds are printed side
by side, with nginx (worker_processes 2, same pinning) for the CPU per
request when it is installed. Loopback only; every process started here is
killed on the way out.

  python3 bench/spread.py --herd build/herd --herd /tmp/herd-before
"""
import argparse
import collections
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (its Server, wrk and /proc helpers)

HOST = "127.0.0.1"
WHOAMI_RE = re.compile(rb"slot=(\d+)")


def whoami_spread(port, total=400, clients=4):
    """busiest/idlest of `total` /whoami on new connections, and counts."""
    count, lock = collections.Counter(), threading.Lock()

    def client():
        for _ in range(total // clients):
            try:
                _, body = bench.http_get(port, "/whoami", 5)
                m = WHOAMI_RE.search(body)
            except (OSError, ValueError, IndexError):
                m = None
            with lock:
                count[m.group(1).decode() if m else "failed"] += 1
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    slots = [count.get("0", 0), count.get("1", 0)]
    ratio = max(slots) / min(slots) if min(slots) else float("inf")
    return ratio, dict(count)


def pinned(argv, cpu):
    return ["taskset", "-c", str(cpu)] + argv


def wrk(port, workload, a, script):
    argv = ["wrk", "-t", "1", "-c", str(a.connections), "-d", "%ds" % a.duration,
            "-s", script]
    if workload == "close":
        argv += ["-H", "Connection: close"]
    argv = pinned(argv + ["http://%s:%d/" % (HOST, port)], a.client_cpu)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=a.duration + 30)
    m = re.search(r"^BENCH (.*)$", p.stdout, re.M)
    if not m:
        raise RuntimeError("wrk said: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def load_run(server, workload, a, script):
    root = server.proc.pid
    before = bench.tree_ticks(root)
    r = wrk(server.port, workload, a, script)
    after = bench.tree_ticks(root)
    master_s, worker_s, _ = bench.cpu_delta(before, after, root)
    reqs = r["requests"]
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return dict(rps=reqs / (r["duration_us"] / 1e6),
                cpu_us=(master_s + sum(worker_s)) * 1e6 / reqs if reqs else 0,
                errors=errors)


def servers(a, tmp):
    out = []
    for i, path in enumerate(a.herd):
        copy = shutil.copy2(path, os.path.join(tmp, "herd%d" % i))
        for mode in a.modes:
            argv = pinned([copy, "-l", HOST + ":{port}", "-w", "2", "-m", mode, "-q"],
                          a.server_cpu)
            out.append(bench.Server("%s %s" % (a.label[i], mode), argv, tmp, "herd"))
    if shutil.which("nginx") and not a.no_nginx:
        s = bench.nginx_server(tmp, 2)
        s.argv_fmt = pinned(s.argv_fmt, a.server_cpu)
        out.append(s)
    return out


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--herd", action="append", help="a herd binary (repeatable)")
    ap.add_argument("--label", action="append", help="its name in the table")
    ap.add_argument("--modes", default="shared,passfd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-nginx", action="store_true")
    a = ap.parse_args()
    a.herd = a.herd or [os.path.join(os.path.dirname(HERE), "build", "herd")]
    a.label = a.label or [os.path.basename(os.path.dirname(os.path.abspath(p)))
                          + "/" + os.path.basename(p) for p in a.herd]
    a.modes = a.modes.split(",")
    return a


def main():
    a = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    os.sched_setaffinity(0, {a.client_cpu})
    tmp = tempfile.mkdtemp(prefix="herd-spread-")
    script = os.path.join(tmp, "summary.lua")
    with open(script, "w") as f:
        f.write(bench.WRK_LUA)
    rows = collections.defaultdict(list)
    try:
        srv = servers(a, tmp)
        for s in srv:
            why = s.start()
            if why:
                sys.exit("spread.py: %s did not start: %s" % (s.name, why))
        for r in range(a.rounds):
            k = r % len(srv)
            for s in srv[k:] + srv[:k]:
                if s.kind == "herd":
                    ratio, counts = whoami_spread(s.port)
                    rows[s.name, "spread"].append(ratio)
                    print("round %d %-28s spread %.2f %s" % (r + 1, s.name, ratio, counts))
                for w in ("keepalive", "close"):
                    res = load_run(s, w, a, script)
                    rows[s.name, w].append(res)
                    print("round %d %-28s %-9s %8.0f req/s %6.2f us/req errors %d"
                          % (r + 1, s.name, w, res["rps"], res["cpu_us"], res["errors"]))
                    time.sleep(0.5)
        report(srv, rows)
    finally:
        bench._kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


def report(srv, rows):
    print("\nmedians: spread (busiest/idlest of 400 /whoami), req/s, CPU us/req")
    print("%-28s %7s %10s %8s %10s %8s" % ("server", "spread", "ka req/s", "ka us",
                                            "close r/s", "close us"))
    for s in srv:
        sp = rows.get((s.name, "spread"))
        ka, cl = rows[s.name, "keepalive"], rows[s.name, "close"]
        print("%-28s %7s %10.0f %8.2f %10.0f %8.2f" % (
            s.name, "%.2f" % statistics.median(sp) if sp else "-",
            statistics.median(x["rps"] for x in ka), statistics.median(x["cpu_us"] for x in ka),
            statistics.median(x["rps"] for x in cl), statistics.median(x["cpu_us"] for x in cl)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""stuck.py: how many new connections a stuck worker gets in reuseport mode.

`herd -m reuseport -w 2` (the release build, pinned to CPU 0) on 127.0.0.1;
its slot-1 worker is SIGSTOPped (stuck, not dead: the master still counts it
ready). Then --clients threads (pinned to CPU 1) open --connections new
connections between them, one GET /whoami each, with a --timeout for the
connect and the answer together. A connection the kernel queued on the
stopped worker's socket gets no answer: it is counted hung.

Two steerings, alternating, --rounds each: the eBPF program (herd's default
where bpf() works: the less loaded of two ready slots, load = connections
steered to a slot and not yet accepted) and the classic BPF fallback
(HERD_TEST_NO_EBPF=1: at random among ready slots, as before the eBPF
program). Prints the median hung share of each, a markdown table, and
writes bench/results/stuck.csv. Figures, not assertions. Loopback only,
bounded in count and time; everything started here is killed at the end.
"""
import argparse
import csv
import os
import re
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
os.environ.setdefault("HERD_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integ"))
import herdtest as ht  # noqa: E402

REQUEST = b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
SLOT_RE = re.compile(rb"slot=(\d+)")
STEERINGS = (("eBPF", {}), ("classic", {"HERD_TEST_NO_EBPF": "1"}))


def one(addr, timeout):
    """'hung', 'failed' or the slot (int) that answered."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.sendall(REQUEST)
            buf = b""
            while True:
                s.settimeout(max(deadline - time.monotonic(), 0.001))
                data = s.recv(4096)
                if not data:
                    break
                buf += data
    except socket.timeout:
        return "hung"
    except OSError:
        return "failed"
    m = SLOT_RE.search(buf)
    return int(m.group(1)) if m else "failed"


def clients(addr, n, threads, timeout):
    """{outcome: count} of n connections made by threads threads."""
    left = [n]
    got = {}
    lock = threading.Lock()

    def run():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            r = one(addr, timeout)
            with lock:
                got[r] = got.get(r, 0) + 1
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return got


def slot_pid(h, slot):
    for pid, (s, gen) in h.worker_info().items():
        if s == slot and gen == 1:
            return pid
    raise RuntimeError("no worker %d in the log" % slot)


def round_(herd, env, a):
    """One run: (hung, answered by slot 0, failed, the log's steering line)."""
    with ht.Herd("-c", "0", herd, "-l", "{addr}", "-m", "reuseport", "-w", "2",
                 prog="/usr/bin/taskset", env=env, report_clean=False) as h:
        pid = slot_pid(h, 1)
        start = ht.proc_stat(pid)[3]
        ht._kill(pid, signal.SIGSTOP, start)
        try:
            got = clients(h.addr, a.connections, a.clients, a.timeout)
        finally:
            ht._kill(pid, signal.SIGCONT, start)
        m = re.search(r"reuseport: (eBPF steering|no eBPF steering)[^\n]*", h.log())
        return (got.get("hung", 0), got.get(0, 0), got.get("failed", 0),
                m.group(1) if m else "?")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--herd", default=os.path.join(REPO, "build", "herd"))
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=0.5,
                    help="seconds for a connection's connect and answer")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-seconds", type=int, default=300)
    a = ap.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("stuck.py: out of time"))
    signal.alarm(a.max_seconds)
    if not os.access(a.herd, os.X_OK):
        sys.exit("no herd binary at %s (make)" % a.herd)
    try:
        os.sched_setaffinity(0, {1})
    except OSError:
        print("note: cannot pin the clients to CPU 1")
    print("stopped slot-1 worker, -m reuseport -w 2: %d connections, %d clients, "
          "%.1f s timeout, %d alternating rounds" % (a.connections, a.clients,
                                                     a.timeout, a.rounds), flush=True)
    rows = []
    try:
        for r in range(a.rounds):
            for name, env in STEERINGS:
                hung, ok, failed, said = round_(a.herd, env, a)
                rows.append((name, r + 1, hung, ok, failed, said))
                print("  round %d %-8s hung %3d, answered %3d, failed %d (%s)"
                      % (r + 1, name, hung, ok, failed, said), flush=True)
    finally:
        signal.alarm(0)
        ht._teardown_all()
    print()
    print("| steering | hung (median) | share | answered | failed | rounds |")
    print("|---|---|---|---|---|---|")
    for name, _ in STEERINGS:
        mine = [x for x in rows if x[0] == name]
        hung = ht.median([x[2] for x in mine])
        print("| %s | %s | %.1f%% | %s | %s | %s |"
              % (name, hung, 100.0 * hung / a.connections,
                 ht.median([x[3] for x in mine]), ht.median([x[4] for x in mine]),
                 " ".join(str(x[2]) for x in mine)))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "stuck.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["steering", "round", "hung", "answered", "failed", "log"])
        w.writerows(rows)
    print("wrote %s" % os.path.relpath(path, REPO))


if __name__ == "__main__":
    main()

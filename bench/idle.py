#!/usr/bin/env python3
"""idle.py: memory per idle keep-alive connection, herd against nginx.

herd's built-in HTTP worker (`-w 1`) and nginx (`worker_processes 1`), both
serving `hello\\n` on 127.0.0.1, each in turn get --conns connections (10,000)
from this one process. Per server and round, the workers' RSS (VmRSS from
/proc/PID/status, summed over the master's children) is read:

  before    after a few warm-up requests, before the connections
  idle      every connection sent one request, got its answer and stays
            open, idle, keep-alive
  partial   then every connection sends a request head but its last CRLF: a
            request in progress on each (what a burst of slow clients holds),
            which is then completed and answered
  after     every connection closed by the client, and closed by the server

and the table gives, medians of --rounds (3) rounds in alternating order:
bytes per idle connection ((idle - before) / conns), bytes per connection
with a request in progress, and what the burst left behind (after - before).
Kernel memory (socket buffers) is in no RSS, so is the same for both.

Each server is started afresh per round, pinned to --server-cpu (0); this
script runs on --client-cpu (1). RLIMIT_NOFILE is raised for the client and
the servers as needed. Loopback only, every step bounded in time, every
server stopped on the way out.
"""
import argparse
import csv
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (Server, pinning and cleanup are shared with run.py)

HOST = run.HOST
PARTIAL = b"GET / HTTP/1.1\r\nHost: bench\r\n"  # the head without its last CRLF
ANSWER_END = b"hello\n"

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections {nofile}; }}
http {{
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{{port}} backlog=4096;
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""


def nginx_server(tmp, nofile):
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    text = NGINX_CONF.format(nofile=nofile, dir=d)
    argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", d, "-c", conf,
            "-e", os.path.join(d, "error.log"), "-g", "daemon off;"]
    return run.Server("nginx", argv, tmp, "nginx", conf=(conf, text))


def herd_server(tmp, herd, conns):
    argv = [herd, "-l", HOST + ":{port}", "-w", "1"]
    helptext = subprocess.run([herd, "--help"], capture_output=True, text=True).stdout
    if "--max-connections" in helptext:  # a cap must not be what is measured
        argv += ["--max-connections", str(conns + 100)]
    return run.Server("herd", argv, tmp, "herd")

# ---- measuring ---------------------------------------------------------------


def workers(root):
    """Pids of root's children: the workers of herd and nginx alike."""
    out = []
    for d in os.listdir("/proc"):
        st = run.read_stat(d) if d.isdigit() else None
        if st is not None and st[0] == root:
            out.append(int(d))
    return out


def rss(pids):
    """Summed VmRSS of pids, in bytes."""
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def settled_rss(pids, timeout=5.0, still=0.5):
    """RSS once it has not moved for `still` seconds (the server has done
    what it was given), or whatever it is after `timeout`."""
    deadline = time.monotonic() + timeout
    last, since = rss(pids), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss(pids)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            break
    return last


def established(port):
    """TCP connections in ESTABLISHED state whose local end is
    127.0.0.1:port: the server's side of ours."""
    me, n = "0100007F:%04X" % port, 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == me and fields[3] == "01":
                n += 1
    return n


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def warm_up(port):
    """A few keep-alive requests, so first-use allocations are not counted."""
    for _ in range(4):
        with socket.create_connection((HOST, port), timeout=5) as s:
            for _ in range(50):
                s.sendall(PARTIAL + b"\r\n")
                if not read_answer(s):
                    raise RuntimeError("warm-up: no answer")


def read_answer(s):
    buf = b""
    while not buf.endswith(ANSWER_END):
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk
    return True


def open_conns(port, n):
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((HOST, port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
    except OSError:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def send_all(socks, data):
    for s in socks:
        s.sendall(data)


def answers(socks, timeout):
    """Reads one answer on every socket; returns how many came whole."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    done, deadline = 0, time.monotonic() + timeout
    try:
        while done < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                bufs[s] += chunk
                if not chunk or bufs[s].endswith(ANSWER_END):
                    done += bool(chunk)
                    sel.unregister(s)
    finally:
        sel.close()
        for s in socks:
            s.setblocking(True)
    return done


def measure(server, a):
    """One round against one (fresh) server: the row of its figures."""
    pids = workers(server.proc.pid)
    if not pids:
        raise RuntimeError("no worker processes")
    warm_up(server.port)
    row = dict(server=server.name, conns=a.conns, before=settled_rss(pids, still=0.3))
    socks = open_conns(server.port, a.conns)
    try:
        send_all(socks, PARTIAL + b"\r\n")
        row["answered"] = answers(socks, 30)
        row["idle"] = settled_rss(pids)
        row["open_at_idle"] = established(server.port)
        send_all(socks, PARTIAL)
        row["partial"] = settled_rss(pids)
        send_all(socks, b"\r\n")
        row["answered"] += answers(socks, 30)
    finally:
        close_all(socks)
    wait_for(lambda: established(server.port) == 0, 15)
    row["after"] = settled_rss(pids)
    n = a.conns
    row["idle_bytes_per_conn"] = round((row["idle"] - row["before"]) / n)
    row["partial_bytes_per_conn"] = round((row["partial"] - row["before"]) / n)
    row["kept_after_kib"] = round((row["after"] - row["before"]) / 1024)
    return row

# ---- rounds and report -------------------------------------------------------


def one_round(makers, a, rnd):
    rows = []
    order = makers if rnd % 2 == 0 else makers[::-1]
    for make in order:
        server = make()
        why = server.start()
        if why is not None:
            print("round %d  %s did not start: %s" % (rnd + 1, server.name, why))
            continue
        try:
            row = measure(server, a)
        except (OSError, RuntimeError) as e:
            print("round %d  %s failed: %s" % (rnd + 1, server.name, e))
            continue
        finally:
            server.stop()
        row["round"] = rnd + 1
        rows.append(row)
        print("round %d  %-6s idle %6d B/conn  partial %6d B/conn  answered %d (2 per conn)  open %d  "
              "RSS before %s, after close %s" % (
                  rnd + 1, row["server"], row["idle_bytes_per_conn"],
                  row["partial_bytes_per_conn"], row["answered"], row["open_at_idle"],
                  kib(row["before"]), kib(row["after"])), flush=True)
        time.sleep(a.pause)
    return rows


def kib(b):
    return "%d KiB" % round(b / 1024)


def summary(rows, names):
    out = []
    for name in names:
        rs = [r for r in rows if r["server"] == name]
        if not rs:
            continue
        m = dict(server=name, round="median", runs=len(rs), conns=rs[0]["conns"])
        for k in ("before", "partial", "idle", "after", "idle_bytes_per_conn",
                  "partial_bytes_per_conn", "kept_after_kib", "answered", "open_at_idle"):
            m[k] = statistics.median(r[k] for r in rs)
        out.append(m)
    return out


def table(meds):
    base = {m["server"]: m for m in meds}.get("nginx")
    head = ("server", "bytes per idle conn", "vs nginx", "bytes per conn, request in progress",
            "RSS before", "RSS idle", "RSS after close", "kept after close")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in meds:
        vs = ("%.2f" % (m["idle_bytes_per_conn"] / base["idle_bytes_per_conn"])
              if base and base["idle_bytes_per_conn"] > 0 else "-")
        cells = (m["server"], "%d" % m["idle_bytes_per_conn"], vs,
                 "%d" % m["partial_bytes_per_conn"], kib(m["before"]), kib(m["idle"]),
                 kib(m["after"]), "%+d KiB" % m["kept_after_kib"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CSV_FIELDS = ("round", "server", "runs", "conns", "before", "partial", "idle", "after",
              "idle_bytes_per_conn", "partial_bytes_per_conn", "kept_after_kib",
              "answered", "open_at_idle")


def save(rows, meds):
    os.makedirs(run.RESULTS, exist_ok=True)
    path = os.path.join(run.RESULTS, "idle-%s.csv" % time.strftime("%Y%m%dT%H%M%SZ",
                                                                     time.gmtime()))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows + meds)
    print("wrote %s" % os.path.relpath(path, run.REPO))

# ---- main --------------------------------------------------------------------


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
    except (ValueError, OSError):
        sys.exit("idle.py: cannot raise RLIMIT_NOFILE to %d (hard limit %d): "
                 "run as root or lower --conns" % (need, hard))


def check_ports(conns):
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    if hi - lo + 1 < conns + 1000:
        sys.exit("idle.py: only %d local ports for %d connections" % (hi - lo + 1, conns))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=10000, help="connections (10000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between servers (1)")
    ap.add_argument("--herd", default=os.path.join(run.REPO, "build", "herd"))
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU of the servers (0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU of this script (1)")
    ap.add_argument("--no-pin", action="store_true", help="leave CPU placement to the scheduler")
    ap.add_argument("--quick", action="store_true", help="1 round of 2000 connections")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.conns = 1, 2000
    return a


def main():
    a = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # exit through finally and atexit
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    if not os.access(a.herd, os.X_OK):
        sys.exit("idle.py: %s is missing: run `make` first" % a.herd)
    raise_nofile(a.conns + 1000)  # the servers inherit it
    check_ports(a.conns)
    tmp = tempfile.mkdtemp(prefix="herd-idle-")
    try:
        placement = run.pin(a)
        herd = shutil.copy2(a.herd, os.path.join(tmp, "herd"))
        makers = [lambda: herd_server(tmp, herd, a.conns)]
        if shutil.which("nginx"):
            makers.append(lambda: nginx_server(tmp, a.conns + 1000))
        print("idle keep-alive connections: %d per server, one worker each, %d rounds; %s; %s"
              % (a.conns, a.rounds, placement, run.machine()), flush=True)
        rows = []
        for r in range(a.rounds):
            rows += one_round(makers, a, r)
        meds = summary(rows, ["herd", "nginx"])
        print()
        print(table(meds))
        save(rows, meds)
    finally:
        run._kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

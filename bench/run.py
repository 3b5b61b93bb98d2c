#!/usr/bin/env python3
"""run.py: throughput, latency and CPU per request of herd against nginx.

Serves the same `hello\\n` from nginx, from the floor (build/floor, a
minimal epoll server: the least work a request costs on this kernel) and
from herd in every connection mode the binary accepts (shared, reuseport,
passfd with --balance rr/least), side by side on 127.0.0.1, and drives
each with wrk in two workloads; and nginx with `listen ... deferred` beside
herd shared and passfd least with --defer-accept (TCP_DEFER_ACCEPT on
both sides), whose ratios are to that nginx:

  keepalive   wrk's default: -c connections kept open
  close       `Connection: close`: one new connection per request

Capacity per core: every server process runs on one CPU (--server-cpu, 0)
and wrk, with this script, on another (--client-cpu, 1), so the servers
compete with each other's runs, never with the load generator. Rounds
alternate the servers (the order rotates each round); every run lasts
--duration seconds. Per run: requests/s, p50 and p99 latency, wrk's
errors, the servers' CPU time per request (utime+stime of the master and
every worker, from /proc, read just before and just after the run), and,
for herd, each worker's share of 1000 /whoami requests on new connections.

Prints a table of the medians over the rounds, then the CPU per request
of every server as ratios to nginx's and to the floor's, side by side, and writes
bench/results/bench-<timestamp>.csv (every run, then the medians), a chart
bench/results/bench-<timestamp>.png, and latest.csv / latest.png copies.

Installs wrk, nginx-light and gnuplot-nox with apt-get when missing (the
system nginx service is never started: nginx runs in the foreground from a
private prefix). Loopback only; every process started here is killed on
the way out, normal or not.
"""
import argparse
import atexit
import csv
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
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
HOST = "127.0.0.1"
PACKAGES = ("wrk", "nginx-light", "gnuplot-nox")
WORKLOADS = ("keepalive", "close")
WHOAMI_RE = re.compile(rb"pid=(\d+) slot=(\d+) gen=(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---- packages ----------------------------------------------------------------


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.endswith(" installed")


def ensure_packages():
    """apt-get install what is missing. A policy-rc.d that refuses every
    action is put in place for the install when none is there, so that
    nginx's post-install script cannot start the system service."""
    missing = [p for p in PACKAGES if not installed(p)]
    if not missing:
        return
    print("installing %s" % " ".join(missing), flush=True)
    policy = "/usr/sbin/policy-rc.d"
    added = not os.path.exists(policy)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if added:
            with open(policy, "w") as f:
                f.write("#!/bin/sh\n# bench/run.py: no service starts\nexit 101\n")
            os.chmod(policy, 0o755)
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"]
                       + missing, env=env, stdout=subprocess.DEVNULL)
    finally:
        if added:
            os.unlink(policy)

# ---- processes ---------------------------------------------------------------


def free_port():
    s = socket.socket()
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def read_stat(pid):
    """(ppid, start time, utime+stime ticks) of a process, or None."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12])


def tree_ticks(root):
    """{(pid, start time): cpu ticks} of root and all its descendants. The
    start time tells a worker from a later process that got its pid."""
    stats, kids = {}, {}
    for d in os.listdir("/proc"):
        st = read_stat(d) if d.isdigit() else None
        if st is not None:
            stats[int(d)] = st
            kids.setdefault(st[0], []).append(int(d))
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[(pid, stats[pid][1])] = stats[pid][2]
            todo += kids.get(pid, [])
    return out


def cpu_delta(before, after, root):
    """Seconds of CPU each process used between two tree_ticks() samples:
    (master seconds, [worker seconds], processes that vanished between)."""
    master, workers = 0.0, []
    for key, ticks in after.items():
        d = (ticks - before.get(key, 0)) / CLK_TCK
        if key[0] == root:
            master = d
        else:
            workers.append(d)
    return master, workers, len(set(before) - set(after))


_live = []
PIN = []  # the taskset prefix of every server's argv, set by main()


def _kill_all():
    for s in list(_live):
        s.stop()


atexit.register(_kill_all)


class Server:
    """A server under test: argv run in its own process group on a free
    loopback port ({port} in argv), stopped with its whole group."""

    def __init__(self, name, argv, tmp, kind, conf=None):
        self.name, self.argv_fmt, self.kind = name, PIN + argv, kind
        self.tmp = tmp
        self.conf = conf  # (path, text with {port}): a config file to write
        self.log_path = os.path.join(tmp, re.sub(r"\W+", "-", name) + ".log")
        self.proc = None
        self.port = None

    def start(self, timeout=10):
        """Returns None once `GET /` answers, else why it did not."""
        for _ in range(3):
            self.port = free_port()
            argv = [a.format(port=self.port) for a in self.argv_fmt]
            if self.conf:
                with open(self.conf[0], "w") as f:
                    f.write(self.conf[1].replace("{port}", str(self.port)))
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, start_new_session=True)
            _live.append(self)
            why = self._wait_ready(timeout)
            if why is None or "in use" not in why:
                return why
            self.stop()
        return why

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exit %d: %s" % (self.proc.returncode, self.log_tail())
            try:
                if http_get(self.port, "/", 1)[0] == 200:
                    return None
            except (OSError, ValueError, IndexError):
                pass  # not listening yet, or no answer yet
            time.sleep(0.05)
        self.stop()
        return "not answering after %d s: %s" % (timeout, self.log_tail())

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
        except OSError:
            return ""
        return " / ".join(lines[-2:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM (fast stop for both herd and nginx), then SIGKILL the
        process group, which holds the master and every worker."""
        if self in _live:
            _live.remove(self)
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group is ours alone
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

# ---- the servers -------------------------------------------------------------


NGINX_CONF = """\
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{{port}}{deferred};
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""


def nginx_server(tmp, workers, deferred=False):
    """nginx in the foreground from its own prefix: its pid file, logs and
    temp paths all live in a private directory; -e keeps even the early
    error log out of /var/log. deferred: `listen ... deferred`
    (TCP_DEFER_ACCEPT), the peer of herd's --defer-accept."""
    name = "nginx deferred" if deferred else "nginx"
    d = os.path.join(tmp, name.replace(" ", "-"))
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    # {port} survives this format (doubled braces): Server.start fills it in.
    text = NGINX_CONF.format(workers=workers, dir=d, deferred=" deferred" if deferred else "")
    argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", d, "-c", conf,
            "-e", os.path.join(d, "error.log"), "-g", "daemon off;"]
    return Server(name, argv, tmp, "nginx", conf=(conf, text))


def baseline(name):
    """The nginx a server is compared with: its deferred twin for the
    --defer-accept rows."""
    return "nginx deferred" if name.endswith(" deferred") else "nginx"


def herd_candidates(herd, workers):
    """(name, extra args) of every herd mode to try, in order; the passfd
    entry without --balance is tried only if both balanced ones fail."""
    base = [herd, "-l", HOST + ":{port}", "-w", str(workers)]
    return [(n, base + a) for n, a in (
        ("herd shared", ["-m", "shared"]),
        ("herd reuseport", ["-m", "reuseport"]),
        ("herd passfd rr", ["-m", "passfd", "--balance", "rr"]),
        ("herd passfd least", ["-m", "passfd", "--balance", "least"]),
        ("herd passfd", ["-m", "passfd"]),
        ("herd shared deferred", ["-m", "shared", "--defer-accept"]),
        ("herd passfd least deferred", ["-m", "passfd", "--balance", "least",
                                        "--defer-accept"]),
    )]


def floor_server(tmp, floor):
    """build/floor: one process, the least a request can cost."""
    return Server("floor", [floor, HOST, "{port}"], tmp, "floor")


def start_servers(tmp, herd, workers, with_nginx, floor=None):
    """Starts every server that will start; returns (servers, skipped) with
    skipped a list of (name, reason)."""
    servers, skipped = [], []
    todo = []
    if with_nginx:
        todo += [nginx_server(tmp, workers), nginx_server(tmp, workers, deferred=True)]
    if floor:
        todo.append(floor_server(tmp, floor))
    todo += [Server(n, a, tmp, "herd") for n, a in herd_candidates(herd, workers)]
    for s in todo:
        if s.name == "herd passfd" and any(x.name.startswith("herd passfd") for x in servers):
            continue
        why = s.start()
        if why is None:
            servers.append(s)
        elif s.name == "herd passfd":  # passfd itself is refused: say it once
            skipped = [x for x in skipped if not x[0].startswith("herd passfd")]
            skipped.append(("herd passfd (any --balance)", why))
        else:
            skipped.append((s.name, why))
    return servers, skipped

# ---- load --------------------------------------------------------------------


WRK_LUA = """\
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d "
        .. "status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\\n",
        summary.requests, summary.duration, e.connect, e.read, e.write,
        e.status, e.timeout, latency:percentile(50), latency:percentile(99),
        latency.max))
end
"""


def http_get(port, path, timeout, close=True):
    """(status, body) of one request on a new connection."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: bench\r\n%s\r\n"
                   % (path, "Connection: close\r\n" if close else "")).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def run_wrk(port, workload, a, script):
    """One wrk run; returns its BENCH numbers plus wrk's own CPU seconds."""
    argv = ["wrk", "-t", str(a.threads), "-c", str(a.connections),
            "-d", "%ds" % a.duration, "-s", script]
    if workload == "close":
        argv += ["-H", "Connection: close"]
    argv.append("http://%s:%d/" % (HOST, port))
    ru0 = os.times()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=a.duration + 30)
    ru1 = os.times()
    m = re.search(r"^BENCH (.*)$", p.stdout, re.M)
    if not m:
        raise RuntimeError("wrk said: %s %s" % (p.stdout[-500:], p.stderr[-500:]))
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["wrk_cpu_s"] = (ru1.children_user + ru1.children_system
                      - ru0.children_user - ru0.children_system)
    return r


def whoami_shares(port, total=1000, threads=4):
    """{pid: count} of `total` /whoami requests on new connections from
    `threads` threads, and the number of failed requests."""
    counts, errors, lock = {}, [0], threading.Lock()

    def client(n):
        for _ in range(n):
            try:
                status, body = http_get(port, "/whoami", 2)
                m = WHOAMI_RE.search(body) if status == 200 else None
            except (OSError, ValueError, IndexError):
                m = None
            with lock:
                if m:
                    pid = int(m.group(1))
                    counts[pid] = counts.get(pid, 0) + 1
                else:
                    errors[0] += 1
    ts = [threading.Thread(target=client, args=(total // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts, errors[0]


def one_run(server, workload, a, script):
    """Drives one server with one workload; returns the CSV row."""
    root = server.proc.pid
    before = tree_ticks(root)
    r = run_wrk(server.port, workload, a, script)
    after = tree_ticks(root)
    master_s, worker_s, vanished = cpu_delta(before, after, root)
    reqs = r["requests"]
    row = dict(server=server.name, workload=workload, requests=reqs,
               seconds=round(r["duration_us"] / 1e6, 3),
               rps=round(reqs / (r["duration_us"] / 1e6), 1),
               p50_us=r["p50_us"], p99_us=r["p99_us"], max_us=r["max_us"],
               err_connect=r["connect"], err_read=r["read"], err_write=r["write"],
               err_status=r["status"], err_timeout=r["timeout"],
               cpu_s=round(master_s + sum(worker_s), 3),
               master_cpu_s=round(master_s, 3),
               cpu_us_per_req=round((master_s + sum(worker_s)) * 1e6 / reqs, 2) if reqs else "",
               wrk_cpu_us_per_req=round(r["wrk_cpu_s"] * 1e6 / reqs, 2) if reqs else "",
               busy_max=share(worker_s, max), busy_min=share(worker_s, min),
               vanished=vanished)
    row["errors"] = sum(row[k] for k in row if k.startswith("err_"))
    if server.kind == "herd":
        counts, failed = whoami_shares(server.port, a.whoami)
        c = list(counts.values()) + [0] * max(0, a.workers - len(counts))
        row.update(share_max=share(c, max), share_min=share(c, min),
                   share_workers=len(counts), share_failed=failed)
    return row


def share(values, pick):
    """pick(values) as a percentage of their sum, or '' without data."""
    total = sum(values)
    return round(100.0 * pick(values) / total, 1) if values and total else ""

# ---- rounds and summary ------------------------------------------------------


def run_rounds(servers, a, script):
    """Round r: for each workload, every server once, the order rotated by
    r so no server always follows the same one."""
    rows = []
    for r in range(a.rounds):
        for workload in WORKLOADS:
            k = r % len(servers)
            for s in servers[k:] + servers[:k]:
                rows.append(checked_run(s, workload, a, script, r + 1))
                time.sleep(a.pause)
    return rows


def checked_run(server, workload, a, script, rnd):
    print("round %d  %-18s %-9s " % (rnd, server.name, workload), end="", flush=True)
    if not server.alive():
        print("server is gone: %s" % server.log_tail())
        return dict(round=rnd, server=server.name, workload=workload, note="server gone")
    try:
        row = one_run(server, workload, a, script)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("failed: %s" % e)
        return dict(round=rnd, server=server.name, workload=workload, note=str(e)[:200])
    row["round"] = rnd
    print("%9.0f req/s  p99 %6.2f ms  %5.1f us/req  errors %d%s" % (
        row["rps"], row["p99_us"] / 1000, row["cpu_us_per_req"] or 0, row["errors"],
        "  whoami %s" % fmt_share(row["share_max"], row["share_min"], row["share_failed"])
        if "share_max" in row else ""),
        flush=True)
    return row


def med(rows, key):
    xs = [r[key] for r in rows if r.get(key) not in (None, "")]
    return statistics.median(xs) if xs else ""


def ratio(a, b, digits=2):
    return round(a / b, digits) if a != "" and b not in ("", 0) else ""


def summarize(rows, servers):
    """One median row per (server, workload), in server order."""
    out = []
    for workload in WORKLOADS:
        def of(name):
            return [r for r in rows if r["server"] == name and r["workload"] == workload
                    and "rps" in r]
        floor_cpu = med(of("floor"), "cpu_us_per_req")
        for s in servers:
            base = of(baseline(s.name))
            nginx_rps, nginx_cpu = med(base, "rps"), med(base, "cpu_us_per_req")
            rs = [r for r in rows if r["server"] == s.name and r["workload"] == workload
                  and "rps" in r]
            if not rs:
                continue
            m = dict(round="median", server=s.name, workload=workload, runs=len(rs))
            for k in ("rps", "p50_us", "p99_us", "max_us", "cpu_us_per_req", "wrk_cpu_us_per_req",
                      "share_max", "share_min", "busy_max", "busy_min"):
                m[k] = med(rs, k)
            m["rps_min"] = min(r["rps"] for r in rs)
            m["rps_max"] = max(r["rps"] for r in rs)
            m["errors"] = sum(r["errors"] for r in rs)
            m["share_failed"] = sum(r.get("share_failed", 0) for r in rs)
            m["requests"] = sum(r["requests"] for r in rs)
            m["vs_nginx"] = ratio(m["rps"], nginx_rps)
            m["cpu_vs_nginx"] = ratio(m["cpu_us_per_req"], nginx_cpu)
            m["cpu_vs_floor"] = ratio(m["cpu_us_per_req"], floor_cpu)
            out.append(m)
    return out


def fmt_share(hi, lo, failed=0):
    if hi == "" or lo == "":
        return "-"
    return "%d / %d%s" % (round(hi), round(lo), " (%d failed)" % failed if failed else "")


def fmt(x, spec):
    return spec % x if x != "" else "-"


def md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def table(medians):
    """The medians as a Markdown table (what the README holds)."""
    head = ("server", "workload", "req/s", "p50 ms", "p99 ms", "vs nginx",
            "CPU µs/req", "errors", "whoami % max / min", "busy % max / min")
    return md_table(head, [
        (m["server"], m["workload"], "%.0f" % m["rps"],
         "%.2f" % (m["p50_us"] / 1000), "%.2f" % (m["p99_us"] / 1000),
         fmt(m["vs_nginx"], "%.2f"), fmt(m["cpu_us_per_req"], "%.1f"),
         str(m["errors"]), fmt_share(m["share_max"], m["share_min"], m["share_failed"]),
         fmt_share(m["busy_max"], m["busy_min"])) for m in medians])


def cpu_table(medians, servers):
    """CPU µs per request, one row per server, the workloads side by side,
    each with its ratios to nginx's and to the floor's median."""
    head = ["server"]
    for wl in WORKLOADS:
        head += ["%s µs/req" % wl, "/ nginx", "/ floor"]
    rows = []
    for s in servers:
        by = {m["workload"]: m for m in medians if m["server"] == s.name}
        cells = [s.name]
        for wl in WORKLOADS:
            m = by.get(wl, {})
            cells += [fmt(m.get("cpu_us_per_req", ""), "%.1f"),
                      fmt(m.get("cpu_vs_nginx", ""), "%.2f"),
                      fmt(m.get("cpu_vs_floor", ""), "%.2f")]
        rows.append(cells)
    return md_table(head, rows)

# ---- files -------------------------------------------------------------------


CSV_FIELDS = ("round", "server", "workload", "runs", "requests", "seconds", "rps",
              "rps_min", "rps_max", "vs_nginx", "cpu_vs_nginx", "cpu_vs_floor", "p50_us", "p99_us", "max_us", "errors",
              "err_connect", "err_read", "err_write", "err_status", "err_timeout",
              "cpu_s", "master_cpu_s", "cpu_us_per_req", "wrk_cpu_us_per_req",
              "busy_max", "busy_min", "vanished", "share_max", "share_min",
              "share_workers", "share_failed", "note")


def write_csv(path, rows, medians):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows + medians)


GNUPLOT = """\
set terminal {term} noenhanced size 1100,800 font ",10"
set output '{png}'
set multiplot layout 2,1 title "{title}"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside right top
set yrange [0:*]
set style histogram errorbars gap 2 lw 1
set ylabel "requests/s (median; bars min..max)"
plot {rps_plot}
set style histogram clustered gap 2
set ylabel "server CPU us per request (median)"
plot {cpu_plot}
unset multiplot
"""


def write_dat(path, medians, names, keys):
    """One line per workload: its name, then keys of each server's medians."""
    with open(path, "w") as f:
        for wl in WORKLOADS:
            by = {m["server"]: m for m in medians if m["workload"] == wl}
            cells = [str(by[n][k]) if n in by else "NaN" for n in names for k in keys]
            f.write(" ".join([wl] + cells) + "\n")


def plot_clauses(path, names, width):
    """'path' using ... title "name", one clause per server, each taking
    width columns (after the workload's name in column 1)."""
    out = []
    for i, n in enumerate(names):
        cols = ":".join(str(2 + width * i + j) for j in range(width))
        out.append("'%s' using %s%s title \"%s\"" % (path, cols, ":xtic(1)" if i == 0 else "", n))
    return ", \\\n     ".join(out)


def write_chart(png, medians, servers, title, tmp):
    """Grouped bars, one group per workload, one bar per server (error bars
    min..max over the rounds); a second panel with CPU per request.
    Returns None, or why there is no chart."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed"
    names = [s.name for s in servers if any(m["server"] == s.name for m in medians)]
    dat, cpu = os.path.join(tmp, "rps.dat"), os.path.join(tmp, "cpu.dat")
    write_dat(dat, medians, names, ("rps", "rps_min", "rps_max"))
    write_dat(cpu, medians, names, ("cpu_us_per_req",))
    term = "pngcairo" if "pngcairo" in gnuplot_terminals() else "png"
    script = GNUPLOT.format(term=term, png=png, title=title,
                            rps_plot=plot_clauses(dat, names, 3),
                            cpu_plot=plot_clauses(cpu, names, 1))
    p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=60)
    return None if p.returncode == 0 and os.path.exists(png) else p.stderr.strip()[-300:]


def gnuplot_terminals():
    p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return p.stdout + p.stderr

# ---- main --------------------------------------------------------------------


def machine():
    return "%d cores, Linux %s, %s" % (os.cpu_count(), os.uname().release,
                                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument("--workers", type=int, default=2, help="workers of each server (2)")
    ap.add_argument("--connections", type=int, default=50, help="wrk -c (50)")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t (1)")
    ap.add_argument("--whoami", type=int, default=1000, help="/whoami requests for shares")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs (1)")
    ap.add_argument("--herd", default=os.path.join(REPO, "build", "herd"))
    ap.add_argument("--floor", default=os.path.join(REPO, "build", "floor"),
                    help="the floor server (build/floor; `make build/floor`)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU of every server process (0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk and this script (1)")
    ap.add_argument("--no-pin", action="store_true", help="leave CPU placement to the scheduler")
    ap.add_argument("--no-install", action="store_true", help="do not run apt-get")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s runs")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration = 1, 3
    return a


def pin(a):
    """Servers on --server-cpu (taskset, inherited by every worker), this
    script and so wrk on --client-cpu. Returns how, for the title."""
    cpus = os.sched_getaffinity(0)
    if a.no_pin:
        return "not pinned"
    if a.server_cpu == a.client_cpu or not {a.server_cpu, a.client_cpu} <= cpus:
        sys.exit("run.py: CPUs %d and %d are not two of the usable %s (or use --no-pin)"
                 % (a.server_cpu, a.client_cpu, sorted(cpus)))
    if not shutil.which("taskset"):
        sys.exit("run.py: taskset is missing (util-linux), or use --no-pin")
    os.sched_setaffinity(0, {a.client_cpu})
    PIN[:] = ["taskset", "-c", str(a.server_cpu)]
    return "servers on CPU %d, wrk on CPU %d" % (a.server_cpu, a.client_cpu)


def report_skipped(skipped):
    for name, why in skipped:
        print("skipped %s: %s" % (name, why))


def save(rows, medians, servers, a, tmp, title):
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    csv_path = os.path.join(RESULTS, "bench-%s.csv" % stamp)
    png_path = os.path.join(RESULTS, "bench-%s.png" % stamp)
    write_csv(csv_path, rows, medians)
    shutil.copyfile(csv_path, os.path.join(RESULTS, "latest.csv"))
    print("wrote %s" % os.path.relpath(csv_path, REPO))
    why = write_chart(png_path, medians, servers, title, tmp)
    if why is None:
        shutil.copyfile(png_path, os.path.join(RESULTS, "latest.png"))
        print("wrote %s" % os.path.relpath(png_path, REPO))
    else:
        print("no chart: %s" % why)


def main():
    a = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # exit through finally and atexit
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    if not a.no_install:
        ensure_packages()
    if not shutil.which("wrk"):
        sys.exit("run.py: wrk is not installed")
    if not os.access(a.herd, os.X_OK):
        sys.exit("run.py: %s is missing: run `make` first" % a.herd)
    tmp = tempfile.mkdtemp(prefix="herd-bench-")
    try:
        # A private copy: a rebuild during the bench cannot mix two binaries.
        herd = shutil.copy2(a.herd, os.path.join(tmp, "herd"))
        script = os.path.join(tmp, "summary.lua")
        with open(script, "w") as f:
            f.write(WRK_LUA)
        placement = pin(a)
        floor = a.floor if os.access(a.floor, os.X_OK) else None
        servers, skipped = start_servers(tmp, herd, a.workers, bool(shutil.which("nginx")),
                                         floor)
        if floor is None:
            skipped.append(("floor", "%s is missing: `make %s`"
                            % (a.floor, os.path.relpath(a.floor, REPO))))
        title = ("herd vs nginx and the floor: %d workers, wrk -t%d -c%d, %d x %d s; %s; %s"
                 % (a.workers, a.threads, a.connections, a.rounds, a.duration, placement,
                    machine()))
        print(title)
        print("servers: %s" % ", ".join(s.name for s in servers))
        report_skipped(skipped)
        if not servers:
            sys.exit("run.py: no server started")
        rows = run_rounds(servers, a, script)
        medians = summarize(rows, servers)
        print()
        print(table(medians))
        print()
        print("CPU per request, medians, ratios to nginx's (the deferred rows: to nginx "
              "deferred's) and to the floor's:")
        print(cpu_table(medians, servers))
        report_skipped(skipped)
        save(rows, medians, servers, a, tmp, title)
    finally:
        _kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

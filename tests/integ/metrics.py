#!/usr/bin/env python3
"""metrics.py: `herd ctl metrics` and --metrics ADDR: Prometheus text
with the counts of connections, ready workers and restarts (a killed
worker's connections still counted), read-only over HTTP (every other path
404, an oversized head refused), and strangers on --metrics can neither
make the master spin nor flood its log."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? '
                       r'-?[0-9.]+(e[+-]?[0-9]+)?$')


def parse_metrics(text):
    """{name or name{labels}: value}, or None when a line is not in
    Prometheus' text format."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        if not PROM_LINE.match(line):
            return None
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_metrics():
    with ht.controlled("-w", "2", name="herd --control, metrics") as h:
        path = h.control_path()
        for _ in range(20):
            ht.get(h.addr, "/")

        def total():
            rc, out, _ = ht.ctl(path, "metrics")
            return (parse_metrics(out) or {}).get("herd_connections_total", 0)
        # Workers report their counts within 20 ms; what a worker served and
        # had not reported when killed is not counted.
        counted = ht.wait_until(lambda: total() >= 20, 10)
        ht.ok(counted, "metrics: the 20 connections are counted")
        victim = h.workers()[0]
        os.kill(victim, signal.SIGKILL)
        ht.wait_until(lambda: len(h.workers()) == 2 and victim not in h.workers(), 10)
        m = {}

        def settled():
            rc, out, _ = ht.ctl(path, "metrics")
            m.clear()
            m.update(parse_metrics(out) or {"unparsed": out})
            return rc == 0 and m.get('herd_workers{state="ready"}') == 2
        ok = ht.wait_until(settled, 10)
        ht.ok(ok and "unparsed" not in m, "metrics: Prometheus text, 2 ready workers", repr(m))
        ht.ok(m.get("herd_restarts_total") == 1 and m.get("herd_generation") == 1 and
              m.get("herd_workers_wanted") == 2,
              "metrics: the kill -9 counts as one restart", repr(m))
        ht.ok(m.get("herd_connections_total", 0) >= 20,
              "metrics: and still counted once a worker that served some is gone", repr(m))


def http_get(port, path):
    s = socket.create_connection((ht.HOST, port), timeout=5)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = ht.read_to_eof(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def test_metrics_over_http():
    port = ht.free_port()
    with ht.Herd("-w", "2", "--metrics", "%s:%d" % (ht.HOST, port), control=True,
                 name="herd --metrics") as h:
        status_line, body = http_get(port, "/metrics")
        m = parse_metrics(body)
        ht.ok(status_line == "HTTP/1.0 200 OK" and m is not None and
              m.get("herd_workers_wanted") == 2,
              "--metrics: GET /metrics is Prometheus text over HTTP", status_line + "\n" + body)
        status_line, _ = http_get(port, "/other")
        ht.ok(status_line.startswith("HTTP/1.0 404"), "--metrics: another path is 404")
        # Read-only: no control command is reachable over HTTP.
        for path in ("/quit", "/stop", "/reload", "/scale%201", "/metrics/../quit"):
            status_line, _ = http_get(port, path)
            ht.ok(status_line.startswith("HTTP/1.0 404"), "--metrics: GET %s is 404" % path)
        # A browser's head (Chromium's is near 1 KiB) is served; past 8 KiB
        # the answer is 431, and no metrics.
        s = socket.create_connection((ht.HOST, port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 1500 + b"\r\n\r\n")
        data = s.recv(4096)
        s.close()
        ht.ok(data.startswith(b"HTTP/1.0 200 OK"), "--metrics: a 1.5 KiB request head is served",
              repr(data[:200]))
        s = socket.create_connection((ht.HOST, port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 8200 + b"\r\n\r\n")
        data = s.recv(4096)
        s.close()
        ht.ok(data.startswith(b"HTTP/1.0 431 ") and b"herd_workers" not in data,
              "--metrics: a request head over 8 KiB gets 431, no metrics", repr(data[:200]))
        time.sleep(0.3)
        st = h.status()
        ht.ok(h.running() and len(h.workers()) == 2 and ht.serving(st, 1, 2) and
              st["workers"] == 2 and st["reloads"] == 0 and len(ht.procs(st)) == 2,
              "and none of it stopped, reloaded or scaled herd (status: generation 1, "
              "no reload, its 2 workers ready)", lambda: "status %r\n%s" % (st, h.log()[-1500:]))
        ht.ok(ht.get(h.addr, "/").status == 200, "and the pool serves on its own port")


def test_status_and_health_over_http():
    """/status.json is `herd ctl status --json`; /healthz answers 200 while
    a worker is ready, 503 with why when none is, or herd stops."""
    import json
    port = ht.free_port()
    with ht.Herd("-w", "2", "--metrics", "%s:%d" % (ht.HOST, port), control=True,
                 name="herd --metrics, status and health") as h:
        status_line, body = http_get(port, "/status.json")
        st = json.loads(body) if status_line == "HTTP/1.0 200 OK" else {}
        ht.ok(ht.serving(st, 1, 2) and st.get("pid") == h.pid,
              "GET /status.json: the status as JSON (generation 1, 2 ready)",
              status_line + "\n" + body[:500])
        status_line, body = http_get(port, "/healthz")
        ht.ok(status_line == "HTTP/1.0 200 OK" and body.startswith("ok: 2 workers ready"),
              "GET /healthz: 200 while workers are ready", status_line + "\n" + body)
    port = ht.free_port()
    with ht.Herd("-w", "1", "--notify", "--metrics", "%s:%d" % (ht.HOST, port), "--",
                 sys.executable, os.path.join(ht.REPO, "tests", "progs", "pyapp.py"),
                 env=dict(os.environ, PYAPP_NEVER_READY="1"), wait_ready=False,
                 name="herd --metrics, never ready") as h:
        got = []

        def probe():  # the listener may not be up yet
            try:
                got.append(http_get(port, "/healthz"))
            except OSError:
                return False
            return got[-1][0].startswith("HTTP/1.0 503")
        ht.wait_until(probe, 10, step=0.2)
        status_line, body = got[-1] if got else ("", "")
        ht.ok(status_line == "HTTP/1.0 503 Service Unavailable" and
              "no worker is ready" in body,
              "GET /healthz: 503 and why while no worker is ready", status_line + "\n" + body)


def test_metrics_under_abuse():
    """Strangers on --metrics cannot make the master spin or flood its log:
    past 16 clients the rest wait in the backlog, a full fd table pauses
    accepting, and the warnings come at most once a second."""
    prlimit = "/usr/bin/prlimit"
    port = ht.free_port()
    with ht.Herd("-w", "1", "--metrics", "%s:%d" % (ht.HOST, port),
                 name="herd --metrics, abused") as h:
        mark = h.mark()
        silent = [socket.create_connection((ht.HOST, port), timeout=5) for _ in range(100)]
        time.sleep(3)  # every client slot times out at least once
        warnings = h.count_log(r"metrics: ", since=mark)
        ht.ok(1 <= warnings <= 8, "100 silent clients for 3 s: %d warning lines, at most one a "
              "second" % warnings, lambda: h.log()[mark:][-2000:])
        for s in silent:
            s.close()
        status_line, _ = http_get(port, "/metrics")
        ht.is_(status_line, "HTTP/1.0 200 OK", "then GET /metrics is answered")
        if not os.access(prlimit, os.X_OK):
            ht.skip("--metrics at EMFILE", "no prlimit")
            return
        # The master's table nearly full: two fds to spare, and three
        # clients want them.
        used = ht.nfds(h.pid)
        limit = used + 2
        # The soft limit only: lowering the hard one could not be undone
        # without CAP_SYS_RESOURCE.
        soft = subprocess.run([prlimit, "--pid", str(h.pid), "--nofile", "-o", "SOFT",
                               "--noheadings"], check=True, capture_output=True,
                              text=True).stdout.strip()
        subprocess.run([prlimit, "--pid", str(h.pid), "--nofile=%d:" % limit], check=True)
        mark = h.mark()
        held = [socket.create_connection((ht.HOST, port), timeout=5) for _ in range(4)]
        before = ht.cpu_ticks(h.pid)
        time.sleep(2)
        used_ticks = ht.cpu_ticks(h.pid) - before
        ht.ok(used_ticks < 40, "--metrics at EMFILE: the master does not spin (%d ticks in 2 s)"
              % used_ticks)
        lines = h.count_log(r"accept: Too many open files", since=mark)
        ht.ok(1 <= lines <= 4, "--metrics at EMFILE: said at most once a second (%d lines)" % lines,
              lambda: h.log()[mark:][-2000:])
        for s in held:
            s.close()
        subprocess.run([prlimit, "--pid", str(h.pid), "--nofile=%s:" % soft], check=True)
        status_line = ht.until_answer(lambda: http_get(port, "/metrics")[0],
                                      lambda r: r == "HTTP/1.0 200 OK", timeout=10)
        ht.ok(status_line, "--metrics: answers again once fds are free")
        ht.ok(ht.get(h.addr, "/").status == 200 and h.running(), "and the pool serves")


ht.run(test_metrics,
       test_status_and_health_over_http,
       test_metrics_over_http,
       test_metrics_under_abuse)

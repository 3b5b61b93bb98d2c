#!/usr/bin/env python3
"""autoscale.py: the adaptive pool, -w MIN:MAX.

A program that serves one request at a time (50 ms each), -w 1:4
--idle-timeout 2: 8 clients make it grow to 4 workers within 6 s (seen
in the accept queue in shared and reuseport modes, in the busy count in
passfd mode), and it is back to 1 within 12 s of them stopping; no
request fails on the way, and the log and status say why each change was
made. The fd limit caps the growth and the log says so. `herd ctl scale N`
sets the count within the bounds and refuses outside them; `scale MIN:MAX`
changes the bounds (MIN == MAX: a fixed pool). A reload keeps the size."""
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

ONE = os.path.join(ht.REPO, "tests", "progs", "oneatatime.py")
CLIENTS = 8


def status(h):
    rc, out, err = ht.ctl(os.path.join(h.dir, "ctl"), "status", "--json")
    try:
        return json.loads(out) if rc == 0 else {}
    except ValueError:
        return {}


def ready(doc):
    return sum(1 for p in doc.get("procs", []) if p.get("state") == "ready" and
               p.get("generation") == doc.get("generation"))


def timeline(h, secs, until):
    """[(seconds, worker processes)] every 0.1 s for secs, or until
    until(n) holds. Counted in /proc, not asked of the master: a status
    request is an event that runs the master's planner, and would hide a
    change of size the master decided and did not act on."""
    t0, out = time.monotonic(), []
    while time.monotonic() - t0 < secs:
        n = len(ht.children(h.pid))
        out.append((round(time.monotonic() - t0, 1), n))
        if until(n):
            break
        time.sleep(0.1)
    return out


def show(tl):
    """The timeline where it changes, for the log."""
    keep, last = [], None
    for t, n in tl:
        if n != last:
            keep.append("%.1fs %d" % (t, n))
            last = n
    return "worker processes: " + ", ".join(keep)


def grow_and_shrink(mode, proto):
    with ht.Herd("-w", "1:4", "--idle-timeout", "2", "-m", mode, "--control", "{dir}/ctl",
                 "--", sys.executable, ONE, "--proto", proto,
                 name="herd -w 1:4 --idle-timeout 2 -m %s, one request at a time" % mode) as h:
        # No status before the growth: see timeline().
        ht.ok(len(ht.children(h.pid)) == 1 and "ready: 1 workers" in h.log(),
              "%s: starts with 1 worker" % mode, h.log())
        t0 = time.monotonic()
        load = ht.Load(h.addr, close=CLIENTS, keepalive=0, timeout=20).start()
        up = timeline(h, 8, until=lambda n: n == 4)
        four = ht.wait_until(lambda: ready(status(h)) == 4, max(0.1, t0 + 6 - time.monotonic()))
        grown = time.monotonic() - t0
        ht.diag("%s, %d clients: %s; 4 ready at %.1fs" % (mode, CLIENTS, show(up), grown))
        ht.ok(four, "%s: 4 workers ready %.1f s after %d clients started (goal 6 s)"
              % (mode, grown, CLIENTS), show(up))
        time.sleep(1)
        load.stop()
        down = timeline(h, 15, until=lambda n: n == 1)
        back = down[-1][0] if down[-1][1] == 1 else None
        doc = status(h)
        ht.diag("%s, clients stopped: %s" % (mode, show(down)))
        ht.ok(back is not None and back <= 12.0 and doc.get("workers") == 1 and ready(doc) == 1,
              "%s: back to 1 worker %.1f s after the clients stopped (goal 12 s)"
              % (mode, back if back is not None else -1), show(down))
        ht.ok(load.failed == 0 and load.ok > 100,
              "%s: %d requests answered, none failed" % (mode, load.ok), load.errors)
        log = h.log()
        ht.ok(re.search(r"workers: 1 -> [2-4] \((\d+ connections waiting in the accept queue|"
                        r"all \d workers busy)\)", log) and
              re.search(r"workers: 2 -> 1 \(underused for 2000 ms\)", log),
              "%s: the log says why it grew and why it shrank" % mode,
              "\n".join(l for l in log.splitlines() if "workers:" in l))
        pool = status(h).get("pool", {})
        ht.ok(pool.get("adaptive") is True and pool.get("min") == 1 and pool.get("max") == 4 and
              pool.get("grown", 0) >= 1 and pool.get("shrunk") == 3 and
              "underused" in (pool.get("last") or ""),
              "%s: status --json: the bounds, the changes, the last one" % mode, repr(pool))


def test_grow_and_shrink():
    grow_and_shrink("shared", "systemd")
    grow_and_shrink("reuseport", "systemd")
    grow_and_shrink("passfd", "passfd")


def test_php_cgi():
    """The pool PHP-FPM's pm = dynamic makes, of php-cgi: one request at a
    time per process (PHP_FCGI_CHILDREN=0), FastCGI clients, -w 1:3."""
    if not (shutil.which("php-cgi") and shutil.which("cgi-fcgi")):
        ht.skip("php-cgi under an adaptive pool", "php-cgi or cgi-fcgi not installed")
        return
    d = os.path.realpath(tempfile.mkdtemp(prefix="herd-php-"))
    script = os.path.join(d, "index.php")
    with open(script, "w") as f:
        f.write("<?php usleep(50000); echo \"hello\\n\";\n")
    try:
        with ht.Herd("--fd0", "-w", "1:3", "--idle-timeout", "2", "--control", "{dir}/ctl",
                     "--", "php-cgi", env={"PHP_FCGI_CHILDREN": "0"}, cwd=d,
                     name="PHP_FCGI_CHILDREN=0 herd --fd0 -w 1:3 --idle-timeout 2 -- php-cgi") as h:
            load = ht.Load(fetch=lambda: ht.cgi_fcgi(h.port, script), calls=6, close=0,
                           keepalive=0, timeout=10).start()
            up = timeline(h, 10, until=lambda n: n == 3)
            ht.diag("php-cgi, 6 FastCGI clients: %s" % show(up))
            grew = up[-1][1] == 3
            load.stop()
            down = timeline(h, 15, until=lambda n: n == 1)
            ht.diag("php-cgi, clients stopped: %s" % show(down))
            ht.ok(grew and down[-1][1] == 1,
                  "php-cgi: grows to 3 under load (%.1f s), back to 1 after (%.1f s)"
                  % (up[-1][0], down[-1][0]), show(up) + "\n" + show(down))
            ht.ok(load.failed == 0 and load.ok > 20,
                  "php-cgi: %d FastCGI requests answered, none failed" % load.ok, load.errors)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_fd_limit():
    """Growth stops at what the fd limit allows, and the log says why."""
    with ht.Herd("--nofile=120:120", "--", ht.HERD, "-l", "{addr}", "-w", "1:64",
                 "--control", "{dir}/ctl", "--", sys.executable, ONE,
                 prog="/usr/bin/prlimit", name="herd -w 1:64 under ulimit -n 120") as h:
        m = re.search(r"-w 1:64, but the fd limit \(ulimit -n\) allows (\d+)", h.log())
        ht.ok(m, "the start warns that the limit is lower than the maximum", h.log())
        room = int(m.group(1)) if m else 0
        load = ht.Load(h.addr, close=2 * room + 4, keepalive=0, timeout=30).start()
        said = h.wait_log(r"workers: \d+: .*not growing: the fd limit", timeout=20)
        most = max(status(h).get("workers", 0), 0)
        load.stop()
        ht.ok(said and 1 < most <= room,
              "grows to the limit (%d of %d) and says why it stops" % (most, room),
              "\n".join(l for l in h.log().splitlines() if "workers" in l))


def test_scale_and_reload():
    with ht.Herd("-w", "1:4", "--idle-timeout", "30", "--control", "{dir}/ctl",
                 "--", sys.executable, ONE,
                 name="herd -w 1:4 --idle-timeout 30, scaled by hand") as h:
        path = os.path.join(h.dir, "ctl")
        rc, out, err = ht.ctl(path, "scale", "3")
        ht.ok(rc == 0 and out.strip() == "workers: 3, adaptive 1:4" and
              ht.wait_until(lambda: ready(status(h)) == 3, 10),
              "scale 3: within the bounds, 3 workers", out + err)
        rc, out, err = ht.ctl(path, "scale", "6")
        ht.ok(rc != 0 and "outside the adaptive pool's bounds 1:4" in out + err and
              status(h)["workers"] == 3,
              "scale 6: refused, naming the bounds; nothing changed", out + err)
        rc, out, err = ht.ctl(path, "reload")
        doc = status(h)
        ht.ok(rc == 0 and doc.get("generation") == 2 and doc.get("workers") == 3 and
              ready(doc) == 3,
              "a reload keeps the size the pool had (3)", out + err)
        rc, out, err = ht.ctl(path, "scale", "4:6")
        ht.ok(rc == 0 and out.strip() == "workers: 4, adaptive 4:6" and
              ht.wait_until(lambda: ready(status(h)) == 4, 10) and
              status(h)["pool"]["min"] == 4,
              "scale 4:6: new bounds; the size brought within them", out + err)
        rc, out, err = ht.ctl(path, "scale", "2:2")
        doc = status(h)
        ht.ok(rc == 0 and out.strip() == "workers: 2" and doc["pool"]["adaptive"] is False,
              "scale 2:2: a fixed pool of 2", out + err)
        rc, out, err = ht.ctl(path, "scale", "5")
        ht.ok(rc == 0 and status(h)["pool"]["max"] == 5 and
              status(h)["pool"]["adaptive"] is False,
              "a fixed pool scaled by hand stays fixed", out + err)
        for bad in ("0:3", "3:2", "1:513", "1:", ":2", "a:b"):
            rc, out, err = ht.ctl(path, "scale", bad)
            ht.ok(rc != 0 and "expected bounds MIN:MAX" in out + err,
                  "scale %s: refused" % bad, out + err)


if __name__ == "__main__":
    ht.run(test_grow_and_shrink, test_php_cgi, test_fd_limit, test_scale_and_reload)

#!/usr/bin/env python3
"""page.py: the status page on the --metrics listener, in a real browser.

GET / is an HTML page; headless Chromium loads it (its request head is
near 1 KiB: the listener must take a browser's) and its DOM names every
worker by pid, says the pool serves, lists a reload and a crash once they
happened, and asks to be loaded again. The page is read-only: nothing on
the listener changes the pool. A screenshot taken by Chromium is a PNG of
a rendered page. A fixed pool keeps a point of history every 5 s."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def get(port, path, method="GET"):
    req = urllib.request.Request("http://%s:%d%s" % (ht.HOST, port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def chromium(url, *args):
    """(status, stdout) of headless Chromium on url, with a profile of its
    own; root needs --no-sandbox."""
    prof = tempfile.mkdtemp(prefix="herd-chromium-")
    try:
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--user-data-dir=" + prof, *args, url],
                           capture_output=True, timeout=90, env=dict(os.environ, HOME=prof))
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def pids(h):
    rc, out, err = ht.ctl(os.path.join(h.dir, "ctl"), "status", "--json")
    doc = json.loads(out) if rc == 0 else {}
    return [p["pid"] for p in doc.get("procs", []) if p.get("state") == "ready"]


def dom_rows(dom):
    """The pids in the workers table, as the browser built it."""
    m = re.search(r'<table id="workers">(.*?)</table>', dom, re.S)
    return sorted(int(x) for x in re.findall(
        r'<tr class="worker"><td>\d+</td><td>(\d+)</td>', m.group(1) if m else ""))


def test_page():
    mport = ht.free_port()
    with ht.Herd("-w", "3", "--control", "{dir}/ctl", "--metrics", "%s:%d" % (ht.HOST, mport),
                 name="herd -w 3 --metrics") as h:
        ht.ok(ht.wait_until(lambda: len(pids(h)) == 3, 10), "3 workers ready")
        code, ctype, body = get(mport, "/")
        ht.ok(code == 200 and ctype == "text/html; charset=utf-8" and
              body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>"),
              "GET /: 200, an HTML document", "%s %s %s" % (code, ctype, body[:200]))
        ht.ok(all(">%d<" % p in body for p in pids(h)), "GET /: every worker's pid")
        ht.is_(get(mport, "/healthz")[0], 200, "/healthz: 200")
        if CHROMIUM is None:
            ht.skip("headless Chromium", "chromium is not installed (apt-get install chromium)")
            return
        url = "http://%s:%d/" % (ht.HOST, mport)
        rc, dom, err = chromium(url, "--dump-dom")
        ht.ok(rc == 0 and dom_rows(dom) == sorted(pids(h)),
              "Chromium renders the page; its workers table names every worker (%s)"
              % sorted(pids(h)), "rc %s rows %s\n%s\n%s" % (rc, dom_rows(dom), dom[:2000],
                                                          err[-2000:]))
        ht.ok(re.search(r'<title>herd: 3 of 3 workers ready</title>', dom) and
              re.search(r'<p id="health" class="ok">serving: 3 of 3', dom) and
              '<meta http-equiv="refresh" content="2">' in dom and dom.count("<svg") == 2,
              "the title and health say it serves; two charts; it refreshes itself",
              dom[:3000])
        victim = pids(h)[0]
        os.kill(victim, signal.SIGKILL)
        ht.ok(ht.wait_until(lambda: len(pids(h)) == 3 and victim not in pids(h), 10),
              "a worker killed is replaced")
        rc, out, err = ht.ctl(os.path.join(h.dir, "ctl"), "reload")
        ht.ok(rc == 0, "reloaded", out + err)
        rc, dom, err = chromium(url, "--dump-dom")
        crashes = re.search(r'<table id="crashes">(.*?)</table>', dom, re.S)
        reloads = re.search(r'<table id="reloads">(.*?)</table>', dom, re.S)
        ht.ok(crashes and "pid %d" % victim in crashes.group(1) and
              "killed by signal 9" in crashes.group(1),
              "the crash is listed, as the log said it", crashes.group(1) if crashes else dom)
        ht.ok(reloads and re.search(r"<td>2</td><td class=\"l\">reload</td><td class=\"l ok\">"
                                    r"ready</td>", reloads.group(1)),
              "the reload to generation 2 is listed, ready",
              reloads.group(1) if reloads else dom)
        ht.ok(dom_rows(dom) == sorted(pids(h)), "the new generation's workers are named")
        shot = os.path.join(h.dir, "page.png")
        rc, out, err = chromium(url, "--hide-scrollbars", "--window-size=1000,1000",
                                "--screenshot=" + shot)
        with open(shot, "rb") if os.path.exists(shot) else open(os.devnull, "rb") as f:
            png = f.read()
        ht.ok(rc == 0 and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000,
              "Chromium's screenshot of the page is a PNG of something (%d bytes)" % len(png),
              err[-2000:])


def test_read_only():
    """Nothing on the listener changes the pool: every other path and
    method is a 404, and the pool is as it was."""
    mport = ht.free_port()
    with ht.Herd("-w", "2", "--control", "{dir}/ctl", "--metrics", "%s:%d" % (ht.HOST, mport),
                 name="herd -w 2 --metrics, poked") as h:
        before = sorted(pids(h))
        for method, path in (("POST", "/"), ("GET", "/?scale=4"), ("GET", "/reload"),
                             ("GET", "/quit"), ("PUT", "/status.json"),
                             ("DELETE", "/"), ("GET", "/scale%204")):
            code = get(mport, path, method)[0]
            ht.is_(code, 404, "%s %s: 404" % (method, path))
        time.sleep(0.3)
        ht.ok(sorted(pids(h)) == before and h.running(), "the pool is as it was")
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n"
        with socket.create_connection((ht.HOST, mport), timeout=5) as s:
            s.sendall(big)
            s.shutdown(socket.SHUT_WR)
            head = ht.read_to_eof(s).split(b"\r\n", 1)[0]
        ht.is_(head, b"HTTP/1.0 431 Request Header Fields Too Large",
               "a request head past 8 KiB: 431")


def test_history():
    """A fixed pool's history: a point every 5 s, what the charts draw."""
    with ht.Herd("-w", "2", "--control", "{dir}/ctl", name="herd -w 2, its history") as h:
        time.sleep(16)
        rc, out, err = ht.ctl(os.path.join(h.dir, "ctl"), "status", "--json")
        hist = json.loads(out).get("load_history", []) if rc == 0 else []
        ages = [p["ago_ms"] for p in hist]
        gaps = [a - b for a, b in zip(ages, ages[1:])]
        ht.ok(len(hist) >= 2 and all(4500 <= g <= 5500 for g in gaps) and
              all(p["workers"] == 2 and p["ready"] == 2 for p in hist),
              "load_history: %d points 5 s apart, oldest first, the pool's size in each"
              % len(hist), repr(hist))


if __name__ == "__main__":
    ht.run(test_page, test_read_only, test_history)

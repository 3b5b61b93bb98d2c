#!/usr/bin/env python3
"""status-page.py: takes docs/status-page.png, the status page of an
adaptive pool in headless Chromium after two minutes of a scenario: a
program that serves one request at a time (tests/progs/oneatatime.py)
under `-w 1:4 --idle-timeout 3`; 8 clients for 40 s, a quiet spell (the
pool shrinks), a reload, 5 clients, and a worker SIGKILLed 30 s later; the
screenshot 15 s after that. Needs `make` and chromium; loopback only.

  python3 docs/status-page.py [OUT.png]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOST = "127.0.0.1"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "status-page.png")
    d = tempfile.mkdtemp(prefix="herd-page-")
    herd = shutil.copy2(os.path.join(REPO, "build", "herd"), os.path.join(d, "herd"))
    port, mport = free_port(), free_port()
    p = subprocess.Popen([herd, "-l", "%s:%d" % (HOST, port), "-w", "1:4", "--idle-timeout", "3",
                          "--control", d + "/ctl", "--metrics", "%s:%d" % (HOST, mport), "--",
                          sys.executable, os.path.join(REPO, "tests", "progs", "oneatatime.py")],
                         stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)

    def ctl(*a):
        return subprocess.run([herd, "ctl", "--control", d + "/ctl", *a],
                              capture_output=True, text=True).stdout

    def client(until):
        while time.monotonic() < until:
            try:
                urllib.request.urlopen("http://%s:%d/" % (HOST, port), timeout=10).read()
            except OSError:
                pass

    def load(n, secs):
        until = time.monotonic() + secs
        for _ in range(n):
            threading.Thread(target=client, args=(until,), daemon=True).start()

    try:
        time.sleep(1)
        load(8, 40)
        time.sleep(70)
        ctl("reload")
        time.sleep(10)
        load(5, 60)
        time.sleep(30)
        doc = json.loads(ctl("status", "--json"))
        os.kill([w["pid"] for w in doc["procs"] if w.get("state") == "ready"][-1],
                signal.SIGKILL)
        time.sleep(15)
        prof = os.path.join(d, "chromium")
        subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
                        "--disable-gpu", "--no-first-run", "--user-data-dir=" + prof,
                        "--hide-scrollbars", "--window-size=1000,960", "--screenshot=" + out,
                        "http://%s:%d/" % (HOST, mport)], capture_output=True, timeout=90)
        print(ctl("status"))
        print("wrote %s" % out)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

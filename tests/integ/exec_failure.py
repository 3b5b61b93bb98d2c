#!/usr/bin/env python3
"""exec_failure.py: a program that cannot be executed (missing, not
executable) stops herd at start with status 1 and the reason, even with
--ready-delay 0 (a child is not ready before its exec is known to have
happened); after start-up, a reload to such a program is logged and the
serving generation keeps serving."""
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_exec_failure():
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    rc, out, secs = ht.run_herd(["-l", addr, "-w", "2", "--", "/nonexistent/prog"])
    ht.ok(rc == 1 and secs < 5 and re.search(r"cannot execute /nonexistent/prog: "
                                             r"No such file or directory", out),
          "a missing program: status 1 within 5 s, 'cannot execute ...: No such file or "
          "directory'", "status %r after %.1f s\n%s" % (rc, secs, out[-2000:]))
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        path = os.path.join(d, "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o644)
        rc, out, secs = ht.run_herd(["-l", addr, "-w", "1", "--", path])
        ht.ok(rc == 1 and secs < 5 and "cannot execute" in out and "Permission denied" in out,
              "a mode 0644 program: status 1 within 5 s, 'Permission denied'",
              "status %r after %.1f s\n%s" % (rc, secs, out[-2000:]))
        # After start-up the same failure must not take the server down: a
        # reload whose program went away leaves the old generation serving.
        script = os.path.join(d, "app")
        with open(ht.PYAPP) as src, open(script, "w") as dst:
            dst.write("#!%s\n" % sys.executable + src.read().split("\n", 1)[1])
        os.chmod(script, 0o755)
        with ht.Herd("-w", "1", "--", script, control=True,
                     name="herd -w 1 -- SCRIPT, made 0644, SIGHUP") as h:
            os.chmod(script, 0o644)
            mark = h.mark()
            h.signal(signal.SIGHUP)
            ht.ok(h.wait_log(r"Permission denied", since=mark, timeout=10),
                  "a reload to a non-executable program: logged", lambda: h.log()[mark:])
            time.sleep(1)
            a = ht.whoami(h.addr)
            st = h.status()
            ht.ok(h.running() and a[2] == 1 and ht.serving(st, 1, 1),
                  "and generation 1 keeps serving (/whoami, and status: generation 1, its "
                  "worker ready, none pending)", repr((a, st)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_exec_checked_before_ready():
    # With no ready delay, a child is still not ready before its exec is
    # known to have happened: a missing program stops herd at start.
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    rc, out, secs = ht.run_herd(["-l", addr, "-w", "1", "--ready-delay", "0", "--",
                                 "/nonexistent/prog"])
    ht.ok(rc == 1 and "ready:" not in out and "No such file or directory" in out,
          "--ready-delay 0 and a missing program: never ready, status 1",
          "status %r after %.1f s\n%s" % (rc, secs, out[-1500:]))


ht.run(test_exec_failure,
       test_exec_checked_before_ready)

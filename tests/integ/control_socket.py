#!/usr/bin/env python3
"""control_socket.py: who owns the --control path: a live socket of
another herd is refused, a stale one replaced, a file that is not a socket
kept, and a listener whose backlog is full refused at once, not waited
on."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_socket_ownership():
    with ht.controlled("-w", "1", name="herd --control, first") as h:
        path = h.control_path()
        p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                            "--control", path], capture_output=True, timeout=20)
        err = p.stderr.decode(errors="replace")
        ht.ok(p.returncode == 1 and "another herd answers there" in err,
              "a second herd refuses a live control socket", err[-500:])
        ht.ok(ht.ctl(path, "status")[0] == 0, "the first still answers on it")
    # A file left by a dead herd is replaced.
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        stale = os.path.join(d, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        with ht.Herd("--control", stale, name="herd --control over a stale file") as h:
            ht.ok(ht.ctl(stale, "status")[0] == 0, "a stale socket file is replaced")
        # Anything else at the path is not herd's to remove.
        plain = os.path.join(d, "plain")
        with open(plain, "w") as f:
            f.write("keep me\n")
        p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                            "--control", plain], capture_output=True, timeout=20)
        with open(plain) as f:
            kept = f.read()
        ht.ok(p.returncode == 1 and kept == "keep me\n",
              "--control on a path that is not a socket: refused, status 1, the file kept",
              p.stderr.decode(errors="replace")[-500:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_busy_listener_is_not_waited_on():
    """The liveness probe of an existing --control socket does not block:
    a listener whose backlog is full and that never accepts made herd's
    start hang in connect(). herd must refuse at once, say why, and leave
    the socket alone."""
    d = tempfile.mkdtemp(prefix="herd-integ-")
    lsock, queued = socket.socket(socket.AF_UNIX), []
    try:
        path = os.path.join(d, "busy.sock")
        lsock.bind(path)
        lsock.listen(0)
        while True:  # fill its backlog; it never accepts
            c = socket.socket(socket.AF_UNIX)
            c.setblocking(False)
            queued.append(c)
            try:
                c.connect(path)
            except BlockingIOError:
                break
        t0 = time.monotonic()
        try:
            p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                                "--control", path], capture_output=True, timeout=10)
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, err = None, "still in start-up after 10 s"
        took = time.monotonic() - t0
        ht.ok(rc == 1 and "does not accept" in err and took < 5,
              "--control on a listener with a full backlog: refused in %.1f s, status 1, "
              "and why" % took, "status %r\n%s" % (rc, err[-800:]))
        ht.ok(os.path.exists(path), "and its socket file is left alone")
    finally:
        for c in queued:
            c.close()
        lsock.close()
        shutil.rmtree(d, ignore_errors=True)


ht.run(test_socket_ownership,
       test_busy_listener_is_not_waited_on)

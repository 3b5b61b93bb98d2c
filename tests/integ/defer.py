#!/usr/bin/env python3
"""defer.py: --defer-accept (TCP_DEFER_ACCEPT, nginx's "deferred").

A connection that has sent nothing is not queued for accept: the
listener's queue in `herd ctl status` stays empty under a program that
never accepts, until the client sends a byte, or until the kernel's
deferral (about a second) runs out; without the option the same
connection is queued at once. The option is set on slot sockets, and set
or cleared on a socket-activated listener as the command line says. The
built-in worker, which reads a deferred connection at once, answers in
every mode, a request in pieces and keep-alive included."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

SLEEPER = ["--", "/bin/sleep", "1000"]  # a program that never accepts
K = 3
QUIET = 0.4  # seconds a silent connection is watched; the deferral is 1 s


def queue(h):
    p = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl"),
                        "status", "--json"], capture_output=True, timeout=20)
    try:
        ls = json.loads(p.stdout.decode()).get("listeners") or [{}]
    except ValueError:
        return None
    return ls[0].get("queue")


def silent(addr, n):
    return [socket.create_connection(addr, timeout=5) for _ in range(n)]


def stays(pred, secs):
    """pred() holds throughout secs."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if not pred():
            return False
        time.sleep(0.05)
    return True


def check_deferred(h, what):
    socks = silent(h.addr, K)
    quiet = stays(lambda: queue(h) == 0, QUIET)
    ht.ok(quiet, "%s: %d connections that sent nothing are not queued" % (what, K),
          "queue %r" % queue(h))
    for s in socks:
        s.sendall(b"G")
    ht.ok(ht.wait_until(lambda: queue(h) == K, 5),
          "%s: queued once each sent a byte" % what, "queue %r" % queue(h))
    late = silent(h.addr, 1)
    ht.ok(ht.wait_until(lambda: queue(h) == K + 1, 8),
          "%s: a connection that stays silent is queued once the deferral ends" % what,
          "queue %r" % queue(h))
    for s in socks + late:
        s.close()


def check_not_deferred(h, what):
    socks = silent(h.addr, K)
    ht.ok(ht.wait_until(lambda: queue(h) == K, 5),
          "%s: connections that sent nothing are queued at once" % what,
          "queue %r" % queue(h))
    for s in socks:
        s.close()


def test_queue():
    for mode in ("shared", "reuseport"):
        with ht.Herd("-w", "2", "-m", mode, "--control", "{dir}/ctl", "--defer-accept",
                     *SLEEPER, name="herd -w 2 %s --defer-accept, never accepting" % mode) as h:
            check_deferred(h, mode)
        with ht.Herd("-w", "2", "-m", mode, "--control", "{dir}/ctl", *SLEEPER,
                     name="herd -w 2 %s, never accepting" % mode) as h:
            check_not_deferred(h, mode + " without --defer-accept")


# Binds argv[1], with TCP_DEFER_ACCEPT when argv[2] is "1", puts it at
# fd 3 with LISTEN_FDS and LISTEN_PID and execs the rest.
LAUNCHER = r"""
import os, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, int(sys.argv[2]))
s.bind((host, int(port)))
s.listen(64)
os.dup2(s.fileno(), 10)
os.dup2(10, 3, inheritable=True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_passed_socket():
    """A service manager's socket gets what herd's command line says."""
    with ht.Herd("-c", LAUNCHER, "{addr}", "0", ht.HERD, "-l", "{addr}", "-w", "1",
                 "--control", "{dir}/ctl", "--defer-accept", *SLEEPER, prog=sys.executable,
                 name="herd --defer-accept, socket-activated without it") as h:
        check_deferred(h, "passed socket, option set")
    with ht.Herd("-c", LAUNCHER, "{addr}", "1", ht.HERD, "-l", "{addr}", "-w", "1",
                 "--control", "{dir}/ctl", *SLEEPER, prog=sys.executable,
                 name="herd, socket-activated with TCP_DEFER_ACCEPT") as h:
        check_not_deferred(h, "passed socket, option cleared")


def test_upgrade():
    """The new image takes the listeners and slot sockets over with the
    option as its command line says (the same: an upgrade keeps argv)."""
    h, c, d = ht.upgraded_herd("-w", "2", "-m", "reuseport", "--control", "{dir}/ctl",
                               "--defer-accept", *SLEEPER,
                               name="herd -w 2 reuseport --defer-accept, upgraded")
    try:
        with h:
            c.replace()
            rc, out, err = ht.ctl(os.path.join(h.dir, "ctl"), "upgrade")
            ht.ok(rc == 0, "upgrade: ready", out + err)
            check_deferred(h, "after an upgrade")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def exchange(addr, pieces, n):
    """n requests on one keep-alive connection, each sent in pieces."""
    got = []
    with ht.connect(addr) as s:
        f = s.makefile("rb")
        for i in range(n):
            last = i == n - 1
            req = ht.request_bytes("/whoami", close=last)
            step = max(1, len(req) // pieces)
            for k in range(0, len(req), step):
                s.sendall(req[k:k + step])
                time.sleep(0.02)
            r = ht.read_response(f)
            got.append(r.status if r else None)
    return got


def test_builtin_worker():
    for mode in ("shared", "reuseport", "passfd"):
        with ht.Herd("-w", "2", "-m", mode, "--defer-accept",
                     name="herd -w 2 %s --defer-accept" % mode) as h:
            codes = [ht.get(h.addr, "/whoami").status for _ in range(40)]
            ht.is_(codes, [200] * 40, "%s: 40 requests, one connection each" % mode)
            ht.is_(exchange(h.addr, 3, 3), [200] * 3,
                   "%s: keep-alive, each request in 3 pieces" % mode)
            s = silent(h.addr, 1)[0]
            time.sleep(QUIET)
            s.sendall(ht.request_bytes("/"))
            s.settimeout(5)
            ht.ok(ht.read_to_eof(s).startswith(b"HTTP/1.1 200"),
                  "%s: a connection silent for %.1f s is answered" % (mode, QUIET))
            s.close()


def test_unix_listener():
    with ht.Herd("-w", "1", "-l", "unix:{dir}/u.sock", "-l", "{addr}", "--defer-accept",
                 name="herd --defer-accept on a unix and a TCP listener") as h:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(os.path.join(h.dir, "u.sock"))
        s.sendall(ht.request_bytes("/"))
        ht.ok(ht.read_to_eof(s).startswith(b"HTTP/1.1 200"),
              "unix listener: no TCP option, answers")
        s.close()
        ht.is_(ht.get(h.addr, "/").status, 200, "TCP listener beside it answers")


if __name__ == "__main__":
    ht.run(test_queue, test_passed_socket, test_upgrade, test_builtin_worker, test_unix_listener)

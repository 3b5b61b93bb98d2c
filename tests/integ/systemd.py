#!/usr/bin/env python3
"""systemd.py: herd under systemd, or anything speaking its protocols.

Socket activation in: with LISTEN_PID equal to herd's pid, herd takes the
LISTEN_FDS sockets instead of binding, each -l address matched by its
address; a mismatch is an error. sd_notify out: with NOTIFY_SOCKET set,
herd sends READY=1, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
reload, STOPPING=1, and WATCHDOG=1 at half of WATCHDOG_USEC: the exact
messages, captured on a datagram socket of the test's own."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")
ACTIVATE = shutil.which("systemd-socket-activate")

# Binds each address in argv[1] (comma-separated HOST:PORT or unix:PATH),
# puts the sockets at fd 3.., sets LISTEN_FDS and LISTEN_PID (its own pid,
# which exec keeps) and execs the rest of argv: what systemd does.
LAUNCHER = r"""
import os, socket, sys
socks = []
for a in sys.argv[1].split(","):
    if a.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX)
        s.bind(a[5:])
    else:
        host, port = a.rsplit(":", 1)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    s.listen(128)
    socks.append(s)
high = [os.dup(s.fileno()) + 0 for s in socks]  # above 3.., then in place
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True)
os.environ["LISTEN_FDS"] = str(len(socks))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def activated(binds, *herd_args, **kw):
    return ht.Herd("-c", LAUNCHER, binds, ht.HERD, *herd_args,
                   prog=sys.executable, **kw)


def test_socket_activation():
    with activated("{addr}", "-l", "{addr}", "-w", "2",
                   name="herd -w 2, socket-activated") as h:
        ht.ok(ht.get(h.addr, "/").status == 200, "socket activation: serves")
        ht.ok(re.search(r"listening on 127\.0\.0\.1:%d \(inherited, fd 3\)" % h.port, h.log()),
              "socket activation: the LISTEN_FDS socket is taken, not a new one bound")
        problems = ht.fd_problems(h, 2)
        ht.ok(not problems, "socket activation: the master and workers hold the fds they "
              "should, the inherited socket now close-on-exec", "\n".join(problems))
        with open("/proc/%d/fdinfo/3" % h.pid) as f:
            flags = int(re.search(r"flags:\s+(\d+)", f.read()).group(1), 8)
        ht.ok(flags & 0o2000000, "socket activation: fd 3 is close-on-exec in the master")
    # A program's children get their own LISTEN_*, not herd's.
    with activated("{addr}", "-l", "{addr}", "-w", "1", "--", sys.executable, PYAPP,
                   name="herd -- pyapp, socket-activated") as h:
        body = ht.get(h.addr, "/env").body.decode()
        env = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
        ht.ok(env.get("LISTEN_FDS") == "1" and env.get("LISTEN_PID") == env.get("PID"),
              "socket activation: a program gets LISTEN_PID of its own", body)


def test_socket_activation_mismatch():
    other = ht.free_port()
    p = subprocess.run([sys.executable, "-c", LAUNCHER, "%s:%d" % (ht.HOST, other), ht.HERD,
                        "-l", "%s:%d" % (ht.HOST, ht.free_port()), "-w", "1"],
                       capture_output=True, timeout=20)
    err = p.stderr.decode(errors="replace")
    ht.ok(p.returncode == 1 and "not among the 1 sockets passed in LISTEN_FDS" in err,
          "socket activation: an -l address not passed is an error (status 1)",
          "status %r\n%s" % (p.returncode, err))
    p = subprocess.run([sys.executable, "-c", LAUNCHER, "%s:%d" % (ht.HOST, other), ht.HERD,
                        "-l", "%s:%d" % (ht.HOST, other), "-m", "reuseport", "-w", "1"],
                       capture_output=True, timeout=20)
    err = p.stderr.decode(errors="replace")
    ht.ok(p.returncode == 1 and "SO_REUSEPORT" in err,
          "socket activation: reuseport mode refuses a socket without SO_REUSEPORT",
          "status %r\n%s" % (p.returncode, err))


def test_inherited_unix_socket_is_left_in_place():
    d = tempfile.mkdtemp(prefix="herd-integ-")
    path = os.path.join(d, "s.sock")
    try:
        with activated("unix:" + path, "-l", "unix:" + path, "-w", "1", tcp=False,
                       name="herd -l unix:PATH, socket-activated") as h:
            ht.ok(h.running() and ht.get(path, "/").status == 200,
                  "socket activation: serves on an inherited unix socket")
        ht.ok(os.path.exists(path),
              "socket activation: herd leaves the inherited unix socket's file "
              "(its owner's) in place on exit")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_systemd_socket_activate():
    if ACTIVATE is None:
        ht.skip("systemd-socket-activate", "not installed (Debian's systemd package)")
        return
    # It execs herd on the first connection, which then waits in the
    # backlog for herd's workers.
    with ht.Herd("-l", "{addr}", ht.HERD, "-l", "{addr}", "-w", "2", prog=ACTIVATE,
                 wait_ready=False, name="systemd-socket-activate herd") as h:
        ht.wait_until(lambda: ht.port_is_free(h.port) is False, 5)
        r = ht.until_answer(lambda: ht.get(h.addr, "/whoami", timeout=10),
                            lambda r: r.status == 200, timeout=15)
        ht.ok(r is not None, "systemd-socket-activate: herd serves on the socket it was given",
              lambda: h.log()[-1500:])
        ht.ok(h.wait_log(r"inherited, fd 3", timeout=5),
              "systemd-socket-activate: taken from LISTEN_FDS")


def program_env(h):
    body = ht.get(h.addr, "/env", timeout=10).body.decode()
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line), body


def test_socket_activation_names_kept():
    if ACTIVATE is None:
        ht.skip("systemd-socket-activate", "not installed (Debian's systemd package)")
        return
    # Programs that pick their sockets by name (sd_listen_fds_with_names)
    # must see the unit's FileDescriptorName=, not one herd made up.
    with ht.Herd("-l", "{addr}", "--fdname=web", ht.HERD, "-l", "{addr}", "-w", "1", "--",
                 sys.executable, PYAPP, prog=ACTIVATE, wait_ready=False,
                 name="systemd-socket-activate --fdname=web herd -- pyapp") as h:
        ht.wait_until(lambda: ht.port_is_free(h.port) is False, 5)
        r = ht.until_answer(lambda: ht.get(h.addr, "/env", timeout=10),
                            lambda r: r.status == 200, timeout=15)
        ht.ok(r is not None, "socket activation names: the program serves",
              lambda: h.log()[-1500:])
        env, body = program_env(h)
        ht.ok(env.get("LISTEN_FDNAMES") == "web",
              "socket activation names: LISTEN_FDNAMES=web, as herd was given", body)


def test_listen_names():
    port2 = ht.free_port()
    for mode in ("shared", "reuseport"):
        with ht.Herd("-l", "web={addr}", "-l", "%s:%d" % (ht.HOST, port2), "-m", mode,
                     "-w", "2", "--", sys.executable, PYAPP,
                     name="herd -l web=ADDR -l ADDR2 -m %s -- pyapp" % mode) as h:
            env, body = program_env(h)
            ht.ok(env.get("LISTEN_FDS") == "2" and
                  env.get("LISTEN_FDNAMES") == "web:%s_%d" % (ht.HOST, port2),
                  "-l NAME=ADDR (%s): LISTEN_FDNAMES has the name, then the derived one"
                  % mode, body)
    p = subprocess.run([ht.HERD, "-l", "=%s:%d" % (ht.HOST, port2), "-w", "1"],
                       capture_output=True, timeout=20)
    err = p.stderr.decode(errors="replace")
    ht.ok(p.returncode == 2 and "name" in err,
          "-l =ADDR: an empty name is a usage error (status 2)",
          "status %r\n%s" % (p.returncode, err))


def test_sd_notify():
    n = ht.Notifications()
    saved = dict(os.environ)
    os.environ["NOTIFY_SOCKET"] = n.path
    os.environ["WATCHDOG_USEC"] = "400000"
    try:
        with ht.Herd("-w", "2", "--", sys.executable, PYAPP, name="herd under sd_notify") as h:
            ht.ok(n.wait(lambda t: any(m.startswith("READY=1") for m in t)),
                  "sd_notify: READY=1 once the workers are ready", repr(n.texts()))
            ready_at = len(n.texts())
            body = ht.get(h.addr, "/env").body.decode()
            ht.ok("NOTIFY_SOCKET" not in body and "WATCHDOG_USEC" not in body,
                  "sd_notify: herd's own NOTIFY_SOCKET and WATCHDOG_USEC are not passed on", body)
            before = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
            h.signal(signal.SIGHUP)
            ht.ok(n.wait(lambda t: any(m.startswith("READY=1") for m in t[ready_at:])),
                  "sd_notify: READY=1 again once the reload is done", repr(n.texts()))
            after = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
            rel = [m for m in n.texts()[ready_at:] if m.startswith("RELOADING=1")]
            m = re.match(r"RELOADING=1\nMONOTONIC_USEC=(\d+)$", rel[0]) if rel else None
            ht.ok(m and before <= int(m.group(1)) <= after,
                  "sd_notify: RELOADING=1 with MONOTONIC_USEC, the time of the reload",
                  repr(rel))
            t = n.texts()[ready_at:]
            ht.ok(rel and t.index(rel[0]) < max(i for i, x in enumerate(t)
                                                 if x.startswith("READY=1")),
                  "sd_notify: RELOADING=1 comes before that READY=1", repr(t))
            at = len(n.texts())
            h.signal(signal.SIGTTIN)
            ht.ok(n.wait(lambda t: any(re.match(r"STATUS=3 workers", m) for m in t[at:]), 5),
                  "sd_notify: STATUS= follows a change of the worker count (TTIN)",
                  repr(n.texts()[at:]))
            time.sleep(1.0)
            dogs = [ts for ts, m in n.msgs if m == "WATCHDOG=1"]
            ht.ok(len(dogs) >= 3, "sd_notify: WATCHDOG=1 at half of WATCHDOG_USEC "
                  "(%d in %.1f s)" % (len(dogs), dogs[-1] - dogs[0] if dogs else 0))
            h.signal(signal.SIGTERM)
            h.wait_exit(10)
            ht.ok(n.wait(lambda t: "STOPPING=1" in t, 5),
                  "sd_notify: STOPPING=1 on shutdown", repr(n.texts()[-5:]))
        ht.ok(all(re.match(r"(READY=1(\nSTATUS=.*)?|STATUS=.*|RELOADING=1\nMONOTONIC_USEC=\d+|"
                           r"STOPPING=1|WATCHDOG=1)$", m, re.S) for m in n.texts()),
              "sd_notify: nothing but those messages", repr(n.texts()))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        n.close()


ht.run(test_socket_activation, test_socket_activation_mismatch,
       test_inherited_unix_socket_is_left_in_place, test_systemd_socket_activate,
       test_socket_activation_names_kept, test_listen_names, test_sd_notify)
ht.done()

#!/usr/bin/env python3
"""cloexec.py: every fd above 2 that herd's master and workers hold is
close-on-exec (flags in /proc/PID/fdinfo), in every mode, while they hold
what they can: accepted connections (and in passfd mode passed ones), a
control client, a metrics client, the log file, the notify socket. A fd
without it would leak into every program a worker or the master execs."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

O_CLOEXEC = 0o2000000


def not_cloexec(pid):
    """The fds above 2 of pid without close-on-exec: [(fd, target)]."""
    bad = []
    for name in os.listdir("/proc/%d/fd" % pid):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
                flags = int(f.read().split("flags:")[1].split()[0], 8)
            target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        except (OSError, IndexError, ValueError):
            continue  # closed meanwhile
        if not flags & O_CLOEXEC:
            bad.append((fd, target))
    return bad


def every_fd_cloexec(mode):
    label = " ".join(mode) or "shared"
    port = ht.free_port()
    with ht.Herd("-w", "2", *mode, "--log", "{dir}/herd.log", "--control", "{dir}/ctl",
                 "--metrics", "%s:%d" % (ht.HOST, port),
                 name="herd -w 2 %s, --log --control --metrics" % label) as h:
        held = []
        for _ in range(4):  # connections a worker holds: a request not finished
            s = socket.create_connection(h.addr, timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\n")
            held.append(s)
        ctl = socket.socket(socket.AF_UNIX)
        ctl.connect(os.path.join(h.dir, "ctl"))  # a control client, silent
        held.append(ctl)
        held.append(socket.create_connection((ht.HOST, port), timeout=5))  # metrics
        time.sleep(0.3)
        procs = [h.pid] + h.workers()
        counted = sum(ht.nfds(p) or 0 for p in procs)
        bad = {p: not_cloexec(p) for p in procs}
        bad = {p: b for p, b in bad.items() if b}
        ht.ok(not bad, "%s: all %d fds of the master and its workers are close-on-exec"
              % (label, counted), repr(bad))
        for s in held:
            s.close()


def test_every_fd_is_cloexec():
    for mode in [(), ("-m", "reuseport"), ("-m", "passfd")]:
        every_fd_cloexec(mode)


ht.run(test_every_fd_is_cloexec)

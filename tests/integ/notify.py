#!/usr/bin/env python3
"""notify.py: programs under --notify speak sd_notify to herd: a program is
ready only once it sent READY=1 (at start and in a reload's new
generation), STATUS= is logged as the worker's status, NOTIFY_SOCKET is an
abstract address, and a message from a process that is no worker is
dropped. tests/progs/pyapp.py is the program."""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_notify_ready():
    with ht.supervised("-w", "1", "--notify", app=("--notify-ready-after", "1.5", "--status", "hello"),
                       control=True) as h:
        log = h.log()
        # The line the child writes before its send: the one after it races
        # the master's "ready:" (both append to the same file).
        sent = re.search(r"pyapp pid=\d+ slot=0: sending READY=1", log)
        ready = re.search(r"ready: 1 workers", log)
        ht.ok(sent and ready and sent.start() < ready.start(),
              "--notify: herd is ready only after the child sent READY=1 (log order)", log[-1500:])
        gap = ht.seconds_between(h, r"worker 0 started", r"ready: 1 workers")
        ht.ok(gap is not None and gap >= 1.3,
              "--notify: ready %s s after the start (READY=1 sent after 1.5 s)" % gap)
        ht.ok(h.wait_log(r"worker 0 status: hello$", timeout=5),
              "--notify: STATUS=hello is logged as 'worker 0 status: hello'")
        _, env = ht.env_of(h.addr)
        ht.ok(env.get("NOTIFY_SOCKET", "").startswith("@") and "WATCHDOG_USEC" not in env,
              "--notify: NOTIFY_SOCKET is an abstract address; no WATCHDOG_USEC without "
              "--watchdog", repr(env))
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ht.ok(h.wait_status(lambda st: ht.serving(st, 2, 1), 15), "--notify: a reload "
              "completes (status: generation 2 serves)", lambda: repr(h.last_status))
        gap = ht.seconds_between(h, r"worker 0 started \(pid \d+, generation 2\)", r"generation 2 ready")
        ht.ok(gap is not None and gap >= 1.3,
              "--notify: the new generation is ready only on its READY=1 (%s s)" % gap)
    with ht.supervised("-w", "1", "--notify", app=("--notify-ready-after", "60"),
                       wait_ready=False, control=True) as h:
        ht.ok(h.wait_log(r"worker 0 started", timeout=10), "--notify, no READY=1: the child starts")
        time.sleep(2.5)
        st = h.status()
        ht.ok(h.running() and [p["state"] for p in ht.procs(st)] == ["starting"],
              "--notify: a child that has not sent READY=1 is not ready after 2.5 s (status: "
              "starting)", lambda: "status %r\n%s" % (st, h.log()[-1500:]))


def notify_name(master):
    """The abstract name of a master's notify socket, from /proc/net/unix."""
    with open("/proc/net/unix") as f:
        for line in f:
            path = line.split()[-1]
            if path.startswith("@herd-%d-" % master):
                return path
    return None


def test_notify_from_a_stranger():
    # The notify socket's name is visible to everyone (/proc/net/unix): what
    # makes a message count is the sender's pid, from the kernel.
    with ht.supervised("-w", "1", "--notify", "-v", app=("--notify-ready-after", "60"),
                       wait_ready=False, control=True) as h:
        ht.ok(h.wait_log(r"worker 0 started", timeout=10), "--notify: the child starts")
        worker = h.workers()
        name = ht.wait_until(lambda: notify_name(h.pid), 5)
        ht.ok(name, "the notify socket is found in /proc/net/unix (%s)" % name)
        if not name:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for text in (b"READY=1", b"STATUS=forged", b"WATCHDOG=trigger"):
            s.sendto(text, "\0" + name[1:])
        s.close()
        ht.ok(h.wait_log(r"notify: dropped a message from pid %d, not a worker" % os.getpid(),
                         timeout=5),
              "--notify: a message from a process that is no worker is dropped",
              lambda: h.log()[-1500:])
        time.sleep(0.5)
        st = h.status()
        log = h.log()
        ht.ok(h.running() and [(p["pid"], p["state"], p["restarts"]) for p in ht.procs(st)] ==
              [(pid, "starting", 0) for pid in worker] and len(worker) == 1 and
              not re.search(r"status: forged", log),
              "--notify: so the stranger's READY=1, STATUS= and WATCHDOG=trigger change nothing "
              "(status: the one worker still starting, not restarted; no status logged)",
              lambda: "status %r\n%s" % (st, log[-1500:]))


ht.run(test_notify_ready,
       test_notify_from_a_stranger)

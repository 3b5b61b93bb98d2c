#!/usr/bin/env python3
"""emfile.py: a worker out of fds (EMFILE) pauses accepting instead of
spinning, logs it once, and serves again as soon as fds come free.

herd runs under `prlimit --nofile=40` with one worker; the test holds many
more idle connections than the worker has fds for."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PRLIMIT = "/usr/bin/prlimit"
LIMIT = 40
HELD = 80  # connections the client holds: twice the worker's fd limit


def hold_connections(addr, n):
    held = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=5)
        held.append(s)
    return held


def test_emfile_pauses_and_recovers():
    if not os.access(PRLIMIT, os.X_OK):
        ht.skip("EMFILE", "no prlimit")
        return
    with ht.Herd("--nofile=%d:%d" % (LIMIT, LIMIT), ht.HERD, "-l", "{addr}",
                 "-w", "1", prog=PRLIMIT, name="herd -w 1 at ulimit -n %d" % LIMIT) as h:
        worker = h.workers()[0]
        held = hold_connections(h.addr, HELD)
        paused = h.wait_log(r"accept: Too many open files; pausing", timeout=5)
        ht.ok(paused, "the worker runs out of fds and pauses accepting",
              lambda: h.log()[-2000:])

        # A spinning worker would burn a whole core here (about 100 ticks
        # a second); pausing costs a few accept calls a second. The bound
        # is loose on purpose: it tells a spin from a pause, nothing more.
        before = ht.cpu_ticks(worker)
        time.sleep(2)
        used = ht.cpu_ticks(worker) - before
        ht.ok(used < 40, "no spin while starved: %d ticks of CPU in 2 s" % used)
        ht.is_(h.count_log(r"pausing accepts"), 1,
               "logged once per starvation, not per attempt")

        for s in held:
            s.close()
        r = ht.until_answer(lambda: ht.get(h.addr, "/"), lambda r: r.status == 200,
                            timeout=10)
        ht.ok(r is not None and r.body == b"hello\n",
              "serves again once the connections are gone")
        ht.ok(h.wait_log(r"accept: fds available again", timeout=5),
              "logs the end of the starvation")
        ht.ok(h.running() and worker in h.workers(),
              "the same worker, never restarted, and the master is up")


def test_passfd_master_at_emfile():
    """In passfd mode the master accepts: at its fd limit it pauses too, and
    the connections wait in the backlog until it has fds again."""
    if not os.access(PRLIMIT, os.X_OK):
        ht.skip("passfd master EMFILE", "no prlimit")
        return
    import subprocess
    with ht.Herd("-w", "1", "-m", "passfd", name="herd -w 1 -m passfd, master at EMFILE") as h:
        used = ht.nfds(h.pid)
        soft = subprocess.run([PRLIMIT, "--pid", str(h.pid), "--nofile", "-o", "SOFT",
                               "--noheadings"], check=True, capture_output=True,
                              text=True).stdout.strip()
        # No fd to spare: the master's next accept fails with EMFILE.
        subprocess.run([PRLIMIT, "--pid", str(h.pid), "--nofile=%d:" % used], check=True)
        waiting = ht.send_requests(h.addr, 10)
        ht.ok(h.wait_log(r"master: accept: Too many open files; pausing", timeout=5),
              "the passfd master runs out of fds and pauses accepting", lambda: h.log()[-1500:])
        before = ht.cpu_ticks(h.pid)
        time.sleep(2)
        used_ticks = ht.cpu_ticks(h.pid) - before
        ht.ok(used_ticks < 40, "no spin while starved: %d ticks of CPU in 2 s" % used_ticks)
        subprocess.run([PRLIMIT, "--pid", str(h.pid), "--nofile=%s:" % soft], check=True)
        ht.is_(ht.answered(waiting), 10, "the 10 connections that waited are all answered once it has fds")


ht.run(test_emfile_pauses_and_recovers, test_passfd_master_at_emfile)
ht.done()

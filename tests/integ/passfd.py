#!/usr/bin/env python3
"""passfd.py: a program under `herd -m passfd -- PROGRAM` speaking the
documented channel (docs/protocol.md): the master accepts and passes each
connection over HERD_CHANNEL_FD=3, the program's READY makes it ready
before --ready-delay, its APP status message is logged, and flow control
goes on past the in-flight cap. examples/passfd_worker.py and
tests/progs/pyapp.py --proto passfd are the programs; the C helpers are in
child.py."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

EXAMPLE = os.path.join(ht.REPO, "examples", "passfd_worker.py")


def test_passfd():
    with ht.supervised("-m", "passfd", "-w", "2", prog=EXAMPLE,
                       name="herd -m passfd -w 2 -- examples/passfd_worker.py") as h:
        r = ht.get(h.addr, "/")
        ht.ok(r.status == 200 and r.body == b"hello\n", "passfd example: serves hello", repr(r))
        load = ht.Load(h.addr, close=4, keepalive=0, path="/").start()
        time.sleep(1.5)
        load.stop()
        ht.ok(load.failed == 0 and load.ok > 200, "passfd example: over 200 connections (more "
              "than 2 x 64 unreported) served, none failed", load.summary())
    with ht.supervised("-m", "passfd", "-w", "2",
                       app=("--proto", "passfd", "--status", "passfd-status")) as h:
        slots = set()
        ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or slots == {0, 1}, timeout=15)
        ht.is_(sorted(slots), [0, 1], "passfd pyapp: both slots answer /whoami")
        load = ht.Load(h.addr, close=4, keepalive=0).start()
        time.sleep(1.5)
        load.stop()
        ht.ok(load.failed == 0 and load.ok > 200, "passfd pyapp: over 200 connections served, "
              "none failed", load.summary())
        per = ht.from_each(h.addr, ht.fds_of, 2)
        utab = ht._unix_table()
        ht.ok(len(per) == 2 and all(sorted(f) == [0, 1, 2, 3] and
                                    utab.get(ht.socket_inode(f.get(3)), (None,))[0] ==
                                    socket.SOCK_SEQPACKET for f in per.values()),
              "passfd: each child has exactly fds 0-3, fd 3 a unix seqpacket socket", repr(per))
        _, env = ht.env_of(h.addr)
        ht.ok(env.get("HERD_CHANNEL_FD") == "3" and "LISTEN_FDS" not in env,
              "passfd: HERD_CHANNEL_FD=3 and no LISTEN_FDS", repr(env))
        ht.ok(h.wait_log(r"worker [01] status: passfd-status$", timeout=5),
              "passfd: an APP message to the master is logged as the worker's status")
        gap = ht.seconds_between(h, r"worker 1 started", r"ready: 2 workers")
        ht.ok(gap is not None and gap < 0.9, "passfd: READY on the channel makes a worker ready "
              "before the 1 s --ready-delay (%s s)" % gap)


ht.run(test_passfd)

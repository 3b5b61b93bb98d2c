#!/usr/bin/env python3
"""die_with_master.py: workers never outlive the master (README): a
SIGKILLed master's in-process workers and supervised programs die within
seconds (PR_SET_PDEATHSIG; an external program has no channel to notice it
by)."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_workers_die_with_the_master():
    with ht.Herd("-w", "2") as h:
        workers = h.workers()
        h.signal(signal.SIGKILL)
        ht.is_(h.wait_exit(10), -signal.SIGKILL, "master SIGKILLed")
        gone = ht.wait_until(lambda: not [p for p in workers if ht.alive(p)], 5)
        ht.ok(gone, "workers die within 5 s of their master's SIGKILL",
              "still alive: %r" % [p for p in workers if ht.alive(p)])


def test_programs_die_with_herd():
    # README: workers never outlive the master. An external program has no
    # channel to notice it by (passfd aside), so this is PR_SET_PDEATHSIG.
    with ht.supervised("-w", "2") as h:
        kids = h.workers()
        h.signal(signal.SIGKILL)
        h.wait_exit(5)
        ht.ok(ht.wait_until(lambda: not any(ht.alive(p) for p in kids), 5),
              "SIGKILL to herd: its programs die with it",
              lambda: repr([(p, ht.proc_stat(p)) for p in kids]))


ht.run(test_workers_die_with_the_master,
       test_programs_die_with_herd)

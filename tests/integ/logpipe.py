#!/usr/bin/env python3
"""logpipe.py: herd outlives wherever its stderr log goes: a pipe whose
reader went away (`herd 2>&1 | logger` with logger restarted), or a stderr
closed at start (`herd 2>&-`). Lost log lines are acceptable; a master
killed by SIGPIPE, taking every worker with it, is not."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_master_survives_its_log_reader_going_away():
    with ht.Herd("-w", "2", stderr_pipe=True, name="herd -w 2 2>pipe") as h:
        h.close_log_reader()
        h.signal(signal.SIGHUP)  # the master logs the reload
        # Assert on what was seen: asking again may reach a generation 1
        # worker that has not read its QUIT yet, on a loaded machine.
        served = ht.wait_until(lambda: not h.running() or _gen(h) == 2, 10, step=0.1)
        ht.ok(h.running() and served is True,
              "log reader gone: the master survives logging a reload, generation 2 serves",
              "master status %r (%s)" % (h.proc.poll(), _signame(h.proc.poll())))
        if h.running():
            victim = h.workers()[0]
            os.kill(victim, signal.SIGKILL)
            back = ht.wait_until(lambda: len(h.workers()) == 2 and victim not in h.workers(), 10)
            ht.ok(back and h.running(), "log reader gone: a killed worker is still respawned",
                  "children %r, master status %r" % (h.workers(), h.proc.poll()))
            h.signal(signal.SIGTERM)
            ht.is_(h.wait_exit(10), 0, "log reader gone: SIGTERM still exits 0")


def test_herd_starts_with_stderr_closed():
    with ht.Herd("-c", 'exec "$0" "$@" 2>&-', ht.HERD, "-l", "{addr}", "-w", "2",
                 prog="/bin/sh", wait_ready=False, name="herd -w 2 2>&-") as h:
        ht.wait_until(lambda: not h.running() or _whoami_or_none(h), 10, step=0.1)
        ht.ok(h.running() and _whoami_or_none(h), "stderr closed at start: herd still starts and serves",
              "master status %r (%s)" % (h.proc.poll(), _signame(h.proc.poll())))


def _whoami_or_none(h):
    try:
        return ht.whoami(h.addr, timeout=2)
    except (OSError, ValueError):
        return None


def _gen(h):
    a = _whoami_or_none(h)
    return a[2] if a else None


def _signame(rc):
    try:
        return signal.Signals(-rc).name if rc is not None and rc < 0 else "-"
    except ValueError:
        return "?"


ht.run(test_master_survives_its_log_reader_going_away,
       test_herd_starts_with_stderr_closed)

#!/usr/bin/env python3
"""--reload-batch K, a rolling reload: K new workers at a time, each
slot's old worker drained once its successor is ready, so a reload of N
workers never runs more than N + K processes; nothing fails under load, in
every mode and for programs; a generation abandoned half way leaves the
old one refilling the slots it had left."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")


class Peak:
    """The most children the master had at once, looked at every 2 ms."""

    def __init__(self, h):
        self.h, self.most = h, 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            self.most = max(self.most, len(self.h.workers()))
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(5)


def reload_under_load(h, n, gen):
    """herd ctl reload under load, until generation gen alone serves n
    workers: (ctl status, ctl output, peak children, load)."""
    load = ht.Load(h.addr, close=2, keepalive=2).start()
    try:
        time.sleep(0.3)
        with Peak(h) as peak:
            rc, out, err = ht.ctl(h.control_path(), "reload", timeout=60)
            h.wait_status(lambda st: ht.serving(st, gen, n) and len(ht.procs(st)) == n,
                          timeout=20)
        time.sleep(0.3)
    finally:
        load.stop()
    return rc, out + err, peak.most, load


def test_rolling_reload_in_every_mode():
    for mode in ("shared", "reuseport", "passfd"):
        with ht.Herd("-w", "4", "-m", mode, "--reload-batch", "1", control=True,
                     name="herd -w 4 -m %s --reload-batch 1" % mode) as h:
            rc, said, peak, load = reload_under_load(h, 4, 2)
            ht.ok(rc == 0 and "generation 2: ready" in said,
                  "%s: the rolling reload completes" % mode, said)
            ht.ok(peak <= 5, "%s: 5 processes at most during it (seen: %d)" % (mode, peak),
                  lambda: h.log()[-3000:])
            ht.ok(load.failed == 0 and load.ok > 0,
                  "%s: %d requests under load, 0 failed" % (mode, load.ok),
                  lambda: repr(load.errors[:5]))
            drained = re.findall(r"worker (\d) \(pid \d+, generation 1\) exited",
                                 h.log())
            ht.ok(sorted(drained) == ["0", "1", "2", "3"],
                  "%s: every old worker drained and exited" % mode, lambda: h.log()[-3000:])


def test_all_at_once_by_default():
    # The same measure without --reload-batch: the whole new generation
    # runs beside the old one. It shows the peak above is the batch's.
    with ht.Herd("-w", "4", control=True, name="herd -w 4, reload all at once") as h:
        rc, said, peak, load = reload_under_load(h, 4, 2)
        ht.ok(rc == 0 and peak > 5,
              "without --reload-batch: up to %d processes (8 expected)" % peak, said)


def test_rolling_program_pool():
    with ht.Herd("-w", "3", "--notify", "--reload-batch", "1", "--",
                 sys.executable, PYAPP, control=True,
                 name="herd -w 3 --reload-batch 1 -- pyapp") as h:
        rc, said, peak, load = reload_under_load(h, 3, 2)
        ht.ok(rc == 0 and peak <= 4 and load.failed == 0 and load.ok > 0,
              "a program pool: rolled with at most 4 processes (seen %d), %d requests, "
              "0 failed" % (peak, load.ok), lambda: said + repr(load.errors[:5]))


def test_abandoned_half_way():
    # New workers die at start once {dir}/bad exists: the first new worker
    # fails, the reload is abandoned, and generation 1 fills every slot.
    script = 'test -e "$1/bad" && exit 1; exec sleep 600'
    with ht.Herd("-w", "3", "--ready-delay", "0.2", "--reload-batch", "1", "--",
                 "/bin/sh", "-c", script, "sh", "{dir}", control=True,
                 name="herd -w 3 --reload-batch 1, new workers fail") as h:
        open(os.path.join(h.dir, "bad"), "w").close()
        rc, out, err = ht.ctl(h.control_path(), "reload")
        ht.ok(rc == 1 and "abandoned" in err, "the rolling reload is abandoned",
              out + err)
        st = h.wait_status(lambda st: ht.serving(st, 1, 3) and len(ht.procs(st)) == 3)
        ht.ok(st, "generation 1 serves in all 3 slots", lambda: repr(h.last_status))


def test_not_with_reload_signal():
    r = ht.run_herd(["-l", "127.0.0.1:1", "--reload-batch", "1", "--reload-signal", "HUP",
                     "--check", "--", "/bin/sleep", "1"])
    ht.ok(r[0] != 0 and "--reload-batch" in r[1],
          "--reload-batch with --reload-signal (no generations to roll): refused",
          repr(r))


ht.run(test_rolling_reload_in_every_mode,
       test_all_at_once_by_default,
       test_rolling_program_pool,
       test_abandoned_half_way,
       test_not_with_reload_signal)

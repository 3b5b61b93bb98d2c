#!/usr/bin/env python3
"""respawn.py: a worker killed with SIGKILL is replaced in its slot and the
master stays up; a ready worker is replaced at once every time (a slot
whose workers die before they are ready is backed off: backoff.py; workers
die with their master: die_with_master.py). Also measures (reports, does
not assert) how long a slot goes without a worker after a SIGKILL."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def kill_and_wait_replacement(h, pid, slot):
    """SIGKILLs pid; returns the pid that replaced it in slot, or None."""
    mark = h.mark()
    os.kill(pid, signal.SIGKILL)
    m = h.wait_log(r"worker %d started \(pid (\d+)" % slot, since=mark)
    return int(m.group(1)) if m else None


def test_kill_9_is_replaced_in_the_same_slot():
    with ht.Herd("-w", "2") as h:
        victim = h.workers()[0]
        slot = h.worker_info()[victim][0]
        new = kill_and_wait_replacement(h, victim, slot)
        ht.ok(new is not None and new != victim and new in h.workers(),
              "SIGKILLed worker: a new pid starts in slot %d and is a child of the master" % slot,
              "victim %d, new %r, children %r" % (victim, new, h.workers()))
        ht.ok(re.search(r"worker %d \(pid %d, generation 1\) killed by signal 9" % (slot, victim), h.log()),
              "SIGKILLed worker: the log says 'killed by signal 9'")
        ht.ok(h.running() and len(h.workers()) == 2 and not ht.alive(victim),
              "SIGKILLed worker: the master stays up with 2 workers",
              "running %s, children %r" % (h.running(), h.workers()))
        a = ht.whoami_until(h.addr, lambda a: a[0] == new, timeout=10)
        ht.ok(a is not None and a[1] == slot,
              "SIGKILLed worker: the replacement answers /whoami as slot %d" % slot, repr(a))


def restart_delay(h, mark, pid):
    m = re.search(r"worker 0 \(pid %d, generation 1\) [^;\n]*; restarting in (\d+) ms"
                  % pid, h.log()[mark:])
    return int(m.group(1)) if m else None


def test_ready_worker_is_replaced_at_once_every_time():
    # A worker that was ready had shown that it can start: killing it again
    # and again (the OOM killer, an operator, a crash on one request) never
    # leaves its slot waiting, as in nginx.
    with ht.Herd("-w", "2") as h:
        pid = [p for p, (s, g) in h.worker_info().items() if s == 0][0]
        delays = []
        for _ in range(4):
            time.sleep(0.15)  # ready, and past the 100 ms between two starts
            mark = h.mark()
            new = kill_and_wait_replacement(h, pid, 0)
            delays.append(restart_delay(h, mark, pid))
            if new is None:
                break
            pid = new
        ht.is_(delays, [0, 0, 0, 0], "a ready worker SIGKILLed 4 times in a row: "
               "replaced at once each time (no back-off)")
        ht.ok(h.running() and len(h.workers()) == 2, "and the master stays up with 2 workers")


def test_respawn_latency():
    """Fresh herds with one worker, so no back-off and the first answer
    after the kill can only come from the replacement."""
    times, missing = [], 0
    for _ in range(10):
        with ht.Herd("-w", "1", report_clean=False) as h:
            old = h.workers()[0]
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            deadline = t0 + 10
            while time.monotonic() < deadline:
                try:
                    if ht.whoami(h.addr, timeout=5)[0] != old:
                        times.append(time.monotonic() - t0)
                        break
                except (OSError, ValueError):
                    time.sleep(0.005)
            else:
                missing += 1
    ht.ok(missing == 0, "SIGKILL to a replacement answering: 10 of 10 within 10 s",
          "%d never answered" % missing)
    if times:
        ht.diag("kill -9 to the replacement answering: median %.1f ms, min %.1f, max %.1f (n=%d)"
                % (ht.median(times) * 1000, min(times) * 1000, max(times) * 1000, len(times)))


ht.run(test_kill_9_is_replaced_in_the_same_slot,
       test_ready_worker_is_replaced_at_once_every_time,
       test_respawn_latency)

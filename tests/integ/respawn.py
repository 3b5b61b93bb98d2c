#!/usr/bin/env python3
"""respawn.py: a worker killed with SIGKILL is replaced in its slot and the
master stays up; a ready worker is replaced at once every time, a slot whose
workers die before they are ready is backed off; workers die with their
master. Also measures (reports, does not assert) how long a
slot goes without a worker after a SIGKILL."""
import os
import re
import shutil
import signal
import sys
import tempfile
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


# A program that dies before it is ready (--ready-delay) unless FLAG exists.
DIES_YOUNG = "if [ -e \"$0\" ]; then exec sleep 1000; fi; sleep 0.05; exit 3"


def test_backoff_grows_then_resets_after_a_healthy_run():
    healthy = ht.source_define("HEALTHY_MS") / 1000
    d = tempfile.mkdtemp(prefix="herd-respawn-")
    flag = os.path.join(d, "flag")
    try:
        backoff_and_reset(healthy, flag)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def backoff_and_reset(healthy, flag):
    with ht.Herd("-w", "1", "--ready-delay", "60", "--", "/bin/sh", "-c", DIES_YOUNG, flag,
                 wait_ready=False, report_clean=False,
                 name="herd -w 1 -- sh (dies young)") as h:
        ms = [100, 200, 400]
        found = [h.wait_log(r"exited with status 3; restarting in %d ms" % m, timeout=10)
                 for m in ms]
        ht.ok(all(found), "a worker dying before it is ready: restarts back off "
              "0, 100, 200, 400 ms", lambda: h.log()[-1500:])
        open(flag, "w").close()
        m = h.wait_log(r"worker 0 started \(pid (\d+)", since=found[-1].end(), timeout=10)
        pid = int(m.group(1)) if m else 0
        ht.ok(pid and ht.alive(pid), "with the flag set it lives")
        time.sleep(healthy + 0.5)
        os.unlink(flag)
        mark = h.mark()
        if pid:
            os.kill(pid, signal.SIGKILL)
        m = h.wait_log(r"killed by signal 9[^;\n]*; restarting in (\d+) ms", since=mark, timeout=10)
        ht.ok(m and m.group(1) == "0", "once a worker lived %g s, its death restarts at "
              "once (back-off reset)" % healthy, lambda: h.log()[mark:])
        m = h.wait_log(r"exited with status 3; restarting in (\d+) ms", since=mark, timeout=10)
        ht.ok(m and m.group(1) == "100", "and the next young death counts afresh "
              "(100 ms, not 800)",
              lambda: h.log()[mark:])


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


def test_workers_die_with_the_master():
    with ht.Herd("-w", "2") as h:
        workers = h.workers()
        h.signal(signal.SIGKILL)
        ht.is_(h.wait_exit(10), -signal.SIGKILL, "master SIGKILLed")
        gone = ht.wait_until(lambda: not [p for p in workers if ht.alive(p)], 5)
        ht.ok(gone, "workers die within 5 s of their master's SIGKILL",
              "still alive: %r" % [p for p in workers if ht.alive(p)])


ht.run(test_kill_9_is_replaced_in_the_same_slot,
       test_ready_worker_is_replaced_at_once_every_time,
       test_backoff_grows_then_resets_after_a_healthy_run,
       test_respawn_latency,
       test_workers_die_with_the_master)

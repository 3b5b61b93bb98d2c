#!/usr/bin/env python3
"""backoff.py: a slot whose workers die before they are ready is restarted
after a growing delay (100, 200, 400 ms...), not in a loop: a program that
exits at once, a worker dying young, a program killed again and again by
its watchdog. Once a worker lived long enough the back-off resets; a pool
never ready after START_LIMIT quick deaths in a row gives up, status 1."""
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_crash_backoff():
    with ht.supervised("-w", "1", app=("--exit-after", "0", "1"), wait_ready=False) as h:
        at = []
        for ms in (100, 200, 400):
            m = h.wait_log(r"worker 0 \(pid \d+, generation 1\) exited with status 1; "
                           r"restarting in %d ms" % ms, timeout=10)
            at.append(m.start() if m else None)
        ht.ok(None not in at and at == sorted(at),
              "a program exiting at once: restarted after 100, then 200, then 400 ms",
              lambda: "positions %r\n%s" % (at, h.log()[-2000:]))
        ht.ok(h.running(), "and herd keeps running")


def test_start_limit():
    START_LIMIT = ht.source_define("START_LIMIT")
    with ht.supervised("-w", "1", app=("--exit-after", "0", "1"), wait_ready=False) as h:
        status = h.wait_exit(30)
        ht.ok(status == 1, "a program exiting 1 at every start, never ready: herd gives up "
              "with status 1 (%r)" % status, lambda: h.log()[-1500:])
        ht.ok(re.search(r"%d quick deaths in a row before the pool was ever ready: giving up"
                        % START_LIMIT, h.log()),
              "and says why", lambda: h.log()[-1500:])
        ht.is_(h.count_log(r"exited with status 1"), START_LIMIT,
               "after %d starts" % START_LIMIT)


def test_watchdog_backs_off():
    # A program that never pings is killed each time its watchdog runs out:
    # like a crash, the restarts back off rather than loop (and dump core)
    # as fast as the watchdog allows.
    with ht.supervised("-w", "1", "--notify", "--watchdog", "0.2",
                       app=("--watchdog-stop-after", "0")) as h:
        m = h.wait_log(r"worker 0: restarting in 100 ms", timeout=10)
        ht.ok(m, "--watchdog: repeated watchdog kills back off (100 ms, ...)",
              lambda: h.log()[-1500:])
        ht.ok(h.running(), "--watchdog: the master carries on")


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


ht.run(test_crash_backoff,
       test_backoff_grows_then_resets_after_a_healthy_run,
       test_start_limit,
       test_watchdog_backs_off)

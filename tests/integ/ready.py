#!/usr/bin/env python3
"""ready.py: a pool that does not become ready at start-up says why: 5 s
after the start herd warns, naming what it waits for (READY=1 from
programs, a slot backing off after quick deaths), and again only every
30 s."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_unready_pool_says_why():
    """A pool that never becomes ready at start-up waited in silence. 5 s
    after the start herd warns, naming what it waits for, and again only
    every 30 s."""
    with ht.supervised("-w", "2", "--notify", app=("--notify-ready-after", "60"),
                       wait_ready=False) as h:
        m = h.wait_log(r"warn .*0 of 2 workers ready (\d+) s after start: waiting for "
                       r"READY=1 from 2 programs \(--notify\)$", timeout=10)
        ht.ok(m and 5 <= int(m.group(1)) <= 6,
              "--notify, no READY=1: after 5 s the log says the pool waits for READY=1 from "
              "2 programs", lambda: h.log()[-1500:])
        time.sleep(2)
        ht.ok(h.count_log(r"workers ready \d+ s after start") == 1,
              "and says it once, not on every wake-up", lambda: h.log()[-1500:])
    # /bin/false: a program that dies within milliseconds is in back-off,
    # not starting, at almost any instant (a slower one made this flaky).
    with ht.Herd("-w", "1", "--", "/bin/false", wait_ready=False,
                 name="herd -w 1 -- /bin/false") as h:
        m = h.wait_log(r"0 of 1 workers ready \d+ s after start: waiting for 1 slot backing "
                       r"off after quick deaths \(slot 0: \d+ in a row, next start in \d+ ms\)",
                       timeout=10)
        ht.ok(m, "a program that exits at once: the warning names the slot backing off",
              lambda: h.log()[-1500:])


ht.run(test_unready_pool_says_why)

#!/usr/bin/env python3
"""signals.py: which of herd's signals reach a supervised program, and as
what: --reload-signal sends SIG to the children instead of starting a new
generation, --reopen-signal forwards a log reopen (SIGUSR1), and without it
programs that die of USR1 are not sent it. tests/progs/pyapp.py
--record-signals is the program."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def serving_slots(h, n):
    """Waits for n slots to answer /whoami: pyapp sets its signal handlers
    before it serves, and herd's ready (--ready-delay) does not wait for
    that on a loaded machine."""
    slots = set()
    ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or len(slots) == n, timeout=15)


def test_reload_signal():
    with ht.supervised("-w", "2", "--reload-signal", "USR2",
                       app=("--record-signals", "{dir}/signals"), control=True) as h:
        path = os.path.join(h.dir, "signals")
        serving_slots(h, 2)
        before = sorted(h.workers())
        h.signal(signal.SIGHUP)
        ht.wait_until(lambda: len(ht.read_lines(path)) >= 2, 5)
        ht.is_(ht.read_lines(path), ["USR2", "USR2"],
               "--reload-signal USR2: SIGHUP reaches each of the 2 children as USR2")
        time.sleep(1.5)  # past --ready-delay: a new generation would be serving by now
        gens = set()
        ht.whoami_until(h.addr, lambda a: gens.add(a[2]) or False, timeout=1)
        st = h.status()
        ht.ok(sorted(h.workers()) == before and gens == {1} and st["generation"] == 1 and
              st["pending"] == 0 and sorted(p["pid"] for p in ht.procs(st, "ready", 1)) == before
              and "generation 2" not in h.log(),
              "--reload-signal: no new generation (same pids, /whoami gen 1, status: generation "
              "1 and its 2 workers ready, none pending; none was ever started)",
              "pids %r then %r, generations %r, status %r" % (before, h.workers(), gens, st))


# A sleep loop that dies of USR1's default action, as Python, Node and Go
# programs do.
SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"


def test_reopen_not_forwarded():
    with ht.Herd("-w", "2", "--", sys.executable, "-c", SLEEPER,
                 name="herd -w 2 -- python3 -c <sleep loop>") as h:
        before = sorted(h.workers())
        h.signal(signal.SIGUSR1)
        ht.ok(h.wait_log(r"log reopened", timeout=5), "SIGUSR1 to herd: it reopens its log")
        time.sleep(0.5)
        ht.ok(sorted(h.workers()) == before and "killed by signal" not in h.log(),
              "SIGUSR1 to herd: programs that die of USR1 are not sent it by default",
              lambda: h.log()[-1500:])


def test_reopen_signal():
    with ht.supervised("-w", "2", "--reopen-signal", "USR1",
                       app=("--record-signals", "{dir}/signals")) as h:
        path = os.path.join(h.dir, "signals")
        serving_slots(h, 2)
        h.signal(signal.SIGUSR1)
        ht.wait_until(lambda: len(ht.read_lines(path)) >= 2, 5)
        ht.is_(ht.read_lines(path), ["USR1", "USR1"],
               "--reopen-signal USR1: SIGUSR1 to herd reaches each child as USR1")


ht.run(test_reload_signal,
       test_reopen_not_forwarded,
       test_reopen_signal)

#!/usr/bin/env python3
"""scale.py: SIGTTIN adds a worker in the next slot, SIGTTOU retires the
highest slot, the count never goes below 1, and nothing scales while herd
stops."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")


def test_ttin_adds_and_ttou_removes_a_worker():
    with ht.Herd("-w", "2") as h:
        mark = h.mark()
        h.signal(signal.SIGTTIN)
        m = h.wait_log(r"worker 2 started \(pid (\d+)", since=mark)
        new = int(m.group(1)) if m else None
        three = ht.wait_until(lambda: len(h.workers()) == 3, 5)
        ht.ok(m and three and new in h.workers(), "SIGTTIN: a third worker starts, in slot 2",
              "children %r, log:\n%s" % (h.workers(), h.log()[mark:]))
        a = ht.whoami_until(h.addr, lambda a: a[1] == 2, timeout=15)
        ht.ok(a is not None and a[0] == new, "SIGTTIN: slot 2 answers /whoami", repr(a))

        mark = h.mark()
        h.signal(signal.SIGTTOU)
        two = ht.wait_until(lambda: len(h.workers()) == 2, 10)
        ht.ok(two and new is not None and not ht.alive(new),
              "SIGTTOU: back to 2 workers, slot 2's is gone", "children %r" % h.workers())
        answers = [ht.whoami(h.addr) for _ in range(10)]
        ht.ok(all(a[1] in (0, 1) for a in answers), "SIGTTOU: only slots 0 and 1 answer", repr(answers))
        ht.ok(h.wait_log(r"worker 2 \(pid %d, generation 1\) exited with status 0" % (new or 0),
                         since=mark, timeout=5),
              "SIGTTOU: the retired worker exits cleanly (status 0, not a crash)",
              lambda: h.log()[mark:])
        time.sleep(0.5)
        ht.is_(len(h.workers()), 2, "SIGTTOU: the retired slot is not respawned")


def test_never_below_one_worker():
    with ht.Herd("-w", "1") as h:
        only = h.workers()
        mark = h.mark()
        for _ in range(3):
            h.signal(signal.SIGTTOU)
            time.sleep(0.1)
        time.sleep(0.5)
        ht.ok(h.workers() == only and h.running(), "SIGTTOU at 1 worker: the worker stays",
              "before %r, after %r, running %s" % (only, h.workers(), h.running()))
        ht.ok(ht.whoami(h.addr)[0] == only[0], "SIGTTOU at 1 worker: it still answers")
        ht.ok("-> 0" not in h.log()[mark:], "SIGTTOU at 1 worker: the count never goes to 0",
              lambda: h.log()[mark:])
        h.signal(signal.SIGTTIN)
        ht.ok(ht.wait_until(lambda: len(h.workers()) == 2, 5),
              "SIGTTIN after that: 2 workers", "children %r" % h.workers())


def test_no_scaling_while_stopping():
    """During a graceful stop the master starts nothing, so TTIN, TTOU and
    `herd ctl scale` are refused and the log says why; it used to log
    "workers: 1 -> 2", a change that never happened."""
    with ht.Herd("-w", "1", "--shutdown-timeout", "5", "--control", "{dir}/ctl", "--",
                 sys.executable, PYAPP, "--ignore-term",
                 name="herd -w 1, scaled while stopping") as h:
        workers = h.workers()
        mark = h.mark()
        h.signal(signal.SIGQUIT)  # the program ignores TERM: the stop lasts 5 s
        ht.ok(h.wait_log(r"graceful stop", since=mark, timeout=5), "a graceful stop begins")
        h.signal(signal.SIGTTIN)
        said = h.wait_log(r"workers: \+1 ignored: herd is stopping", since=mark, timeout=5)
        h.signal(signal.SIGTTOU)
        said_too = h.wait_log(r"workers: -1 ignored: herd is stopping", since=mark, timeout=5)
        p = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl"),
                            "scale", "3"], capture_output=True, timeout=20)
        err = p.stderr.decode(errors="replace")
        ht.ok(said and said_too, "TTIN and TTOU while stopping: refused, and the log says why",
              lambda: h.log()[mark:])
        ht.ok(p.returncode == 1 and "stopping" in err,
              "herd ctl scale while stopping: refused, status 1, and why", err)
        time.sleep(0.3)
        ht.ok(not re.search(r"workers: \d+ -> \d+", h.log()[mark:]) and
              h.workers() == workers,
              "no change of the worker count is logged, none happens",
              lambda: "children %r\n%s" % (h.workers(), h.log()[mark:]))
        ht.ok(h.wait_exit(15) == 0, "and herd stops as it was asked to")


def test_ttin_stops_at_the_fd_limit():
    # The fd limit that lets the master hold exactly 2 workers through a
    # reload (src/ctl.c master_max_workers): SIGTTIN must not add a third.
    per = ht.source_define("FDS_PER_WORKER") * \
        (ht.source_define("MAX_DRAINING_GENS") + 2)
    limit = ht.source_define("FDS_BASE") + 1 + 2 * per + per // 2
    with ht.Herd("-c", 'ulimit -n %d && exec "$0" "$@"' % limit, ht.HERD, "-l", "{addr}",
                 "-w", "2", prog="/bin/sh", name="herd -w 2 at ulimit -n %d" % limit) as h:
        mark = h.mark()
        h.signal(signal.SIGTTIN)
        warned = h.wait_log(r"cannot grow", since=mark, timeout=5)
        time.sleep(0.5)
        ht.ok(warned and len(h.workers()) == 2,
              "SIGTTIN at the fd limit: still 2 workers, and a warning",
              lambda: "children %r\n%s" % (h.workers(), h.log()[mark:]))


ht.run(test_ttin_adds_and_ttou_removes_a_worker,
       test_never_below_one_worker,
       test_no_scaling_while_stopping,
       test_ttin_stops_at_the_fd_limit)

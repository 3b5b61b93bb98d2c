#!/usr/bin/env python3
"""orphans.py: herd is the subreaper of its programs, so what a program
forks and leaves behind (gunicorn's workers under its arbiter, a helper
that ignores TERM) becomes herd's at stop. herd signals it with the stop
signal, SIGKILLs it at the shutdown timeout, and exits only when none is
left: the port is free the moment herd is gone, and a restart binds it.
One orphaned while herd runs is reaped at once, not taken for a worker
that exited. tests/progs/forker.py and tests/progs/pyapp.py --orphan are
the programs."""
import glob
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

FORKER = os.path.join(ht.REPO, "tests", "progs", "forker.py")
LEFT = r"process(es)? the pool left behind"
KILLED = r"did not stop in time; sending them signal 9"


def helpers(h, n, timeout=10):
    """The pids of the helpers, once n have written their files."""
    pattern = os.path.join(h.dir, "helper.*")
    ht.wait_until(lambda: len(glob.glob(pattern)) >= n, timeout)
    return sorted(int(p.rsplit(".", 1)[1]) for p in glob.glob(pattern))


def forker(mode, *args):
    return ht.Herd("-w", "1", "--ready-delay", "0.2", *args, "--",
                   sys.executable, FORKER, mode, "{dir}",
                   name="herd -- forker.py %s" % mode)


def stop(h, sig, name):
    """Stops herd with sig; its exit status and how long it took."""
    t = time.monotonic()
    h.signal(sig)
    status = h.wait_exit(20)
    took = time.monotonic() - t
    ht.is_(status, 0, "%s: herd exits 0" % name)
    return took


def gone(h, pids, name):
    """Checked the moment herd has exited: nothing it had is left."""
    left = [p for p in pids if ht.alive(p)]
    ht.ok(not left, "%s: no helper outlives herd" % name, "alive: %r" % left)
    ht.ok(ht.port_is_free(h.port), "%s: the port is free once herd is gone" % name)


def test_ignores_term():
    """A helper that ignores TERM: signalled, then killed at the shutdown
    timeout, both stops."""
    for sig, how in ((signal.SIGTERM, "fast stop"), (signal.SIGQUIT, "graceful stop")):
        name = "helper ignoring TERM, %s" % how
        with forker("ignore", "--shutdown-timeout", "1") as h:
            pids = helpers(h, 1)
            ht.is_(len(pids), 1, "%s: the helper started" % name)
            mark = h.mark()
            stop(h, sig, name)
            gone(h, pids, name)
            ht.ok(h.wait_log(LEFT, mark, 1), "%s: herd says what it found" % name,
                  lambda: h.log()[mark:])
            ht.ok(h.wait_log(KILLED, mark, 1), "%s: and that it killed it" % name,
                  lambda: h.log()[mark:])


def test_polite():
    """A helper that stops on TERM is not waited for until the timeout."""
    name = "helper stopping on TERM"
    with forker("polite", "--shutdown-timeout", "30") as h:
        pids = helpers(h, 1)
        mark = h.mark()
        took = stop(h, signal.SIGQUIT, name)
        gone(h, pids, name)
        ht.ok(took < 15, "%s: herd does not wait for the 30 s timeout" % name,
              "took %.1f s" % took)
        ht.ok(h.count_log(KILLED, mark) == 0, "%s: nothing needed SIGKILL" % name,
              lambda: h.log()[mark:])


def test_chain():
    """A helper's own helper comes to herd only when the first one exits:
    herd keeps looking until none is left."""
    name = "helper of a helper"
    with forker("chain", "--shutdown-timeout", "1") as h:
        pids = helpers(h, 2)
        ht.is_(len(pids), 2, "%s: both helpers started" % name)
        stop(h, signal.SIGTERM, name)
        gone(h, pids, name)


def test_orphaned_while_running():
    """A worker killed while herd serves leaves its helper to herd; the
    replacement forks another. At stop both go."""
    name = "orphan adopted while serving"
    with forker("ignore", "--shutdown-timeout", "1") as h:
        first = helpers(h, 1)
        worker = h.workers()
        ht.ok(len(worker) >= 1, "%s: a worker runs" % name)
        os.kill(next(p for p in worker if p not in first), signal.SIGKILL)
        pids = helpers(h, 2)
        ht.is_(len(pids), 2, "%s: the replacement forked a second helper" % name)
        ht.ok(ht.alive(first[0]), "%s: the first helper still runs, now herd's" % name)
        stop(h, signal.SIGTERM, name)
        gone(h, pids, name)


def test_orphan_reaped():
    h = ht.supervised("-w", "1", app=("--orphan",), wait_ready=False, control=True)
    path = os.environ["PYAPP_ORPHAN_FILE"] = os.path.join(h.dir, "orphan")
    try:
        with h:
            text = ht.wait_until(lambda: "".join(ht.read_lines(path)), 10)
            orphan = int(text) if text.isdigit() else None
            # Reparented once its parent (the program's first fork) exits.
            ht.wait_until(lambda: (ht.proc_stat(orphan) or (0, h.pid))[1] == h.pid, 5)
            st = ht.proc_stat(orphan) if orphan else None
            ht.ok(st is not None and st[1] == h.pid,
                  "--orphan: the program's grandchild is reparented to herd",
                  "orphan %r, stat %r, herd %d" % (orphan, st, h.pid))
            gone = st and ht.wait_until(lambda: (ht.proc_stat(orphan) or (0, 0, 0, -1))[3] != st[3], 5)
            ht.ok(gone, "--orphan: herd reaps it (no zombie left)",
                  lambda: repr(ht.proc_stat(orphan)) if orphan else "no orphan")
            st = h.wait_status(lambda st: [p["state"] for p in ht.procs(st)] == ["ready"], 10)
            ht.ok(st, "--orphan: herd gets ready (status: its worker ready)",
                  lambda: repr(h.last_status))
            ht.ok(orphan and st and [(p["pid"], p["restarts"]) for p in ht.procs(st)] ==
                  [(w, 0) for w in h.workers()] and
                  not re.search(r"worker \d+ \(pid %d[,)]" % orphan, h.log()),
                  "--orphan: it is not taken for a worker that exited (status: the worker "
                  "is the one child, not restarted; nothing logged)",
                  lambda: "status %r\n%s" % (st, h.log()[-1500:]))
            ht.is_(len(h.workers()), 1, "--orphan: one worker, still")
    finally:
        del os.environ["PYAPP_ORPHAN_FILE"]


ht.run(test_ignores_term, test_polite, test_chain, test_orphaned_while_running,
       test_orphan_reaped)

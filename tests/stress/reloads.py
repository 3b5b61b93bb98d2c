#!/usr/bin/env python3
"""reloads.py: fd counts of the master and its workers stay flat over a
long reload loop under load (`make stress`), in every mode: a leak of one
fd per reload would show as RELOADS more."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integ"))
import herdtest as ht  # noqa: E402

RELOADS = 150
WORKERS = 2


def worker_fds(h):
    return sorted(n for n in (ht.nfds(p) for p in h.workers()) if n is not None)


def reload_loop(mode):
    name = " ".join(mode) or "shared"
    with ht.Herd("-w", str(WORKERS), *mode, name="herd -w %d %s, %d reloads"
                 % (WORKERS, name, RELOADS)) as h:
        master0, workers0 = ht.nfds(h.pid), worker_fds(h)
        load = ht.Load(h.addr, close=1, keepalive=1).start()
        master_seen = [master0]
        done = 0
        for gen in range(2, RELOADS + 2):
            mark = h.mark()
            h.signal(signal.SIGHUP)
            if not h.wait_log(r"generation %d ready; retiring" % gen, since=mark, timeout=20):
                break
            done += 1
            master_seen.append(ht.nfds(h.pid))
        load.stop()
        # The last generations retire: then the tables must be as at start.
        settled = ht.wait_until(lambda: len(h.workers()) == WORKERS and
                                ht.nfds(h.pid) == master0 and worker_fds(h) == workers0, 15)
        ht.is_(done, RELOADS, "%s: %d reloads under load" % (name, RELOADS))
        ht.ok(settled, "%s: afterwards the master holds %d fds as at start, and each worker "
              "%r as the first generation did" % (name, master0, workers0),
              "master %r, workers %r" % (ht.nfds(h.pid), worker_fds(h)))
        if not mode:  # fd_problems knows the shared layout only
            problems = ht.fd_problems(h, WORKERS)
            ht.ok(not problems, "%s: and exactly the fds they should" % name,
                  lambda: "\n".join(problems))
        ht.ok(load.failed == 0, "%s: no request failed (%s)" % (name, load.summary()))
        ht.diag("reloads %s: %d reloads; master fds %d at start, %d-%d during, %r at the end; "
                "worker fds %r at start, %r at the end; requests %s"
                % (name, done, master0, min(x for x in master_seen if x),
                   max(x for x in master_seen if x), ht.nfds(h.pid), workers0, worker_fds(h),
                   load.summary().split(" gens=")[0]))


def test_reload_loop_every_mode():
    for mode in [(), ("-m", "reuseport"), ("-m", "passfd")]:
        reload_loop(mode)


ht.run(test_reload_loop_every_mode)

#!/usr/bin/env python3
"""planned.py: a program that exits with status 0 on its own, as php-cgi
does after PHP_FCGI_MAX_REQUESTS, has ended as planned, not crashed: its
slot gets a successor at once (no back-off, no restart counted), and one of
a reload's new generation does not abandon the reload. A program that exits
0 at every start is paced (one start per slot per PLANNED_GAP_MS), not
forked in a tight loop. tests/progs/served.py N is the program; real
php-cgi, with cgi-fcgi as the client, is in servers.py."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

SERVED = os.path.join(ht.REPO, "tests", "progs", "served.py")
GAP_MS = ht.source_define("PLANNED_GAP_MS")
BACKOFF = r"restarting in \d+ ms"
PLANNED = r"exited with status 0: a planned exit; replacing it"


def served(n, *herd_args):
    return ht.Herd("--fd0", "-w", "2", *herd_args, "--",
                   sys.executable, SERVED, str(n), name="herd --fd0 -- served.py %d" % n)


def http_hello(addr):
    try:
        r = ht.get(addr, "/", timeout=10)
        return r.status == 200 and r.body == b"hello\n"
    except (OSError, ValueError):
        return False


def test_recycling_under_load():
    # 5 requests a life: each worker lives less than the ready delay (1 s),
    # and often less than 100 ms, as php-cgi does under load.
    with served(5) as h:
        load = ht.Load(fetch=lambda: http_hello(h.addr), calls=4, close=0, keepalive=0,
                       count=400, timeout=10).start().join()
        got, failed, slowest = load.ok, load.failed, load.slowest
        ht.diag("served.py 5: %d answered, %d failed, slowest %.3f s" % (got, failed, slowest))
        ht.ok(got == 400 and failed == 0, "a program recycling every 5 requests: 400 of 400 "
              "requests answered (%d failed)" % failed)
        ht.ok(slowest < 2, "no request stalls behind a back-off (slowest %.3f s)" % slowest)
        n = h.count_log(PLANNED)
        ht.ok(n >= 40, "its exits are logged as planned (%d)" % n, lambda: h.log()[-1500:])
        ht.ok(h.count_log(BACKOFF) == 0 and h.count_log(r"\[warn") == 0,
              "a planned exit is no crash: no back-off, no warning", lambda: h.log()[-1500:])


def test_reload_under_load():
    # 5 requests a life, about the ready delay of 0.2 s: now and then a
    # worker of the new generation exits before its generation is ready.
    with served(5, "--ready-delay", "0.2") as h:
        load = ht.Load(h.addr, close=4, keepalive=0, path="/").start()
        time.sleep(0.3)
        ready = 0
        for gen in (2, 3, 4):
            mark = h.mark()
            h.signal(signal.SIGHUP)
            ready += bool(h.wait_log(r"generation %d ready" % gen, since=mark, timeout=15))
            time.sleep(0.5)
        load.stop()
        ht.is_(ready, 3, "3 reloads under load complete while workers recycle themselves")
        ht.ok(h.count_log(r"abandoned") == 0, "no reload is abandoned for a planned exit",
              lambda: h.log()[-2000:])
        ht.ok(load.failed == 0 and load.ok > 20, "no request fails meanwhile", load.summary())


def test_reload_workers_shorter_than_delay():
    # 5 requests a life under load is far less than the default ready
    # delay (1 s): a slot whose worker served and ended as planned has
    # proven the program, and its successor is ready once it runs.
    # Otherwise no slot of the new generation would ever be ready.
    with served(5) as h:
        load = ht.Load(h.addr, close=4, keepalive=0, path="/").start()
        time.sleep(0.5)
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ready = h.wait_log(r"generation 2 ready", since=mark, timeout=15)
        load.stop()
        ht.ok(ready, "a reload completes while workers live less than the ready delay",
              lambda: h.log()[mark:][-2000:])
        ht.ok(load.failed == 0 and load.ok > 20, "no request fails meanwhile", load.summary())


def test_exit_at_once_paced():
    # `true` exits 0 at every start: planned, but never a tight fork loop.
    with ht.Herd("-w", "1", "--", "/bin/true", wait_ready=False, name="herd -- true") as h:
        time.sleep(2)
        n = h.count_log(PLANNED)
        most = 2000 // GAP_MS + 2
        ht.ok(5 <= n <= most, "a program exiting 0 at once is replaced %d times in 2 s "
              "(at most one start per %d ms: %d)" % (n, GAP_MS, most), lambda: h.log()[-1500:])
        ht.ok(h.running(), "herd keeps running")


ht.run(test_recycling_under_load, test_reload_under_load,
       test_reload_workers_shorter_than_delay, test_exit_at_once_paced)

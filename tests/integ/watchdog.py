#!/usr/bin/env python3
"""watchdog.py: in-process workers under --watchdog. A worker's loop sends
a heartbeat several times per watchdog period; one stuck in a handler goes
silent and is killed with SIGKILL, logged and replaced, while a healthy
pool is left alone. (Programs' watchdog, over sd_notify: supervise.py.)"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

STUCK = os.path.join(ht.BUILD, "progs", "stuck")


def ask(addr, data=b"hi"):
    s = socket.create_connection(addr, timeout=5)
    s.sendall(data)
    return s


def test_stuck_worker_is_replaced():
    with ht.Herd("{addr}", "1", prog=STUCK, name="stuck, --watchdog 1") as h:
        before = set(h.workers())
        hung = ask(h.addr, b"hang")
        mark = h.mark()
        m = h.wait_log(r"worker \d+ \(pid (\d+)\): watchdog: its loop has not run for "
                       r"1000 ms \(stuck in a handler\?\); killing it", since=mark, timeout=10)
        ht.ok(m and int(m.group(1)) in before,
              "a worker stuck in a handler is killed by the watchdog, and it is logged",
              lambda: h.log()[-1500:])
        stuck = int(m.group(1)) if m else -1
        back = ht.wait_until(lambda: len(h.workers()) == 2 and stuck not in h.workers(), 10)
        ht.ok(back, "it is replaced: 2 workers, the stuck one gone")
        s = ask(h.addr)
        s.settimeout(5)
        ht.ok(re.match(rb"pid=\d+\n", s.recv(64) or b""), "the pool serves")
        s.close()
        hung.close()


def test_healthy_pool_is_left_alone():
    with ht.Herd("{addr}", "0.3", prog=STUCK, name="stuck, --watchdog 0.3, idle") as h:
        before = sorted(h.workers())
        time.sleep(2)
        ht.ok(sorted(h.workers()) == before and "watchdog" not in h.log(),
              "an idle pool with a 0.3 s watchdog keeps its workers (heartbeats every 0.1 s)",
              lambda: h.log()[-1000:])


ht.run(test_stuck_worker_is_replaced, test_healthy_pool_is_left_alone)
ht.done()

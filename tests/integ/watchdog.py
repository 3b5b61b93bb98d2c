#!/usr/bin/env python3
"""watchdog.py: --watchdog. In-process workers: a worker's loop sends a
heartbeat several times per watchdog period; one stuck in a handler goes
silent and is killed with SIGKILL, logged and replaced, while a healthy
pool is left alone. Programs (--notify): WATCHDOG_USEC and WATCHDOG_PID are
set, one that stops sending WATCHDOG=1 is killed and replaced, one that
pings lives on, and WATCHDOG=trigger kills at once. (Repeated watchdog
kills back off: backoff.py.)"""
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


def test_watchdog():
    with ht.supervised("-w", "1", "--notify", "--watchdog", "1",
                       app=("--watchdog-stop-after", "1")) as h:
        pid, env = ht.env_of(h.addr)
        ht.ok(env.get("WATCHDOG_USEC") == "1000000" and env.get("WATCHDOG_PID") == str(pid),
              "--watchdog 1: WATCHDOG_USEC=1000000, WATCHDOG_PID the child's pid", repr(env))
        mark = h.mark()
        ht.ok(h.wait_log(r"(?i)watchdog", since=mark, timeout=10),
              "--watchdog: a child that stops pinging is killed, and the log says watchdog",
              lambda: h.log()[-1500:])
        new = ht.whoami_until(h.addr, lambda a: a[0] != pid, timeout=10)
        ht.ok(new and new[1] == 0 and not ht.alive(pid),
              "--watchdog: a new worker replaces it in slot 0", repr((pid, new)))
    with ht.supervised("-w", "1", "--notify", "--watchdog", "1") as h:
        pid = h.workers()[0]
        mark = h.mark()
        time.sleep(3)
        ht.ok(h.workers() == [pid] and not re.search(r"(?i)watchdog", h.log()[mark:]),
              "--watchdog: a child pinging every 0.5 s lives on", lambda: h.log()[mark:])


def test_watchdog_trigger():
    # A program that knows it is broken says so: WATCHDOG=trigger is acted on
    # as a missed watchdog, at once.
    with ht.supervised("-w", "1", "--notify", "--watchdog", "30",
                       app=("--watchdog-trigger-after", "1.5")) as h:
        pid = h.workers()[0]
        m = h.wait_log(r"worker 0 \(pid %d\): watchdog: it sent WATCHDOG=trigger; killing it"
                       % pid, timeout=10)
        ht.ok(m, "--watchdog 30: a program's WATCHDOG=trigger kills it at once",
              lambda: h.log()[-1500:])
        ht.ok(ht.wait_until(lambda: not ht.alive(pid) and len(h.workers()) == 1, 10),
              "and it is replaced")


ht.run(test_stuck_worker_is_replaced, test_healthy_pool_is_left_alone,
       test_watchdog, test_watchdog_trigger)

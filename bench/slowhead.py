#!/usr/bin/env python3
"""slowhead.py: worker CPU spent on a request head that arrives a byte at a
time (issue 12, item 5).

Runs the release build pinned to CPU 0 (`taskset -c 0 build/herd -l ADDR
-w 1`); the client pins itself to CPU 1. For each of --connections
connections, one after another: connect, set TCP_NODELAY, send a head of
--size bytes (default: the worker's head limit minus 100) one byte per
send() with --sleep-us between sends, so that each byte reaches the worker
as its own read; read the 200 answer (the head says Connection: close).

Per connection it reads the worker's CPU time before and after, twice:
utime+stime from /proc/PID/stat (clock ticks, 10 ms) and the scheduler's
run time from /proc/PID/schedstat (ns), plus the worker's wake-ups (the
schedstat timeslice count), which shows whether the bytes really came one
read each (wake-ups close to the head's size). Prints each connection and
the medians. Figures, not assertions: the tests check behaviour.
"""
import argparse
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ.setdefault("HERD_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integ"))
import herdtest as ht  # noqa: E402

HEAD_MAX = ht.source_define("demo/http_parse.h", "HTTP_HEAD_MAX", 8192)
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def make_head(size):
    """A GET head of exactly size bytes: request line, Host, Connection,
    then header fields of 60-odd bytes (a browser's are 20 to 200), the last
    one padded to fit."""
    start = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
    fields, i = [], 0
    room = size - len(start) - 2  # the final empty line
    while room > 0:
        name = b"X-Bench-%03d: " % i
        value_len = min(48 + (i * 37) % 40, room - len(name) - 2)
        if room - (len(name) + value_len + 2) < len(name) + 3:
            value_len = room - len(name) - 2  # absorb a too-short remainder
        if value_len < 0:
            raise ValueError("size %d is too small" % size)
        fields.append(name + b"v" * value_len + b"\r\n")
        room -= len(fields[-1])
        i += 1
    head = start + b"".join(fields) + b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


def worker_cpu(pid):
    """(utime+stime ticks, run time ns, timeslices) of a process."""
    with open("/proc/%d/schedstat" % pid) as f:
        run_ns, _, slices = (int(x) for x in f.read().split())
    return ht.cpu_ticks(pid), run_ns, slices


def one_connection(addr, head, sleep_s, pid):
    """Sends head a byte at a time; returns (status line, CPU deltas)."""
    with ht.connect(addr, timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.05)  # the accept is not part of the head's cost
        before = worker_cpu(pid)
        for i in range(len(head)):
            s.sendall(head[i:i + 1])
            if sleep_s:
                time.sleep(sleep_s)
        with s.makefile("rb") as f:
            status = f.readline().strip()
            f.read()  # to the close: all the worker's work is done
    time.sleep(0.05)
    after = worker_cpu(pid)
    return status, tuple(a - b for a, b in zip(after, before))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=7)
    ap.add_argument("--size", type=int, default=HEAD_MAX - 100,
                    help="head bytes, the final empty line included (%(default)s)")
    ap.add_argument("--sleep-us", type=float, default=200,
                    help="pause after each byte, microseconds (%(default)s)")
    ap.add_argument("--herd", default=ht.HERD)
    args = ap.parse_args()

    os.sched_setaffinity(0, {1})
    head = make_head(args.size)
    with ht.Herd("-c", "0", args.herd, "-l", "{addr}", "-w", "1", prog="/usr/bin/taskset",
                 name="taskset -c 0 herd -w 1", report_clean=False) as h:
        pid = h.workers()[0]
        rows = []
        for n in range(args.connections):
            status, (ticks, run_ns, slices) = one_connection(h.addr, head, args.sleep_us / 1e6, pid)
            rows.append((ticks * TICK_MS, run_ns / 1e6, slices))
            print("connection %d: %s; worker %.0f ms (utime+stime), %.1f ms (schedstat), "
                  "%d wake-ups" % (n + 1, status.decode("latin-1"), rows[-1][0], rows[-1][1],
                                   slices), flush=True)
            if not status.startswith(b"HTTP/1.1 200"):
                print("not a 200: the figures are meaningless", file=sys.stderr)
                return 1
    print("head %d bytes sent a byte at a time (%.0f us apart), %d connections, worker on "
          "CPU 0 and client on CPU 1" % (len(head), args.sleep_us, args.connections))
    print("median worker CPU per connection: %.0f ms utime+stime, %.1f ms schedstat; "
          "median wake-ups %d" % (ht.median([r[0] for r in rows]), ht.median([r[1] for r in rows]),
                                  ht.median([r[2] for r in rows])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""slowhead.py: worker CPU spent on a request head that arrives a byte at a
time (issue 12, item 5).

Runs the release build pinned to CPU 0 (`taskset -c 0 build/herd -l ADDR
-w 1`); the client pins itself to CPU 1. In each of --batches batches, it
opens --parallel connections, sets TCP_NODELAY on them and sends each a
head of --size bytes (default: the worker's head limit minus 100) one byte
per send(): one byte to every connection in turn, then --sleep-us, and
again; then reads the 200 answers (the head says Connection: close).

Per batch it reads the worker's CPU time before and after, twice:
utime+stime from /proc/PID/stat (clock ticks of 10 ms) and the
scheduler's run time from /proc/PID/schedstat (ns), and divides by the
connections. The pause is long enough for the worker to keep up, so that
each byte is a read of its own; --count-reads checks it by counting the
worker's recvfrom calls with `perf stat` (which costs the worker a little).

With --parallel 1 each read is also a wake-up of the worker, which on a
virtual machine costs more than the rest of the read; a few hundred slow
clients at once (what the issue is about) share their wake-ups.

Given --herd more than once (say, a copy of the build before a change and
the build after it), it runs them side by side and alternates their
batches, so that other load on the machine falls on both alike.

Prints each batch and, per binary, the medians over the batches of the
CPU per connection. Figures, not assertions: the tests check behaviour.
"""
import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ.setdefault("HERD_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integ"))
import herdtest as ht  # noqa: E402

HEAD_MAX = ht.source_define("HTTP_HEAD_MAX")
HEADER_TIMEOUT_S = ht.source_define("HEADER_TIMEOUT_MS") / 1000
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
    """(utime ticks, stime ticks, run time ns, timeslices) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/%d/schedstat" % pid) as f:
        run_ns, _, slices = (int(x) for x in f.read().split())
    return int(fields[11]), int(fields[12]), run_ns, slices


class ReadCounter:
    """Counts a process's recvfrom calls with perf stat, until stop()."""

    def __init__(self, pid):
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "syscalls:sys_enter_recvfrom", "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # perf attaches

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        err = self.proc.communicate(timeout=10)[1].decode()
        for line in err.splitlines():
            if "sys_enter_recvfrom" in line:
                return int(line.split(",")[0])
        raise RuntimeError("perf stat said: %r" % err)


def one_batch(addr, head, n, sleep_s, pid, count_reads):
    """n connections, each sent head a byte at a time, round-robin; returns
    (status lines, CPU deltas, recvfrom calls or None, seconds sending)."""
    socks = []
    try:
        for _ in range(n):
            socks.append(ht.connect(addr, timeout=60))
            socks[-1].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.05)  # the accepts are not part of the heads' cost
        counter = ReadCounter(pid) if count_reads else None
        before = worker_cpu(pid)
        t0 = time.monotonic()
        try:
            for i in range(len(head)):
                byte = head[i:i + 1]
                for s in socks:
                    s.sendall(byte)
                if sleep_s:
                    time.sleep(sleep_s)
        except OSError as e:
            raise SystemExit("sending: %s after %.1f s; the worker cuts a head off after %.0f s: "
                             "use a smaller --parallel or --sleep-us"
                             % (e, time.monotonic() - t0, HEADER_TIMEOUT_S))
        took = time.monotonic() - t0
        statuses = []
        for s in socks:
            with s.makefile("rb") as f:
                statuses.append(f.readline().strip())
                f.read()  # to the close: the worker is done with it
        time.sleep(0.05)
        after = worker_cpu(pid)
        reads = counter.stop() if counter else None
    finally:
        for s in socks:
            s.close()
    return statuses, tuple(a - b for a, b in zip(after, before)), reads, took


def report(path, rows, args, n, size):
    print("%s: head %d bytes, a byte at a time to %d connections in turn, %.0f us between "
          "rounds, %d batches; worker on CPU 0, client on CPU 1"
          % (path, size, n, args.sleep_us, len(rows)))
    med = [ht.median([r[i] for r in rows]) for i in range(5)]
    print("  median worker CPU per connection: %.1f ms utime+stime (%.1f user, %.1f system), "
          "%.2f ms schedstat; %.0f wake-ups" % tuple(med))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=20, help="connections per batch (%(default)s)")
    ap.add_argument("--size", type=int, default=HEAD_MAX - 100,
                    help="head bytes, the final empty line included (%(default)s)")
    ap.add_argument("--sleep-us", type=float, default=500,
                    help="pause after each round of bytes, microseconds (%(default)s)")
    ap.add_argument("--count-reads", action="store_true",
                    help="count the worker's recvfrom calls with perf stat")
    ap.add_argument("--herd", action="append",
                    help="the binary (%s); repeat to compare several" % ht.HERD)
    args = ap.parse_args()

    paths = args.herd or [ht.HERD]
    os.sched_setaffinity(0, {1})
    head = make_head(args.size)
    n = args.parallel
    rows = {p: [] for p in paths}
    with contextlib.ExitStack() as stack:
        servers = [(p, stack.enter_context(ht.Herd(
            "-c", "0", p, "-l", "{addr}", "-w", "1", prog=shutil.which("taskset"),
            name="taskset -c 0 %s -w 1" % p, report_clean=False))) for p in paths]
        for b in range(args.batches):
            for path, h in servers:
                statuses, (utime, stime, run_ns, slices), reads, took = one_batch(
                    h.addr, head, n, args.sleep_us / 1e6, h.workers()[0], args.count_reads)
                row = ((utime + stime) * TICK_MS / n, utime * TICK_MS / n,
                       stime * TICK_MS / n, run_ns / 1e6 / n, slices / n)
                rows[path].append(row)
                bad = [x for x in statuses if not x.startswith(b"HTTP/1.1 200")]
                print("%s batch %d: %d x 200 after %.1f s; per connection: worker %.1f ms "
                      "utime+stime (%.1f user, %.1f system), %.2f ms schedstat, %.0f wake-ups%s"
                      % ((path, b + 1, n - len(bad), took) + row +
                         ("" if reads is None else ", %.0f recvfrom calls" % (reads / n),)),
                      flush=True)
                if bad:
                    print("answers that are not 200: %r" % bad[:3], file=sys.stderr)
                    return 1
    for path in paths:
        report(path, rows[path], args, n, len(head))
    return 0


if __name__ == "__main__":
    sys.exit(main())

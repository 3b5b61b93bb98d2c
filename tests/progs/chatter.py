#!/usr/bin/env python3
"""chatter.py: a program for tests/integ/output.py that writes to its
stdout and stderr, as servers do, and otherwise waits.

  chatter.py lines         at start: "out slot=S gen=G pid=P" on stdout,
                           "err slot=S gen=G pid=P" on stderr, then one
                           line of 2000 'x' and one of control characters,
                           UTF-8 and a CRLF; "ping N" on SIGUSR2; "bye" on
                           SIGTERM, then exits 0
  chatter.py flood DIR     writes "flood N" lines to stdout, 100 a write,
                           as fast as it can until DIR/stop exists, then
                           writes how many
                           it wrote, the seconds it took and the longest
                           single write to DIR/flood.done
  chatter.py orphan DIR    the first worker only (DIR/orphaned marks it):
                           leaves a grandchild holding stdout, which writes
                           "grandchild pid=P" once DIR/go exists, and
                           exits 0; later workers only wait
Nothing is buffered: each line (or flood's 100) is one write(2).
"""
import os
import signal
import sys
import time

PID = os.getpid()
SLOT = os.environ.get("HERD_SLOT", "?")
GEN = os.environ.get("HERD_GENERATION", "?")


def put(fd, text):
    os.write(fd, text if isinstance(text, bytes) else text.encode())


def lines():
    pings = [0]

    def ping(sig, frame):
        pings[0] += 1
        put(1, "ping %d\n" % pings[0])

    def bye(sig, frame):
        put(1, "bye\n")
        os._exit(0)
    signal.signal(signal.SIGUSR2, ping)
    signal.signal(signal.SIGTERM, bye)
    who = "slot=%s gen=%s pid=%d" % (SLOT, GEN, PID)
    put(1, "out %s\n" % who)
    put(2, "err %s\n" % who)
    put(1, "x" * 2000 + "\n")
    put(2, b"ctl \x1b[31m \xc3\xa9 \xff \x07 tab\there\r\n")
    while True:
        time.sleep(60)


def flood(d):
    stop = os.path.join(d, "stop")
    n, slowest, t0 = 0, 0.0, time.monotonic()
    while n % 1000 or not os.path.exists(stop):
        chunk = "".join("flood %d\n" % i for i in range(n, n + 100)).encode()
        t = time.monotonic()
        put(1, chunk)
        slowest = max(slowest, time.monotonic() - t)
        n += 100
    took = time.monotonic() - t0
    with open(os.path.join(d, "flood.tmp"), "w") as f:
        f.write("%d %.3f %.3f\n" % (n, took, slowest))
    os.rename(os.path.join(d, "flood.tmp"), os.path.join(d, "flood.done"))
    while True:
        time.sleep(60)


def orphan(d):
    marker = os.path.join(d, "orphaned")
    if os.path.exists(marker):
        while True:
            time.sleep(60)
    if os.fork() == 0:
        while not os.path.exists(os.path.join(d, "go")):
            time.sleep(0.02)
        put(1, "grandchild pid=%d\n" % os.getpid())
        os._exit(0)
    open(marker, "w").close()
    put(1, "leaving\n")
    os._exit(0)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "lines":
        lines()
    elif what == "flood":
        flood(sys.argv[2])
    elif what == "orphan":
        orphan(sys.argv[2])
    else:
        raise SystemExit("chatter.py: unknown mode %r" % what)

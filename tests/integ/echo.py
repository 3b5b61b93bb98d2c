#!/usr/bin/env python3
"""echo.py: the example echo server (examples/echo.c) echoes what it gets
and stops on SIGTERM with status 0."""
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def recv_exactly(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return buf


def test_echo():
    with ht.Herd("{addr}", "2", prog=ht.ECHO, name="examples/echo ADDR 2") as h:
        ht.is_(len(h.workers()), 2, "echo: 2 workers")
        with ht.connect(h.addr) as s:
            got = []
            for msg in (b"hello\n", bytes(range(256)), b"x" * 4096):
                s.sendall(msg)
                got.append(recv_exactly(s, len(msg)) == msg)
            ht.ok(all(got), "echo: three messages on one connection come back unchanged", repr(got))
            data = os.urandom(64 * 1024)
            back = b""
            for i in range(0, len(data), 4096):
                s.sendall(data[i:i + 4096])
                back += recv_exactly(s, 4096)
            ht.ok(back == data, "echo: 64 KiB in 4 KiB steps comes back unchanged",
                  "%d of %d bytes equal" % (sum(a == b for a, b in zip(back, data)), len(data)))

        results = []

        def client(i):
            try:
                with ht.connect(h.addr) as c:
                    msg = ("client %d\n" % i).encode() * 50
                    c.sendall(msg)
                    results.append(recv_exactly(c, len(msg)) == msg)
            except OSError as e:
                results.append(e)
        ts = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        ht.ok(results == [True] * 20, "echo: 20 concurrent clients each get their own bytes back",
              repr(results))

        workers = h.workers()
        h.signal(signal.SIGTERM)
        ht.is_(h.wait_exit(10), 0, "echo: SIGTERM exits 0")
        ht.ok(ht.wait_until(lambda: not [p for p in workers if ht.alive(p)], 5),
              "echo: no worker left after SIGTERM")


ht.run(test_echo)

#!/usr/bin/env python3
"""Keep-alive connections across reloads: a draining built-in worker
relays its idle connections through the master to a serving worker, so a
client on one keep-alive connection keeps it across any number of reloads,
and /whoami on it shows the new generation; under load, keep-alive clients
reconnect 0 times. When herd stops, nothing is relayed: the old behaviour,
Connection: close and the idle connections closed."""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

WHOAMI = b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n"


def ask(s):
    """One /whoami on the keep-alive socket s: (pid, slot, gen), or None if
    the connection was closed or the answer is not whole."""
    s.sendall(WHOAMI)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < n:
        chunk = s.recv(4096)
        if not chunk:
            return None
        body += chunk
    m = re.match(rb"pid=(\d+) slot=(\d+) gen=(\d+)", body)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


RELAYER = os.path.join(ht.BUILD, "progs", "relayer")


def lines(s, n):
    """n lines to s, each answer read: the last answer's (n, gen)."""
    got = None
    f = s.makefile("rb")
    for _ in range(n):
        s.sendall(b"x\n")
        m = re.match(rb"n=(\d+) gen=(\d+)", f.readline())
        got = (int(m.group(1)), int(m.group(2))) if m else None
    return got


def test_state_goes_with_the_connection():
    # tests/progs/relayer.c relays each connection with its line count;
    # one that said "decline" is closed instead.
    with ht.Herd("{addr}", "2", prog=RELAYER, name="progs/relayer ADDR 2") as h:
        keep = socket.create_connection(h.addr, timeout=5)
        gone = socket.create_connection(h.addr, timeout=5)
        before = lines(keep, 3)
        gone.sendall(b"decline\n")
        gone.makefile("rb").readline()
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_log(r"generation 2 ready", since=mark, timeout=10)
        # Lines answered by generation 1 until its worker drains; the
        # count must go on where it was.
        sent, after, deadline = 0, None, time.monotonic() + 5
        while (after is None or after[1] != 2) and time.monotonic() < deadline:
            after = lines(keep, 1)
            sent += 1
            time.sleep(0.02)
        ht.ok(before == (3, 1) and after == (3 + sent, 2),
              "a relayed connection keeps its state: line %d answered by generation 2"
              % (3 + sent), repr((before, sent, after)))
        gone.settimeout(5)
        ht.ok(gone.recv(100) == b"", "a declined one is closed as its worker drains")
        keep.close()
        gone.close()


def test_one_connection_across_10_reloads():
    for mode in ("shared", "reuseport", "passfd"):
        with ht.Herd("-w", "2", "-m", mode, control=True,
                     name="herd -w 2 -m %s, keep-alive across reloads" % mode) as h:
            s = socket.create_connection(h.addr, timeout=5)
            first = ask(s)
            seen, lost = [first], None
            for gen in range(2, 12):
                rc, out, err = ht.ctl(h.control_path(), "reload")
                if rc != 0:
                    lost = "reload %d: %s%s" % (gen, out, err)
                    break
                # The old worker relays the connection once it drains; a
                # request that came first is answered by it, then relayed.
                deadline = time.monotonic() + 5
                a = ask(s)
                while a is not None and a[2] < gen and time.monotonic() < deadline:
                    time.sleep(0.02)
                    a = ask(s)
                seen.append(a)
                if a is None or a[2] != gen:
                    lost = "after reload to generation %d: %r" % (gen, a)
                    break
            s.close()
            ht.ok(first is not None and lost is None,
                  "%s: one keep-alive connection across 10 reloads, /whoami on it shows "
                  "each new generation" % mode, lambda: "%s\n%r\n%s" % (lost, seen,
                                                                       h.log()[-2000:]))
            st = h.status()
            ht.ok(ht.serving(st, 11, 2) and st["relays"] >= 10 and
                  st["relays_closed"] == 0,
                  "%s: generation 11 serves; the status counts the relays (%d)"
                  % (mode, st["relays"]), lambda: repr(st))


def test_keepalive_clients_under_reloads():
    # New-connection clients beside the keep-alive ones: a relay the master
    # had not read when the draining worker exited was dropped with its
    # channel, and its client reset (make stress found it).
    for mode in ("shared", "reuseport"):
        with ht.Herd("-w", "2", "-m", mode, control=True,
                     name="herd -w 2 -m %s, load, 20 reloads" % mode) as h:
            load = ht.Load(h.addr, close=2, keepalive=4).start()
            time.sleep(0.3)
            for _ in range(20):
                rc, out, err = ht.ctl(h.control_path(), "reload")
            time.sleep(0.5)
            load.stop()
            again = load.connects - 4
            ht.ok(rc == 0 and load.ok > 0 and load.failed == 0 and again == 0,
                  "%s: 4 keep-alive and 2 new-connection clients across 20 reloads: "
                  "%d requests, 0 failed, 0 reconnects (%d failed, %d reconnects)"
                  % (mode, load.ok, load.failed, again),
                  lambda: repr(load.errors[:5]) + h.log()[-1500:])
            ht.ok(load.gens >= {1, 21}, "%s: they saw generations 1 to 21 (%s)"
                  % (mode, sorted(load.gens)))


def test_stop_relays_nothing():
    # A graceful stop: no worker serves on, so nothing is relayed; the idle
    # connection is closed, as before.
    # -v: a relay, passed on or closed, would be logged.
    with ht.Herd("-w", "2", "-v", control=True,
                 name="herd -w 2, stop with keep-alives") as h:
        socks = [socket.create_connection(h.addr, timeout=5) for _ in range(4)]
        ht.ok(all(ask(s) is not None for s in socks), "4 keep-alive connections answered")
        before = h.status()["relays"]
        rc, _, _ = ht.ctl(h.control_path(), "quit")
        closed = all(s.recv(1) == b"" for s in socks)
        code = h.wait_exit(10)
        ht.ok(rc == 0 and before == 0 and closed and code == 0,
              "on quit the idle connections are closed, and herd exits 0")
        ht.ok(not re.search(r"relay", h.log()), "nothing was relayed", h.log)
        for s in socks:
            s.close()


def test_scale_down_relays():
    # A scale-down drains the top slot's worker while the others serve on:
    # its idle connection moves to them.
    with ht.Herd("-w", "2", control=True, name="herd -w 2, scale to 1") as h:
        socks = [socket.create_connection(h.addr, timeout=5) for _ in range(6)]
        first = [ask(s) for s in socks]
        rc, _, _ = ht.ctl(h.control_path(), "scale", "1")
        h.wait_status(lambda st: len(ht.procs(st)) == 1, timeout=10)
        after = [ask(s) for s in socks]
        slots = {a[1] for a in after if a is not None}
        ht.ok(rc == 0 and None not in first and None not in after and slots == {0},
              "scale 2 to 1: the 6 keep-alive connections stay open, all on slot 0 "
              "now (%s)" % sorted(slots), lambda: repr((first, after)))
        for s in socks:
            s.close()


ht.run(test_state_goes_with_the_connection,
       test_one_connection_across_10_reloads,
       test_keepalive_clients_under_reloads,
       test_stop_relays_nothing,
       test_scale_down_relays)

#!/usr/bin/env python3
"""peers.py: worker-to-worker messages (tests/progs/peers.c): every worker
broadcasts "hi" once it has a channel to each peer, each peer answers
"ack" directly, and each "ack" is reported to the master as a status line.
A connection gets "slot=S hi=<slots> ack=<slots>" for the worker's view."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PEERS = os.path.join(ht.BUILD, "progs", "peers")
N = 3
VIEW_RE = re.compile(rb"^slot=(\d+) hi=([\d,]*) ack=([\d,]*)\n$")


def view(h):
    """(slot, hi set, ack set) of the worker that took the connection."""
    m = VIEW_RE.match(ht.raw_exchange(h.addr, b""))
    if not m:
        raise ValueError("bad answer")
    sets = [set(int(x) for x in g.split(b",") if x) for g in m.groups()[1:]]
    return int(m.group(1)), sets[0], sets[1]


def acks_logged(h, since=0):
    return set(re.findall(r"worker (\d+) status: ack from (\d+)", h.log()[since:]))


def test_every_worker_reaches_every_peer():
    want = {(str(a), str(b)) for a in range(N) for b in range(N) if a != b}
    with ht.Herd("{addr}", str(N), prog=PEERS, name="progs/peers ADDR %d" % N) as h:
        got = ht.wait_until(lambda: acks_logged(h) == want and acks_logged(h), 10)
        ht.ok(got == want, "every worker's broadcast is acked by each peer, reported to the master",
              "acks logged %r" % sorted(acks_logged(h)))
        for s in range(N):
            others = set(range(N)) - {s}
            v = ht.until_answer(lambda: view(h), lambda v: v[0] == s, timeout=15)
            ht.ok(v is not None and v[1] == others and v[2] == others,
                  "slot %d got hi and ack from every other slot" % s, repr(v))

        victim = [p for p, (slot, g) in h.worker_info().items() if slot == 1][0]
        mark = h.mark()
        os.kill(victim, signal.SIGKILL)
        want_new = {("1", str(b)) for b in range(N) if b != 1}
        got = ht.wait_until(lambda: acks_logged(h, mark) >= want_new and acks_logged(h, mark), 10)
        ht.ok(got and got >= want_new,
              "a respawned worker reaches every peer and each acks it",
              "acks logged since the kill %r" % sorted(acks_logged(h, mark)))


ht.run(test_every_worker_reaches_every_peer)

#!/usr/bin/env python3
"""spread.py: new connections spread over the workers in shared and passfd
modes. Four clients each open a new connection per /whoami request, 400 in
all, to a pool of two: each worker must answer at least a quarter of them.
Before the shared load counters, shared mode gave one worker 345 (the
EPOLLEXCLUSIVE wake-up goes to the first idle waiter, and a worker back
from serving took what the other was woken for). As the benches run it,
herd is pinned to one CPU and the clients to another, where the imbalance
was the worst; no timing is asserted."""
import collections
import os
import shutil
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

TOTAL, CLIENTS = 400, 4
TASKSET = shutil.which("taskset")
CPUS = sorted(os.sched_getaffinity(0))
PINNED = TASKSET is not None and len(CPUS) >= 2


def spread(addr):
    """Answers per slot of TOTAL /whoami on new connections from CLIENTS."""
    count = collections.Counter()
    lock = threading.Lock()

    def client():
        for _ in range(TOTAL // CLIENTS):
            try:
                _, slot, _ = ht.whoami(addr)
            except (OSError, ValueError):
                slot = "failed"
            with lock:
                count[slot] += 1
    ts = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return count


def pool(mode):
    """herd -w 2 -m mode, on the first CPU this test may use when it may
    use two (the clients then keep to the second)."""
    name = "herd -w 2 -m %s" % mode
    if not PINNED:
        return ht.Herd("-w", "2", "-m", mode, name=name)
    os.sched_setaffinity(0, {CPUS[1]})
    return ht.Herd("-c", str(CPUS[0]), ht.HERD, "-l", "{addr}", "-w", "2",
                   "-m", mode, prog=TASKSET, name=name + " on one CPU")


def check_mode(mode):
    with pool(mode) as h:
        count = spread(h.addr)
        ht.is_(count["failed"], 0, "%s: every /whoami answered" % mode)
        print("# %s: answers per slot %s" % (mode, dict(count)))
        least = min(count[0], count[1])
        ht.ok(least >= TOTAL // 4,
              "%s: each of 2 workers answers at least a quarter of %d new "
              "connections" % (mode, TOTAL),
              lambda: "answers per slot: %s" % dict(count))


def test_shared_spreads():
    check_mode("shared")


def test_passfd_spreads():
    check_mode("passfd")


ht.run(test_shared_spreads, test_passfd_spreads)

#!/usr/bin/env python3
"""modes.py: how connections reach workers: shared, reuseport (a
SO_REUSEPORT socket per slot) and passfd (the master accepts and passes
each connection over the worker's channel). The application is the same
built-in worker in each; serving, fairness, fd layout, reload and kill -9
under load, and a stuck worker in passfd mode."""
import collections
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

MODES = [("shared",), ("reuseport",), ("passfd",), ("passfd", "--balance", "rr")]
INFLIGHT_MAX = ht.source_define("INFLIGHT_MAX")


def herd(mode, n=2, *extra):
    return ht.Herd("-w", str(n), "-m", *mode, *extra,
                   name="herd -w %d -m %s" % (n, " ".join(mode)))


def shares(h, total=400, threads=8):
    """/whoami on new connections from several threads: answers per slot."""
    count = collections.Counter()
    lock = threading.Lock()

    def run():
        for _ in range(total // threads):
            try:
                _, slot, _ = ht.whoami(h.addr)
            except (OSError, ValueError):
                continue
            with lock:
                count[slot] += 1
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return count


def listening_inodes(pid):
    socks, _, _ = ht._fd_kinds(pid)
    return set(socks.values()) & ht._listening_inodes()


def test_every_mode_serves():
    for mode in MODES:
        with herd(mode) as h:
            r = ht.get(h.addr, "/")
            ht.ok(r.status == 200 and r.body == b"hello\n",
                  "%s: GET / is 200 hello" % " ".join(mode))


def test_fair_shares():
    # shared mode is left to the kernel's wake-up order and may favour one
    # worker; the other modes must spread.
    for mode in MODES[1:]:
        with herd(mode) as h:
            c = shares(h)
            total = sum(c.values())
            ht.ok(total >= 390 and min(c[0], c[1]) >= total / 4,
                  "%s: each of 2 workers answers at least a quarter (%s)"
                  % (" ".join(mode), dict(c)))


def test_passfd_turns_with_one_client():
    # One sequential client gives the master one connection per wake-up:
    # a pick that found nothing more to accept used to spend a worker's
    # turn, and rr sent every connection to the same worker.
    for mode in MODES[2:]:
        with herd(mode) as h:
            c = collections.Counter(ht.whoami(h.addr)[1] for _ in range(40))
            ht.ok(min(c[0], c[1]) >= 15, "%s: one client, one connection at a "
                  "time: both workers take turns (%s)" % (" ".join(mode), dict(c)))


def test_fd_layout():
    with herd(("reuseport",), 3) as h:
        master = listening_inodes(h.pid)
        per = [listening_inodes(w) for w in h.workers()]
        ht.ok(len(master) == 3 and all(len(s) == 1 for s in per) and
              len(set().union(*per)) == 3 and set().union(*per) == master,
              "reuseport: the master holds a socket per slot, each worker "
              "exactly its own", "master %s, workers %s" % (master, per))
        old = {w: listening_inodes(w) for w in h.workers()}
        victim = h.workers()[0]
        os.kill(victim, signal.SIGKILL)
        ht.wait_until(lambda: len(h.workers()) == 3 and victim not in h.workers(), 10)
        # Seen just after its fork, the child still holds what it inherited
        # until it has set its fds up: wait until it holds one socket.
        born = [w for w in h.workers() if w not in old]
        ht.wait_until(lambda: all(len(listening_inodes(w)) == 1 for w in born), 10)
        new = [listening_inodes(w) for w in born]
        ht.ok(new == [old[victim]], "reuseport: a respawned worker takes over "
              "its slot's socket", "old %s, new %s" % (old[victim], new))
    with herd(("passfd",), 2) as h:
        per = [listening_inodes(w) for w in h.workers()]
        ht.ok(len(listening_inodes(h.pid)) == 1 and per == [set(), set()],
              "passfd: only the master holds the listening socket", repr(per))


def test_reload_under_load():
    for mode in MODES[1:]:
        with herd(mode) as h:
            done, load = ht.reloads_under_load(h, 3)
            ht.ok(done == 3 and load.failed == 0 and load.ok > 100,
                  "%s: 3 reloads under load, no request fails" % " ".join(mode),
                  load.summary())


def test_kill_under_load_is_repaired():
    for mode in MODES[1:]:
        with herd(mode) as h:
            load = ht.Load(h.addr, close=2, keepalive=0).start()
            time.sleep(0.3)
            victim = h.workers()[0]
            os.kill(victim, signal.SIGKILL)
            back = ht.wait_until(lambda: len(h.workers()) == 2 and victim not in h.workers(), 10)
            time.sleep(0.5)
            before = load.ok
            time.sleep(0.5)
            load.stop()
            ht.ok(back and h.running() and load.ok > before,
                  "%s: kill -9 under load is repaired and serving goes on"
                  % " ".join(mode), load.summary())
            ht.diag("%s: requests lost with the killed worker: %d"
                    % (" ".join(mode), load.failed))


def test_passfd_skips_a_stuck_worker():
    # A stopped worker reads nothing: the master hands it at most
    # INFLIGHT_MAX connections, then skips it, and never blocks.
    with herd(("passfd", "--balance", "rr")) as h:
        stuck = h.workers()[0]
        os.kill(stuck, signal.SIGSTOP)
        try:
            n = 3 * INFLIGHT_MAX
            socks = []
            for _ in range(n):
                s = socket.create_connection(h.addr, timeout=5)
                s.sendall(ht.request_bytes("/"))
                socks.append(s)
            answered = ht.which_answered(socks, 5)
            ht.ok(n - INFLIGHT_MAX <= len(answered) < n,
                  "passfd: %d of %d answered with one worker stopped (at most "
                  "%d wait for it)" % (len(answered), n, INFLIGHT_MAX))
            ht.ok(ht.get(h.addr, "/").status == 200,
                  "passfd: the master still hands out new connections")
        finally:
            os.kill(stuck, signal.SIGCONT)
        rest = [s for s in socks if s not in answered]
        late = ht.which_answered(rest, 10)
        ht.is_(len(late), len(rest), "passfd: the waiting ones are answered once it runs")
        for s in socks:
            s.close()


def test_passfd_dead_workers_connections_go_on():
    # Connections passed to a worker that dies before reading them are not
    # reset with it: the master holds its end of the channel and hands
    # them to another worker.
    with herd(("passfd", "--balance", "rr")) as h:
        stuck = h.workers()[0]
        os.kill(stuck, signal.SIGSTOP)
        socks = ht.send_requests(h.addr, 2 * INFLIGHT_MAX, "/whoami")
        first = ht.which_answered(socks, 5)
        mark = h.mark()
        os.kill(stuck, signal.SIGKILL)
        rest = [s for s in socks if s not in first]
        late = ht.which_answered(rest, 10)
        ht.ok(0 < len(rest) <= INFLIGHT_MAX and len(late) == len(rest),
              "passfd: the connections a killed worker never read are "
              "served by another",
              "%d waited for it, %d of them answered" % (len(rest), len(late)))
        m = h.wait_log(r"passfd: (\d+) connections a gone worker never "
                       r"received were handed to others", since=mark, timeout=2)
        ht.ok(m and 0 < int(m.group(1)) <= len(rest),
              "passfd: the master says how many it handed on (%s)"
              % (m and m.group(1)))
        for s in socks:
            s.close()


def test_reuseport_steering():
    # The master steers new connections away from a slot before retiring
    # it: with the retiring worker stopped, nothing new may wait on its
    # socket (the kernel's own hash would queue about half there, to be
    # reset when it is killed).
    with herd(("reuseport",), 2, "--shutdown-timeout", "4") as h:
        stuck = ht.slot_pid(h, 1)
        os.kill(stuck, signal.SIGSTOP)
        try:
            mark = h.mark()
            h.signal(signal.SIGTTOU)
            h.wait_log(r"workers: 2 -> 1", since=mark)
            time.sleep(0.2)  # logged just before the master steers
            socks = ht.send_requests(h.addr, 100, "/whoami")
            answered = ht.which_answered(socks, 3)
            ht.is_(len(answered), 100, "reuseport: scaling down with the "
                   "retiring worker stopped, every new connection is served")
        finally:
            os.kill(stuck, signal.SIGCONT)
        for s in socks:
            s.close()
        ht.wait_until(lambda: stuck not in h.workers(), 10)
        # Scaled back up, slot 1 takes its share again: its new socket
        # has the index the steering program gives it.
        h.signal(signal.SIGTTIN)
        ht.wait_until(lambda: len(h.workers()) == 2, 10)
        time.sleep(0.3)
        c = shares(h)
        ht.ok(min(c[0], c[1]) >= sum(c.values()) / 4,
              "reuseport: scaled 2 -> 1 -> 2, both slots serve (%s)" % dict(c))


ht.run(test_every_mode_serves, test_fair_shares,
       test_passfd_turns_with_one_client, test_fd_layout,
       test_reload_under_load, test_kill_under_load_is_repaired,
       test_passfd_skips_a_stuck_worker,
       test_passfd_dead_workers_connections_go_on, test_reuseport_steering)
ht.done()

#!/usr/bin/env python3
"""fds.py: every process holds exactly the fds it should (listed at
herdtest.fd_problems), judged from /proc/PID/fd and /proc/net.

Checked at start, after serving clients, after a respawn, a reload and
scaling. Peer channels arrive by message after a worker starts, so each
check is retried for a few seconds before it counts as failed."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

N = 3


def expect_clean(h, n, name, nlisteners=2):
    last = []

    def good():
        last[:] = ht.fd_problems(h, n, nlisteners)
        return not last
    ht.ok(ht.wait_until(good, 5, step=0.1), name, lambda: "\n".join(last))


def serve_some(h):
    for _ in range(20):
        ht.get(h.addr, "/whoami")
    ht.raw_exchange(h.addr, b"BOGUS\r\n\r\n")
    ht.raw_exchange(h.addr, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    with ht.connect(h.addr) as s:  # keep-alive, then the client just goes
        s.sendall(ht.request_bytes("/", close=False) * 3)
        s.recv(100)
    with ht.connect(h.addr) as s:  # half a request, then the client goes
        s.sendall(b"GET / HTTP/1.1\r\nHo")


def test_fds():
    with ht.Herd("-w", str(N), "--log", "{dir}/herd.log", "-l", "unix:{dir}/h.sock",
                 name="herd -w %d --log, tcp + unix listeners" % N) as h:
        expect_clean(h, N, "fds at start: each worker exactly its own, master exactly its own")
        serve_some(h)
        expect_clean(h, N, "fds after serving clients (no connection left open)")

        victim = h.workers()[1]
        mark = h.mark()
        os.kill(victim, signal.SIGKILL)
        h.wait_log(r"worker \d+ started", since=mark)
        expect_clean(h, N, "fds after a worker was killed and respawned")

        old = set(h.workers())
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_log(r"generation 2 ready", since=mark)
        ht.wait_until(lambda: not old & set(h.workers()), 10)
        expect_clean(h, N, "fds after a reload (generation 2 only)")

        mark = h.mark()
        h.signal(signal.SIGTTIN)
        h.wait_log(r"worker %d started" % N, since=mark)
        expect_clean(h, N + 1, "fds after SIGTTIN (%d workers, %d peers each)" % (N + 1, N))
        h.signal(signal.SIGTTOU)
        ht.wait_until(lambda: len(h.workers()) == N, 10)
        expect_clean(h, N, "fds after SIGTTOU (%d workers again)" % N)


def test_fds_without_log_file():
    with ht.Herd("-w", "2") as h:
        expect_clean(h, 2, "fds without --log (the log is fd 2): as they should be", nlisteners=1)


def test_too_low_fd_limit_is_not_a_half_start():
    # The master holds 3 fds per worker (channel, inbox write end, pidfd),
    # so at RLIMIT_NOFILE 64 it cannot run 20 workers. Either outcome is
    # fine: refusing to start, or raising the limit and starting them all.
    # Running on forever with some slots missing and some workers cut off
    # from their peers is not.
    n = 20
    with ht.Herd("-c", 'ulimit -n 64 && exec "$0" "$@"', ht.HERD, "-l", "{addr}", "-w", str(n),
                 prog="/bin/sh", wait_ready=False, name="herd -w 20 at ulimit -n 64") as h:
        ht.wait_until(lambda: not h.running() or "ready:" in h.log(), 10, step=0.1)
        rc, ready = h.proc.poll(), "ready:" in h.log()
        if ready:
            expect_clean(h, n, "ulimit -n 64, -w 20: started all 20, each with all 19 peers",
                         nlisteners=1)
        else:
            ht.ok(rc == 1 and re.search(r"limit", h.log()),
                  "ulimit -n 64, -w 20: refused with status 1 naming the limit, or all 20 started",
                  lambda: "status %r, %d workers running, %d 'cannot start' and %d 'open channel' "
                          "errors logged" % (rc, len(h.workers()), h.count_log(r"cannot start worker"),
                                             h.count_log(r"open channel \d+<->\d+")))


ht.run(test_fds, test_fds_without_log_file, test_too_low_fd_limit_is_not_a_half_start)

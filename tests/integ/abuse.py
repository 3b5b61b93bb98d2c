#!/usr/bin/env python3
"""abuse.py: workers that flood every channel they hold with malformed,
oversized, fd-laden and wrong-direction messages (tests/progs/abuse.c)
harm nobody: no process dies or stops, no fd that came with a refused
message stays open, the refusals are counted without flooding the log,
and the workers still serve."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

ABUSE = os.path.join(ht.BUILD, "progs", "abuse")
N = 3
ROUNDS = 500
DELAY_MS = 1500  # the attack waits this long: the master's fds are counted first


def test_abuse_is_refused_and_harmless():
    with ht.Herd("{addr}", str(N), str(ROUNDS), str(DELAY_MS), prog=ABUSE,
                 name="progs/abuse ADDR %d %d %d" % (N, ROUNDS, DELAY_MS)) as h:
        before = ht.nfds(h.pid)
        ht.ok(h.count_log(r"abuse done") == 0, "the master's fds are counted before the attack")
        ht.ok(ht.wait_until(lambda: h.count_log(r"status: abuse done") == N, 20),
              "all %d workers finished their attacks" % N, lambda: h.log()[-2000:])
        workers = set(h.workers())
        started = set(h.worker_info())
        ht.ok(workers == started and len(workers) == N and h.running(),
              "no worker died or was replaced (forged QUIT/TERMINATE refused)",
              "started %r, running %r" % (sorted(started), sorted(workers)))
        ht.ok(not re.search(r"exited|killed by|draining|terminat", h.log()),
              "the log shows no worker exit and no stop", lambda: h.log()[-2000:])
        refused = h.count_log(r"message refused")
        ht.ok(0 < refused < 500, "refusals are logged, rate-limited (%d lines)" % refused,
              lambda: h.log()[-2000:])
        last = []

        def clean():
            last[:] = ht.fd_problems(h, N, mesh=True)
            return not last
        ht.ok(ht.wait_until(clean, 5, step=0.1),
              "no fd of a refused message is left open, in the master or a worker",
              lambda: "\n".join(last))
        sent = sum(int(x) for x in re.findall(r"abuse done: (\d+) sent", h.log()))
        # The master logs each channel's count of refusals at the first ten
        # and every 1000th: the highest per channel is a lower bound.
        at_master = {}
        for fd, n in re.findall(r" %d master: channel fd (\d+): message refused [^;]*; (\d+) "
                                r"so far" % h.pid, h.log()):
            at_master[fd] = max(at_master.get(fd, 0), int(n))
        after = ht.nfds(h.pid)
        refused_m = sum(at_master.values())
        ht.is_(after, before, "the master holds as many fds after refusing %d+ bad messages "
               "as before (%d)" % (refused_m, before))
        ht.ok(refused_m >= 1000, "the master refused thousands of them (%d+, of %d written to "
              "all channels)" % (refused_m, sent), lambda: h.log()[-2000:])
        ht.diag("channel abuse: %d bad messages written by %d workers, %d+ refused by the "
                "master; master fds %d before, %d after; %d refusal lines logged"
                % (sent, N, refused_m, before, after, refused))
        answers = [ht.raw_exchange(h.addr, b"") for _ in range(10)]
        ht.ok(all(a == b"ok\n" for a in answers), "the workers still serve", repr(answers))


def test_status_flood_is_rate_limited():
    chatter = 3000
    with ht.Herd("{addr}", "2", "0", "0", str(chatter), prog=ABUSE,
                 name="progs/abuse ADDR 2 0 0 %d" % chatter) as h:
        ht.ok(h.wait_log(r"worker status: more than \d+ lines in a second; not logging",
                         timeout=10),
              "2 workers sending %d status lines each: the master says it stops logging them"
              % chatter, lambda: h.log()[-2000:])
        time.sleep(1.5)
        logged = h.count_log(r"status: (chatter|abuse done)")
        ht.ok(logged <= 100, "%d of %d lines logged (at most 20 a second)"
              % (logged, 2 * (chatter + 1)))
        ht.ok(ht.raw_exchange(h.addr, b"") == b"ok\n" and h.running() and len(h.workers()) == 2, "and the pool serves")


ht.run(test_abuse_is_refused_and_harmless, test_status_flood_is_rate_limited)

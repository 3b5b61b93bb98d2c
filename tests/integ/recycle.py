#!/usr/bin/env python3
"""recycle.py: --max-requests and --max-rss. A worker past a limit is
replaced gracefully: its successor starts in the same slot, and it drains
only once the successor is ready, so no request fails under load."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")
PY_EXAMPLE = os.path.join(ht.REPO, "examples", "passfd_worker.py")
C_EXAMPLE = os.path.join(ht.BUILD, "examples", "passfd_child")


def recycled_under_load(h, seconds=3):
    first = set(h.workers())
    load = ht.Load(h.addr, close=2, keepalive=2).start()
    time.sleep(seconds)
    load.stop()
    ht.wait_until(lambda: len(h.workers()) == 2, 10)
    return first, load


def test_max_requests():
    with ht.Herd("-w", "2", "--max-requests", "50", name="herd --max-requests 50") as h:
        first, load = recycled_under_load(h)
        n = h.count_log(r"took \d+ connections \(limit (5[0-5])\); replacing it")
        ht.ok(n >= 2, "--max-requests 50: workers are replaced (%d times, limits 50-55 "
              "with the jitter)" % n, lambda: h.log()[-1500:])
        ht.ok(h.count_log(r"worker \d: pid \d+ takes over from pid \d+") >= 2,
              "each successor takes over once it is ready")
        ht.ok(load.failed == 0 and load.ok > 100, "--max-requests: no request fails under load",
              load.summary())
        # A worker may be mid-replacement when the load stops: wait for
        # the pool to settle rather than judge a snapshot.
        ht.ok(ht.wait_until(lambda: not (first & set(h.workers())) and len(h.workers()) == 2,
                            5),
              "--max-requests: 2 workers, none of the first ones", lambda: h.log()[-1500:])
        limits = set(re.findall(r"\(limit (\d+)\)", h.log()))
        ht.ok(len(limits) >= 2 or n < 2, "the limits differ by a jitter (%s)" % sorted(limits))


def test_max_rss():
    # 1 MB is less than any worker uses: each is replaced once a second.
    with ht.Herd("-w", "2", "--max-rss", "1", name="herd --max-rss 1") as h:
        first, load = recycled_under_load(h, 2.5)
        ht.ok(h.count_log(r"uses \d+ KiB \(limit 1024\); replacing it") >= 2,
              "--max-rss: workers past it are replaced", lambda: h.log()[-1500:])
        ht.ok(load.failed == 0 and load.ok > 100, "--max-rss: no request fails under load",
              load.summary())


def test_program_in_passfd():
    with ht.Herd("-w", "2", "-m", "passfd", "--max-requests", "20", "--",
                 sys.executable, PYAPP, "--proto", "passfd",
                 name="herd -m passfd --max-requests 20 -- pyapp") as h:
        ok = 0
        for _ in range(120):
            try:
                ok += ht.get(h.addr, "/").status == 200
            except OSError:
                pass
        ht.ok(ok == 120, "a passfd program: 120 requests served (%d)" % ok)
        ht.ok(h.wait_log(r"took \d+ connections \(limit 2[0-2]\); replacing it", timeout=5),
              "a passfd program is recycled by the connections the master passed it")


def test_examples_recycled_under_load():
    # A recycled passfd program is told QUIT on its channel and signalled
    # only if it outlives --shutdown-timeout: the examples die on TERM, and
    # when it came with QUIT they lost the connections still queued.
    for prog in ([sys.executable, PY_EXAMPLE], [C_EXAMPLE]):
        name = os.path.basename(prog[-1])
        with ht.Herd("-w", "2", "-m", "passfd", "--max-requests", "30", "--", *prog,
                     name="herd -m passfd --max-requests 30 -- " + name) as h:
            load = ht.Load(h.addr, close=4, keepalive=0, path="/").start()
            time.sleep(3)
            load.stop()
            n = h.count_log(r"took \d+ connections \(limit 3[0-3]\); replacing it")
            ht.ok(n >= 4 and load.ok > 100,
                  "%s --max-requests 30 under load: recycled %d times" % (name, n),
                  load.summary())
            ht.ok(load.failed == 0, "%s: no connection lost as workers are recycled" % name,
                  lambda: load.summary() + "\n" + "\n".join(load.errors))
            ht.ok("did not drain in time" not in h.log(),
                  "%s: each recycled worker exits on QUIT, before any signal" % name,
                  lambda: h.log()[-1500:])


def test_program_outside_passfd_refused():
    p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                        "--max-requests", "10", "--", "/bin/true"],
                       capture_output=True, timeout=20)
    err = p.stderr.decode(errors="replace")
    ht.ok(p.returncode == 1 and "passfd mode only" in err,
          "--max-requests for a program outside passfd mode is refused: herd cannot count",
          err[-500:])


ht.run(test_max_requests, test_max_rss, test_program_in_passfd,
       test_examples_recycled_under_load, test_program_outside_passfd_refused)
ht.done()

#!/usr/bin/env python3
"""child.py: a C program on libherd's passfd helpers (examples/passfd_child:
herd_child_channel, herd_child_ready, herd_child_recv, herd_child_report)
under `herd -m passfd -- PROGRAM`: it serves, both workers take turns,
flow control keeps going past the in-flight cap, and a graceful stop ends
it through the channel."""
import collections
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

CHILD = os.path.join(ht.BUILD, "examples", "passfd_child")
INFLIGHT_MAX = ht.source_define("INFLIGHT_MAX")


def test_c_helpers_serve():
    # The stop signal (TERM by default) would end it before it reads QUIT
    # on its channel; WINCH, ignored by default, leaves that to the channel.
    with ht.Herd("-w", "2", "-m", "passfd", "--balance", "rr",
                 "--stop-signal", "WINCH", "--", CHILD,
                 name="herd -m passfd -w 2 -- passfd_child") as h:
        r = ht.get(h.addr, "/")
        ht.ok(r.status == 200 and r.body == b"hello\n", "passfd_child: GET / is hello")
        slots = collections.Counter()
        n = 3 * INFLIGHT_MAX
        for _ in range(n):
            try:
                slots[ht.whoami(h.addr)[1]] += 1
            except (OSError, ValueError):
                pass
        ht.ok(sum(slots.values()) == n and len(slots) == 2,
              "passfd_child: %d connections, more than the in-flight cap per "
              "worker, all served by both (%s)" % (n, dict(slots)))
        ht.ok(h.wait_log(r"ready: 2 workers", timeout=1),
              "passfd_child: ready through herd_child_ready()")
        kids = h.workers()
        mark = h.mark()
        h.signal(signal.SIGQUIT)
        code = h.wait_exit(10)
        ht.ok(code == 0 and not any(ht.alive(p) for p in kids),
              "passfd_child: a graceful stop ends the children", lambda: h.log()[mark:])
        ht.ok(h.count_log(r"exited with status 0", since=mark) == 2,
              "passfd_child: both exit 0 on the channel's QUIT",
              lambda: h.log()[mark:])


def test_outside_herd():
    env = dict(os.environ)
    env.pop("HERD_CHANNEL_FD", None)
    import subprocess
    p = subprocess.run([CHILD], env=env, capture_output=True, timeout=10)
    ht.ok(p.returncode == 2 and b"HERD_CHANNEL_FD" in p.stderr,
          "passfd_child outside herd: status 2 and says why")


ht.run(test_c_helpers_serve, test_outside_herd)
ht.done()

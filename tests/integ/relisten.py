#!/usr/bin/env python3
"""relisten.py: a program that shuts the shared listening socket down
(shutdown(2) stops it for the master and every worker) does not take the
service down: herd sees it, makes the socket listen again, and the next
generation serves on it."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_listener_shut_down_by_a_program():
    # shutdown(2) on the shared socket stops it for the master and every
    # worker; herd makes it listen again when the worker that did it exits.
    with ht.supervised("-w", "2", app=("--shutdown-listener",), control=True) as h:
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ht.ok(h.wait_status(lambda st: ht.serving(st, 2, 2), 15),
              "a reload of programs that shut their listener down on the way out (status: "
              "generation 2 serves)", lambda: repr(h.last_status))
        ht.ok(h.wait_log(r"the listening socket was shut down \(by a worker\?\); listening "
                         r"again", since=mark, timeout=10),
              "herd sees the socket stopped and listens again", lambda: h.log()[mark:])
        r = ht.until_answer(lambda: ht.fetch(h.addr, "/whoami"),
                            lambda a: "gen=2" in a[1], timeout=10)
        ht.ok(r is not None, "generation 2 serves on the same socket", lambda: h.log()[mark:])


ht.run(test_listener_shut_down_by_a_program)

#!/usr/bin/env python3
"""forker.py MODE DIR: a program that forks a helper, as gunicorn's arbiter
forks its workers, and leaves it behind when it dies. The helper inherits
the listening socket (fd 3, LISTEN_FDS) and writes its pid to DIR/helper.PID.
MODE says what the helper does:
  ignore  ignores SIGTERM (and SIGQUIT)
  polite  exits on SIGTERM, as by default
  chain   forks a second helper that ignores SIGTERM, then exits on SIGTERM
The program itself dies of SIGTERM. Every process here ends within 60 s on
its own, so a failing test leaves nothing for long."""
import os
import signal
import sys
import time


def helper(directory, ignore):
    if ignore:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    with open(os.path.join(directory, "helper.%d" % os.getpid()), "w"):
        pass
    time.sleep(60)
    os._exit(0)


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    os.fstat(3)  # the listening socket is there, inherited by the helpers
    if os.fork() == 0:
        if mode == "chain" and os.fork() == 0:
            helper(directory, True)
        helper(directory, mode == "ignore")
    time.sleep(60)


main()

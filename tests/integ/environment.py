#!/usr/bin/env python3
"""environment.py: herd started in a hostile environment still works or
fails clearly: SIGCHLD ignored by whoever started it, a stderr pipe that
nobody reads, workers that cannot start."""
import fcntl
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

F_SETPIPE_SZ = 1031
BADSTART = os.path.join(ht.BUILD, "progs", "badstart")


def test_sigchld_ignored_on_entry():
    # An ignored SIGCHLD survives exec; unless herd resets it, the kernel
    # reaps the workers itself and herd never sees one die.
    script = ("import os, signal, sys; "
              "signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
              "os.execv(sys.argv[1], sys.argv[1:])")
    with ht.Herd("-c", script, ht.HERD, "-l", "{addr}", "-w", "1",
                 prog=sys.executable, name="herd started with SIGCHLD ignored") as h:
        old = h.workers()[0]
        os.kill(old, signal.SIGKILL)
        new = ht.wait_until(lambda: [p for p in h.workers() if p != old], 10)
        ht.ok(new, "a killed worker is still seen and replaced",
              lambda: h.log()[-1500:])
        ht.ok(h.wait_log(r"killed by signal 9", timeout=5), "and its death is logged")


def test_stderr_nobody_reads():
    # stderr is a 4 KiB pipe that is never read: once it is full, a master
    # that logged with blocking writes would stop (no reload would finish).
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    port = ht.free_port()
    p = subprocess.Popen([ht.HERD, "-l", "%s:%d" % (ht.HOST, port), "-w", "1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    try:
        addr = (ht.HOST, port)
        ht.ok(ht.until_answer(lambda: ht.get(addr, "/"), lambda x: x.status == 200,
                              timeout=10), "serves with its stderr pipe unread")
        gen = 1
        for _ in range(30):  # about 6 lines each: far more than 4 KiB
            p.send_signal(signal.SIGHUP)
            gen += 1
            want = gen
            if not ht.whoami_until(addr, lambda a: a[2] == want, timeout=10):
                break
        ht.is_(gen, 31, "30 reloads complete with the log pipe full")
        ht.ok(p.poll() is None, "the master is still running")
    finally:
        p.kill()
        for pid in ht.children(p.pid):
            os.kill(pid, signal.SIGKILL)
        p.wait(10)
        os.close(r)


def test_workers_that_cannot_start():
    start = time.monotonic()
    with ht.Herd("{addr}", prog=BADSTART, wait_ready=False,
                 name="progs/badstart ADDR") as h:
        status = h.wait_exit(15)
        ht.is_(status, 1, "herd exits with status 1 when no worker can start")
        ht.ok(time.monotonic() - start < 15, "and does not retry forever")
        ht.ok(h.wait_log(r"start failed before the pool was ever ready", timeout=1),
              "saying why", lambda: h.log()[-1500:])
        ht.is_([p for p in h.worker_info() if ht.alive(p)], [],
               "leaving no worker behind")


ht.run(test_sigchld_ignored_on_entry, test_stderr_nobody_reads,
       test_workers_that_cannot_start)
ht.done()

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


def ids(pid):
    """(uids, gids, groups) of a process, from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = [int(x) for x in v.split()] if k in ("Uid", "Gid", "Groups") else v
    return out["Uid"], out["Gid"], out["Groups"]


def test_user_in_process_workers():
    """-u for the built-in worker (no exec): each worker runs as the user,
    every uid and gid, no group of root's; the master stays as started and
    only warns when workers would run as root."""
    if os.geteuid() != 0:
        ht.skip("-u nobody, in-process", "not running as root")
        return
    import pwd
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        ht.skip("-u nobody, in-process", "no user nobody here")
        return
    with ht.Herd("-w", "2", "-u", "nobody", name="herd -w 2 -u nobody") as h:
        got = {w: ids(w) for w in h.workers()}
        want = ([pw.pw_uid] * 4, [pw.pw_gid] * 4)
        ht.ok(len(got) == 2 and all((u, g) == want and 0 not in grs
                                    for u, g, grs in got.values()),
              "-u nobody: both workers run as nobody (all 4 uids and gids), no group 0",
              repr(got))
        ht.ok(ids(h.pid)[0][0] == 0, "the master keeps its own credentials (root)")
        ht.ok("workers run as root" not in h.log(), "no warning with -u")
        ht.ok(ht.get(h.addr, "/").status == 200, "and the pool serves")
    with ht.Herd("-w", "1", name="herd -w 1 as root") as h:
        ht.ok(h.wait_log(r"workers run as root; --user USER would drop that", timeout=5),
              "without -u, as root: herd warns that the workers run as root")


ht.run(test_sigchld_ignored_on_entry, test_stderr_nobody_reads,
       test_workers_that_cannot_start, test_user_in_process_workers)
ht.done()

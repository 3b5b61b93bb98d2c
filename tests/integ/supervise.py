#!/usr/bin/env python3
"""supervise.py: herd supervising an external program (`herd ... -- PROGRAM`):
the systemd socket protocol, --fd0, passfd over the documented channel, the
exact fds and environment a child gets, exec failures, the crash back-off,
stop, reload and forwarded signals, sd_notify readiness and watchdog,
orphans reaped by the subreaper, usage errors and --user.

The program is tests/progs/pyapp.py (and examples/passfd_worker.py), run by
the Python that runs this test; docs/protocol.md is what they implement."""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")
EXAMPLE = os.path.join(ht.REPO, "examples", "passfd_worker.py")
EMPTY_MASK = re.compile(r"0+$")
# What the Python interpreter ignores by itself as it starts.
PYTHON_IGNORES = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))

# ---- helpers -----------------------------------------------------------------


def supervised(*herd_args, app=(), prog=PYAPP, name=None, **kw):
    """ht.Herd running `herd -l ADDR HERD_ARGS -- python3 PROG APP...`."""
    if name is None:
        name = "herd %s -- %s %s" % (" ".join(herd_args), os.path.basename(prog), " ".join(app))
    return ht.Herd(*herd_args, "--", sys.executable, prog, *app, name=name.strip(), **kw)


def fetch(addr, path):
    """(pid of the answering worker, body text) of one request to pyapp."""
    r = ht.get(addr, path)
    if r.status != 200 or "x-pid" not in r.headers:
        raise ValueError("bad answer to %s: %r" % (path, r))
    return int(r.headers["x-pid"]), r.body.decode()


def env_of(addr):
    """(pid, {NAME: value}) from pyapp's /env."""
    pid, body = fetch(addr, "/env")
    return pid, dict(line.split("=", 1) for line in body.splitlines())


def fds_of(addr):
    """(pid, {fd: target}) from pyapp's /fds: its fds when it started."""
    pid, body = fetch(addr, "/fds")
    return pid, {int(a): b for a, b in (line.split(" ", 1) for line in body.splitlines())}


def from_each(addr, get, n, timeout=15):
    """{pid: answer} of get(addr) from n different workers (or fewer, after
    timeout), asking from several threads so that every worker gets some."""
    got = {}

    def one():
        pid, v = get(addr)
        got[pid] = v
        return len(got)
    ht.until_answer(one, lambda k: k >= n, timeout=timeout)
    return got


def socket_inode(target):
    m = re.match(r"socket:\[(\d+)\]$", target or "")
    return int(m.group(1)) if m else None


def log_time(h, pattern):
    """The time stamp of the first log line matching pattern, or None."""
    m = re.search(r"^(\S+?)Z? \S+ \d+ .*%s" % pattern, h.log(), re.M)
    try:
        return datetime.fromisoformat(m.group(1)) if m else None
    except ValueError:
        return None


def seconds_between(h, first, then):
    a, b = log_time(h, first), log_time(h, then)
    return (b - a).total_seconds() if a and b else None


def run_herd(args, timeout=10):
    """(status, stdout + stderr, seconds) of a herd expected to exit."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([ht.HERD] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"") + (e.stderr or b""), "timeout"
    return rc, out.decode(errors="replace"), time.monotonic() - t0


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []

# ---- socket hand-off ----------------------------------------------------------


def test_systemd_protocol():
    with supervised("-w", "2") as h:
        slots, pids = set(), set()
        ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or pids.add(a[0]) or slots == {0, 1},
                        timeout=15)
        ht.is_(sorted(slots), [0, 1], "systemd: both slots answer /whoami")
        ht.ok(pids and pids <= set(h.workers()), "systemd: the answers come from herd's children",
              "answered %r, children %r" % (pids, h.workers()))
        envs = from_each(h.addr, env_of, 2)
        ht.is_(sorted(e.get("HERD_SLOT") for e in envs.values()), ["0", "1"],
               "systemd: HERD_SLOT is 0 in one child, 1 in the other")
        for pid, env in sorted(envs.items()):
            want = {"LISTEN_FDS": "1", "LISTEN_PID": str(pid),
                    "LISTEN_FDNAMES": "127.0.0.1_%d" % h.port, "HERD_WORKERS": "2",
                    "HERD_GENERATION": "1"}
            ht.is_({k: env.get(k) for k in want}, want,
                   "systemd: slot %s: LISTEN_FDS=1, LISTEN_PID its own pid, LISTEN_FDNAMES, "
                   "HERD_WORKERS=2, HERD_GENERATION=1" % env.get("HERD_SLOT"))
            ht.ok(EMPTY_MASK.match(env.get("SIGMASK", "")),
                  "systemd: slot %s starts with an empty signal mask" % env.get("HERD_SLOT"),
                  "SigBlk %r" % env.get("SIGMASK"))
            ignored = int(env.get("SIGIGN", "0"), 16) & ~PYTHON_IGNORES
            ht.ok(ignored == 0, "systemd: slot %s starts with no signal ignored" % env.get("HERD_SLOT"),
                  "SigIgn %r" % env.get("SIGIGN"))
            extra = [k for k in ("HERD_CHANNEL_FD", "NOTIFY_SOCKET", "WATCHDOG_USEC") if k in env]
            ht.is_(extra, [], "systemd: slot %s has no passfd or notify variables"
                   % env.get("HERD_SLOT"))


def test_two_listeners():
    port2 = ht.free_port()
    with supervised("-l", "{addr}", "-l", "%s:%d" % (ht.HOST, port2), "-w", "1",
                    name="herd -l A -l B -w 1 -- pyapp") as h:
        pid, env = env_of(h.addr)
        ht.is_((env.get("LISTEN_FDS"), env.get("LISTEN_FDNAMES")),
               ("2", "127.0.0.1_%d:127.0.0.1_%d" % (h.port, port2)),
               "two -l: LISTEN_FDS=2 and both names, in -l order")
        a1, a2 = ht.whoami(h.addr), ht.whoami((ht.HOST, port2))
        ht.ok(a1[0] == a2[0] == pid, "two -l: the one worker serves both ports", repr((a1, a2, pid)))
        _, fds = fds_of((ht.HOST, port2))
        ht.is_(sorted(fds), [0, 1, 2, 3, 4], "two -l: the sockets are fds 3 and 4, nothing else")
    with supervised("-l", "unix:{dir}/app.sock", "-w", "1", tcp=False,
                    name="herd -l unix:PATH -w 1 -- pyapp") as h:
        path = os.path.join(h.dir, "app.sock")
        _, env = env_of(path)
        ht.is_(env.get("LISTEN_FDNAMES"), "unix_" + path, "unix:PATH is named unix_PATH")


def test_fd0():
    with supervised("--fd0", "-w", "1", app=("--proto", "fd0")) as h:
        r = ht.get(h.addr, "/")
        ht.ok(r.status == 200 and r.body == b"hello\n", "--fd0: serves", repr(r))
        _, fds = fds_of(h.addr)
        ht.is_(sorted(fds), [0, 1, 2], "--fd0: the child has exactly fds 0, 1, 2")
        ht.ok(socket_inode(fds.get(0)) in ht._listening_inodes(),
              "--fd0: fd 0 is the listening socket", repr(fds))
        out = fds.get(1, "")
        ht.ok(out.startswith("pipe:") and fds.get(2) == out and
              out in ht.fd_links(h.pid).values(),
              "--fd0: fds 1 and 2 are one pipe, read by the master (output.py)",
              "fds %r, the master's %r" % (fds, ht.fd_links(h.pid)))
        _, env = env_of(h.addr)
        ht.is_([k for k in env if k.startswith("LISTEN_")], [], "--fd0: no LISTEN_* variables")


def test_exact_fds():
    with supervised("-w", "1", "--log", "{dir}/herd.log") as h:
        _, fds = fds_of(h.addr)
        ht.is_(sorted(fds), [0, 1, 2, 3], "systemd: the child has exactly fds 0-3, not herd's --log")
        master = {socket_inode(t) for t in ht.fd_links(h.pid).values()} & ht._listening_inodes()
        ht.ok(socket_inode(fds.get(3)) in master, "systemd: fd 3 is the master's listening socket",
              "fd 3 %r, master's listeners %r" % (fds.get(3), master))
    with supervised("-m", "reuseport", "-w", "2") as h:
        per = from_each(h.addr, fds_of, 2)
        ht.ok(len(per) == 2 and all(sorted(f) == [0, 1, 2, 3] for f in per.values()),
              "reuseport: each of 2 children has exactly fds 0-3", repr(per))
        threes = [socket_inode(f.get(3)) for f in per.values()]
        ht.ok(len(set(threes)) == 2 and set(threes) <= ht._listening_inodes(),
              "reuseport: the children's fd 3 are two different listening sockets", repr(threes))


def test_passfd():
    with supervised("-m", "passfd", "-w", "2", prog=EXAMPLE,
                    name="herd -m passfd -w 2 -- examples/passfd_worker.py") as h:
        r = ht.get(h.addr, "/")
        ht.ok(r.status == 200 and r.body == b"hello\n", "passfd example: serves hello", repr(r))
        load = ht.Load(h.addr, close=4, keepalive=0, path="/").start()
        time.sleep(1.5)
        load.stop()
        ht.ok(load.failed == 0 and load.ok > 200, "passfd example: over 200 connections (more "
              "than 2 x 64 unreported) served, none failed", load.summary())
    with supervised("-m", "passfd", "-w", "2",
                    app=("--proto", "passfd", "--status", "passfd-status")) as h:
        slots = set()
        ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or slots == {0, 1}, timeout=15)
        ht.is_(sorted(slots), [0, 1], "passfd pyapp: both slots answer /whoami")
        load = ht.Load(h.addr, close=4, keepalive=0).start()
        time.sleep(1.5)
        load.stop()
        ht.ok(load.failed == 0 and load.ok > 200, "passfd pyapp: over 200 connections served, "
              "none failed", load.summary())
        per = from_each(h.addr, fds_of, 2)
        utab = ht._unix_table()
        ht.ok(len(per) == 2 and all(sorted(f) == [0, 1, 2, 3] and
                                    utab.get(socket_inode(f.get(3)), (None,))[0] ==
                                    socket.SOCK_SEQPACKET for f in per.values()),
              "passfd: each child has exactly fds 0-3, fd 3 a unix seqpacket socket", repr(per))
        _, env = env_of(h.addr)
        ht.ok(env.get("HERD_CHANNEL_FD") == "3" and "LISTEN_FDS" not in env,
              "passfd: HERD_CHANNEL_FD=3 and no LISTEN_FDS", repr(env))
        ht.ok(h.wait_log(r"worker [01] status: passfd-status$", timeout=5),
              "passfd: an APP message to the master is logged as the worker's status")
        gap = seconds_between(h, r"worker 1 started", r"ready: 2 workers")
        ht.ok(gap is not None and gap < 0.9, "passfd: READY on the channel makes a worker ready "
              "before the 1 s --ready-delay (%s s)" % gap)


# ---- starting and dying ---------------------------------------------------------


def test_exec_failure():
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    rc, out, secs = run_herd(["-l", addr, "-w", "2", "--", "/nonexistent/prog"])
    ht.ok(rc == 1 and secs < 5 and re.search(r"cannot execute /nonexistent/prog: "
                                             r"No such file or directory", out),
          "a missing program: status 1 within 5 s, 'cannot execute ...: No such file or "
          "directory'", "status %r after %.1f s\n%s" % (rc, secs, out[-2000:]))
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        path = os.path.join(d, "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o644)
        rc, out, secs = run_herd(["-l", addr, "-w", "1", "--", path])
        ht.ok(rc == 1 and secs < 5 and "cannot execute" in out and "Permission denied" in out,
              "a mode 0644 program: status 1 within 5 s, 'Permission denied'",
              "status %r after %.1f s\n%s" % (rc, secs, out[-2000:]))
        # After start-up the same failure must not take the server down: a
        # reload whose program went away leaves the old generation serving.
        script = os.path.join(d, "app")
        with open(PYAPP) as src, open(script, "w") as dst:
            dst.write("#!%s\n" % sys.executable + src.read().split("\n", 1)[1])
        os.chmod(script, 0o755)
        with ht.Herd("-w", "1", "--", script, name="herd -w 1 -- SCRIPT, made 0644, SIGHUP") as h:
            os.chmod(script, 0o644)
            mark = h.mark()
            h.signal(signal.SIGHUP)
            ht.ok(h.wait_log(r"Permission denied", since=mark, timeout=10),
                  "a reload to a non-executable program: logged", lambda: h.log()[mark:])
            time.sleep(1)
            a = ht.whoami(h.addr)
            ht.ok(h.running() and a[2] == 1, "and generation 1 keeps serving", repr(a))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_crash_backoff():
    with supervised("-w", "1", app=("--exit-after", "0", "1"), wait_ready=False) as h:
        at = []
        for ms in (100, 200, 400):
            m = h.wait_log(r"worker 0 \(pid \d+, generation 1\) exited with status 1; "
                           r"restarting in %d ms" % ms, timeout=10)
            at.append(m.start() if m else None)
        ht.ok(None not in at and at == sorted(at),
              "a program exiting at once: restarted after 100, then 200, then 400 ms",
              lambda: "positions %r\n%s" % (at, h.log()[-2000:]))
        ht.ok(h.running(), "and herd keeps running")


def test_start_limit():
    START_LIMIT = ht.source_define("START_LIMIT")
    with supervised("-w", "1", app=("--exit-after", "0", "1"), wait_ready=False) as h:
        status = h.wait_exit(30)
        ht.ok(status == 1, "a program exiting 1 at every start, never ready: herd gives up "
              "with status 1 (%r)" % status, lambda: h.log()[-1500:])
        ht.ok(re.search(r"%d quick deaths in a row before the pool was ever ready: giving up"
                        % START_LIMIT, h.log()),
              "and says why", lambda: h.log()[-1500:])
        ht.is_(h.count_log(r"exited with status 1"), START_LIMIT,
               "after %d starts" % START_LIMIT)


def notify_name(master):
    """The abstract name of a master's notify socket, from /proc/net/unix."""
    with open("/proc/net/unix") as f:
        for line in f:
            path = line.split()[-1]
            if path.startswith("@herd-%d-" % master):
                return path
    return None


def test_notify_from_a_stranger():
    # The notify socket's name is visible to everyone (/proc/net/unix): what
    # makes a message count is the sender's pid, from the kernel.
    with supervised("-w", "1", "--notify", "-v", app=("--notify-ready-after", "60"),
                    wait_ready=False) as h:
        ht.ok(h.wait_log(r"worker 0 started", timeout=10), "--notify: the child starts")
        name = ht.wait_until(lambda: notify_name(h.pid), 5)
        ht.ok(name, "the notify socket is found in /proc/net/unix (%s)" % name)
        if not name:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for text in (b"READY=1", b"STATUS=forged", b"WATCHDOG=trigger"):
            s.sendto(text, "\0" + name[1:])
        s.close()
        ht.ok(h.wait_log(r"notify: dropped a message from pid %d, not a worker" % os.getpid(),
                         timeout=5),
              "--notify: a message from a process that is no worker is dropped",
              lambda: h.log()[-1500:])
        time.sleep(0.5)
        log = h.log()
        ht.ok(h.running() and not re.search(r"ready:|status: forged", log),
              "--notify: so the stranger's READY=1 and STATUS= change nothing",
              lambda: log[-1500:])


def test_listener_shut_down_by_a_program():
    # shutdown(2) on the shared socket stops it for the master and every
    # worker; herd makes it listen again when the worker that did it exits.
    with supervised("-w", "2", app=("--shutdown-listener",)) as h:
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ht.ok(h.wait_log(r"generation 2 ready", since=mark, timeout=15),
              "a reload of programs that shut their listener down on the way out")
        ht.ok(h.wait_log(r"the listening socket was shut down \(by a worker\?\); listening "
                         r"again", since=mark, timeout=10),
              "herd sees the socket stopped and listens again", lambda: h.log()[mark:])
        r = ht.until_answer(lambda: fetch(h.addr, "/whoami"),
                            lambda a: "gen=2" in a[1], timeout=10)
        ht.ok(r is not None, "generation 2 serves on the same socket", lambda: h.log()[mark:])


def test_watchdog_trigger():
    # A program that knows it is broken says so: WATCHDOG=trigger is acted on
    # as a missed watchdog, at once.
    with supervised("-w", "1", "--notify", "--watchdog", "30",
                    app=("--watchdog-trigger-after", "1.5")) as h:
        pid = h.workers()[0]
        m = h.wait_log(r"worker 0 \(pid %d\): watchdog: it sent WATCHDOG=trigger; killing it"
                       % pid, timeout=10)
        ht.ok(m, "--watchdog 30: a program's WATCHDOG=trigger kills it at once",
              lambda: h.log()[-1500:])
        ht.ok(ht.wait_until(lambda: not ht.alive(pid) and len(h.workers()) == 1, 10),
              "and it is replaced")


def timed_stop(h, sig):
    """Signals herd to stop: its workers then, its exit status, and how long
    it took (None if it did not exit within 10 s)."""
    workers = h.workers()
    t0 = time.monotonic()
    h.signal(sig)
    status = h.wait_exit(10)
    return workers, status, time.monotonic() - t0


def test_stop_timeout():
    with supervised("-w", "1", "--shutdown-timeout", "1", "--stop-signal", "SIGTERM",
                    app=("--ignore-term",)) as h:
        workers, status, secs = timed_stop(h, signal.SIGQUIT)
        ht.ok(status == 0 and 0.8 <= secs < 4.5,
              "SIGQUIT, a child ignoring its stop signal, --shutdown-timeout 1: herd exits 0 "
              "after 1-4 s (%.1f s)" % secs, "status %r" % status)
        ht.ok(re.search(r"did not drain in time; killing it", h.log()),
              "the log says it did not drain in time and was killed", lambda: h.log()[-1500:])
        ht.ok(not any(ht.alive(p) for p in workers), "and the child is gone")
    with supervised("-w", "1", app=("--ignore-term",)) as h:
        workers, status, secs = timed_stop(h, signal.SIGTERM)
        ht.ok(status == 0 and secs < 4.5 and not any(ht.alive(p) for p in workers),
              "SIGTERM (fast stop), a child ignoring TERM: killed, herd exits 0 within "
              "3 s and a bit (%.1f s)" % secs, "status %r" % status)


# A passfd program that says READY and then never reads its channel: QUIT
# there goes unheard, as with a program written for the stop signal only.
DEAF_PASSFD = ("import os, socket, struct, time\n"
               "c = socket.socket(fileno=int(os.environ['HERD_CHANNEL_FD']))\n"
               "c.send(struct.pack('=IIiiIi', 6, 0, os.getpid(), -1, 0, 0))\n"
               "time.sleep(60)\n")


def test_passfd_quit_escalates():
    with ht.Herd("-w", "1", "-m", "passfd", "--shutdown-timeout", "1", "--",
                 sys.executable, "-c", DEAF_PASSFD, name="herd -m passfd -- deaf program") as h:
        workers, status, secs = timed_stop(h, signal.SIGQUIT)
        ht.ok(status == 0 and 0.8 <= secs < 4.5,
              "passfd, a program deaf to QUIT, --shutdown-timeout 1: herd exits 0 after 1-4 s "
              "(%.1f s)" % secs, "status %r" % status)
        ht.ok(re.search(r"did not drain in time; sending it signal 15", h.log()),
              "the log says its stop signal came at the timeout", lambda: h.log()[-1500:])
        ht.ok(not re.search(r"killing it", h.log()),
              "and that signal was enough: no SIGKILL", lambda: h.log()[-1500:])
        ht.ok(not any(ht.alive(p) for p in workers), "and the program is gone")


# ---- signals and readiness -----------------------------------------------------


def test_reload_signal():
    with supervised("-w", "2", "--reload-signal", "USR2",
                    app=("--record-signals", "{dir}/signals")) as h:
        path = os.path.join(h.dir, "signals")
        before = sorted(h.workers())
        h.signal(signal.SIGHUP)
        ht.wait_until(lambda: len(read_lines(path)) >= 2, 5)
        ht.is_(read_lines(path), ["USR2", "USR2"],
               "--reload-signal USR2: SIGHUP reaches each of the 2 children as USR2")
        time.sleep(1.5)  # past --ready-delay: a new generation would be serving by now
        gens = set()
        ht.whoami_until(h.addr, lambda a: gens.add(a[2]) or False, timeout=1)
        ht.ok(sorted(h.workers()) == before and gens == {1} and "generation 2" not in h.log(),
              "--reload-signal: no new generation (same pids, /whoami gen 1)",
              "pids %r then %r, generations %r" % (before, h.workers(), gens))


# A sleep loop that dies of USR1's default action, as Python, Node and Go
# programs do.
SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"


def test_reopen_not_forwarded():
    with ht.Herd("-w", "2", "--", sys.executable, "-c", SLEEPER,
                 name="herd -w 2 -- python3 -c <sleep loop>") as h:
        before = sorted(h.workers())
        h.signal(signal.SIGUSR1)
        ht.ok(h.wait_log(r"log reopened", timeout=5), "SIGUSR1 to herd: it reopens its log")
        time.sleep(0.5)
        ht.ok(sorted(h.workers()) == before and "killed by signal" not in h.log(),
              "SIGUSR1 to herd: programs that die of USR1 are not sent it by default",
              lambda: h.log()[-1500:])


def test_reopen_signal():
    with supervised("-w", "2", "--reopen-signal", "USR1",
                    app=("--record-signals", "{dir}/signals")) as h:
        path = os.path.join(h.dir, "signals")
        h.signal(signal.SIGUSR1)
        ht.wait_until(lambda: len(read_lines(path)) >= 2, 5)
        ht.is_(read_lines(path), ["USR1", "USR1"],
               "--reopen-signal USR1: SIGUSR1 to herd reaches each child as USR1")


def test_notify_ready():
    with supervised("-w", "1", "--notify", app=("--notify-ready-after", "1.5", "--status", "hello")) as h:
        log = h.log()
        # The line the child writes before its send: the one after it races
        # the master's "ready:" (both append to the same file).
        sent = re.search(r"pyapp pid=\d+ slot=0: sending READY=1", log)
        ready = re.search(r"ready: 1 workers", log)
        ht.ok(sent and ready and sent.start() < ready.start(),
              "--notify: herd is ready only after the child sent READY=1 (log order)", log[-1500:])
        gap = seconds_between(h, r"worker 0 started", r"ready: 1 workers")
        ht.ok(gap is not None and gap >= 1.3,
              "--notify: ready %s s after the start (READY=1 sent after 1.5 s)" % gap)
        ht.ok(h.wait_log(r"worker 0 status: hello$", timeout=5),
              "--notify: STATUS=hello is logged as 'worker 0 status: hello'")
        _, env = env_of(h.addr)
        ht.ok(env.get("NOTIFY_SOCKET", "").startswith("@") and "WATCHDOG_USEC" not in env,
              "--notify: NOTIFY_SOCKET is an abstract address; no WATCHDOG_USEC without "
              "--watchdog", repr(env))
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ht.ok(h.wait_log(r"generation 2 ready", since=mark, timeout=15), "--notify: a reload "
              "completes")
        gap = seconds_between(h, r"worker 0 started \(pid \d+, generation 2\)", r"generation 2 ready")
        ht.ok(gap is not None and gap >= 1.3,
              "--notify: the new generation is ready only on its READY=1 (%s s)" % gap)
    with supervised("-w", "1", "--notify", app=("--notify-ready-after", "60"),
                    wait_ready=False) as h:
        ht.ok(h.wait_log(r"worker 0 started", timeout=10), "--notify, no READY=1: the child starts")
        time.sleep(2.5)
        ht.ok(h.running() and not re.search(r"ready:", h.log()),
              "--notify: a child that has not sent READY=1 is not ready after 2.5 s",
              lambda: h.log()[-1500:])


def test_unready_pool_says_why():
    """A pool that never becomes ready at start-up waited in silence. 5 s
    after the start herd warns, naming what it waits for, and again only
    every 30 s."""
    with supervised("-w", "2", "--notify", app=("--notify-ready-after", "60"),
                    wait_ready=False) as h:
        m = h.wait_log(r"warn .*0 of 2 workers ready (\d+) s after start: waiting for "
                       r"READY=1 from 2 programs \(--notify\)$", timeout=10)
        ht.ok(m and 5 <= int(m.group(1)) <= 6,
              "--notify, no READY=1: after 5 s the log says the pool waits for READY=1 from "
              "2 programs", lambda: h.log()[-1500:])
        time.sleep(2)
        ht.ok(h.count_log(r"workers ready \d+ s after start") == 1,
              "and says it once, not on every wake-up", lambda: h.log()[-1500:])
    # /bin/false: a program that dies within milliseconds is in back-off,
    # not starting, at almost any instant (a slower one made this flaky).
    with ht.Herd("-w", "1", "--", "/bin/false", wait_ready=False,
                 name="herd -w 1 -- /bin/false") as h:
        m = h.wait_log(r"0 of 1 workers ready \d+ s after start: waiting for 1 slot backing "
                       r"off after quick deaths \(slot 0: \d+ in a row, next start in \d+ ms\)",
                       timeout=10)
        ht.ok(m, "a program that exits at once: the warning names the slot backing off",
              lambda: h.log()[-1500:])


def test_watchdog():
    with supervised("-w", "1", "--notify", "--watchdog", "1",
                    app=("--watchdog-stop-after", "1")) as h:
        pid, env = env_of(h.addr)
        ht.ok(env.get("WATCHDOG_USEC") == "1000000" and env.get("WATCHDOG_PID") == str(pid),
              "--watchdog 1: WATCHDOG_USEC=1000000, WATCHDOG_PID the child's pid", repr(env))
        mark = h.mark()
        ht.ok(h.wait_log(r"(?i)watchdog", since=mark, timeout=10),
              "--watchdog: a child that stops pinging is killed, and the log says watchdog",
              lambda: h.log()[-1500:])
        new = ht.whoami_until(h.addr, lambda a: a[0] != pid, timeout=10)
        ht.ok(new and new[1] == 0 and not ht.alive(pid),
              "--watchdog: a new worker replaces it in slot 0", repr((pid, new)))
    with supervised("-w", "1", "--notify", "--watchdog", "1") as h:
        pid = h.workers()[0]
        mark = h.mark()
        time.sleep(3)
        ht.ok(h.workers() == [pid] and not re.search(r"(?i)watchdog", h.log()[mark:]),
              "--watchdog: a child pinging every 0.5 s lives on", lambda: h.log()[mark:])


def test_watchdog_backs_off():
    # A program that never pings is killed each time its watchdog runs out:
    # like a crash, the restarts back off rather than loop (and dump core)
    # as fast as the watchdog allows.
    with supervised("-w", "1", "--notify", "--watchdog", "0.2",
                    app=("--watchdog-stop-after", "0")) as h:
        m = h.wait_log(r"worker 0: restarting in 100 ms", timeout=10)
        ht.ok(m, "--watchdog: repeated watchdog kills back off (100 ms, ...)",
              lambda: h.log()[-1500:])
        ht.ok(h.running(), "--watchdog: the master carries on")


def test_exec_checked_before_ready():
    # With no ready delay, a child is still not ready before its exec is
    # known to have happened: a missing program stops herd at start.
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    rc, out, secs = run_herd(["-l", addr, "-w", "1", "--ready-delay", "0", "--",
                              "/nonexistent/prog"])
    ht.ok(rc == 1 and "ready:" not in out and "No such file or directory" in out,
          "--ready-delay 0 and a missing program: never ready, status 1",
          "status %r after %.1f s\n%s" % (rc, secs, out[-1500:]))


def test_user_log_reopen():
    # In-process workers running as nobody cannot open the log file again
    # (it belongs to root): the master hands them its reopened file.
    if os.geteuid() != 0:
        ht.skip("--user nobody log reopen", "not running as root")
        return
    with ht.Herd("-w", "1", "-u", "nobody", "--log", "{dir}/herd.log",
                 name="herd -u nobody --log") as h:
        path = os.path.join(h.dir, "herd.log")
        os.rename(path, path + ".1")
        h.signal(signal.SIGUSR1)
        ht.wait_until(lambda: os.path.exists(path), 5)
        worker = h.workers()[0]

        def worker_log_is_new():
            for fd in os.listdir("/proc/%d/fd" % worker):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (worker, fd)) == path:
                        return True
                except OSError:
                    pass
            return False
        ht.ok(ht.wait_until(worker_log_is_new, 5),
              "-u nobody: after USR1 the worker writes to the new log file",
              lambda: repr(os.listdir("/proc/%d/fd" % worker)))
        with open(path) as f:
            text = f.read()
        with open(path + ".1") as f:
            text += f.read()
        ht.ok("cannot reopen" not in text,
              "-u nobody: no worker failed to reopen the log")


def test_orphan_reaped():
    h = supervised("-w", "1", app=("--orphan",), wait_ready=False)
    path = os.environ["PYAPP_ORPHAN_FILE"] = os.path.join(h.dir, "orphan")
    try:
        with h:
            text = ht.wait_until(lambda: "".join(read_lines(path)), 10)
            orphan = int(text) if text.isdigit() else None
            # Reparented once its parent (the program's first fork) exits.
            ht.wait_until(lambda: (ht.proc_stat(orphan) or (0, h.pid))[1] == h.pid, 5)
            st = ht.proc_stat(orphan) if orphan else None
            ht.ok(st is not None and st[1] == h.pid,
                  "--orphan: the program's grandchild is reparented to herd",
                  "orphan %r, stat %r, herd %d" % (orphan, st, h.pid))
            gone = st and ht.wait_until(lambda: (ht.proc_stat(orphan) or (0, 0, 0, -1))[3] != st[3], 5)
            ht.ok(gone, "--orphan: herd reaps it (no zombie left)",
                  lambda: repr(ht.proc_stat(orphan)) if orphan else "no orphan")
            ht.ok(h.wait_log(r"ready: 1 workers", timeout=10), "--orphan: herd gets ready")
            ht.ok(orphan and not re.search(r"worker \d+ \(pid %d[,)]" % orphan, h.log()),
                  "--orphan: it is not taken for a worker that exited", lambda: h.log()[-1500:])
            ht.is_(len(h.workers()), 1, "--orphan: one worker, still")
    finally:
        del os.environ["PYAPP_ORPHAN_FILE"]


def test_programs_die_with_herd():
    # README: workers never outlive the master. An external program has no
    # channel to notice it by (passfd aside), so this is PR_SET_PDEATHSIG.
    with supervised("-w", "2") as h:
        kids = h.workers()
        h.signal(signal.SIGKILL)
        h.wait_exit(5)
        ht.ok(ht.wait_until(lambda: not any(ht.alive(p) for p in kids), 5),
              "SIGKILL to herd: its programs die with it",
              lambda: repr([(p, ht.proc_stat(p)) for p in kids]))


def test_reload_under_load():
    with supervised("-w", "2") as h:
        done, load = ht.reloads_under_load(h, 3)
        ht.ok(done == 3 and load.failed == 0 and load.ok > 100,
              "3 reloads of pyapp -w 2 under load: no request fails", load.summary())
        a = ht.whoami_until(h.addr, lambda a: a[2] == 4, timeout=10)
        ht.ok(a is not None, "generation 4 answers after the third reload", repr(a))
        ht.wait_until(lambda: len(h.workers()) == 2, 5)
        info = h.worker_info()
        ht.ok(all(info.get(p, (0, 0))[1] == 4 for p in h.workers()),
              "only generation 4 is left", repr({p: info.get(p) for p in h.workers()}))


# ---- options ------------------------------------------------------------------


def test_usage_errors():
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    addr2 = "%s:%d" % (ht.HOST, ht.free_port())
    prog = ["--", sys.executable, PYAPP]
    for args, what, names in [
            (["-m", "passfd", "--fd0"], "--fd0 with -m passfd", ["--fd0"]),
            (["-l", addr2, "--fd0"], "--fd0 with two -l", ["--fd0"]),
            (["--watchdog", "1"], "--watchdog without --notify", ["--watchdog", "--notify"]),
            (["--stop-signal", "NOPE"], "--stop-signal NOPE", ["--stop-signal", "NOPE"]),
            (["--reload-signal", "NOPE"], "--reload-signal NOPE", ["--reload-signal", "NOPE"]),
            (["--reopen-signal", "NOPE"], "--reopen-signal NOPE", ["--reopen-signal", "NOPE"])]:
        rc, out, _ = run_herd(["-l", addr] + args + prog)
        ht.ok(rc == 2 and any(w in out for w in names) and "worker 0 started" not in out,
              "usage error, status 2 and a message naming %s: %s" % (" or ".join(names), what),
              "status %r\n%s" % (rc, out[-1500:]))
    user = "herd-no-such-user-%d" % os.getpid()
    rc, out, _ = run_herd(["-l", addr, "-w", "1", "-u", user] + prog)
    ht.ok(rc not in (0, "timeout") and "worker 0 started" not in out and
          (user in out or os.geteuid() != 0),
          "-u with an unknown user: non-zero exit, the name in the message",
          "status %r\n%s" % (rc, out[-1500:]))
    with supervised("-w", "1", "--stop-signal", "INT", "--reload-signal", "SIGWINCH") as h:
        ht.ok(h.running(), "signal names INT and SIGWINCH are accepted")


def test_user():
    if os.geteuid() != 0:
        ht.skip("--user nobody", "not running as root")
        return
    try:
        pw = pwd.getpwnam("nobody")
        other = grp.getgrnam("daemon")
    except KeyError:
        ht.skip("--user nobody", "no user nobody or group daemon here")
        return
    python = ht.python_for_all()
    if python is None:
        ht.skip("--user nobody", "no Python interpreter that nobody may run")
        return
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        os.chmod(d, 0o755)  # nobody must read the program
        app = os.path.join(d, "pyapp.py")
        shutil.copy(PYAPP, app)
        os.chmod(app, 0o755)
        for spec, gid in (("nobody", pw.pw_gid), ("nobody:daemon", other.gr_gid)):
            with ht.Herd("-w", "1", "-u", spec, "--", python, app,
                         name="herd -u %s -- pyapp" % spec) as h:
                pid, env = env_of(h.addr)
                ht.is_(env.get("UID"), str(pw.pw_uid), "-u %s: the program runs as nobody" % spec)
                ht.is_(env.get("SETUID0"), "refused", "-u %s: setuid(0) fails in it" % spec)
                with open("/proc/%d/status" % pid) as f:
                    status = dict(line.split(":", 1) for line in f)
                uids, gids = status["Uid"].split(), status["Gid"].split()
                groups = status["Groups"].split()
                ht.ok(uids == [str(pw.pw_uid)] * 4 and gids == [str(gid)] * 4 and "0" not in groups,
                      "-u %s: /proc status: every uid %d, every gid %d, no group 0"
                      % (spec, pw.pw_uid, gid), repr((uids, gids, groups)))
                # setuid() clears PR_SET_PDEATHSIG: it must be set after it.
                h.signal(signal.SIGKILL)
                h.wait_exit(5)
                ht.ok(ht.wait_until(lambda: not ht.alive(pid), 5),
                      "-u %s: the program still dies with herd" % spec)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(*tests):
    """ht.run, with a herd that did not start reported in a line or two."""
    for t in tests:
        try:
            t()
        except Exception as e:
            if isinstance(e, RuntimeError) and "did not become ready" in str(e):
                ht.ok(False, "%s: herd started and became ready" % t.__name__, str(e)[-2500:])
            else:
                ht.ok(False, "%s ran to the end" % t.__name__, traceback.format_exc())
        ht._teardown_all()
    ht.done()


run(test_systemd_protocol, test_two_listeners, test_fd0, test_exact_fds, test_passfd,
    test_exec_failure, test_crash_backoff, test_start_limit, test_stop_timeout,
    test_passfd_quit_escalates,
    test_reload_signal,
    test_reopen_not_forwarded, test_reopen_signal, test_notify_ready, test_unready_pool_says_why, test_notify_from_a_stranger, test_listener_shut_down_by_a_program,
    test_watchdog_trigger, test_watchdog, test_watchdog_backs_off, test_exec_checked_before_ready,
    test_user_log_reopen, test_orphan_reaped, test_programs_die_with_herd,
    test_reload_under_load,
    test_usage_errors, test_user)

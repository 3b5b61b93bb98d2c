#!/usr/bin/env python3
"""output.py: what a program's children write to stdout and stderr is
logged by the master, a line at a time, as "worker N (pid P, generation
G): line": both streams through one pipe, long lines cut in pieces marked
"continued", bytes made printable, a flood rate limited with a count of
what was not logged while the program writes on unhindered and herd ctl
answers, a new generation's lines with its number, lines that follow the
log to its new file on a reopen, a grandchild's lines after its worker
exited, a bound on the pipes such grandchildren keep open, and the pipes
handed over across a binary upgrade. --inherit-output passes the bytes
through untouched. tests/progs/chatter.py is the program."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

CHATTER = os.path.join(ht.REPO, "tests", "progs", "chatter.py")
LINE_MAX = ht.source_define("OUTPUT_LINE_MAX")
PER_SEC = ht.source_define("OUTPUT_PER_SEC")
LINGER_MAX = ht.source_define("OUTPUT_LINGER_MAX")
FAST = ("--ready-delay", "0.3")


def chatter(*args, mode="lines", extra=(), **kw):
    return ht.Herd(*args, "--", sys.executable, CHATTER, mode, *extra,
                   name="herd %s -- chatter.py %s" % (" ".join(args), mode), **kw)


def line_re(slot, pid, gen, text):
    """A logged line of output; text is a regular expression."""
    return r"^\S+ info \d+ master: worker %d \(pid %d, generation %d\): %s$" % (
        slot, pid, gen, text)


def said(h, slot, pid, gen, text, since=0, timeout=5):
    return h.wait_log(line_re(slot, pid, gen, re.escape(text)), since, timeout)


def pipe_of(pid, fd):
    try:
        return os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None


def pipes(pid):
    return sorted(t for t in ht.fd_links(pid).values() if t.startswith("pipe:"))


def test_lines():
    with chatter("-w", "2", *FAST) as h:
        info = h.worker_info()
        for pid, (slot, gen) in sorted(info.items(), key=lambda kv: kv[1]):
            who = "slot=%d gen=%d pid=%d" % (slot, gen, pid)
            ht.ok(said(h, slot, pid, gen, "out " + who),
                  "a line to stdout is logged as worker %d (pid, generation 1)" % slot,
                  lambda: h.log()[-1500:])
            ht.ok(said(h, slot, pid, gen, "err " + who),
                  "a line to stderr is logged the same way (worker %d)" % slot)
        pid, (slot, gen) = min(info.items(), key=lambda kv: kv[1])
        ht.ok(said(h, slot, pid, gen, "ctl ?[31m \u00e9 ? ? tab\there"),
              "control bytes and bad UTF-8 become '?', UTF-8 and tabs stay, CRLF's CR "
              "goes", lambda: h.log()[-1500:])
        h.wait_log(line_re(slot, pid, gen, "ctl .*"))
        pieces = re.findall(r"worker %d \(pid %d, generation %d\)( continued)?: (x+)$" %
                            (slot, pid, gen), h.log(), re.M)
        ht.is_([(c != "", len(x)) for c, x in pieces],
               [(False, LINE_MAX), (True, LINE_MAX), (True, 2000 - 2 * LINE_MAX)],
               "a line of 2000 bytes is logged in pieces of %d, the later ones marked "
               "'continued'" % LINE_MAX)
        ht.ok(not re.search(r"^(out|err) slot=", h.log(), re.M),
              "nothing of the children's output reaches herd's stderr raw")
        out, err = pipe_of(pid, 1), pipe_of(pid, 2)
        ht.ok(out is not None and out == err and out.startswith("pipe:") and
              out in pipes(h.pid),
              "the child's fds 1 and 2 are one pipe, whose other end the master holds",
              "fd 1 %s, fd 2 %s, master's pipes %s" % (out, err, pipes(h.pid)))
        mark = h.mark()
        h.signal(signal.SIGHUP)
        ht.ok(h.wait_log(r"generation 2 ready", since=mark),
              "reload: generation 2 ready")
        new = [(p, s) for p, (s, g) in h.worker_info().items() if g == 2]
        ht.ok(len(new) == 2 and all(said(h, s, p, 2, "out slot=%d gen=2 pid=%d" % (s, p), mark)
                                    for p, s in new),
              "after a reload, the new workers' lines carry generation 2",
              lambda: h.log()[mark:][-1500:])
        ht.ok(said(h, slot, pid, 1, "bye", mark),
              "an old worker's last line (on its stop signal) keeps generation 1")


def test_reopen():
    with chatter("-w", "1", *FAST, "--log", "{dir}/herd.log") as h:
        pid, (slot, gen) = next(iter(h.worker_info().items()))
        ht.ok(said(h, slot, pid, gen, "out slot=0 gen=1 pid=%d" % pid),
              "--log: output lines go to the log file")
        old = os.path.join(h.dir, "herd.log.1")
        os.rename(h.log_path(), old)
        h.extra_logs.append(old)
        h.signal(signal.SIGUSR1)
        ht.ok(h.wait_log(r"log reopened"), "SIGUSR1: herd.log reopened")
        os.kill(pid, signal.SIGUSR2)
        ht.ok(said(h, slot, pid, gen, "ping 1"),
              "a line written after the reopen lands in the new file")
        ht.ok("ping 1" not in ht._read(old), "and not in the old one")


def test_flood():
    with chatter("-w", "1", *FAST, "--control", "{dir}/ctl", mode="flood",
                 extra=("{dir}",)) as h:
        pid, (slot, gen) = next(iter(h.worker_info().items()))
        slowest_ctl = 0.0
        answered = 0
        for _ in range(5):
            t = time.monotonic()
            p = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl"),
                                "status"], capture_output=True, timeout=20)
            slowest_ctl = max(slowest_ctl, time.monotonic() - t)
            answered += p.returncode == 0 and b"ready" in p.stdout
            time.sleep(0.1)
        open(os.path.join(h.dir, "stop"), "w").close()
        done = os.path.join(h.dir, "flood.done")
        ht.wait_until(lambda: os.path.exists(done), 10)
        n, took, slowest = (ht._read(done).split() + ["0", "0", "0"])[:3]
        n, took, slowest = int(n), float(took), float(slowest)
        ht.diag("flood: %d lines in %.2f s, slowest write %.3f s; slowest herd ctl status "
                "%.3f s" % (n, took, slowest, slowest_ctl))
        ht.ok(answered == 5 and slowest_ctl < 3,
              "while a worker floods, herd ctl status answers (5 of 5, slowest %.2f s)"
              % slowest_ctl)
        ht.ok(n >= 100000 and slowest < 1,
              "the flooding program is not held up: %d lines, no write waited 1 s "
              "(slowest %.3f s)" % (n, slowest))
        flood = line_re(slot, pid, gen, r"flood (\d+)")
        dropped = r"worker %d \(pid %d\): (\d+) lines of output not logged" % (slot, pid)

        def accounted():
            log = h.log()
            return (len(re.findall(flood, log, re.M)) +
                    sum(int(d) for d in re.findall(dropped, log)))
        ht.wait_until(lambda: accounted() >= n, 5)
        logged = [int(x) for x in re.findall(flood, h.log(), re.M)]
        ht.is_(accounted(), n, "every line is either logged or counted in a 'not logged' "
               "warning")
        ht.ok(len(logged) <= PER_SEC * (int(took) + 3) and logged[:PER_SEC] ==
              list(range(PER_SEC)),
              "at most %d lines a second are logged (%d in %.1f s), the first %d of them "
              "in order" % (PER_SEC, len(logged), took, PER_SEC), repr(logged[:10]))


def test_grandchild():
    with chatter("-w", "1", *FAST, mode="orphan", extra=("{dir}",), wait_ready=False) as h:
        m = h.wait_log(r"worker 0 \(pid (\d+), generation 1\): leaving$")
        pid = int(m.group(1)) if m else -1
        gone = h.wait_log(r"worker 0 \(pid %d, generation 1\) exited with status 0" % pid)
        mark = gone.end() if gone else 0
        open(os.path.join(h.dir, "go"), "w").close()
        ht.ok(gone and h.wait_log(line_re(0, pid, 1, r"grandchild pid=\d+"), mark),
              "a grandchild's line after its worker exited is logged with the worker's "
              "slot, pid and generation", lambda: h.log()[-1500:])


def test_lingering_bound():
    # Each worker leaves a sleep holding its stdout and exits 0 (planned):
    # 8 slots refill ten times a second, so the pipes pile up past the bound.
    with ht.Herd("-w", "8", "--", "sh", "-c", "sleep 20 & exit 0", wait_ready=False,
                 name="herd -w 8 -- sh -c 'sleep 20 & exit 0'") as h:
        m = h.wait_log(r"more than %d output pipes outlive their workers; closing this one"
                       % LINGER_MAX, timeout=15)
        ht.ok(m, "past %d pipes held by gone workers' children, the oldest is closed, "
              "with a warning" % LINGER_MAX, lambda: h.log()[-1500:])
        # Besides: per worker its output pipe and its exec error pipe; for
        # a moment, one pipe more than the bound (closed in the same call),
        # and the write ends of a spawn in progress.
        most = max(len(pipes(h.pid)) for _ in range(20) if time.sleep(0.02) is None)
        ht.ok(most <= LINGER_MAX + 1 + 2 * 8 + 2,
              "the master holds at most %d + 1 pipes, 2 per worker and a spawn's 2 (%d)"
              % (LINGER_MAX, most))


def test_inherit_output():
    with chatter("-w", "1", *FAST, "--inherit-output") as h:
        pid = next(iter(h.worker_info()))
        ht.ok(h.wait_log(r"^out slot=0 gen=1 pid=%d$" % pid),
              "--inherit-output: the line reaches herd's stdout as written",
              lambda: h.log()[-1500:])

        def raw():
            with open(h.out_path, "rb") as f:
                return f.read()
        ctl = b"ctl \x1b[31m \xc3\xa9 \xff \x07 tab\there\r\n"
        ht.ok(ht.wait_until(lambda: ctl in raw(), 5),
              "--inherit-output: bytes pass untouched (control bytes, bad UTF-8, CRLF)")
        ht.ok(not re.search(r"worker 0 \(pid \d+, generation 1\): ", h.log()),
              "--inherit-output: no output line in herd's log")
        ht.ok(pipe_of(pid, 2) == pipe_of(h.pid, 2) and not pipes(h.pid),
              "--inherit-output: the child's fd 2 is herd's own, and the master holds "
              "no pipe", "%s %s" % (pipe_of(pid, 2), pipes(h.pid)))


def test_upgrade():
    d = tempfile.mkdtemp(prefix="herd-integ-out-")
    try:
        binary = os.path.join(d, "herd")
        shutil.copy2(ht.HERD, binary)
        with chatter("-w", "2", prog=binary) as h:
            old = h.worker_info()
            mark = h.mark()
            h.signal(signal.SIGUSR2)
            resumed = h.wait_log(r"upgrade: resumed", since=mark, timeout=20)
            ht.ok(resumed, "upgrade: the new image resumed")
            start = resumed.end() if resumed else mark
            for pid, (slot, gen) in old.items():
                os.kill(pid, signal.SIGUSR2)
            ht.ok(all(said(h, s, p, g, "ping 1", start) for p, (s, g) in old.items()),
                  "after the upgrade, the kept workers' lines are logged by the new image",
                  lambda: h.log()[mark:][-2000:])
            ht.ok(h.wait_log(r"generation 2 ready", since=mark, timeout=20) and
                  all(said(h, s, p, g, "bye", start) for p, (s, g) in old.items()),
                  "their last lines, when the new generation retires them, too")
            new = [p for p, (s, g) in h.worker_info().items() if g == 2]
            ht.wait_until(lambda: sorted(h.workers()) == sorted(new), 10)
            ht.ok(len(new) == 2 and ht.wait_until(lambda: len(pipes(h.pid)) == 2, 5),
                  "and the master holds one pipe per worker left (%s)" % pipes(h.pid))
    finally:
        shutil.rmtree(d, ignore_errors=True)


ht.run(test_lines, test_reopen, test_flood, test_grandchild, test_lingering_bound,
       test_inherit_output, test_upgrade)

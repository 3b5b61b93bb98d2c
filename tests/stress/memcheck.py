#!/usr/bin/env python3
"""memcheck.py: a whole lifecycle of the release build under valgrind's
memcheck (`make stress`): start, serve, a worker SIGKILLed and respawned,
a reload, log reopening, scaling up and down, more serving, a graceful
stop; in each mode, and with a program. Every process valgrind saw end (the master and each worker that
exited) must report no errors and no leaked block, definite, indirect or
possible; the worker killed with SIGKILL cannot report and is the only one
without a summary.

valgrind 3.19 (Debian 12) does not know pidfd_open: under it herd signals
its workers by pid (the fallback it logs at debug level), so that path is
the one checked here."""
import glob
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integ"))
import herdtest as ht  # noqa: E402

VALGRIND = shutil.which("valgrind")
SUMMARY_RE = re.compile(r"ERROR SUMMARY: (\d+) errors")
LOST_RE = re.compile(r"(definitely|indirectly|possibly) lost: ([\d,]+) bytes in ([\d,]+) blocks")


def requests(h, n):
    if "--" in h.args:  # a program that does not speak HTTP
        return n
    ok = 0
    for _ in range(n):
        try:
            ok += ht.get(h.addr, "/", timeout=10).status == 200
        except (OSError, ValueError):
            pass
    return ok


def wait_generation(h, gen, timeout=60):
    return h.wait_log(r"generation %d ready; retiring" % gen, timeout=timeout)


def test_lifecycle_under_memcheck():
    if VALGRIND is None:
        ht.skip("memcheck", "no valgrind")
        return
    for mode in [(), ("-m", "reuseport"), ("-m", "passfd"),
                 ("--ready-delay", "0.5", "--", "/bin/sh", "-c", "exec sleep 1000")]:
        logs = tempfile.mkdtemp(prefix="herd-memcheck-")
        try:
            lifecycle(logs, mode)
        finally:
            if not os.environ.get("HERD_KEEP"):
                shutil.rmtree(logs, ignore_errors=True)


def lifecycle(logs, mode):
    what = "program" if "--" in mode else " ".join(mode) or "shared"
    vg = [VALGRIND, "--log-file=%s/vg.%%p" % logs, "--leak-check=full",
          "--show-leak-kinds=definite,indirect,possible",
          "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
          "--track-origins=yes", ht.HERD]
    with ht.Herd(*vg[1:], "-l", "{addr}", "-w", "2", "--log", "{dir}/herd.log", *mode,
                 prog=vg[0], wait_ready=False, report_clean=False,
                 name="valgrind herd -w 2 %s" % what) as h:
        ht.ok(h.wait_log(r"ready: 2 workers", timeout=60), what + ": " + "under valgrind: the pool is ready",
              lambda: h.all_output()[-2000:])
        served = requests(h, 50)

        victim = h.workers()[0]
        mark = h.mark()
        os.kill(victim, signal.SIGKILL)
        respawned = h.wait_log(r"worker \d+ started", since=mark, timeout=60)
        ht.ok(respawned and ht.wait_until(lambda: len(h.workers()) == 2, 60),
              what + ": " + "a SIGKILLed worker is replaced")
        time.sleep(2)  # valgrind starts slowly: let the new one be ready
        served += requests(h, 20)

        h.signal(signal.SIGHUP)
        ht.ok(wait_generation(h, 2), what + ": " + "a reload: generation 2 ready",
              lambda: h.log()[-2000:])
        h.signal(signal.SIGUSR1)
        ht.ok(h.wait_log(r"reopen", timeout=30), what + ": " + "the logs are reopened")
        h.signal(signal.SIGTTIN)
        ht.ok(ht.wait_until(lambda: len(h.workers()) == 3, 60), what + ": " + "scaled up to 3")
        time.sleep(2)
        h.signal(signal.SIGTTOU)
        ht.ok(ht.wait_until(lambda: len(h.workers()) == 2, 60), what + ": " + "and down to 2")
        served += requests(h, 50)
        ht.is_(served, 120, what + ": " + "120 requests served through it all")

        h.signal(signal.SIGQUIT)
        status = h.wait_exit(90)
        ht.is_(status, 0, what + ": a graceful stop: the master exits 0 (valgrind found no error: "
               "it would exit 99)")

    # valgrind writes each process's summary when it ends: give the last
    # workers a moment after their master.
    time.sleep(1)
    reports = {}
    for path in glob.glob(os.path.join(logs, "vg.*")):
        with open(path, errors="replace") as f:
            reports[int(path.rsplit(".", 1)[1])] = f.read()
    summaries = {pid: text for pid, text in reports.items() if SUMMARY_RE.search(text)}
    errors = {pid: int(SUMMARY_RE.search(t).group(1)) for pid, t in summaries.items()}
    lost = {}
    for pid, text in summaries.items():
        for kind, nbytes, _ in LOST_RE.findall(text):
            lost[kind] = lost.get(kind, 0) + int(nbytes.replace(",", ""))
    bad = {pid: reports[pid] for pid, n in errors.items() if n}
    # A program's processes are not valgrind's (no --trace-children): the
    # master alone reports.
    want = 1 if "--" in mode else 5
    ht.ok(len(summaries) >= want, what + ": valgrind reports from the master and the workers that ended "
          "(%d of %d processes)" % (len(summaries), len(reports)))
    ht.ok(not bad, what + ": " + "no memcheck errors in any process",
          lambda: "\n".join(t[-3000:] for t in list(bad.values())[:2]))
    ht.ok(sum(lost.values()) == 0, "%s: no leaks: %r" % (what, lost or "none"),
          lambda: "\n".join(t[-3000:] for t in summaries.values() if "lost:" in t)[:6000])
    unreported = [pid for pid in reports if pid not in summaries]
    # A program's children are valgrind's until their exec: they leave a
    # log without a summary.
    ht.ok(set(unreported) <= {victim} or "--" in mode,
          what + ": " + "only the SIGKILLed worker has no summary", repr(unreported))
    ht.diag("memcheck %s: %d processes (master and workers) reported, %d errors in all, "
            "bytes lost: definitely %d, indirectly %d, possibly %d; %d without a summary (the "
            "SIGKILLed worker, or a program's exec)" % (what, len(summaries), sum(errors.values()),
                                   lost.get("definitely", 0), lost.get("indirectly", 0),
                                   lost.get("possibly", 0), len(unreported)))


ht.run(test_lifecycle_under_memcheck)

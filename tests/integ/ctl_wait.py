#!/usr/bin/env python3
"""herd ctl reload and herd ctl upgrade report the outcome: they wait until
the new generation serves (exit 0) or is abandoned (exit 1, with which
worker died how, or what timed out); --no-wait returns once it starts, and
`herd ctl generation N` tells the outcome later."""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")


def failing_pool(h_args=(), name="a pool whose new workers fail"):
    """A program pool whose workers exit 1 once {dir}/bad exists: a reload
    after it is created cannot succeed."""
    script = 'test -e "$1/bad" && exit 1; exec sleep 600'
    return ht.Herd("--control", "{dir}/ctl.sock", "-w", "2", "--ready-delay", "0.3",
                   *h_args, "--", "/bin/sh", "-c", script, "sh", "{dir}", name=name)


def test_reload_waits_until_ready():
    with ht.Herd("-w", "2", control=True, name="herd -w 2, herd ctl reload waits") as h:
        rc, out, err = ht.ctl(h.control_path(), "reload")
        st = h.status()
        ht.ok(rc == 0 and re.fullmatch(r"reload: generation 2 starting\n"
                                       r"generation 2: ready in [0-9.]+ s\n", out),
              "herd ctl reload: exit 0 once generation 2 is ready, and says so",
              "status %r\n%s%s" % (rc, out, err))
        ht.ok(ht.serving(st, 2, 2) and st["reloads"] == 1,
              "when it returns, generation 2 serves and the reload is counted",
              lambda: repr(st))


def test_reload_says_why_it_was_abandoned():
    with failing_pool(name="herd ctl reload, new workers exit 1") as h:
        open(os.path.join(h.dir, "bad"), "w").close()
        rc, out, err = ht.ctl(h.control_path(), "reload")
        ht.ok(rc == 1 and out == "reload: generation 2 starting\n" and
              re.search(r"^herd ctl: generation 2: abandoned after [0-9.]+ s: did not "
                        r"start: worker \d+ \(pid \d+, generation 2\) exited with "
                        r"status 1\n\Z", err),
              "herd ctl reload: exit 1, naming the worker that died and how",
              "status %r\n%s%s" % (rc, out, err))
        st = h.status()
        ht.ok(ht.serving(st, 1, 2) and st["reloads"] == 0,
              "generation 1 serves on; no reload counted", lambda: repr(st))


def test_upgrade_says_what_timed_out():
    # The new binary passes its check, but its workers never become ready.
    h, copy, d = ht.upgraded_herd("-w", "1", "--notify", "--upgrade-timeout", "2", "--",
                                  sys.executable, PYAPP, control=True,
                                  name="herd ctl upgrade, never ready")
    try:
        with h:
            copy.replace("#!/bin/sh\nPYAPP_NEVER_READY=1 exec %s \"$@\"\n" % ht.HERD)
            rc, out, err = ht.ctl(h.control_path(), "upgrade")
            ht.ok(rc == 1 and re.search(r"^herd ctl: generation 2: abandoned after [0-9.]+ s: "
                                        r"was not ready in time\n\Z", err, re.M),
                  "a generation never ready: exit 1, 'was not ready in time'",
                  "status %r\n%s%s" % (rc, out, err))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_wait_and_generation():
    with failing_pool(name="herd ctl --no-wait reload") as h:
        path = h.control_path()
        open(os.path.join(h.dir, "bad"), "w").close()
        t0 = time.monotonic()
        rc, out, err = ht.ctl(path, "--no-wait", "reload")
        took = time.monotonic() - t0
        ht.ok(rc == 0 and out == "reload: generation 2 starting\n" and took < 2,
              "--no-wait: exit 0 as soon as generation 2 starts (%.2f s)" % took,
              "status %r\n%s%s" % (rc, out, err))
        said = []
        ht.wait_until(lambda: said.append(ht.ctl(path, "generation", "2")) or
                      "abandoned" in said[-1][1], 10)
        rc, out, err = said[-1]
        ht.ok(rc == 0 and re.fullmatch(r"generation 2: abandoned after [0-9.]+ s: did "
                                       r"not start: .*exited with status 1\n", out),
              "herd ctl generation 2 tells the outcome afterwards",
              "status %r\n%s%s" % (rc, out, err))
        last = h.status()["recent_reloads"][0]
        ht.ok(last["generation"] == 2 and last["state"] == "abandoned" and
              not last["upgrade"] and "exited with status 1" in last["why"],
              "status --json lists it in recent_reloads", lambda: repr(last))
        rc, out, err = ht.ctl(path, "generation", "7")
        ht.ok(rc == 1 and "not one of the last reloads" in err,
              "a generation never started: exit 1", "status %r\n%s%s" % (rc, out, err))


def test_a_queued_reload_waits_for_its_own():
    # Asked while generation 2 starts, the reload is generation 3's: it
    # waits for that one, not for the one already starting.
    with ht.Herd("-w", "1", "--ready-delay", "1", "--", "/bin/sleep", "600",
                 control=True, name="herd ctl reload while one starts") as h:
        path = h.control_path()
        first = subprocess.Popen([ht.HERD, "ctl", "--control", path, "reload"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        h.wait_log(r"reload: starting generation 2", timeout=5)
        rc, out, err = ht.ctl(path, "reload")
        out1, err1 = first.communicate(timeout=20)
        ht.ok(first.returncode == 0 and re.search(rb"generation 2: ready", out1),
              "the first waits for generation 2", out1 + err1)
        ht.ok(rc == 0 and re.fullmatch(r"reload: generation 3 follows generation 2\n"
                                       r"generation 3: ready in [0-9.]+ s\n", out),
              "the second says it follows generation 2, and waits for generation 3",
              "status %r\n%s%s" % (rc, out, err))
        ht.ok(ht.serving(h.status(), 3, 1), "generation 3 serves", lambda: h.last_status)


def test_upgrade_waits_and_says_why():
    h, copy, d = ht.upgraded_herd("-w", "2", control=True,
                                  name="herd ctl upgrade waits")
    try:
        with h:
            path = h.control_path()
            rc, out, err = ht.ctl(path, "upgrade")
            ht.ok(rc == 0 and re.search(r"generation 2 follows if it passes\n"
                                        r"generation 2: ready in [0-9.]+ s\n\Z", out),
                  "herd ctl upgrade: exit 0 once the new image's generation is ready",
                  "status %r\n%s%s" % (rc, out, err))
            copy.replace("#!/bin/sh\necho 'broken build' >&2\nexit 1\n")
            rc, out, err = ht.ctl(path, "upgrade")
            ht.ok(rc == 1 and re.search(r"generation 3: abandoned after [0-9.]+ s: '.*"
                                        r" --check' exited with status 1\n\Z", err),
                  "a binary that fails --check: exit 1, and why",
                  "status %r\n%s%s" % (rc, out, err))
            copy.replace()
            rc, out, err = ht.ctl(path, "reload")
            ht.ok(rc == 0 and "generation 4: ready" in out,
                  "the failed upgrade's number is not reused", out + err)
    finally:
        shutil.rmtree(d, ignore_errors=True)


ht.run(test_reload_waits_until_ready,
       test_reload_says_why_it_was_abandoned,
       test_upgrade_says_what_timed_out,
       test_no_wait_and_generation,
       test_a_queued_reload_waits_for_its_own,
       test_upgrade_waits_and_says_why)

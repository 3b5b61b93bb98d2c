#!/usr/bin/env python3
"""ctl_commands.py: steering herd through `herd ctl`: scale N sets the
number of workers (a count only: a sign or anything but digits is refused
and the pool left as it was), reload starts a new generation, quit stops
herd and removes the socket; upgrade refused says which reason."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_scale_reload_quit():
    with ht.controlled("-w", "2", name="herd --control, steered") as h:
        path = h.control_path()
        rc, out, _ = ht.ctl(path, "scale", "3")
        ht.ok(rc == 0 and ht.wait_until(lambda: len(h.workers()) == 3, 10),
              "scale 3: three workers", out)
        rc, out, _ = ht.ctl(path, "scale", "1")
        ht.ok(rc == 0 and ht.wait_until(lambda: len(h.workers()) == 1, 10),
              "scale 1: one worker", out)
        rc, _, _ = ht.ctl(path, "reload")
        ht.ok(rc == 0 and h.wait_status(lambda st: ht.serving(st, 2, 1) and
                                        len(ht.procs(st)) == 1),
              "reload: generation 2 takes over (status: its worker alone)",
              lambda: repr(h.last_status))
        rc, _, _ = ht.ctl(path, "quit")
        code = h.wait_exit(10)
        ht.ok(rc == 0 and code == 0, "quit: herd exits 0 (status %r)" % code)
        ht.ok(not os.path.exists(path), "the socket file is removed on exit")


def test_scale_takes_a_count_only():
    """herd.1 and herd ctl's usage give `scale N`, N the number of workers;
    nothing relative. "+3" reads as three more but set the count to 3
    (strtol takes a sign): anything but digits is refused, status 1, and
    the pool is left as it was."""
    with ht.controlled("-w", "1", name="herd --control, scale +N") as h:
        path = h.control_path()
        mark = h.mark()
        for arg in ("+3", "-1", "+1", "3x", "0x3"):
            rc, out, err = ht.ctl(path, "scale", arg)
            ht.ok(rc == 1 and "no sign" in err,
                  "herd ctl scale %s: refused, status 1, and why" % arg,
                  "status %r\n%s%s" % (rc, out, err))
        time.sleep(0.5)
        st = h.status()
        ht.ok(len(h.workers()) == 1 and st["workers"] == 1 and len(ht.procs(st)) == 1,
              "and the pool kept its one worker (status: 1 wanted, 1 there)",
              lambda: "status %r\n%s" % (st, h.log()[mark:]))
        rc, out, _ = ht.ctl(path, "scale", "2")
        ht.ok(rc == 0 and out == "workers: 2\n" and
              ht.wait_until(lambda: len(h.workers()) == 2, 10),
              "herd ctl scale 2: two workers", out)


def test_upgrade_refusal_says_why():
    """herd ctl upgrade was refused with one text for four reasons ("not
    enabled, stopping, or a check or reload under way"); it names the one.
    Here a reload whose generation takes 30 s to be ready."""
    with ht.controlled("-w", "1", "--ready-delay", "30", "--", "/bin/sleep", "600",
                       wait_ready=False, name="herd --control, upgrade during a reload") as h:
        path = h.control_path()
        ht.wait_until(lambda: os.path.exists(path), 10)
        rc, _, _ = ht.ctl(path, "--no-wait", "reload")
        rc2, out, err = ht.ctl(path, "upgrade")
        ht.ok(rc == 0 and rc2 == 1 and err == "herd ctl: upgrade refused: a reload is under way\n",
              "herd ctl upgrade during a reload: refused, status 1, and that is why",
              "status %r, %r\n%s%s" % (rc, rc2, out, err))
        # The log named SIGUSR2 whatever asked.
        said = h.wait_log(r"upgrade: a reload is under way; herd ctl upgrade refused", timeout=5)
        ht.ok(said and h.count_log(r"SIGUSR2") == 0,
              "and the log says herd ctl asked, not SIGUSR2", lambda: h.log()[-2000:])


ht.run(test_scale_reload_quit,
       test_scale_takes_a_count_only,
       test_upgrade_refusal_says_why)

#!/usr/bin/env python3
"""upgrade.py: binary upgrade in place (SIGUSR2). herd runs from a copy of
the binary in a private directory; the copy is replaced, as a package
upgrade would, and SIGUSR2 makes the master re-execute it: the same pid,
the same listening sockets, the old workers retired once the new ones are
ready, and not one request failed under continuous load, in every mode. A
binary that fails its --check never replaces the running one; one whose
workers never become ready is given up after --upgrade-timeout, and the
old generation serves on."""
import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

PYAPP = os.path.join(ht.REPO, "tests", "progs", "pyapp.py")


def upgrade(h, expect_gen, timeout=20):
    mark = h.mark()
    h.signal(signal.SIGUSR2)
    return h.wait_log(r"generation %d ready" % expect_gen, since=mark, timeout=timeout)


def test_upgrades_under_load():
    modes = [(), ("-m", "reuseport"), ("-m", "passfd")]
    for mode in modes:
        label = " ".join(mode) or "shared"
        h, c, d = ht.upgraded_herd("-w", "2", *mode, name="herd -w 2 %s, upgraded" % label)
        try:
            with h:
                pid = h.pid
                load = ht.Load(h.addr, close=2, keepalive=2).start()
                time.sleep(0.3)
                done = 0
                for gen in (2, 3, 4):
                    c.replace()
                    done += bool(upgrade(h, gen))
                    time.sleep(0.3)
                load.stop()
                ht.ok(done == 3 and load.failed == 0 and load.ok > 100,
                      "%s: 3 upgrades under load, no request fails" % label,
                      load.summary() + "\n" + "\n".join(load.errors[:5]) + h.log()[-2000:])
                ht.ok(h.running() and h.pid == pid and
                      h.count_log(r"upgrade: resumed as .* \(pid %d\)" % pid) == 3,
                      "%s: the master kept its pid (%d) through 3 upgrades" % (label, pid))
                exe = os.readlink("/proc/%d/exe" % pid)
                ht.ok(exe == c.path, "%s: it runs the new binary (exe %s)" % (label, exe))
                a = ht.whoami_until(h.addr, lambda a: a[2] == 4, timeout=10)
                ht.ok(a is not None, "%s: generation 4 serves" % label)
                ht.wait_until(lambda: len(h.workers()) == 2, 5)
                problems = ht.fd_problems(h, 2) if not mode else []
                ht.ok(not problems, "%s: after the upgrades the master holds exactly "
                      "its fds (the hand-over memfd is gone)" % label, "\n".join(problems))
        finally:
            shutil.rmtree(d, ignore_errors=True)


class Releases:
    """An install as deployments lay it out: releases side by side and a
    `current` symlink naming the live one (v1, then v2). The two are copies
    of the same binary, told apart by their files."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herd-integ-rel-")
        for v in ("v1", "v2"):
            os.mkdir(os.path.join(self.dir, v))
            shutil.copy2(ht.HERD, os.path.join(self.dir, v, "herd"))
        self.point("v1")

    def point(self, v):
        """Re-points `current` atomically, as a deploy does."""
        tmp = os.path.join(self.dir, "current.new")
        os.symlink(v, tmp)
        os.rename(tmp, os.path.join(self.dir, "current"))

    def file(self, v):
        return os.path.join(self.dir, v, "herd")


@contextlib.contextmanager
def launching(rel, how):
    """The argv[0] that starts herd as current/herd: its absolute path, a
    path relative to the start directory, or its name found in PATH."""
    link = os.path.join(rel.dir, "current", "herd")
    saved_cwd, saved_path = os.getcwd(), os.environ["PATH"]
    try:
        if how == "an absolute path":
            yield link
        elif how == "a relative path":
            os.chdir(rel.dir)
            yield "./current/herd"
        else:
            os.environ["PATH"] = os.path.dirname(link) + ":" + saved_path
            yield "herd"
    finally:
        os.chdir(saved_cwd)
        os.environ["PATH"] = saved_path


def test_symlinked_install_follows_the_link():
    """herd.1: USR2 runs the binary now at the path herd was started from.
    A `current` symlink re-pointed to a new release must be followed, not
    the file the old image came from (/proc/self/exe)."""
    for how in ("an absolute path", "a relative path", "PATH"):
        rel = Releases()
        try:
            with launching(rel, how) as prog:
                h = ht.Herd("-w", "1", prog=prog, name="herd -w 1 started as %s" % how)
                h.__enter__()  # in the launching directory and PATH
            try:
                pid = h.pid
                before = os.readlink("/proc/%d/exe" % pid)
                rel.point("v2")
                mark = h.mark()
                ok = upgrade(h, 2)
                exe = os.readlink("/proc/%d/exe" % pid)
                ht.ok(ok and before == rel.file("v1") and exe == rel.file("v2"),
                      "started as %s through current -> v1, re-pointed to v2: USR2 runs "
                      "v2 (exe %s, was %s)" % (how, exe, before), lambda: h.log()[mark:])
                link = os.path.join(rel.dir, "current", "herd")
                ht.ok(h.count_log(r"upgrade: executing %s \(pid %d stays\)" %
                                  (re.escape(link), pid), since=mark) == 1,
                      "started as %s: the log names the path executed, the link's" % how,
                      lambda: h.log()[mark:])
                a = ht.whoami_until(h.addr, lambda a: a[2] == 2, timeout=10)
                ht.ok(h.running() and h.pid == pid and a is not None,
                      "started as %s: the same master (pid %d) serves generation 2 "
                      "from v2" % (how, pid), repr(a))
            finally:
                h.close()
        finally:
            shutil.rmtree(rel.dir, ignore_errors=True)


def test_pid_file_follows():
    h, c, d = ht.upgraded_herd("-w", "1", "-p", "{dir}/herd.pid", name="herd -p, upgraded")
    try:
        with h:
            c.replace()
            ok = upgrade(h, 2)
            with open(os.path.join(h.dir, "herd.pid")) as f:
                text = f.read().strip()
            ht.ok(ok and text == str(h.pid),
                  "the pid file still names the master after an upgrade (%s)" % text)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_broken_binary_is_refused():
    h, c, d = ht.upgraded_herd("-w", "2", name="herd -w 2, upgrade to a broken binary")
    try:
        with h:
            before = sorted(h.workers())
            c.replace("#!/bin/sh\necho 'broken build' >&2\nexit 1\n")
            mark = h.mark()
            h.signal(signal.SIGUSR2)
            m = h.wait_log(r"upgrade: '.*--check' exited with status 1; the running binary "
                           r"carries on", since=mark, timeout=10)
            ht.ok(m, "a binary that fails --check is refused, and the log says why",
                  lambda: h.log()[mark:])
            ht.ok(h.running() and sorted(h.workers()) == before and
                  ht.get(h.addr, "/").status == 200,
                  "the running master and its workers carry on serving")
            ht.ok(not re.search(r"upgrade: executing", h.log()[mark:]),
                  "nothing was executed")
            c.replace()
            # The refused attempt used up generation 2 (herd ctl upgrade
            # reported it abandoned): the next is 3.
            ht.ok(upgrade(h, 3), "a good binary afterwards upgrades")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_never_ready_is_given_up():
    # The new binary passes its check, but the workers it starts never
    # become ready: after --upgrade-timeout the old generation serves on.
    h, c, d = ht.upgraded_herd("-w", "1", "--notify", "--upgrade-timeout", "2", "--",
                            sys.executable, PYAPP, name="herd --notify, never-ready upgrade")
    try:
        with h:
            pid, old = h.pid, h.workers()
            c.replace("#!/bin/sh\nPYAPP_NEVER_READY=1 exec %s \"$@\"\n" % ht.HERD)
            mark = h.mark()
            h.signal(signal.SIGUSR2)
            m = h.wait_log(r"reload abandoned: generation 2 was not ready in time; "
                           r"generation 1 keeps serving", since=mark, timeout=15)
            ht.ok(m, "an upgrade whose workers are not ready in --upgrade-timeout is "
                  "abandoned", lambda: h.log()[mark:])
            # The abandoned worker is being stopped; until it is gone it may
            # still accept on the shared socket (readiness does not gate
            # that for a program).
            ht.wait_until(lambda: sorted(h.workers()) == sorted(old), 5)
            a = ht.whoami(h.addr)
            ht.ok(h.running() and h.pid == pid and a[2] == 1 and a[0] in old,
                  "the master (same pid) and generation 1 still serve", repr(a))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sd_notify_across_an_upgrade():
    n = ht.Notifications()
    saved = os.environ.get("NOTIFY_SOCKET")
    os.environ["NOTIFY_SOCKET"] = n.path
    h, c, d = ht.upgraded_herd("-w", "1", name="herd under sd_notify, upgraded")
    try:
        with h:
            n.wait(lambda t: "READY=1" in "".join(t))
            start = len(n.texts())
            c.replace()
            ok = upgrade(h, 2)
            n.wait(lambda t: any(m.startswith("MAINPID=") for m in t[start:]), 5)
            t = n.texts()[start:]
            want = "MAINPID=%d\nREADY=1" % h.pid
            ht.ok(ok and len(t) >= 2 and t[0].startswith("RELOADING=1\nMONOTONIC_USEC=") and
                  t[-1].startswith(want),
                  "sd_notify across an upgrade: RELOADING=1, then MAINPID= (the same "
                  "pid) with READY=1", repr(t))
            ht.is_(sum(m.startswith("RELOADING=1") for m in t), 1,
                   "sd_notify across an upgrade: RELOADING=1 once (the new image does not "
                   "announce the reload its old one did)")
    finally:
        if saved is None:
            os.environ.pop("NOTIFY_SOCKET", None)
        else:
            os.environ["NOTIFY_SOCKET"] = saved
        n.close()
        shutil.rmtree(d, ignore_errors=True)


def test_names_survive_an_upgrade():
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        ht.skip("systemd-socket-activate", "not installed (Debian's systemd package)")
        return
    # Socket activation's names are in no argv: the new image has them
    # from the old one. -l's come again with the argv.
    d = tempfile.mkdtemp(prefix="herd-integ-up-")
    c = ht.Copy(d)
    port2 = ht.free_port()
    try:
        # The second socket's name comes from -l, which wins.
        with ht.Herd("-l", "{addr}", "-l", "%s:%d" % (ht.HOST, port2), "--fdname=web:x",
                     c.path, "-l", "{addr}",
                     "-l", "api=%s:%d" % (ht.HOST, port2), "-w", "1", "--",
                     sys.executable, PYAPP, prog=activate, wait_ready=False,
                     name="systemd-socket-activate --fdname=web herd, upgraded") as h:
            ht.wait_until(lambda: ht.port_is_free(h.port) is False, 5)
            ht.until_answer(lambda: ht.get(h.addr, "/", timeout=10),
                            lambda r: r.status == 200, timeout=15)
            c.replace()
            ok = upgrade(h, 2)
            r = ht.until_answer(lambda: ht.get(h.addr, "/env"),
                                lambda r: b"HERD_GENERATION=2\n" in r.body, timeout=10)
            body = r.body.decode() if r is not None else ""
            ht.ok(ok and "LISTEN_FDNAMES=web:api\n" in body,
                  "names across an upgrade: the new generation's program sees "
                  "LISTEN_FDNAMES=web:api", lambda: body + h.log()[-1500:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_upgrade_without_a_path():
    with ht.Herd("-w", "1", name="herd -w 1, USR2 while a reload is pending") as h:
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.signal(signal.SIGUSR2)
        h.wait_log(r"generation 2 ready", since=mark)
        ht.ok(h.running(), "USR2 during a reload leaves the master running")
        ht.ok(h.count_log(r"upgrade: [^;\n]+; SIGUSR2 ignored", since=mark) == 1,
              "and the log says why, and that SIGUSR2 asked", lambda: h.log()[mark:])


def test_lost_control_socket_does_not_stop_the_pool():
    # The new image re-creates --control; if it cannot (here the path now
    # holds a plain file), the workers it adopted keep serving.
    h, c, d = ht.upgraded_herd("-w", "2", "--control", "{dir}/ctl/sock",
                            name="herd --control, upgraded without it")
    try:
        with h:
            path = os.path.join(h.dir, "ctl", "sock")
            workers = sorted(h.workers())
            os.unlink(path)
            with open(path, "w") as f:
                f.write("not a socket\n")
            c.replace()
            mark = h.mark()
            ok = upgrade(h, 2)
            ht.ok(ok and h.running(), "the upgrade completes although --control cannot be "
                  "re-created", lambda: h.log()[mark:])
            ht.ok(h.wait_log(r"--control .*; serving without it", since=mark, timeout=5),
                  "and says so", lambda: h.log()[mark:])
            r = ht.until_answer(lambda: ht.whoami(h.addr), lambda a: a[2] == 2, timeout=10)
            ht.ok(r is not None, "generation 2 serves", repr(r))
            # Generation 1 was told to drain when generation 2 got ready; a
            # worker leaves once its connections are done and it has exited
            # (a few hundred ms under ASan), not at the moment gen 2 answers.
            left = ht.wait_until(lambda: not set(workers) & set(h.workers()), 10)
            ht.ok(left, "and generation 1 has left",
                  lambda: "still running: %r" % sorted(set(workers) & set(h.workers())))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# The hand-over header of src/upgrade.c (struct header, native layout) and
# sizeof(struct upgrade_proc), which the header carries as a check.
HANDOVER = "@IIIiIIi64ii64siQ"
PROC_SIZE = 80


def handover(nworkers=1, naddrs=0, addr_fds=(), nslots=0, nprocs=0, magic=0x68657264):
    fds = list(addr_fds) + [-1] * (64 - len(addr_fds))
    return struct.pack(HANDOVER, magic, 1, PROC_SIZE, nworkers, 1, 1, naddrs, *fds, -1,
                       b"", nslots, nprocs)


def test_bad_handover_is_refused():
    """HERD_UPGRADE_FD comes from herd's own exec, but what it points to
    indexes the master's tables: a state that is not right is refused with
    a message, before anything is bound, never used."""
    cases = [("garbage", b"not a hand-over at all" * 20),
             ("a wrong magic number", handover(magic=0x12345678)),
             ("a worker count out of range", handover(nworkers=100000)),
             ("a listener fd that is not open", handover(naddrs=1, addr_fds=[250]))]
    for what, data in cases:
        port = ht.free_port()
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            env = dict(os.environ, HERD_UPGRADE_FD=str(f.fileno()))
            p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, port), "-w", "1"],
                               env=env, pass_fds=[f.fileno()], capture_output=True,
                               timeout=20)
        err = p.stderr.decode(errors="replace")
        ht.ok(p.returncode == 1 and "hand-over from the old image is unusable" in err,
              "a hand-over with %s: refused, status 1" % what,
              "status %r\n%s" % (p.returncode, err[-1500:]))
        ht.ok(not ht.SANITIZER_RE.search(err), "a hand-over with %s: no sanitizer report" % what,
              err[-1500:])


ht.run(test_upgrades_under_load, test_symlinked_install_follows_the_link,
       test_pid_file_follows, test_broken_binary_is_refused, test_never_ready_is_given_up,
       test_sd_notify_across_an_upgrade, test_names_survive_an_upgrade,
       test_upgrade_without_a_path, test_lost_control_socket_does_not_stop_the_pool,
       test_bad_handover_is_refused)
ht.done()

#!/usr/bin/env python3
"""user.py: -u USER[:GROUP]: a program runs as the user, with every uid and
gid dropped and no way back to root, and still dies with herd (its
PR_SET_PDEATHSIG set after setuid); in-process workers running as the user
get the reopened log from the master. Skipped unless run as root."""
import grp
import os
import pwd
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


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
        shutil.copy(ht.PYAPP, app)
        os.chmod(app, 0o755)
        for spec, gid in (("nobody", pw.pw_gid), ("nobody:daemon", other.gr_gid)):
            with ht.Herd("-w", "1", "-u", spec, "--", python, app,
                         name="herd -u %s -- pyapp" % spec) as h:
                pid, env = ht.env_of(h.addr)
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


ht.run(test_user,
       test_user_log_reopen)

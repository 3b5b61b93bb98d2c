#!/usr/bin/env python3
"""handoff.py: how a supervised program (`herd -- PROGRAM`) gets its
listening sockets and what else it starts with: the systemd socket protocol
(LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES at fd 3.., in -l order, unix
sockets named unix_PATH), --fd0 (the one socket on fd 0), exactly those fds
and no other (not herd's --log), HERD_SLOT and the rest of the environment,
an empty signal mask and no signal ignored. tests/progs/pyapp.py is the
program."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

EMPTY_MASK = re.compile(r"0+$")
# What the Python interpreter ignores by itself as it starts.
PYTHON_IGNORES = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))


def test_systemd_protocol():
    with ht.supervised("-w", "2") as h:
        slots, pids = set(), set()
        ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or pids.add(a[0]) or slots == {0, 1},
                        timeout=15)
        ht.is_(sorted(slots), [0, 1], "systemd: both slots answer /whoami")
        ht.ok(pids and pids <= set(h.workers()), "systemd: the answers come from herd's children",
              "answered %r, children %r" % (pids, h.workers()))
        envs = ht.from_each(h.addr, ht.env_of, 2)
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
    with ht.supervised("-l", "{addr}", "-l", "%s:%d" % (ht.HOST, port2), "-w", "1",
                       name="herd -l A -l B -w 1 -- pyapp") as h:
        pid, env = ht.env_of(h.addr)
        ht.is_((env.get("LISTEN_FDS"), env.get("LISTEN_FDNAMES")),
               ("2", "127.0.0.1_%d:127.0.0.1_%d" % (h.port, port2)),
               "two -l: LISTEN_FDS=2 and both names, in -l order")
        a1, a2 = ht.whoami(h.addr), ht.whoami((ht.HOST, port2))
        ht.ok(a1[0] == a2[0] == pid, "two -l: the one worker serves both ports", repr((a1, a2, pid)))
        _, fds = ht.fds_of((ht.HOST, port2))
        ht.is_(sorted(fds), [0, 1, 2, 3, 4], "two -l: the sockets are fds 3 and 4, nothing else")
    with ht.supervised("-l", "unix:{dir}/app.sock", "-w", "1", tcp=False,
                       name="herd -l unix:PATH -w 1 -- pyapp") as h:
        path = os.path.join(h.dir, "app.sock")
        _, env = ht.env_of(path)
        ht.is_(env.get("LISTEN_FDNAMES"), "unix_" + path, "unix:PATH is named unix_PATH")


def test_fd0():
    with ht.supervised("--fd0", "-w", "1", app=("--proto", "fd0")) as h:
        r = ht.get(h.addr, "/")
        ht.ok(r.status == 200 and r.body == b"hello\n", "--fd0: serves", repr(r))
        _, fds = ht.fds_of(h.addr)
        ht.is_(sorted(fds), [0, 1, 2], "--fd0: the child has exactly fds 0, 1, 2")
        ht.ok(ht.socket_inode(fds.get(0)) in ht._listening_inodes(),
              "--fd0: fd 0 is the listening socket", repr(fds))
        out = fds.get(1, "")
        ht.ok(out.startswith("pipe:") and fds.get(2) == out and
              out in ht.fd_links(h.pid).values(),
              "--fd0: fds 1 and 2 are one pipe, read by the master (output.py)",
              "fds %r, the master's %r" % (fds, ht.fd_links(h.pid)))
        _, env = ht.env_of(h.addr)
        ht.is_([k for k in env if k.startswith("LISTEN_")], [], "--fd0: no LISTEN_* variables")


def test_exact_fds():
    with ht.supervised("-w", "1", "--log", "{dir}/herd.log") as h:
        _, fds = ht.fds_of(h.addr)
        ht.is_(sorted(fds), [0, 1, 2, 3], "systemd: the child has exactly fds 0-3, not herd's --log")
        master = {ht.socket_inode(t) for t in ht.fd_links(h.pid).values()} & ht._listening_inodes()
        ht.ok(ht.socket_inode(fds.get(3)) in master, "systemd: fd 3 is the master's listening socket",
              "fd 3 %r, master's listeners %r" % (fds.get(3), master))
    with ht.supervised("-m", "reuseport", "-w", "2") as h:
        per = ht.from_each(h.addr, ht.fds_of, 2)
        ht.ok(len(per) == 2 and all(sorted(f) == [0, 1, 2, 3] for f in per.values()),
              "reuseport: each of 2 children has exactly fds 0-3", repr(per))
        threes = [ht.socket_inode(f.get(3)) for f in per.values()]
        ht.ok(len(set(threes)) == 2 and set(threes) <= ht._listening_inodes(),
              "reuseport: the children's fd 3 are two different listening sockets", repr(threes))


ht.run(test_systemd_protocol,
       test_two_listeners,
       test_fd0,
       test_exact_fds)

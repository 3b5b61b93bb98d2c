#!/usr/bin/env python3
"""Crash-proof listeners under a service manager's fd store (systemd's
FileDescriptorStoreMax=): herd stores every listening socket, reuseport
slot sockets included, with FDSTORE=1 and a name; a master SIGKILLed, or an
upgrade that dies after --check, refuses no connection while the service
manager starts herd again with the stored sockets in LISTEN_FDS, which it
takes back by name. A small harness plays the service manager: it keeps
what herd stores, kills, and starts herd again."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


class ServiceManager:
    """systemd's part: a notify socket, an fd store (name -> fd), and
    herd started with the store's sockets in LISTEN_FDS."""

    def __init__(self, args, prog=None):
        self.dir = tempfile.mkdtemp(prefix="herd-integ-sm-")
        self.args, self.prog = list(args), prog or ht.HERD
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.store = {}
        self.notes = []
        self.proc = None
        self.logs = []

    def read(self):
        """Takes what herd sent: stores, removals, the rest as notes."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 4096, 16)
            except BlockingIOError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n")
                          if "=" in line)
            self.notes.append(fields)
            name = fields.get("FDNAME")
            if fields.get("FDSTORE") == "1" and name and len(fds) == 1:
                if name in self.store:
                    os.close(self.store[name])
                self.store[name] = fds[0]
                continue
            for fd in fds:
                os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1" and name in self.store:
                os.close(self.store.pop(name))

    def start(self):
        """herd with NOTIFY_SOCKET and FDSTORE, and the store's sockets
        from fd 3 (LISTEN_PID set by a shell that execs herd)."""
        names = sorted(self.store)
        fds = [self.store[n] for n in names]
        env = dict(os.environ, NOTIFY_SOCKET=self.path, FDSTORE="64")
        if fds:
            env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names))

        def place():
            # Through high numbers first: a source may sit at 3 + k.
            for k, fd in enumerate(fds):
                os.dup2(fd, 200 + k)
            for k in range(len(fds)):
                os.dup2(200 + k, 3 + k)
                os.close(200 + k)
        log = open(os.path.join(self.dir, "herd%d.log" % len(self.logs)), "w+")
        self.logs.append(log.name)
        cmd = ("LISTEN_PID=$$ exec \"$@\"" if fds else "unset LISTEN_PID; exec \"$@\"")
        self.proc = subprocess.Popen(["/bin/sh", "-c", cmd, "sh", self.prog] + self.args,
                                     env=env, stdout=log, stderr=subprocess.STDOUT,
                                     close_fds=False, preexec_fn=place)
        return self

    def ready(self, timeout=15):
        def seen():
            self.read()
            return any(n.get("READY") == "1" for n in self.notes)
        self.notes = []
        return ht.wait_until(seen, timeout)

    def log(self):
        with open(self.logs[-1]) as f:
            return f.read()

    def kill(self):
        """The master SIGKILLed, then (KillMode) whatever it left."""
        kids = ht.children(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        ht.wait_until(lambda: all(ht.proc_stat(k) is None or ht.proc_stat(k)[0] in "ZX"
                                  for k in kids), 5)
        self.read()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in self.store.values():
            os.close(fd)
        self.sock.close()
        found = []
        for path in self.logs:
            with open(path, errors="replace") as f:
                found += [l for l in f if ht.SANITIZER_RE.search(l)]
        ht.ok(not found, "%s: no sanitizer reports" % " ".join(self.args),
              lambda: "".join(found[:10]))
        shutil.rmtree(self.dir, ignore_errors=True)


def queue_requests(port, n):
    """n connections, each with a request sent, while nobody accepts:
    (sockets, refused)."""
    conns, refused = [], 0
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect((ht.HOST, port))
            s.sendall(b"GET /whoami HTTP/1.0\r\n\r\n")
            conns.append(s)
        except OSError:
            refused += 1
            s.close()
    return conns, refused


def answers(conns):
    """How many of conns got a 200 answer, and from which pids."""
    ok, pids = 0, set()
    for s in conns:
        try:
            data = ht.read_to_eof(s)
            m = re.search(rb"pid=(\d+)", data)
            if data.startswith(b"HTTP/1.1 200") and m:
                ok += 1
                pids.add(int(m.group(1)))
        except OSError:
            pass
        finally:
            s.close()
    return ok, pids


def test_sigkilled_master(mode, workers):
    port = ht.free_port()
    sm = ServiceManager(["-l", "%s:%d" % (ht.HOST, port), "-w", str(workers), "-m", mode])
    try:
        sm.start()
        ht.ok(sm.ready(), "%s: herd is ready" % mode, sm.log)
        want = ["herd.l.0"] + ["herd.s.0.%d" % s for s in range(1, workers)
                               if mode == "reuseport"]
        ht.ok(sorted(sm.store) == sorted(want),
              "%s: it stored its sockets: %s" % (mode, " ".join(want)),
              lambda: repr(sorted(sm.store)) + sm.log())
        sm.kill()
        conns, refused = queue_requests(port, 20)
        ht.ok(refused == 0, "%s: master and workers SIGKILLed: 0 of 20 connections "
              "refused (%d)" % (mode, refused))
        time.sleep(0.5)  # the service manager's restart delay
        sm.start()
        ht.ok(sm.ready(), "%s: herd started again" % mode, sm.log)
        ok, pids = answers(conns)
        ht.ok(ok == 20 and pids <= set(ht.children(sm.proc.pid)),
              "%s: all 20 queued requests answered by the new workers (%d)" % (mode, ok),
              sm.log)
        ht.ok(re.search(r"listening on [\d.:]+ \(from the fd store", sm.log()) and
              not re.search(r"listening on [\d.:]+\n", sm.log()),
              "%s: it took the stored socket back, binding none" % mode, sm.log)
        ht.ok(sorted(sm.store) == sorted(want),
              "%s: the store holds the same sockets, once each" % mode,
              lambda: repr(sorted(sm.store)))
    finally:
        sm.close()


def test_sigkilled_shared():
    test_sigkilled_master("shared", 2)


def test_sigkilled_reuseport():
    test_sigkilled_master("reuseport", 3)


def test_fewer_slots_leave_the_store():
    # Started again with -w 2 where -w 3 stored slot 2's socket: that one
    # is closed and taken out of the store, so nothing queues on it.
    port = ht.free_port()
    sm = ServiceManager(["-l", "%s:%d" % (ht.HOST, port), "-w", "3", "-m", "reuseport"])
    try:
        sm.start()
        sm.ready()
        sm.kill()
        sm.args[sm.args.index("-w") + 1] = "2"
        sm.start()
        ht.ok(sm.ready(), "herd -w 2 started with -w 3's sockets", sm.log)
        sm.read()
        ht.ok(sorted(sm.store) == ["herd.l.0", "herd.s.0.1"],
              "slot 2's socket left the store (FDSTOREREMOVE)",
              lambda: repr(sorted(sm.store)) + sm.log())
        got = [ht.whoami((ht.HOST, port)) for _ in range(20)]
        ht.ok(all(g is not None for g in got), "20 requests after: all answered",
              lambda: repr(got))
    finally:
        sm.close()


def test_upgrade_dying_after_check():
    # The new binary passes --check, then dies as the new image: the master
    # is gone, and the service manager starts herd again from the store.
    d = tempfile.mkdtemp(prefix="herd-integ-up-")
    copy = ht.Copy(d)
    port = ht.free_port()
    sm = ServiceManager(["-l", "%s:%d" % (ht.HOST, port), "-w", "2"], prog=copy.path)
    try:
        sm.start()
        ht.ok(sm.ready(), "herd is ready", sm.log)
        copy.replace('#!/bin/sh\nfor a; do [ "$a" = --check ] && exec %s "$@"; done\n'
                     'exit 1\n' % ht.HERD)
        kids = ht.children(sm.proc.pid)
        sm.proc.send_signal(signal.SIGUSR2)
        code = sm.proc.wait(15)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        conns, refused = queue_requests(port, 20)
        ht.ok(code == 1 and refused == 0,
              "the upgraded image died (status %r): 0 of 20 connections refused (%d)"
              % (code, refused), sm.log)
        copy.replace()
        sm.start()
        ht.ok(sm.ready(), "herd started again", sm.log)
        ok, _ = answers(conns)
        ht.ok(ok == 20, "all 20 queued requests answered (%d)" % ok, sm.log)
    finally:
        sm.close()
        shutil.rmtree(d, ignore_errors=True)


def test_no_store_no_fdstore_messages():
    # Without $FDSTORE, nothing is sent with fds.
    port = ht.free_port()
    sm = ServiceManager(["-l", "%s:%d" % (ht.HOST, port), "-w", "1"])
    try:
        env = {k: v for k, v in os.environ.items() if k != "FDSTORE"}
        env["NOTIFY_SOCKET"] = sm.path
        log = open(os.path.join(sm.dir, "plain.log"), "w+")
        sm.logs.append(log.name)
        sm.proc = subprocess.Popen([ht.HERD] + sm.args, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        ht.ok(sm.ready(), "herd is ready", sm.log)
        ht.ok(not sm.store and not [n for n in sm.notes if "FDSTORE" in n],
              "no FDSTORE offered: nothing stored", lambda: repr(sm.notes))
    finally:
        sm.close()


ht.run(test_sigkilled_shared,
       test_sigkilled_reuseport,
       test_fewer_slots_leave_the_store,
       test_upgrade_dying_after_check,
       test_no_store_no_fdstore_messages)

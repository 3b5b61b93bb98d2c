#!/usr/bin/env python3
"""steer.py: reuseport steering by the eBPF program (src/ebpf.c): a stopped
worker's slot gets few new connections, a retired slot's queue migrates to a
ready slot with net.ipv4.tcp_migrate_req=0, and where bpf() is refused
(HERD_TEST_NO_EBPF=1 stands for that) the classic program serves, said
once in the log."""
import os
import signal
import socket
import threading
import time

import herdtest as ht

SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req"
EBPF_RE = r"reuseport: eBPF steering:"
NO_EBPF_RE = r"reuseport: no eBPF steering \(bpf: [^)]+\)"


def herd(*extra, env=None):
    return ht.Herd("-m", "reuseport", "-w", "2", "--shutdown-timeout", "1",
                   *extra, env=env)


def ebpf_or_skip(h, name):
    """True when this herd steers with the eBPF program; else the test is
    skipped with the reason the log gives (bpf() refused here)."""
    if h.wait_log(EBPF_RE, timeout=2):
        return True
    m = h.wait_log(NO_EBPF_RE, timeout=1)
    ht.skip(name, m.group(0) if m else "no steering line in the log")
    return False


def outcomes(addr, n, threads=4, timeout=1.0):
    """n new connections, one GET /whoami each, made by threads threads:
    how many got no answer within timeout (connect and answer together)."""
    left, hung, lock = [n], [0], threading.Lock()

    def one():
        try:
            with socket.create_connection(addr, timeout=timeout) as s:
                s.sendall(ht.request_bytes("/whoami"))
                while s.recv(4096):
                    pass
        except socket.timeout:
            with lock:
                hung[0] += 1
        except OSError:
            pass

    def run():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            one()
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return hung[0]


def test_stopped_worker_gets_few():
    # The classic program picks at random among ready slots: a stopped
    # (not dead) worker, still ready to the master, gets half (about 50 of
    # 100 hang). The eBPF program weighs what waits on each slot.
    name = "eBPF: a stopped worker gets at most 20 of 100 new connections"
    with herd() as h:
        if not ebpf_or_skip(h, name):
            return
        stuck = ht.slot_pid(h, 1)
        os.kill(stuck, signal.SIGSTOP)
        try:
            hung = outcomes(h.addr, 100)
        finally:
            os.kill(stuck, signal.SIGCONT)
        ht.ok(hung <= 20, "%s (%d hung)" % (name, hung))


def listen_queues(port):
    """The accept queue of each socket listening on 127.0.0.1:port (the
    rx_queue of a LISTEN row in /proc/net/tcp is its backlog's length)."""
    want = "0100007F:%04X" % port
    queues = []
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            col = line.split()
            if col[1] == want and col[3] == "0A":
                queues.append(int(col[4].split(":")[1], 16))
    return sorted(queues)


def read_sysctl():
    try:
        with open(SYSCTL) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def write_sysctl(v):
    try:
        with open(SYSCTL, "w") as f:
            f.write("%d\n" % v)
    except OSError:
        return False
    return read_sysctl() == v


def scale_down_queued(h):
    """Both workers stopped, so about half of 100 connections queue on
    slot 1; slot 1 is retired (its stopped worker killed after the
    shutdown timeout, its socket closed), slot 0 goes on. Returns (queues
    before the scale-down, connections answered)."""
    pids = [ht.slot_pid(h, 0), ht.slot_pid(h, 1)]
    start = [ht.proc_stat(p)[3] for p in pids]
    for p, t in zip(pids, start):
        ht._kill(p, signal.SIGSTOP, t)
    socks = []
    try:
        socks = ht.send_requests(h.addr, 100, "/whoami")
        ht.wait_until(lambda: sum(listen_queues(h.port)) >= 100, 3)
        queues = listen_queues(h.port)
        h.signal(signal.SIGTTOU)
        ht._kill(pids[0], signal.SIGCONT, start[0])
        return queues, len(ht.which_answered(socks, 8))
    finally:
        for p, t in zip(pids, start):  # slot 1's is killed by herd
            ht._kill(p, signal.SIGCONT, t)
        for s in socks:
            s.close()


def test_scale_down_migrates():
    name = "eBPF, tcp_migrate_req=0: scaling down loses no queued connection"
    original = read_sysctl()
    if original is None or not write_sysctl(0):
        ht.skip(name, "%s cannot be set to 0 here" % SYSCTL)
        return
    try:
        with herd() as h:
            if not ebpf_or_skip(h, name):
                return
            queues, got = scale_down_queued(h)
            ht.ok(len(queues) == 2 and min(queues) >= 20,
                  "both slots had connections queued before the scale-down "
                  "(%s)" % queues)
            ht.is_(got, 100, name)
    finally:
        write_sysctl(original)


def test_fallback_is_logged_once():
    # Where bpf() is refused, the classic program steers as before: still
    # away from a retiring slot; the log says so once, not per change.
    with herd(env={"HERD_TEST_NO_EBPF": "1"}) as h:
        ht.ok(h.wait_log(NO_EBPF_RE, timeout=2),
              "bpf refused: the log says the classic program steers")
        stuck = ht.slot_pid(h, 1)
        os.kill(stuck, signal.SIGSTOP)
        try:
            mark = h.mark()
            h.signal(signal.SIGTTOU)
            h.wait_log(r"workers: 2 -> 1", since=mark)
            time.sleep(0.2)
            socks = ht.send_requests(h.addr, 50, "/whoami")
            ht.is_(len(ht.which_answered(socks, 3)), 50, "bpf refused: the classic program "
                   "keeps new connections off a retiring slot")
            for s in socks:
                s.close()
        finally:
            os.kill(stuck, signal.SIGCONT)
        ht.wait_until(lambda: stuck not in h.workers(), 10)
        h.signal(signal.SIGTTIN)
        ht.wait_until(lambda: len(h.workers()) == 2, 10)
        ht.is_((h.count_log(NO_EBPF_RE), h.count_log(EBPF_RE)), (1, 0),
               "bpf refused: said once in the log, across scale changes")


ht.run(test_stopped_worker_gets_few, test_scale_down_migrates,
       test_fallback_is_logged_once)
ht.done()

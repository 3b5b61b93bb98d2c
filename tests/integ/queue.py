#!/usr/bin/env python3
"""queue.py: the listeners' accept queues in `herd ctl status` (text and
JSON) and in the metrics: connections that no worker accepts (workers
stopped, or a program that never calls accept) show as the queue, beside
the backlog; per slot socket in reuseport mode; a socket-activated
listener's own backlog; drops once its queue is full; a unix listener
shown without figures."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

K = 5  # connections left waiting
SLEEPER = ["--", "/bin/sleep", "1000"]  # a program that never accepts


def backlog_default():
    """What herd asks of listen(), as the kernel caps it."""
    with open("/proc/sys/net/core/somaxconn") as f:
        return min(ht.source_define("BACKLOG"), int(f.read()))


def ctl(h, *args):
    p = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl")] +
                       list(args), capture_output=True, timeout=20)
    return p.returncode, p.stdout.decode(errors="replace")


def status(h):
    rc, out = ctl(h, "status", "--json")
    try:
        return json.loads(out) if rc == 0 else {}
    except ValueError:
        return {}


SERIES = re.compile(r'^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def metrics(port):
    """[(name, {label: value}, value)] from GET /metrics, or None."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (ht.HOST, port),
                                    timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SERIES.match(line)
        if m is None:
            return None
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def series(ms, name, **labels):
    return [v for n, lab, v in ms or [] if n == name and
            all(lab.get(k) == w for k, w in labels.items())]


def open_waiting(addr, n):
    """n connections, each through the handshake (the kernel's, not a
    worker's: it is what puts them in the accept queue)."""
    return [socket.create_connection(addr, timeout=5) for _ in range(n)]


def listener(doc, i=0):
    ls = doc.get("listeners") or []
    return ls[i] if len(ls) > i else {}


def test_shared_stopped_workers():
    """Workers stopped: what arrives waits in the one shared socket."""
    mport = ht.free_port()
    with ht.Herd("-w", "2", "-l", "unix:{dir}/u.sock", "--control", "{dir}/ctl",
                 "--metrics", "%s:%d" % (ht.HOST, mport),
                 name="herd -w 2 shared, workers stopped") as h:
        want = backlog_default()
        doc = status(h)
        ht.ok(listener(doc).get("queue") == 0 and listener(doc).get("backlog") == want,
              "status --json: an empty queue, and the backlog herd asked for (%d)" % want,
              repr(doc.get("listeners")))
        for pid in h.workers():
            os.kill(pid, signal.SIGSTOP)
        socks = open_waiting(h.addr, K)
        got = ht.wait_until(lambda: listener(status(h)).get("queue") == K, 10)
        doc = status(h)
        ht.ok(got and listener(doc).get("backlog") == want and
              listener(doc).get("address") == "%s:%d" % h.addr and "slots" not in listener(doc),
              "status --json: the %d connections no worker took are the queue" % K,
              repr(doc.get("listeners")))
        unix = listener(doc, 1)
        ht.ok(unix.get("address", "").endswith("u.sock") and
              unix.get("queue", 0) is None and unix.get("backlog", 0) is None,
              "status --json: the unix listener has no figures (null)", repr(unix))
        ht.ok(isinstance(doc.get("listen_overflows"), int),
              "status --json: the namespace's listen overflows", repr(doc.get("listen_overflows")))
        rc, out = ctl(h, "status")
        ht.ok(rc == 0 and re.search(r"^listen   %s:%d  queue %d of %d, \d+ dropped$" %
                                    (ht.HOST, h.port, K, want), out, re.M) and
              re.search(r"^listen   unix:.*u\.sock  \(no queue: unix socket", out, re.M),
              "status: the queue as text, the unix listener without one", out)
        ms = metrics(mport)
        lab = {"listen": "%s:%d" % h.addr}
        ht.ok(series(ms, "herd_listen_queue", **lab) == [K] and
              series(ms, "herd_listen_backlog", **lab) == [want] and
              len(series(ms, "herd_listen_queue")) == 1 and
              len(series(ms, "herd_listen_drops_total", **lab)) == 1 and
              len(series(ms, "herd_listen_overflows_total")) == 1,
              "metrics: herd_listen_queue %d and the backlog, labelled with the address; "
              "none for the unix listener" % K, repr(ms))
        for pid in h.workers():
            os.kill(pid, signal.SIGCONT)
        ht.ok(ht.wait_until(lambda: listener(status(h)).get("queue") == 0, 10),
              "the workers continued: they take the queue, which empties")
        for s in socks:
            s.close()


def test_reuseport_slots():
    """reuseport: each slot's own socket has its queue; the listener's is
    their sum."""
    mport = ht.free_port()
    with ht.Herd("-w", "2", "-m", "reuseport", "--control", "{dir}/ctl",
                 "--metrics", "%s:%d" % (ht.HOST, mport), *SLEEPER,
                 name="herd -w 2 reuseport, a program that never accepts") as h:
        want = backlog_default()
        socks = open_waiting(h.addr, 3 * K)
        got = ht.wait_until(lambda: listener(status(h)).get("queue") == 3 * K, 10)
        doc = listener(status(h))
        slots = doc.get("slots") or []
        ht.ok(got and [s.get("slot") for s in slots] == [0, 1] and
              sum(s.get("queue", 0) for s in slots) == 3 * K and
              all(s.get("backlog") == want for s in slots) and doc.get("backlog") == 2 * want,
              "status --json: a queue per slot socket, the listener's their sum", repr(doc))
        ms = metrics(mport)
        lab = {"listen": "%s:%d" % h.addr}
        per = {s: series(ms, "herd_listen_queue", slot=s, **lab) for s in ("0", "1")}
        ht.ok(all(len(v) == 1 for v in per.values()) and
              sum(v[0] for v in per.values()) == 3 * K and
              [int(s["queue"]) for s in slots] == [int(per[s][0]) for s in ("0", "1")] and
              series(ms, "herd_listen_backlog", slot="1", **lab) == [want],
              "metrics: herd_listen_queue per slot, with a slot label", repr(ms))
        for s in socks:
            s.close()


# Binds argv[1] with listen(BACKLOG), puts it at fd 3 with LISTEN_FDS and
# LISTEN_PID (exec keeps the pid) and execs the rest: socket activation.
LAUNCHER = r"""
import os, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(int(sys.argv[2]))
os.dup2(s.fileno(), 10)  # s may be fd 3 itself
os.dup2(10, 3, inheritable=True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_full_queue_drops():
    """A socket-activated listener keeps its own backlog, which herd shows;
    once its queue is full, the kernel drops what comes and the drops
    show, per socket and in the namespace's overflows."""
    backlog = 3
    mport = ht.free_port()
    with ht.Herd("-c", LAUNCHER, "{addr}", str(backlog), ht.HERD, "-l", "{addr}", "-w", "1",
                 "--control", "{dir}/ctl", "--metrics", "%s:%d" % (ht.HOST, mport),
                 *SLEEPER, prog=sys.executable,
                 name="herd socket-activated, backlog %d, never accepting" % backlog) as h:
        ht.ok(listener(status(h)).get("backlog") == backlog,
              "status --json: the inherited socket's backlog, %d" % backlog,
              repr(status(h).get("listeners")))
        lab = {"listen": "%s:%d" % h.addr}
        before = series(metrics(mport), "herd_listen_overflows_total")
        # The kernel takes one more than the backlog: its test is "more than".
        socks = open_waiting(h.addr, backlog + 1)
        full = ht.wait_until(lambda: listener(status(h)).get("queue") == backlog + 1, 10)
        ht.ok(full and listener(status(h)).get("drops") == 0,
              "status --json: a full queue, nothing dropped yet", repr(status(h)))
        extra = []
        for _ in range(2):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(h.addr)  # its SYN is dropped: no handshake
            extra.append(c)
        dropped = ht.wait_until(lambda: listener(status(h)).get("drops", 0) >= 2, 10)
        ms = metrics(mport)
        after = series(ms, "herd_listen_overflows_total")
        ht.ok(dropped and series(ms, "herd_listen_drops_total", **lab)[0] >= 2 and
              series(ms, "herd_listen_queue", **lab) == [backlog + 1],
              "a full queue drops what comes: herd_listen_drops_total", repr(ms))
        ht.ok(len(before) == 1 and len(after) == 1 and after[0] - before[0] >= 2,
              "herd_listen_overflows_total (the namespace's) counts them too",
              "%r -> %r" % (before, after))
        for s in socks + extra:
            s.close()


def test_passfd_master_accepts():
    """passfd: the master accepts and passes connections on (a worker that
    never reads leaves them in its channel, not in the queue); the
    listener's figures are there all the same."""
    with ht.Herd("-w", "1", "-m", "passfd", "--control", "{dir}/ctl", *SLEEPER,
                 name="herd passfd, a program that never reads") as h:
        socks = open_waiting(h.addr, K)
        doc = listener(status(h))
        ht.ok(isinstance(doc.get("queue"), int) and doc.get("backlog") == backlog_default(),
              "passfd: the listener's queue and backlog shown", repr(doc))
        for s in socks:
            s.close()


ht.run(test_shared_stopped_workers, test_reuseport_slots, test_full_queue_drops,
       test_passfd_master_accepts)

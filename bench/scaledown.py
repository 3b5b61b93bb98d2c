#!/usr/bin/env python3
"""scaledown.py: connections lost when reuseport mode scales down.

For each value of net.ipv4.tcp_migrate_req (0 and 1; only the current one
when /proc/sys/net/ipv4/tcp_migrate_req cannot be written), three runs of
the release build `herd -m reuseport --shutdown-timeout 2` on 127.0.0.1:

  A. queued before   -w 2; both workers are SIGSTOPped, so the steering
                     queues about half of what comes on slot 1 (a load-aware
                     steering avoids a lone stopped worker); 200 connections
                     are opened, each sends one `GET /` (Connection: close);
                     then SIGTTOU to the master, and SIGCONT to the slot-0
                     worker. The stopped slot-1 worker cannot take what is
                     queued on its slot's socket; herd SIGKILLs it after the
                     2 s shutdown timeout and closes the socket: what was
                     queued there is migrated to slot 0, or reset. --rounds
                     runs of A (the table has the median).
  B. made after      -w 2; the slot-1 worker is SIGSTOPped; SIGTTOU; once the
                     log says "workers: 2 -> 1" (and 50 ms more), 200
                     connections as in A. Steering should keep them all off
                     the retired slot.
  C. live, under load  -w 3 and 4 client threads, one GET / per connection,
                     for the whole run; 5 times: 3 -> 1 (two SIGTTOU 0.5 s
                     apart), 1 s, 1 -> 3 (two SIGTTIN 0.5 s apart), 1 s.

A and B wait up to --wait seconds (6) after the scale-down (A) or after the
connections are made (B), then count the connections answered with
`HTTP/1.1 200`, those that failed (reset, closed without an answer, refused,
another status), and those still waiting. C counts requests ok and failed
(connect error, reset, timeout, not a 200 `hello`).

Each with both steerings: the eBPF program (herd's default where bpf()
works; it migrates a closing socket's connections whatever the sysctl says)
and the classic BPF fallback (HERD_TEST_NO_EBPF=1, as before it).

Prints a markdown table and writes bench/results/scaledown.csv. The value of
tcp_migrate_req is restored on the way out. Figures, not assertions.
Loopback only, bounded in time (--max-seconds as a last resort); every
process started here is killed at the end, normal or not.
"""
import argparse
import csv
import errno
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
os.environ.setdefault("HERD_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integ"))
import herdtest as ht  # noqa: E402

SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
OK_PREFIX = b"HTTP/1.1 200"


class Stop(Exception):
    """SIGTERM, SIGHUP or the --max-seconds alarm: unwind and clean up."""


def _raise_stop(sig, frame):
    raise Stop("signal %d" % sig)


# ---- the sysctl ------------------------------------------------------------------


def read_sysctl():
    try:
        with open(SYSCTL) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def write_sysctl(v):
    """True when the value now reads back as v."""
    try:
        with open(SYSCTL, "w") as f:
            f.write("%d\n" % v)
    except OSError:
        return False
    return read_sysctl() == v

# ---- a batch of connections, each with one request -------------------------------


class Batch:
    """n connections to addr, each sending REQUEST at once; poll() sorts them
    into answered (a reply starting with HTTP/1.1 200), failed (why) and
    waiting."""

    def __init__(self, addr, n, connect_timeout=2):
        self.pending = {}  # fd: (socket, bytes received so far)
        self.answered = 0
        self.failed = {}   # reason: count
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(connect_timeout)
            try:
                s.connect(addr)
                s.sendall(REQUEST)
            except OSError as e:
                s.close()
                self._fail(e)
                continue
            s.setblocking(False)
            self.pending[s.fileno()] = (s, b"")

    def _fail(self, why):
        if isinstance(why, OSError):
            why = errno.errorcode.get(why.errno, "") if why.errno else type(why).__name__
            why = why or "error"
        self.failed[why] = self.failed.get(why, 0) + 1

    @property
    def nfailed(self):
        return sum(self.failed.values())

    def failed_text(self):
        return ", ".join("%s %d" % kv for kv in sorted(self.failed.items()))

    def _done(self, fd):
        s, _ = self.pending.pop(fd)
        s.close()

    def _readable(self, fd):
        s, buf = self.pending[fd]
        try:
            data = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._done(fd)
            self._fail(e)
            return
        if not data:
            self._done(fd)
            self._fail("closed without answer" if not buf else "short answer")
            return
        buf += data
        if len(buf) < len(OK_PREFIX):
            self.pending[fd] = (s, buf)
            return
        self._done(fd)
        if buf.startswith(OK_PREFIX):
            self.answered += 1
        else:
            self._fail("answer %r" % buf[:12])

    def poll(self, seconds):
        """Collects replies for up to seconds, or until none is waiting."""
        deadline = time.monotonic() + seconds
        p = select.poll()
        for fd in self.pending:
            p.register(fd, select.POLLIN)
        while self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in p.poll(min(left, 0.1) * 1000):
                if fd in self.pending:
                    self._readable(fd)
                if fd not in self.pending:
                    p.unregister(fd)

    @property
    def waiting(self):
        return len(self.pending)

    def close(self):
        for s, _ in self.pending.values():
            s.close()
        self.pending.clear()

# ---- the scenarios ---------------------------------------------------------------


def slot_worker(h, slot):
    """(pid, start time) of the generation-1 worker in slot, from the log."""
    for pid, (s, gen) in h.worker_info().items():
        if s == slot and gen == 1:
            st = ht.proc_stat(pid)
            return pid, (st[3] if st else None)
    raise RuntimeError("no 'worker %d started' line in the log:\n%s" % (slot, h.log()[-2000:]))


def queued_case(herd, n, wait, made_after, env):
    """Scenario A (made_after False) or B (True): one row's figures."""
    with ht.Herd("-m", "reuseport", "-w", "2", "--shutdown-timeout", "2",
                 prog=herd, report_clean=False, env=env) as h:
        pid, start = slot_worker(h, 1)
        other = None if made_after else slot_worker(h, 0)
        batch = None
        try:
            ht._kill(pid, signal.SIGSTOP, start)
            if other is not None:
                ht._kill(other[0], signal.SIGSTOP, other[1])
            note = []
            if made_after:
                mark = h.mark()
                h.signal(signal.SIGTTOU)
                if not h.wait_log(r"workers: 2 -> 1", since=mark, timeout=5):
                    note.append("no 'workers: 2 -> 1' in 5 s")
                time.sleep(0.05)
                batch = Batch(h.addr, n)
                batch.poll(wait)
            else:
                batch = Batch(h.addr, n)
                batch.poll(0.3)
                note.append("%d unanswered at SIGTTOU" % batch.waiting)
                mark = h.mark()
                h.signal(signal.SIGTTOU)
                ht._kill(other[0], signal.SIGCONT, other[1])
                batch.poll(wait)
            if h.count_log(r"did not \S+ in time; killing it", mark):
                note.append("stopped slot-1 worker SIGKILLed by herd meanwhile")
            elif ht.alive(pid):
                note.append("done before herd killed the stopped slot-1 worker")
            if batch.failed:
                note.append("failed: " + batch.failed_text())
            return batch.answered, batch.nfailed, batch.waiting, "; ".join(note)
        finally:
            if batch is not None:
                batch.close()
            ht._kill(pid, signal.SIGCONT, start)
            if other is not None:
                ht._kill(other[0], signal.SIGCONT, other[1])


def live_case(herd, cycles, clients, env):
    """Scenario C: requests ok / failed across scale-downs under load."""
    with ht.Herd("-m", "reuseport", "-w", "3", "--shutdown-timeout", "2",
                 prog=herd, report_clean=False, env=env) as h:
        mark = h.mark()
        load = ht.Load(h.addr, close=clients, keepalive=0, path="/", timeout=5,
                       max_seconds=cycles * 4 + 30).start()
        try:
            time.sleep(0.5)
            for _ in range(cycles):
                h.signal(signal.SIGTTOU)
                time.sleep(0.5)
                h.signal(signal.SIGTTOU)
                time.sleep(1)
                h.signal(signal.SIGTTIN)
                time.sleep(0.5)
                h.signal(signal.SIGTTIN)
                time.sleep(1)
        finally:
            load.stop()
        note = ["%d x 3->1->3" % cycles,
                "scale lines %d of %d" % (h.count_log(r"workers: \d+ -> \d+", mark), 4 * cycles)]
        if load.errors:
            note.append("first failure: " + load.errors[0].split(" ", 1)[1][:80])
        return load.ok, load.failed, None, "; ".join(note)

# ---- main ------------------------------------------------------------------------

STEERINGS = (("eBPF", None), ("classic", {"HERD_TEST_NO_EBPF": "1"}))


def median_row(name, steering, label, runs):
    """The table's row: medians of the runs' figures, the runs in the note."""
    def med(k):
        xs = [r[k] for r in runs]
        return None if None in xs else ht.median(xs)
    note = runs[0][3] if len(runs) == 1 else "failed per run: %s; first: %s" % (
        " ".join(str(r[1]) for r in runs), runs[0][3])
    return (name, steering, label, med(0), med(1), med(2), note)



def herd_binary(path):
    if not os.path.exists(path) and path == os.path.join(REPO, "build", "herd"):
        print("building the release binary (make)", flush=True)
        subprocess.run(["make", "-C", REPO], check=True, stdout=subprocess.DEVNULL,
                       timeout=300)
    if not os.access(path, os.X_OK):
        sys.exit("no herd binary at %s" % path)
    return path


def binary_notes(path):
    notes = []
    with open(path, "rb") as f:
        if b"cannot steer" not in f.read():
            notes.append("this binary has no reuseport steering (no 'cannot steer' message)")
    src = os.path.join(REPO, "src")
    if path == os.path.join(REPO, "build", "herd") and os.path.isdir(src):
        newer = [n for n in sorted(os.listdir(src))
                 if os.path.getmtime(os.path.join(src, n)) > os.path.getmtime(path)]
        if newer:
            notes.append("build/herd is older than src/%s: measuring the binary as built"
                         % ", src/".join(newer))
    return notes


def scenarios(herd, a, label):
    """The rows of A, B and C with each steering; A's rounds alternate."""
    runs = {}  # (scenario, steering): [(answered, failed, waiting, note)]
    plan = [("A. queued before", r) for r in range(a.rounds)]
    plan += [("B. made after", 0), ("C. live, under load", 0)]
    for name, _ in plan:
        for steering, env in STEERINGS:
            t0 = time.monotonic()
            if name.startswith("C"):
                got = live_case(herd, a.cycles, a.clients, env)
            else:
                got = queued_case(herd, a.connections, a.wait, name.startswith("B"), env)
            runs.setdefault((name, steering), []).append(got)
            print("  %s, %s, tcp_migrate_req=%s: %d answered, %d failed, %s waiting "
                  "(%.1f s)" % (name, steering, label, got[0], got[1],
                                "-" if got[2] is None else got[2],
                                time.monotonic() - t0), flush=True)
    return [median_row(n, st, label, r) for (n, st), r in runs.items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--herd", default=os.path.join(REPO, "build", "herd"))
    ap.add_argument("--connections", type=int, default=200, help="per run of A and B")
    ap.add_argument("--wait", type=float, default=6.0, help="seconds A and B wait for answers")
    ap.add_argument("--cycles", type=int, default=5, help="C's 3->1->3 cycles")
    ap.add_argument("--rounds", type=int, default=3, help="runs of A (median)")
    ap.add_argument("--clients", type=int, default=4, help="C's client threads")
    ap.add_argument("--max-seconds", type=int, default=600, help="give up after this long")
    a = ap.parse_args()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _raise_stop)
    signal.alarm(a.max_seconds)

    herd_src = herd_binary(os.path.abspath(a.herd))
    tmp = tempfile.mkdtemp(prefix="herd-scaledown-")
    original = read_sysctl()
    settable = False
    rows = []
    try:
        # A private copy: a rebuild during the bench cannot mix two binaries.
        herd = shutil.copy2(herd_src, os.path.join(tmp, "herd"))
        print("herd scale-down in reuseport mode, binary %s (built %s UTC), kernel %s"
              % (herd_src, time.strftime("%Y-%m-%d %H:%M:%S",
                                         time.gmtime(os.path.getmtime(herd_src))),
                 os.uname().release), flush=True)
        for n in binary_notes(herd_src):
            print("note: " + n, flush=True)
        if original is None:
            print("note: %s is missing: the kernel has no tcp_migrate_req; measuring as is"
                  % SYSCTL)
            values = [None]
        elif not write_sysctl(original):
            print("note: %s is not writable here: measuring only the current value (%d)"
                  % (SYSCTL, original))
            values = [original]
        else:
            values, settable = [0, 1], True
        for v in values:
            if settable and not write_sysctl(v):
                print("note: could not set tcp_migrate_req to %d; skipped" % v)
                continue
            rows += scenarios(herd, a, "-" if v is None else str(v))
    finally:
        signal.alarm(0)
        if settable and read_sysctl() != original:
            if not write_sysctl(original):
                print("WARNING: could not restore %s to %d" % (SYSCTL, original))
        ht._teardown_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| scenario | steering | tcp_migrate_req | answered | failed/reset | waiting | note |")
    print("|---|---|---|---|---|---|---|")
    for name, steering, v, ans, fail, wait, note in rows:
        print("| %s | %s | %s | %s | %s | %s | %s |"
              % (name, steering, v, ans, fail, "-" if wait is None else wait, note))
    print()
    print("A, B: of %d connections, one GET / each; answered = HTTP/1.1 200. "
          "C: requests (one per connection) of %d client threads." % (a.connections, a.clients))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "scaledown.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "steering", "tcp_migrate_req", "answered", "failed",
                    "waiting", "note"])
        for r in rows:
            w.writerow(["" if x is None else x for x in r])
    print("wrote %s" % (os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path))
    if settable:
        print("tcp_migrate_req restored to %s" % read_sysctl())


if __name__ == "__main__":
    try:
        main()
    except (Stop, KeyboardInterrupt) as e:
        ht._teardown_all()
        sys.exit("scaledown.py: stopped (%s)" % (e or "interrupted"))

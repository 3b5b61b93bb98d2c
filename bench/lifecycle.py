#!/usr/bin/env python3
"""lifecycle.py: lifecycle figures of the release build, for `make bench`.

  respawn   time from `kill -9` of a worker to its replacement answering
            /whoami on a new connection (median, p90, of --kills tries)
  reloads   failed requests across --reloads SIGHUPs under continuous load
            (one-connection-per-request and keep-alive clients)
  rss       VmRSS of the master and of a worker, idle and after the load
  peak      a reload of a -w 4 pool of tests/progs/pyapp.py (a Python
            server, about 10 MiB each) under load, all at once and with
            --reload-batch 1, alternated over --peak-rounds rounds: the most
            processes and the most RSS the pool (master and children) had at
            once, sampled every 5 ms, medians; and failed requests
  upgrades  failed requests across --upgrades binary upgrades (SIGUSR2, the
            binary replaced each time) under the same load, and the
            hand-over: from the old image's "executing" to the new image's
            "resumed" log line, and from SIGUSR2 to the new generation ready

Figures, not assertions: the tests check behaviour, this measures it.
Runs on 127.0.0.1 only, bounded in time.
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import tempfile
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ.setdefault("HERD_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integ"))
import herdtest as ht  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def respawn_ms(kills):
    """kill -9 a worker, then poll /whoami on new connections until a new
    pid answers from its slot. A fresh herd for every kill: killing one
    slot again within 10 s would measure the back-off instead."""
    times = []
    for _ in range(kills):
        with ht.Herd("-w", "1", report_clean=False) as h:
            old, slot, _ = ht.whoami(h.addr)
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            while time.monotonic() - t0 < 10:
                try:
                    pid, s, _ = ht.whoami(h.addr, timeout=1)
                    if pid != old and s == slot:
                        times.append((time.monotonic() - t0) * 1000)
                        break
                except (OSError, ValueError):
                    pass
    return sorted(times)


def reloads(n, workers):
    with ht.Herd("-w", str(workers), report_clean=False) as h:
        idle = (rss_kb(h.pid), rss_kb(h.workers()[0]))
        load = ht.Load(h.addr, close=2, keepalive=2).start()
        time.sleep(0.3)
        for i in range(n):
            mark = h.mark()
            h.signal(signal.SIGHUP)
            if not h.wait_log(r"generation %d ready" % (i + 2), since=mark, timeout=20):
                print("reload %d did not complete" % (i + 1))
            time.sleep(0.2)
        time.sleep(0.3)
        load.stop()
        loaded = (rss_kb(h.pid), rss_kb(h.workers()[0]))
        return load, idle, loaded


def pool_peak(batch):
    """(most processes, most KiB of RSS, load) over one herd ctl reload."""
    pyapp = os.path.join(REPO, "tests", "progs", "pyapp.py")
    with ht.Herd("-w", "4", "--notify", "--reload-batch", str(batch), "--",
                 sys.executable, pyapp, control=True, report_clean=False) as h:
        load = ht.Load(h.addr, close=2, keepalive=2).start()
        time.sleep(0.5)
        most = [0, 0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                kids = h.workers()
                kib = rss_kb(h.pid)
                for k in kids:
                    try:
                        kib += rss_kb(k)
                    except OSError:
                        pass
                most[0] = max(most[0], len(kids))
                most[1] = max(most[1], kib)
                time.sleep(0.005)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        rc, out, err = ht.ctl(h.control_path(), "reload", timeout=60)
        h.wait_status(lambda st: ht.serving(st, 2, 4) and len(ht.procs(st)) == 4,
                      timeout=20)
        time.sleep(0.3)
        stop.set()
        t.join(5)
        load.stop()
        if rc != 0:
            print("reload with --reload-batch %d: %s" % (batch, (out + err).strip()))
        return most[0], most[1], load


def peaks(rounds):
    got = {0: [], 1: []}
    for _ in range(rounds):
        for batch in (0, 1):
            got[batch].append(pool_peak(batch))
    for batch, runs in got.items():
        print("reload peak, -w 4 pyapp pool, %s: %d processes, %.1f MiB "
              "(medians of %d); %d failed of %d requests"
              % ("all at once" if batch == 0 else "--reload-batch 1",
                 ht.median([r[0] for r in runs]), ht.median([r[1] for r in runs]) / 1024,
                 rounds, sum(r[2].failed for r in runs), sum(r[2].ok + r[2].failed
                                                             for r in runs)))


def log_times(log, pattern):
    """The timestamps (s) of the log lines matching pattern."""
    out = []
    for m in re.finditer(r"^(\S+) .*" + pattern, log, re.M):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(t.timestamp())
    return out


def upgrades(n, workers):
    d = tempfile.mkdtemp(prefix="herd-bench-up-")
    path = os.path.join(d, "herd")
    shutil.copy2(ht.HERD, path)
    try:
        with ht.Herd("-w", str(workers), prog=path, report_clean=False) as h:
            pid = h.pid
            load = ht.Load(h.addr, close=2, keepalive=2).start()
            time.sleep(0.3)
            done = 0
            for i in range(n):
                shutil.copy2(ht.HERD, path + ".new")
                os.rename(path + ".new", path)  # a new inode, as dpkg does
                mark = h.mark()
                h.signal(signal.SIGUSR2)
                done += bool(h.wait_log(r"generation %d ready" % (i + 2), since=mark,
                                        timeout=20))
                time.sleep(0.2)
            time.sleep(0.3)
            load.stop()
            log = h.log()
            execd = log_times(log, r"upgrade: executing")
            resumed = log_times(log, r"upgrade: resumed")
            checking = log_times(log, r"upgrade: checking")
            ready = log_times(log, r"generation \d+ ready")
            handover = [1000 * (b - a) for a, b in zip(execd, resumed)]
            whole = [1000 * (b - a) for a, b in zip(checking, ready)]
            return load, done, h.pid == pid, sorted(handover), sorted(whole)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--upgrades", type=int, default=10)
    ap.add_argument("--peak-rounds", type=int, default=3)
    a = ap.parse_args()
    print("herd lifecycle, release build %s" % ht.HERD)
    t = respawn_ms(a.kills)
    if t:
        print("respawn: kill -9 to replacement answering: median %.1f ms, "
              "p90 %.1f ms, max %.1f ms (%d kills)"
              % (ht.median(t), t[int(len(t) * 0.9) - 1 if len(t) > 1 else 0], t[-1], len(t)))
    load, idle, loaded = reloads(a.reloads, a.workers)
    print("reloads: %d under load: %s" % (a.reloads, load.summary()))
    print("rss: master %d KiB, worker %d KiB idle; master %d KiB, worker %d KiB "
          "after the load" % (idle + loaded))
    peaks(a.peak_rounds)
    load, done, same_pid, handover, whole = upgrades(a.upgrades, a.workers)
    print("upgrades: %d of %d completed under load, master pid %s: %s"
          % (done, a.upgrades, "unchanged" if same_pid else "CHANGED", load.summary()))
    if handover:
        print("upgrade hand-over (exec to resumed): median %.1f ms, max %.1f ms; "
              "SIGUSR2 (check included) to the new generation ready: median %.1f ms, "
              "max %.1f ms" % (ht.median(handover), handover[-1], ht.median(whole), whole[-1]))


if __name__ == "__main__":
    main()

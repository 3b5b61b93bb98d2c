#!/usr/bin/env python3
"""bigreload.py: a reload at up to 512 workers (the documented maximum)
never makes the master wait, and its time grows about linearly.

For each size, on the release build: herd -w N with --control; a client
asks `status --json` over the control socket every 10 ms while `reload`
replaces the whole pool. Printed as TAP comments (`# bigreload ...`):
the longest the master took to answer a status during the reload (the
goal is under 50 ms at 512), and the reload time, from the command to
the first status with every slot served by the new generation and no
old worker left. The test asserts that every status was answered and
the reload completed; the times are figures, not assertions (the
machine is shared).

Knobs for a rerun by hand: BIGRELOAD_SIZES ("64 128 256 512"),
BIGRELOAD_POLL_MS (10), BIGRELOAD_CPUS (the CPUs herd runs on, "0"),
BIGRELOAD_TRACE=1 (every status answer's time, as it comes).
"""
import json
import os
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
import herdtest as ht  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BIGRELOAD_SIZES", "64 128 256 512").split()]
POLL_S = int(os.environ.get("BIGRELOAD_POLL_MS", "10")) / 1000
TIMEOUT_S = 60


def ask(path, line, timeout=10):
    """The master's whole reply to one command, and how long it took."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks).decode(), time.monotonic() - t0


def reloaded(reply, n, gen):
    if not reply.startswith("ok\n"):
        return False
    st = json.loads(reply[3:])
    procs = st["procs"]
    return (st["generation"] == gen and not st["pending"] and len(procs) == n and
            all(p["generation"] == gen and p["state"] == "ready" for p in procs))


def one_size(n):
    # herd on CPU 0, this client on CPU 1 (where there are two): the
    # figure is the master's, not this client's wait for a CPU.
    pin = ["taskset", "-c", os.environ.get("BIGRELOAD_CPUS", "0"), ht.HERD] if os.cpu_count() > 1 and shutil.which("taskset") else [ht.HERD]
    with ht.Herd(*pin[1:], "-l", "{addr}", "-w", str(n), "--control", "{dir}/ctl.sock",
                 prog=pin[0], name="herd -w %d reload" % n) as h:
        path = os.path.join(h.dir, "ctl.sock")
        ht.ok(ht.wait_until(lambda: reloaded(ask(path, "status --json")[0], n, 1), TIMEOUT_S),
              "-w %d: every worker is ready" % n)
        worst, bad, done = [0.0], [], []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    reply, took = ask(path, "status --json")
                except OSError as e:
                    bad.append(repr(e))
                    continue
                worst[0] = max(worst[0], took)
                if os.environ.get("BIGRELOAD_TRACE"):
                    print("# t=%.3f took=%.1f ms" % (time.monotonic() - t0, took * 1000))
                if not reply.startswith("ok\n"):
                    bad.append(reply[:200])
                elif not done and reloaded(reply, n, 2):
                    done.append(time.monotonic())
                time.sleep(POLL_S)
        t0 = time.monotonic()
        t = threading.Thread(target=poll)
        t.start()
        reply, _ = ask(path, "reload")
        ht.wait_until(lambda: done, TIMEOUT_S, step=0.05)
        stop.set()
        t.join()
        ht.ok(reply.startswith("ok"), "-w %d: reload accepted" % n, reply)
        ht.ok(done, "-w %d: the reload completed within %d s" % (n, TIMEOUT_S),
              lambda: h.log()[-2000:])
        ht.ok(not bad, "-w %d: every status during the reload was answered" % n,
              lambda: "\n".join(bad[:5]))
        took = done[0] - t0 if done else float("nan")
        ht.diag("bigreload -w %d: reload %.0f ms; longest status answer during it %.1f ms"
                % (n, took * 1000, worst[0] * 1000))


def main():
    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    for n in SIZES:
        one_size(n)
    return ht.done()


if __name__ == "__main__":
    sys.exit(main())

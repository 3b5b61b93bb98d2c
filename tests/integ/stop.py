#!/usr/bin/env python3
"""stop.py: SIGQUIT drains and exits 0, SIGTERM and SIGINT stop fast and
exit 0, --shutdown-timeout bounds a drain (a program ignoring its stop
signal is killed; a passfd program deaf to QUIT gets its stop signal first),
the pid file lives exactly as long as the master, SIGUSR1 reopens the log."""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def closed_by_server(sock, timeout):
    """True when the server closes (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def workers_gone(workers, timeout=5):
    return ht.wait_until(lambda: not [p for p in workers if ht.alive(p)], timeout)


def test_sigquit_closes_idle_keepalive_and_exits_0():
    with ht.Herd("-w", "2", "--shutdown-timeout", "30") as h:
        workers = h.workers()
        s = ht.connect(h.addr)
        f = s.makefile("rb")
        s.sendall(ht.request_bytes("/", close=False))
        r = ht.read_response(f)
        ht.ok(r.status == 200 and "close" not in r.headers.get("connection", ""),
              "SIGQUIT: a keep-alive connection is open and idle", repr(r))
        t0 = time.monotonic()
        h.signal(signal.SIGQUIT)
        ht.ok(closed_by_server(s, 10), "SIGQUIT: the server closes the idle keep-alive connection")
        rc = h.wait_exit(10)
        took = time.monotonic() - t0
        ht.ok(rc == 0, "SIGQUIT: the master exits 0 long before the 30 s shutdown timeout",
              "status %r after %.1f s" % (rc, took))
        ht.ok(workers_gone(workers), "SIGQUIT: no worker left")
        f.close()
        s.close()


def test_sigquit_finishes_a_request_in_progress():
    with ht.Herd("-w", "1", "--shutdown-timeout", "30") as h:
        s = ht.connect(h.addr)
        f = s.makefile("rb")
        s.sendall(b"GET /whoami HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)  # accepted and read by the worker
        mark = h.mark()
        h.signal(signal.SIGQUIT)
        h.wait_log(r"graceful stop", since=mark)
        time.sleep(0.2)
        ht.ok(h.running(), "SIGQUIT: the master waits for a half-received request")
        s.sendall(b"\r\n")
        try:
            r = ht.read_response(f)
        except (OSError, ValueError) as e:
            r = e
        ht.ok(isinstance(r, ht.Response) and r.status == 200 and
              r.headers.get("connection") == "close",
              "SIGQUIT: the request in progress is answered, with Connection: close", repr(r))
        ht.is_(h.wait_exit(10), 0, "SIGQUIT: then the master exits 0")
        f.close()
        s.close()


def fast_stop(sig, name):
    with ht.Herd("-w", "2", "--shutdown-timeout", "30") as h:
        workers = h.workers()
        s = ht.connect(h.addr)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a request that never ends
        time.sleep(0.1)
        h.signal(sig)
        rc = h.wait_exit(10)
        ht.is_(rc, 0, "%s: the master exits 0 despite a half-sent request" % name)
        ht.ok(workers_gone(workers), "%s: no worker left" % name)
        ht.ok(closed_by_server(s, 5), "%s: the client's connection is closed" % name)
        s.close()


def test_sigterm_and_sigint_stop_fast():
    fast_stop(signal.SIGTERM, "SIGTERM")
    fast_stop(signal.SIGINT, "SIGINT")


def test_shutdown_timeout_kills_a_worker_that_does_not_drain():
    # The header timeout (10 s) outlives the shutdown timeout (1 s).
    with ht.Herd("-w", "2", "--shutdown-timeout", "1") as h:
        workers = h.workers()
        s = ht.connect(h.addr)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        h.signal(signal.SIGQUIT)
        rc = h.wait_exit(9)
        took = time.monotonic() - t0
        ht.ok(rc == 0 and took < 9, "--shutdown-timeout 1: the master exits 0, not held by the client",
              "status %r after %.1f s" % (rc, took))
        ht.ok(re.search(r"did not drain in time", h.log()),
              "--shutdown-timeout 1: the log says the worker 'did not drain in time'")
        ht.ok(workers_gone(workers), "--shutdown-timeout 1: no worker left")
        ht.diag("--shutdown-timeout 1: exit %.2f s after SIGQUIT" % took)
        s.close()


def test_sigterm_during_a_graceful_stop_stops_fast():
    with ht.Herd("-w", "2", "--shutdown-timeout", "30") as h:
        workers = h.workers()
        s = ht.connect(h.addr)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # holds its worker in the drain
        time.sleep(0.2)
        mark = h.mark()
        h.signal(signal.SIGQUIT)
        h.wait_log(r"graceful stop", since=mark)
        time.sleep(0.3)
        ht.ok(h.running(), "SIGQUIT then SIGTERM: the drain is waiting for the client")
        h.signal(signal.SIGTERM)
        ht.is_(h.wait_exit(10), 0, "SIGQUIT then SIGTERM: the master exits 0 without the 30 s wait")
        ht.ok(workers_gone(workers), "SIGQUIT then SIGTERM: no worker left")
        s.close()


def test_fast_stop_kills_a_worker_that_does_not_stop():
    # A SIGSTOPped worker cannot read its TERMINATE: the master must
    # SIGKILL it after min(3 s, --shutdown-timeout).
    with ht.Herd("-w", "2", "--shutdown-timeout", "30") as h:
        workers = h.workers()
        os.kill(workers[0], signal.SIGSTOP)
        h.signal(signal.SIGTERM)
        rc = h.wait_exit(10)
        ht.is_(rc, 0, "SIGTERM with a stopped worker: the master exits 0 within 10 s")
        ht.ok(re.search(r"worker \d+ \(pid %d\) did not stop in time" % workers[0], h.log()),
              "SIGTERM with a stopped worker: the log says it 'did not stop in time'")
        ht.ok(workers_gone(workers), "SIGTERM with a stopped worker: no worker left")


def test_a_worker_dying_during_a_graceful_stop_is_not_respawned():
    with ht.Herd("-w", "2", "--shutdown-timeout", "30") as h:
        s = ht.connect(h.addr)
        s.sendall(b"GET /whoami HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        h.signal(signal.SIGQUIT)
        h.wait_log(r"graceful stop")
        busy = ht.wait_until(lambda: h.workers() if len(h.workers()) == 1 else None, 10)
        ht.ok(busy, "graceful stop: the idle worker is gone, the busy one drains", repr(h.workers()))
        mark = h.mark()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
        ht.is_(h.wait_exit(10), 0, "graceful stop: a draining worker SIGKILLed, the master exits 0")
        ht.ok(not re.search(r"started|restarting", h.log()[mark:]),
              "graceful stop: the dead worker is not respawned", lambda: h.log()[mark:])
        s.close()


def test_pid_file():
    for sig, name in ((signal.SIGQUIT, "SIGQUIT"), (signal.SIGTERM, "SIGTERM")):
        with ht.Herd("-w", "1", "-p", "{dir}/herd.pid") as h:
            path = os.path.join(h.dir, "herd.pid")
            try:
                with open(path) as f:
                    content = f.read()
            except OSError as e:
                content = repr(e)
            ht.is_(content, "%d\n" % h.pid, "pid file holds the master's pid while it runs")
            h.signal(sig)
            rc = h.wait_exit(10)
            ht.ok(rc == 0 and not os.path.exists(path),
                  "pid file is removed when the master exits on %s" % name,
                  "status %r, exists %s" % (rc, os.path.exists(path)))


def test_sigusr1_reopens_the_log():
    # -v: a worker logs each 400 it answers, so its reopen shows too.
    with ht.Herd("-w", "1", "-v", "--log", "{dir}/herd.log") as h:
        log = h.log_path()
        old = log + ".1"
        os.rename(log, old)
        h.extra_logs.append(old)
        h.signal(signal.SIGUSR1)
        m = h.wait_log(r"master: log reopened")
        ht.ok(m is not None and os.path.exists(log),
              "SIGUSR1: the master writes 'log reopened' to a new file at the old path",
              "exists %s, old file tail:\n%s" % (os.path.exists(log), ht._read(old)[-1000:]))
        wpid = h.workers()[0]
        found = ht.wait_until(lambda: ht.raw_exchange(h.addr, b"BOGUS\r\n\r\n") is not None and
                              re.search(r" %d worker 0: http: .*400" % wpid, h.log()), 5, step=0.1)
        ht.ok(found, "SIGUSR1: the worker writes to the new file too", lambda: h.log()[-1500:])
        ht.ok(not re.search(r"answering 400", ht._read(old)),
              "SIGUSR1: nothing more goes to the renamed file")


def timed_stop(h, sig):
    """Signals herd to stop: its workers then, its exit status, and how long
    it took (None if it did not exit within 10 s)."""
    workers = h.workers()
    t0 = time.monotonic()
    h.signal(sig)
    status = h.wait_exit(10)
    return workers, status, time.monotonic() - t0


def test_stop_timeout():
    with ht.supervised("-w", "1", "--shutdown-timeout", "1", "--stop-signal", "SIGTERM",
                       app=("--ignore-term",)) as h:
        workers, status, secs = timed_stop(h, signal.SIGQUIT)
        ht.ok(status == 0 and 0.8 <= secs < 4.5,
              "SIGQUIT, a child ignoring its stop signal, --shutdown-timeout 1: herd exits 0 "
              "after 1-4 s (%.1f s)" % secs, "status %r" % status)
        ht.ok(re.search(r"did not drain in time; killing it", h.log()),
              "the log says it did not drain in time and was killed", lambda: h.log()[-1500:])
        ht.ok(not any(ht.alive(p) for p in workers), "and the child is gone")
    with ht.supervised("-w", "1", app=("--ignore-term",)) as h:
        workers, status, secs = timed_stop(h, signal.SIGTERM)
        ht.ok(status == 0 and secs < 4.5 and not any(ht.alive(p) for p in workers),
              "SIGTERM (fast stop), a child ignoring TERM: killed, herd exits 0 within "
              "3 s and a bit (%.1f s)" % secs, "status %r" % status)


# A passfd program that says READY and then never reads its channel: QUIT
# there goes unheard, as with a program written for the stop signal only.
DEAF_PASSFD = ("import os, socket, struct, time\n"
               "c = socket.socket(fileno=int(os.environ['HERD_CHANNEL_FD']))\n"
               "c.send(struct.pack('=IIiiIi', 6, 0, os.getpid(), -1, 0, 0))\n"
               "time.sleep(60)\n")


def test_passfd_quit_escalates():
    with ht.Herd("-w", "1", "-m", "passfd", "--shutdown-timeout", "1", "--",
                 sys.executable, "-c", DEAF_PASSFD, name="herd -m passfd -- deaf program") as h:
        workers, status, secs = timed_stop(h, signal.SIGQUIT)
        ht.ok(status == 0 and 0.8 <= secs < 4.5,
              "passfd, a program deaf to QUIT, --shutdown-timeout 1: herd exits 0 after 1-4 s "
              "(%.1f s)" % secs, "status %r" % status)
        ht.ok(re.search(r"did not drain in time; sending it signal 15", h.log()),
              "the log says its stop signal came at the timeout", lambda: h.log()[-1500:])
        ht.ok(not re.search(r"killing it", h.log()),
              "and that signal was enough: no SIGKILL", lambda: h.log()[-1500:])
        ht.ok(not any(ht.alive(p) for p in workers), "and the program is gone")


ht.run(test_sigquit_closes_idle_keepalive_and_exits_0,
       test_sigquit_finishes_a_request_in_progress,
       test_sigterm_and_sigint_stop_fast,
       test_shutdown_timeout_kills_a_worker_that_does_not_drain,
       test_sigterm_during_a_graceful_stop_stops_fast,
       test_fast_stop_kills_a_worker_that_does_not_stop,
       test_a_worker_dying_during_a_graceful_stop_is_not_respawned,
       test_pid_file,
       test_sigusr1_reopens_the_log,
       test_stop_timeout,
       test_passfd_quit_escalates)

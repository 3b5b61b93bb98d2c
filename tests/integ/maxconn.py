#!/usr/bin/env python3
"""maxconn.py: --max-connections N, nginx's worker_connections. A worker
holding N open connections takes no new one until one of them closes (an
in-process worker stops accepting; in passfd mode the master passes it no
more); a bad N is refused with status 2 before anything starts."""
import os
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

N = 3
WAIT = 1.5  # how long an unanswered request is watched: not a speed claim


def keepalive(addr):
    """A connection that had one request answered and stays open, idle."""
    s = ht.connect(addr)
    s.sendall(ht.request_bytes("/whoami", close=False))
    f = s.makefile("rb")
    r = ht.read_response(f)
    if r is None or r.status != 200:
        raise ValueError("no answer on a keep-alive connection: %r" % r)
    return s, f


def answered_within(sock, seconds):
    """Whether anything (an answer, or an end of file) came back."""
    ready, _, _ = select.select([sock], [], [], seconds)
    return bool(ready)


def check_cap(mode):
    name = "herd -w 1 -m %s --max-connections %d" % (mode, N)
    with ht.Herd("-w", "1", "-m", mode, "--max-connections", str(N), name=name) as h:
        held = [keepalive(h.addr) for _ in range(N)]
        extra = ht.connect(h.addr)
        extra.sendall(ht.request_bytes("/whoami", close=True))
        ht.ok(not answered_within(extra, WAIT),
              "%s: with %d idle keep-alive connections open, a %dth gets no "
              "answer" % (mode, N, N + 1))
        sock, f = held.pop()
        f.close()
        sock.close()
        f = extra.makefile("rb")
        got = answered_within(extra, 10) and ht.read_response(f)
        ht.ok(got is not None and got and got.status == 200,
              "%s: once one of them closes, the %dth is answered" % (mode, N + 1),
              lambda: "got %r" % (got,))
        for s, fl in held:
            fl.close()
            s.close()
        extra.close()
        ht.ok(ht.whoami(h.addr) is not None, "%s: the worker serves on" % mode)


def test_shared_worker_stops_accepting_at_the_cap():
    check_cap("shared")


def test_passfd_master_passes_no_more_at_the_cap():
    check_cap("passfd")


def run_cli(args):
    p = subprocess.run([ht.HERD, "-l", "127.0.0.1:1"] + args, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    return p.returncode, p.stderr.decode(errors="replace")


def test_bad_values_are_refused():
    for bad in ("0", "-1", "abc", "3x", "", "16777217", "99999999999999999999"):
        code, err = run_cli(["--max-connections", bad])
        ht.ok(code == 2 and "--max-connections" in err,
              "--max-connections '%s' is refused with status 2 and names the "
              "option" % bad, lambda: "status %r, stderr %r" % (code, err[-300:]))


def test_program_outside_passfd_is_refused():
    code, err = run_cli(["--max-connections", "5", "--", "sleep", "10"])
    ht.ok(code not in (0, "timeout") and "passfd" in err,
          "a program's cap outside passfd mode is refused at start",
          lambda: "status %r, stderr %r" % (code, err[-300:]))


ht.run(test_shared_worker_stops_accepting_at_the_cap,
       test_passfd_master_passes_no_more_at_the_cap,
       test_bad_values_are_refused, test_program_outside_passfd_is_refused)

#!/usr/bin/env python3
"""serve.py: the built-in HTTP worker as a client sees it: routes, errors,
keep-alive, pipelining, HEAD, the header limit, and both workers serving."""
import http.client
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_routes(h):
    r = ht.get(h.addr, "/")
    ht.ok(r.status == 200 and r.body == b"hello\n", "GET / is 200 'hello\\n'", repr(r))
    pid, slot, gen = ht.whoami(h.addr)
    ht.ok(pid in h.workers() and 0 <= slot < 2 and gen == 1,
          "/whoami names a live child of the master, slot 0..1, generation 1",
          "answer %r, children %r" % ((pid, slot, gen), h.workers()))
    r = ht.get(h.addr, "/nothing-here")
    ht.is_(r.status, 404, "an unknown path is 404")


def test_malformed_request_is_400(h):
    for name, data in [("no spaces in the request line", b"BOGUS\r\n\r\n"),
                       ("a header line without a colon",
                        b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
                       ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n")]:
        out = ht.raw_exchange(h.addr, data)
        ht.ok(out.startswith(b"HTTP/1.1 400 "), "malformed request (%s) is 400" % name, repr(out[:200]))


def test_keep_alive(h):
    conn = http.client.HTTPConnection(ht.HOST, h.port, timeout=5)
    try:
        answers, socks = [], set()
        for _ in range(5):
            conn.request("GET", "/whoami")
            r = conn.getresponse()
            answers.append((r.status, r.read()))
            socks.add(id(conn.sock))
        ht.ok(len(socks) == 1 and all(s == 200 for s, _ in answers) and
              len(set(b for _, b in answers)) == 1,
              "keep-alive: 5 requests on one connection, one worker answers them all",
              repr(answers))
    finally:
        conn.close()


def test_pipelining(h):
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        s.sendall(ht.request_bytes("/whoami", close=False) +
                  ht.request_bytes("/missing", close=False) +
                  ht.request_bytes("/", close=True))
        rs = [ht.read_response(f) for _ in range(3)]
        rest = f.read()
    got = [(r.status, r.body[:4]) for r in rs]
    ht.ok(got == [(200, b"pid="), (404, b"not "), (200, b"hell")] and rest == b"",
          "pipelining: three requests in one write, three answers in order, then close",
          "got %r, then %r" % (rs, rest))


def test_head_has_no_body(h):
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        s.sendall(ht.request_bytes("/", "HEAD", close=False))
        head = ht.read_response(f, head_only=True)
        s.sendall(ht.request_bytes("/", "GET"))
        nxt = ht.read_response(f)  # a HEAD body would be read as its status line
    ht.ok(head.status == 200 and head.headers.get("content-length") == "6",
          "HEAD /: 200 with the GET's Content-Length", repr(head))
    ht.ok(nxt.status == 200 and nxt.body == b"hello\n",
          "HEAD /: no body follows (the next response starts right after the head)", repr(nxt))


def test_oversized_header_is_431(h):
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    out = ht.raw_exchange(h.addr, big)
    ht.ok(out.startswith(b"HTTP/1.1 431 "), "a 9 KB header is 431", repr(out[:200]))
    ok_head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 7000 + b"\r\n\r\n"
    out = ht.raw_exchange(h.addr, ok_head)
    ht.ok(out.startswith(b"HTTP/1.1 200 "), "a 7 KB header is still served", repr(out[:200]))


def test_body_over_1_mib_is_413(h):
    out = ht.raw_exchange(h.addr, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
    ht.ok(out.startswith(b"HTTP/1.1 413 "), "a 2 MB Content-Length is 413", repr(out[:200]))


def test_both_workers_answer(h):
    slots = set()
    ht.whoami_until(h.addr, lambda a: slots.add(a[1]) or slots == {0, 1},
                    timeout=15, threads=8)
    ht.is_(sorted(slots), [0, 1], "-w 2: both workers answer /whoami under concurrent clients")


def main():
    with ht.Herd("-w", "2") as h:
        for t in (test_routes, test_malformed_request_is_400, test_keep_alive,
                  test_pipelining, test_head_has_no_body, test_oversized_header_is_431,
                  test_body_over_1_mib_is_413, test_both_workers_answer):
            try:
                t(h)
            except Exception as e:
                ht.ok(False, "%s ran to the end" % t.__name__, repr(e))
        ht.is_(h.running(), True, "the master is still running after all of that")


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_pauses_when_out_of_fds():
    # The worker's fd limit leaves room for 3 connections; 8 arrive at once.
    # The rest must wait in the backlog (not be accepted and dropped), the
    # worker must not spin on the readable listener, and every connection
    # is served once fds free up (the lingering close gives them back).
    with ht.Herd("-w", "1", name="herd -w 1, worker out of fds") as h:
        w = h.workers()[0]
        resource.prlimit(w, resource.RLIMIT_NOFILE, (max(ht.fd_links(w)) + 4, 4096))
        socks = [ht.connect(h.addr, timeout=15) for _ in range(8)]
        time.sleep(0.3)
        cpu0 = cpu_seconds(w)
        time.sleep(1)
        spent = cpu_seconds(w) - cpu0
        ht.ok(spent < 0.5, "out of fds: the worker does not spin (%.2f s CPU in 1 s)" % spent)
        answers = []
        for s in socks:
            try:
                s.sendall(ht.request_bytes("/"))
                answers.append(s.recv(100)[:15])
            except OSError as e:
                answers.append(repr(e))
        for s in socks:
            s.close()
        ht.ok(answers == [b"HTTP/1.1 200 OK"] * 8,
              "out of fds: all 8 connections are served, the late ones once fds free up",
              repr(answers))
        paused = h.count_log(r"accept: Too many open files")
        resumed = h.count_log(r"accept: fds available again")
        ht.ok(1 <= paused <= resumed + 1, "out of fds: logged once per episode, not per attempt",
              "%d 'pausing' lines, %d 'available again' lines" % (paused, resumed))
        ht.is_(h.workers(), [w], "out of fds: the worker lives on")


ht.run(main, test_accept_pauses_when_out_of_fds)

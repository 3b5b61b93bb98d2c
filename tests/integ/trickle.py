#!/usr/bin/env python3
"""trickle.py: request heads that reach the built-in HTTP worker a byte at a
time get the answers they get when sent whole: keep-alive and pipelined
requests, bare LF, the head limit (431), and errors that are answered as
soon as the line that shows them is in, not when the head ends. The worker
parses such a head where the last read stopped (demo/http_parse.c); how
much CPU that saves is for bench/slowhead.py, not for a test."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

HEAD_MAX = ht.source_define("HTTP_HEAD_MAX")
HEADER_TIMEOUT_MS = ht.source_define("HEADER_TIMEOUT_MS")


def trickle(s, data, pause=0.0002):
    """Sends data one byte per send(), with Nagle off so that each byte is
    a segment of its own; the pause lets the worker read most of them one
    at a time (a faster client would merely have some bytes read
    together)."""
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        if pause:
            time.sleep(pause)


def padded_head(size, path="/", close=True):
    """A GET head of exactly size bytes, padded with header fields."""
    start = ("GET %s HTTP/1.1\r\nHost: test\r\n%s" %
             (path, "Connection: close\r\n" if close else "")).encode()
    room = size - len(start) - 2
    fields = []
    while room > 0:
        n = min(80, room) if room - 80 >= 8 or room <= 80 else room - 40
        fields.append(b"X-Pad: " + b"p" * (n - 9) + b"\r\n")
        room -= n
    head = start + b"".join(fields) + b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


def test_keep_alive_byte_by_byte(h):
    head = padded_head(2000, "/whoami", close=False)
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        trickle(s, head)
        first = ht.read_response(f)
        trickle(s, ht.request_bytes("/", close=True))
        second = ht.read_response(f)
        rest = f.read()
    ht.ok(first.status == 200 and ht.WHOAMI_RE.match(first.body),
          "a 2000-byte head sent a byte at a time: 200 from /whoami", repr(first))
    ht.ok(second.status == 200 and second.body == b"hello\n" and rest == b"",
          "the next request on the connection, a byte at a time too: 200, then close",
          "%r then %r" % (second, rest))


def test_pipelined_byte_by_byte(h):
    data = (ht.request_bytes("/whoami", close=False) + ht.request_bytes("/missing", close=False) +
            b"GET / HTTP/1.1\nHost: test\nConnection: close\n\n")
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        trickle(s, data, pause=0)  # heads and their ends meet within reads
        rs = [ht.read_response(f) for _ in range(3)]
        rest = f.read()
    got = [(r.status, r.body[:4]) for r in rs]
    ht.is_((got, rest), ([(200, b"pid="), (404, b"not "), (200, b"hell")], b""),
           "three pipelined requests (the last with bare LFs) sent a byte at a time: "
           "three answers in order, then close")


def test_limit_byte_by_byte(h):
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        trickle(s, padded_head(HEAD_MAX), pause=0)
        r = ht.read_response(f)
    ht.ok(r.status == 200, "a head of exactly %d bytes sent a byte at a time: 200" % HEAD_MAX,
          repr(r))
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        try:
            trickle(s, padded_head(HEAD_MAX + 1), pause=0)
        except OSError:
            pass  # the worker may answer and close before the last byte
        r = ht.read_response(f)
    ht.ok(r.status == 431, "one byte more: 431", repr(r))


def answer_before_the_head_ends(h, data):
    """Sends data a byte at a time and waits, without ending the head, for
    the answer; returns (status or None, seconds waited after the last byte)."""
    with ht.connect(h.addr, timeout=HEADER_TIMEOUT_MS / 2000.0) as s:
        trickle(s, data)
        t0 = time.monotonic()
        try:
            with s.makefile("rb") as f:
                r = ht.read_response(f)
        except OSError:
            r = None
        return (r.status if r else None), time.monotonic() - t0


def test_early_errors(h):
    for what, data, want in [
            ("a malformed request line", b"GET  / HTTP/1.1\r\n", 400),
            ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: test\r\n", 505),
            ("a second Host field", b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nHost: b\r\n", 400),
            ("a second, different Content-Length",
             b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n", 400),
            ("a field line without a colon", b"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n", 400)]:
        status, waited = answer_before_the_head_ends(h, data)
        ht.ok(status == want, "%s, sent a byte at a time, head not ended: %d at once" % (what, want),
              "got %r after %.1f s" % (status, waited))


def main():
    with ht.Herd("-w", "1") as h:
        for t in (test_keep_alive_byte_by_byte, test_pipelined_byte_by_byte,
                  test_limit_byte_by_byte, test_early_errors):
            try:
                t(h)
            except Exception as e:
                ht.ok(False, "%s ran to the end" % t.__name__, repr(e))
        ht.is_(len(h.workers()), 1, "the worker is still there after all of that")


ht.run(main)

#!/usr/bin/env python3
"""keepalive_memory.py: the built-in HTTP worker holds no buffer while a
keep-alive connection is idle: the input buffer is taken on the first read
of a request (IN_FIRST bytes, grown to IN_CAP for a long head), the output
buffer when an answer is queued, and both are given back (to a small pool or
to malloc) once everything read is answered and written. These tests check
that requests whose bytes straddle those points get the answers they get
when sent whole: heads that grow the buffer, input left over after an
answer, bodies read across several wake-ups, pipelines longer than a
buffer, many connections taking and giving back buffers at once, and output
that grows past the first buffer. How much memory that saves is measured by
bench/idle.py, not here."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

HEAD_MAX = ht.source_define("HTTP_HEAD_MAX")
IN_FIRST = ht.source_define("IN_FIRST")
POOL_MAX = ht.source_define("POOL_MAX")
PAUSE = 0.05  # long enough for the worker to read what was sent so far


def head_of(size, path="/", close=False):
    """A GET head of exactly size bytes, padded with header fields."""
    start = ("GET %s HTTP/1.1\r\nHost: test\r\n%s" %
             (path, "Connection: close\r\n" if close else "")).encode()
    room = size - len(start) - 2
    fields = []
    while room > 0:
        n = min(100, room) if room - 100 >= 10 or room <= 100 else room - 50
        fields.append(b"X-Pad: " + b"p" * (n - 9) + b"\r\n")
        room -= n
    head = start + b"".join(fields) + b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


def send_in_pieces(s, data, cuts):
    """Sends data cut at the given offsets, pausing between pieces."""
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    last = 0
    for cut in list(cuts) + [len(data)]:
        if cut > last:
            s.sendall(data[last:cut])
            time.sleep(PAUSE)
            last = cut


def expect(path):
    """(status, body prefix) the worker answers path with."""
    return {"/": (200, b"hello\n"), "/whoami": (200, b"pid=")}.get(path, (404, b"not found\n"))


def got(r):
    return None if r is None else (r.status, r.body[:len(expect("/whoami")[1])]
                                   if r.body.startswith(b"pid=") else r.body)


def test_head_that_grows_the_buffer(h):
    head = head_of(IN_FIRST + 3000, "/whoami")
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        send_in_pieces(s, head, [IN_FIRST - 1, IN_FIRST, IN_FIRST + 1, IN_FIRST + 2000])
        first = ht.read_response(f)
        s.sendall(ht.request_bytes("/", close=False))
        second = ht.read_response(f)
    ht.ok(got(first) == (200, b"pid="),
          "a %d-byte head cut around the first buffer's %d bytes: 200" % (len(head), IN_FIRST),
          repr(first))
    ht.ok(got(second) == (200, b"hello\n"),
          "the next request on that connection (a new, small buffer): 200", repr(second))


def test_head_at_the_limit_in_pieces(h):
    cuts = range(1000, HEAD_MAX, 1000)
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        send_in_pieces(s, head_of(HEAD_MAX, "/", close=False), cuts)
        at_limit = ht.read_response(f)
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        send_in_pieces(s, head_of(HEAD_MAX + 1, "/", close=False), cuts)
        over = ht.read_response(f)
    ht.ok(at_limit is not None and at_limit.status == 200,
          "a head of exactly %d bytes in 1000-byte pieces: 200" % HEAD_MAX, repr(at_limit))
    ht.ok(over is not None and over.status == 431, "one byte more: 431", repr(over))


def test_leftover_input_survives_the_answer(h):
    first = ht.request_bytes("/whoami", close=False)
    second = ht.request_bytes("/", close=True)
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        send_in_pieces(s, first + second, [len(first) + 7])
        rs = [ht.read_response(f), ht.read_response(f)]
        rest = f.read()
    ht.ok([got(r) for r in rs] == [(200, b"pid="), (200, b"hello\n")] and rest == b"",
          "a request and 7 bytes of the next in one read, the rest later: both answered",
          "%r then %r" % (rs, rest))


def test_body_across_reads(h):
    body = b"b" * 5000
    req = (b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    chunked = (b"GET /whoami HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n" + b"7d0\r\n" + b"c" * 2000 + b"\r\n0\r\n\r\n")
    last = ht.request_bytes("/missing", close=True)
    data = req + chunked + last
    cuts = list(range(50, len(data), 700))
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        send_in_pieces(s, data, cuts)
        rs = [ht.read_response(f) for _ in range(3)]
        rest = f.read()
    ht.ok([got(r) for r in rs] == [(200, b"hello\n"), (200, b"pid="), (404, b"not found\n")]
          and rest == b"",
          "a 5000-byte and a chunked body in %d pieces, then a request: 3 answers in order"
          % (len(cuts) + 1), "%r then %r" % (rs, rest))


def test_pipeline_longer_than_a_buffer(h):
    paths = ["/", "/whoami", "/nope"] * 100
    data = b"".join(ht.request_bytes(p, close=False) for p in paths)
    with ht.connect(h.addr) as s, s.makefile("rb") as f:
        s.sendall(data + ht.request_bytes("/", close=True))
        rs = [ht.read_response(f) for _ in range(len(paths) + 1)]
        rest = f.read()
    want = [expect(p) for p in paths] + [expect("/")]
    ht.ok([got(r) for r in rs] == want and rest == b"",
          "%d pipelined requests (%d bytes, %dx the first buffer) in one write: answered "
          "in order" % (len(paths) + 1, len(data), len(data) // IN_FIRST),
          "first difference at %r" % (next(((i, got(r), w) for i, (r, w)
                                            in enumerate(zip(rs, want)) if got(r) != w), None),))


def test_output_past_the_first_buffer(h):
    """Answers pile up while the client does not read: the output buffer
    grows past its first size, then reading resumes once it drains."""
    n = 2000
    with ht.connect(h.addr, timeout=10) as s, s.makefile("rb") as f:
        s.sendall(b"".join(ht.request_bytes("/", close=False) for _ in range(n)))
        time.sleep(0.3)
        rs = [ht.read_response(f) for _ in range(n)]
        s.sendall(ht.request_bytes("/whoami", close=True))
        last = ht.read_response(f)
    ht.ok(all(got(r) == (200, b"hello\n") for r in rs) and got(last) == (200, b"pid="),
          "%d pipelined requests read only after 0.3 s: all answered, then one more" % n,
          "%d good of %d, last %r" % (sum(got(r) == (200, b"hello\n") for r in rs), n, last))


def test_many_connections_take_and_give_back(h):
    """More connections than the pool keeps, each mid-request at once:
    each gets the answer to its own request, twice (the second request
    takes buffers that other connections gave back)."""
    n = POOL_MAX * 3 + 5
    paths = [["/", "/whoami", "/x%d" % i][i % 3] for i in range(n)]
    socks = [ht.connect(h.addr) for _ in range(n)]
    files = [s.makefile("rb") for s in socks]
    bad = []
    try:
        for rnd in range(2):
            reqs = [ht.request_bytes(p, close=False) for p in paths]
            for s, r in zip(socks, reqs):
                s.sendall(r[:20])
            time.sleep(PAUSE)
            for s, r in zip(socks[::-1], reqs[::-1]):
                s.sendall(r[20:])
            for i, f in enumerate(files):
                r = ht.read_response(f)
                if got(r) != expect(paths[i]):
                    bad.append((rnd, i, paths[i], got(r)))
    finally:
        for f, s in zip(files, socks):
            f.close()
            s.close()
    ht.ok(not bad, "%d connections, each with half a head in at once, twice: every one "
          "answered for its own path" % n, repr(bad[:5]))


def main():
    with ht.Herd("-w", "1") as h:
        for t in (test_head_that_grows_the_buffer, test_head_at_the_limit_in_pieces,
                  test_leftover_input_survives_the_answer, test_body_across_reads,
                  test_pipeline_longer_than_a_buffer, test_output_past_the_first_buffer,
                  test_many_connections_take_and_give_back):
            try:
                t(h)
            except Exception as e:
                ht.ok(False, "%s ran to the end" % t.__name__, repr(e))
        ht.is_(h.running(), True, "the master is still running after all of that")
    ht.done()


if __name__ == "__main__":
    main()

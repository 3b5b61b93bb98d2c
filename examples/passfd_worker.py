#!/usr/bin/env python3
"""passfd_worker.py: an external herd worker for passfd mode, in plain Python.

    herd -m passfd -l 127.0.0.1:8080 -w 4 -- python3 examples/passfd_worker.py

In passfd mode the herd master accepts every connection itself and hands it
to one of its workers over a channel: an AF_UNIX SOCK_SEQPACKET socket whose
fd number is in HERD_CHANNEL_FD. This worker answers each connection with
"hello" and closes it. docs/protocol.md describes the channel in full.

Every message is one datagram: a 24-byte header in native byte order, then
`len` payload bytes; a CONNECTION carries its socket as SCM_RIGHTS.
"""
import errno
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("=IIiiIi")  # type, len, pid, slot, gen, dst
LOAD_BODY = struct.Struct("=IIQ")  # active connections, pad (0), total received
QUIT, TERMINATE, READY, LOAD, CONNECTION = 3, 4, 6, 7, 9

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n"


class Worker:
    def __init__(self):
        self.chan = socket.socket(fileno=int(os.environ["HERD_CHANNEL_FD"]))
        self.ids = (os.getpid(), int(os.environ["HERD_SLOT"]), int(os.environ["HERD_GENERATION"]))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.chan, selectors.EVENT_READ, self.on_channel)
        self.active = 0     # connections open now
        self.total = 0      # connections received since start
        self.heads = {}     # connection: the request bytes read so far
        self.quitting = False
        self.reported = (0, 0)  # (active, total) of the last LOAD sent
        self.starved_until = None  # out of fds: the channel is left unread till then

    def send(self, type_, payload=b""):
        pid, slot, gen = self.ids
        self.chan.send(HEADER.pack(type_, len(payload), pid, slot, gen, 0) + payload)

    def report_load(self):
        # The master sends at most 64 connections beyond the `total` of our
        # latest LOAD, and prefers the worker with the fewest `active`: report
        # after every batch of events that changed either.
        self.send(LOAD, LOAD_BODY.pack(self.active, 0, self.total))
        self.reported = (self.active, self.total)

    def room_for_an_fd(self):
        # The kernel installs a message's fds as it is read, and drops them
        # when the fd table is full: a connection would be lost. So read
        # only while one more fd can be opened (docs/protocol.md).
        try:
            os.close(fcntl.fcntl(self.chan, fcntl.F_DUPFD_CLOEXEC, 0))
            return True
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            return False

    def on_channel(self, _chan):
        if not self.room_for_an_fd():
            # The connection waits in the channel; look again in 100 ms.
            self.sel.unregister(self.chan)
            self.starved_until = time.monotonic() + 0.1
            return
        # One datagram, one message; up to 4 fds may come with it.
        data, fds, _, _ = socket.recv_fds(self.chan, HEADER.size + 4096, 4)
        if not data:
            sys.exit(0)  # end of file: the master is gone
        type_ = HEADER.unpack_from(data)[0] if len(data) >= HEADER.size else 0
        if type_ == CONNECTION:
            self.total += 1  # counted even if refused: the master counts it sent
            if len(fds) == 1:
                self.accept(socket.socket(fileno=fds.pop()))
        for fd in fds:  # fds of any other message are not ours to keep
            os.close(fd)
        if type_ == QUIT:
            self.quitting = True  # finish what we have, then exit
        elif type_ == TERMINATE:
            sys.exit(0)

    def accept(self, conn):
        conn.setblocking(False)
        self.active += 1
        self.sel.register(conn, selectors.EVENT_READ, self.on_readable)
        self.heads[conn] = b""

    def on_readable(self, conn):
        try:
            data = conn.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        head = self.heads[conn] + data
        self.heads[conn] = head
        if data and b"\r\n\r\n" not in head and len(head) < 16384:
            return  # the request head is not complete yet
        if data:
            try:
                conn.send(RESPONSE)  # a fresh socket has room for this much
            except OSError:
                pass
        self.close(conn)

    def close(self, conn):
        self.sel.unregister(conn)
        del self.heads[conn]
        conn.close()
        self.active -= 1

    def run(self):
        self.send(READY)  # counts as ready at once (no --ready-delay wait)
        while not (self.quitting and self.active == 0):
            wait = None
            if self.starved_until is not None:
                wait = max(0.0, self.starved_until - time.monotonic())
            for key, _ in self.sel.select(wait):
                key.data(key.fileobj)
            if self.starved_until is not None and time.monotonic() >= self.starved_until:
                self.starved_until = None
                self.sel.register(self.chan, selectors.EVENT_READ, self.on_channel)
            if (self.active, self.total) != self.reported:
                self.report_load()


if __name__ == "__main__":
    # herd drains a passfd program with QUIT on the channel, and sends
    # --stop-signal (TERM by default) only if it is still here at the
    # shutdown timeout; its fast stop sends TERM (and TERMINATE): exit
    # cleanly rather than die of the signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    Worker().run()

#!/usr/bin/env python3
"""oneatatime.py: a program that serves one request at a time, as php-cgi
and a sync gunicorn worker do: it takes a connection, reads the request,
sleeps --delay seconds (default 0.05: the work), answers as pyapp.py does
(/whoami: "pid=P slot=S gen=G\\n", else "hello\\n") and closes, and only
then takes the next. What it does not take waits in the accept queue
(systemd sockets at fd 3), or in its passfd channel, where it reports its
load to herd as pyapp.py does.

  oneatatime.py [--proto systemd|passfd] [--delay SEC]
"""
import os
import signal
import socket
import struct
import sys
import time

HDR = struct.Struct("=IIiiIi")  # type, len, pid, slot, gen, dst
LOAD_PAYLOAD = struct.Struct("=IIQ")  # active, pad, total
QUIT, TERMINATE, READY, LOAD, CONNECTION = 3, 4, 6, 7, 9
PID = os.getpid()
SLOT = int(os.environ.get("HERD_SLOT", "-1"))
GEN = int(os.environ.get("HERD_GENERATION", "0"))


def serve(c, delay):
    c.settimeout(5)
    try:
        buf = b""
        while b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < 16384:
            data = c.recv(4096)
            if not data:
                return
            buf += data
        time.sleep(delay)
        parts = buf.split(b"\n", 1)[0].split()
        body = (b"pid=%d slot=%d gen=%d\n" % (PID, SLOT, GEN)
                if len(parts) > 1 and parts[1] == b"/whoami" else b"hello\n")
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n"
                  b"X-Pid: %d\r\n\r\n%s" % (len(body), PID, body))
    except OSError:
        pass
    finally:
        c.close()


def run_systemd(delay):
    lsock = socket.socket(fileno=3)
    lsock.setblocking(True)
    while True:
        try:
            c, _ = lsock.accept()
        except InterruptedError:
            continue
        serve(c, delay)


def run_passfd(delay):
    chan = socket.socket(fileno=int(os.environ["HERD_CHANNEL_FD"]))
    chan.setblocking(True)
    total = 0

    def send(type_, payload=b""):
        chan.send(HDR.pack(type_, len(payload), PID, SLOT, GEN, 0) + payload)

    send(READY)
    while True:
        data, fds, _, _ = socket.recv_fds(chan, HDR.size + 4096, 16)
        if not data:
            return  # the master is gone
        type_ = HDR.unpack_from(data)[0] if len(data) >= HDR.size else 0
        if type_ in (QUIT, TERMINATE):
            return
        for fd in fds:
            if type_ != CONNECTION:
                os.close(fd)
                continue
            total += 1
            send(LOAD, LOAD_PAYLOAD.pack(1, 0, total))
            serve(socket.socket(fileno=fd), delay)
            send(LOAD, LOAD_PAYLOAD.pack(0, 0, total))


def main():
    args, proto, delay = sys.argv[1:], "systemd", 0.05
    while args:
        if args[0] == "--proto" and len(args) > 1:
            proto, args = args[1], args[2:]
        elif args[0] == "--delay" and len(args) > 1:
            delay, args = float(args[1]), args[2:]
        else:
            sys.exit("oneatatime: usage: [--proto systemd|passfd] [--delay SEC]")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    (run_passfd if proto == "passfd" else run_systemd)(delay)


if __name__ == "__main__":
    main()

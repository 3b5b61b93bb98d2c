#!/usr/bin/env python3
"""served.py N: a program that recycles itself as php-cgi does after
PHP_FCGI_MAX_REQUESTS. It takes the listening socket on fd 0 (herd --fd0),
accepts with a blocking accept(), answers N HTTP requests ("hello",
one per connection) and exits with status 0. On SIGTERM it finishes the
request it is answering, if any, and exits 0."""
import signal
import socket
import sys

busy = stopping = False


def on_term(*_):
    global stopping
    stopping = True
    if not busy:
        sys.exit(0)

ANSWER = b"hello\n"


def serve(lsock):
    global busy
    conn, _ = lsock.accept()
    busy = True
    with conn:
        conn.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(ANSWER) + ANSWER)


def main():
    global busy
    signal.signal(signal.SIGTERM, on_term)
    lsock = socket.socket(fileno=0)
    for _ in range(int(sys.argv[1])):
        try:
            serve(lsock)
        except OSError:
            pass  # a client gone is not this program's failure
        busy = False
        if stopping:
            break
    sys.exit(0)


main()

#!/usr/bin/env python3
"""lingerfd.py: a peer that tries to freeze whoever closes the fd it sends.

It makes a TCP socket whose close() sleeps: connected to SINK (a listener
of the test's that never reads), its send buffer filled, SO_LINGER {1,
LINGER}. It sends that socket with SCM_RIGHTS over one of herd's surfaces,
then closes its own copy, so the receiver holds the last reference: if the
receiver (or the kernel on its behalf) closes it on its loop's thread, that
thread sleeps up to LINGER seconds.

  lingerfd.py SINK_PORT LINGER RESULT notify NAME   (an abstract NOTIFY_SOCKET)
  lingerfd.py SINK_PORT LINGER RESULT stream PATH TEXT
                                    (a unix stream socket; TEXT sent with it)
  lingerfd.py SINK_PORT LINGER RESULT channel       (as a passfd program:
                                    slot 0 sends READY with the fd)

RESULT is a file it writes "sent" or "refused ERRNO" to, then "closed";
stream mode adds the first line of the answer. In channel mode it waits
for the file RESULT.go before it sends. Channel and stream modes then stay (stream:
with the connection open) for at most 60 s.
"""
import array
import errno
import os
import socket
import struct
import sys
import threading
import time

HDR = struct.Struct("=IIiiIi")
MSG_READY = 6


def lingering(port, linger):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    try:
        while True:
            s.send(b"x" * 4096)
    except BlockingIOError:
        pass
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, linger))
    return s


def say(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def send(sock, data, fd, address=None):
    """ "sent", or "refused ENAME" when the kernel would not take the fd
    (the data then goes alone, as a peer would send it anyway)."""
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    try:
        if address is None:  # socket.send_fds drops its address argument
            sock.sendmsg([data], rights)
        else:
            sock.sendmsg([data], rights, 0, address)
        return "sent"
    except OSError as e:
        outcome = "refused " + errno.errorcode.get(e.errno, str(e.errno))
    try:
        if address is None:
            sock.send(data)
        else:
            sock.sendto(data, address)
    except OSError:
        pass
    return outcome


def main():
    port, linger, result, surface = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if surface == "channel" and os.environ.get("HERD_SLOT") != "0":
        chan = socket.socket(fileno=int(os.environ["HERD_CHANNEL_FD"]))
        chan.send(HDR.pack(MSG_READY, 0, os.getpid(), -1, 0, 0))
        time.sleep(60)
        return
    if surface == "channel":  # the test says when: it stops the master first
        while not os.path.exists(result + ".go"):
            time.sleep(0.01)
    victim = lingering(port, linger)
    if surface == "notify":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = sys.argv[5]
        addr = "\0" + name[1:] if name.startswith("@") else name
        outcome = send(s, b"STATUS=hello", victim.fileno(), addr)
    elif surface == "stream":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[5])
        outcome = send(s, sys.argv[6].encode().decode("unicode_escape").encode(), victim.fileno())
    else:
        s = socket.socket(fileno=int(os.environ["HERD_CHANNEL_FD"]))
        outcome = send(s, HDR.pack(MSG_READY, 0, os.getpid(), -1, 0, 0), victim.fileno())
        if outcome != "sent":  # ready anyway, as any program would be
            s.send(HDR.pack(MSG_READY, 0, os.getpid(), -1, 0, 0))
    say(result, outcome)
    # Sent, our close returns at once (the message holds a reference) and
    # the receiver's becomes the last one. Refused, ours is the last and
    # sleeps: in a thread of its own.
    closing = threading.Thread(target=victim.close, daemon=True)
    closing.start()
    closing.join(1)
    say(result, "closed")
    if surface == "stream":
        s.settimeout(5)
        try:
            say(result, "answer " + s.recv(200).decode("latin-1").split("\n")[0])
        except OSError as e:
            say(result, "answer none (%s)" % e)
    if surface != "notify":
        time.sleep(60)


if __name__ == "__main__":
    main()

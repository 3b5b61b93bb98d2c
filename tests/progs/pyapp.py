#!/usr/bin/env python3
"""pyapp.py: an external program for `herd ... -- PROGRAM` tests.

It serves HTTP/1.0-style (one request per connection, then close):
  GET /whoami  "pid=P slot=S gen=G\\n" (HERD_SLOT, HERD_GENERATION)
  GET /fds     "FD TARGET\\n" per fd this process had when it started
  GET /env     the herd-related variables it was given, PID=, UID=, and
               SIGMASK=, SIGIGN= (SigBlk, SigIgn of /proc/self/status at start;
               Python itself ignores SIGPIPE and SIGXFSZ)
  anything else "hello\\n"
Every answer carries "X-Pid: <pid>" so a test knows who answered.
On SIGTERM or SIGINT (or QUIT on the passfd channel) it stops accepting,
finishes the connections it holds (for at most 1 s) and exits 0.

  --proto systemd|fd0|passfd  how it gets its sockets (default systemd)
  --ignore-term               ignore SIGTERM
  --notify-ready-after SEC    READY (sd_notify, and on the passfd channel)
                              after SEC, not at once
  --status TEXT               once ready: STATUS=TEXT by sd_notify, or, in
                              passfd mode without NOTIFY_SOCKET, an APP message
  --watchdog-stop-after SEC   send WATCHDOG=1 only for the first SEC seconds
  --watchdog-trigger-after SEC  send WATCHDOG=trigger SEC after the start
  --exit-after SEC STATUS     exit with STATUS after SEC
  --orphan                    leave a grandchild behind that lives 0.5 s; its
                              pid goes to the file $PYAPP_ORPHAN_FILE if set
  --record-signals FILE       append HUP, USR1 or USR2 to FILE on each one
  --shutdown-listener         on stopping, shutdown(2) its listening sockets
                              before closing them (as some servers do): a
                              shared socket then stops for every process
"""
import os



def setuid0():
    """Whether this process could become root again: "refused" is right
    for a worker herd started with -u (tried in a child, so a process that
    is root keeps its own uid)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(0)
            os._exit(0)
        except OSError:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return "allowed" if os.waitstatus_to_exitcode(status) == 0 else "refused"

def _fd_snapshot():
    """(fd, target) of every fd open now; first thing, before imports."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            out.append((int(name), os.readlink("/proc/self/fd/" + name)))
        except OSError:
            pass  # the directory fd of listdir itself, closed by now
    return sorted(out)


START_FDS = _fd_snapshot()

import selectors  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

with open("/proc/self/status") as _f:
    _STATUS = dict(line.split(":", 1) for line in _f)
SIGMASK, SIGIGN = _STATUS["SigBlk"].strip(), _STATUS["SigIgn"].strip()

HDR = struct.Struct("=IIiiIi")  # type, len, pid, slot, gen, dst
LOAD_PAYLOAD = struct.Struct("=IIQ")  # active, pad, total
QUIT, TERMINATE, READY, LOAD, APP, CONNECTION = 3, 4, 6, 7, 8, 9
ENV_NAMES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "HERD_SLOT", "HERD_GENERATION",
             "HERD_WORKERS", "HERD_CHANNEL_FD", "NOTIFY_SOCKET", "WATCHDOG_USEC",
             "WATCHDOG_PID")
PID = os.getpid()
SLOT = int(os.environ.get("HERD_SLOT", "-1"))
GEN = int(os.environ.get("HERD_GENERATION", "0"))


def say(msg):
    sys.stderr.write("pyapp pid=%d slot=%d: %s\n" % (PID, SLOT, msg))
    sys.stderr.flush()


OPTIONS = {  # option: (key, number of values, conversion)
    "--proto": ("proto", 1, str), "--ignore-term": ("ignore_term", 0, bool),
    "--notify-ready-after": ("ready_after", 1, float), "--status": ("status", 1, str),
    "--watchdog-stop-after": ("wd_stop", 1, float), "--exit-after": ("exit_after", 2, None),
    "--orphan": ("orphan", 0, bool), "--record-signals": ("record", 1, str),
    "--shutdown-listener": ("shutdown", 0, bool),
    "--watchdog-trigger-after": ("wd_trigger", 1, float)}


def parse_args(argv):
    o = dict(proto="systemd", ignore_term=False, ready_after=None, status=None,
             wd_stop=None, exit_after=None, orphan=False, record=None, shutdown=False,
             wd_trigger=None)
    while argv:
        if argv[0] not in OPTIONS:
            raise SystemExit("pyapp: unknown argument %r" % argv[0])
        key, n, conv = OPTIONS[argv[0]]
        vals, argv = argv[1:1 + n], argv[1 + n:]
        o[key] = True if n == 0 else conv(vals[0]) if n == 1 else (float(vals[0]), int(vals[1]))
    if o["proto"] not in ("systemd", "fd0", "passfd"):
        raise SystemExit("pyapp: bad --proto %r" % o["proto"])
    return o


def make_orphan():
    """Double fork: the grandchild is reparented to the nearest subreaper."""
    mid = os.fork()
    if mid == 0:
        try:
            g = os.fork()
            if g == 0:
                os.closerange(3, 1 << 16)
                time.sleep(0.5)
                os._exit(0)
            path = os.environ.get("PYAPP_ORPHAN_FILE")
            if path:
                with open(path + ".tmp", "w") as f:
                    f.write("%d\n" % g)
                os.rename(path + ".tmp", path)
        finally:
            os._exit(0)
    os.waitpid(mid, 0)


class App:
    def __init__(self, o):
        self.o = o
        self.sel = selectors.DefaultSelector()
        self.timers = []  # [deadline, fn]
        self.chan = self.notify = None
        self.lsocks = []
        self.active = self.total = 0  # connections open now, received in all
        self.quitting = None  # when asked to stop: the deadline for it
        self.start = time.monotonic()

    # -- set-up --

    def listeners(self):
        if self.o["proto"] == "fd0":
            return [0]
        if os.environ.get("LISTEN_PID") != str(PID):
            say("LISTEN_PID is %r, not my pid" % os.environ.get("LISTEN_PID"))
            sys.exit(1)
        return list(range(3, 3 + int(os.environ.get("LISTEN_FDS", "0"))))

    def setup(self):
        if self.o["proto"] == "passfd":
            self.chan = socket.socket(fileno=int(os.environ["HERD_CHANNEL_FD"]))
            self.sel.register(self.chan, selectors.EVENT_READ, self.on_channel)
        else:
            for fd in self.listeners():
                s = socket.socket(fileno=fd)
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, self.on_listener)
                self.lsocks.append(s)
        if os.environ.get("NOTIFY_SOCKET"):
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.at(self.o["ready_after"] or 0, self.ready)
        if self.o["exit_after"]:
            self.at(self.o["exit_after"][0], lambda: os._exit(self.o["exit_after"][1]))
        usec = os.environ.get("WATCHDOG_USEC")
        if self.notify and usec and os.environ.get("WATCHDOG_PID", str(PID)) == str(PID):
            self.watchdog(int(usec) / 2e6)
        if self.notify and self.o["wd_trigger"] is not None:
            self.at(self.o["wd_trigger"], lambda: (self.sd_notify("WATCHDOG=trigger"),
                                                   say("sent WATCHDOG=trigger")))

    def at(self, delay, fn):
        self.timers.append([time.monotonic() + delay, fn])

    # -- talking to herd --

    def sd_notify(self, text):
        addr = os.environ["NOTIFY_SOCKET"]
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.notify.sendto(text.encode(), addr)

    def send(self, type_, payload=b"", dst=0):
        try:
            self.chan.send(HDR.pack(type_, len(payload), PID, SLOT, GEN, dst) + payload)
        except (BrokenPipeError, ConnectionResetError):
            sys.exit(0)  # the master is gone

    def report(self):
        self.send(LOAD, LOAD_PAYLOAD.pack(self.active, 0, self.total))

    def ready(self):
        if os.environ.get("PYAPP_NEVER_READY"):  # a program that hangs at start
            say("never ready (PYAPP_NEVER_READY)")
            return
        if self.notify:
            # Said before the send as well: once READY=1 is out, herd may
            # log "ready:" before this process gets to write another line.
            say("sending READY=1")
            self.sd_notify("READY=1")
            say("sent READY=1")
        if self.chan:
            self.send(READY)
            say("sent READY on the channel")
        if self.o["status"] is not None:
            if self.notify:
                self.sd_notify("STATUS=" + self.o["status"])
            elif self.chan:
                self.send(APP, self.o["status"].encode()[:4000], dst=-1)

    def watchdog(self, every):
        stop = self.o["wd_stop"]
        if stop is not None and time.monotonic() - self.start >= stop:
            say("no more WATCHDOG=1")
            return
        self.sd_notify("WATCHDOG=1")
        self.at(every, lambda: self.watchdog(every))

    # -- events --

    def on_listener(self, lsock, _ev):
        for _ in range(64):
            try:
                s, _ = lsock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            self.add_conn(s)

    def on_channel(self, chan, _ev):
        try:
            data, fds, _, _ = socket.recv_fds(chan, HDR.size + 4096, 4)
        except ConnectionResetError:
            data, fds = b"", []
        if not data:
            sys.exit(0)  # the master is gone
        type_ = HDR.unpack_from(data)[0] if len(data) >= HDR.size else 0
        if type_ == CONNECTION:
            self.total += 1
            if fds:
                self.add_conn(socket.socket(fileno=fds.pop(0)))
            self.report()
        for fd in fds:
            os.close(fd)
        if type_ == QUIT:
            self.stop()
        elif type_ == TERMINATE:
            sys.exit(0)

    def add_conn(self, s):
        s.setblocking(False)
        self.active += 1
        self.sel.register(s, selectors.EVENT_READ, Conn(self, s).on_event)

    def stop(self, *_):
        """Stop accepting; run() exits once the open connections are done.
        Also the signal handler: it runs between two bytecodes of run()."""
        if self.quitting is None:
            self.quitting = time.monotonic() + 1

    def run(self):
        while True:
            now = time.monotonic()
            if self.quitting is not None:
                for s in self.lsocks:
                    self.sel.unregister(s)
                    if self.o["shutdown"]:
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()
                self.lsocks = []
                if self.active == 0 or now > self.quitting:
                    sys.exit(0)
            due = [t for t in self.timers if t[0] <= now]
            for t in due:
                self.timers.remove(t)
                t[1]()
            if due:
                continue
            # A signal handler cannot wake select() (PEP 475 retries it), so
            # wake up often enough to see a stop request promptly.
            wait = min([t[0] for t in self.timers] + [now + 0.05])
            for key, ev in self.sel.select(max(0, wait - now)):
                key.data(key.fileobj, ev)


class Conn:
    def __init__(self, app, s):
        self.app, self.s = app, s
        self.buf, self.out = b"", None

    def on_event(self, s, _ev):
        try:
            if self.out is None:
                data = s.recv(8192)
                if not data or len(self.buf) > 16384:
                    return self.close()
                self.buf += data
                if b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
                    return
                self.out = response(self.buf)
                self.app.sel.modify(s, selectors.EVENT_WRITE, self.on_event)
            self.out = self.out[s.send(self.out):]
            if not self.out:
                self.close()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close()

    def close(self):
        self.app.sel.unregister(self.s)
        self.s.close()
        self.app.active -= 1
        if self.app.chan:
            self.app.report()


def response(head):
    parts = head.split(b"\n", 1)[0].split()
    path = parts[1].decode("latin-1") if len(parts) >= 2 else "/"
    if path == "/whoami":
        body = "pid=%d slot=%d gen=%d\n" % (PID, SLOT, GEN)
    elif path == "/fds":
        body = "".join("%d %s\n" % fd for fd in START_FDS)
    elif path == "/env":
        body = "".join("%s=%s\n" % (n, os.environ[n]) for n in ENV_NAMES if n in os.environ)
        body += "PID=%d\nUID=%d\nSIGMASK=%s\nSIGIGN=%s\n" % (PID, os.getuid(), SIGMASK, SIGIGN)
        body += "SETUID0=%s\n" % setuid0()
    else:
        body = "hello\n"
    body = body.encode()
    return (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\nX-Pid: %d\r\n\r\n" % (len(body), PID)) + body


def main():
    o = parse_args(sys.argv[1:])
    app = App(o)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if o["ignore_term"] else app.stop)
    signal.signal(signal.SIGINT, app.stop)

    def record(signum, _frame):
        if o["record"]:
            with open(o["record"], "a") as f:
                f.write(signal.Signals(signum).name[3:] + "\n")
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, record)
    if o["orphan"]:
        make_orphan()
    app.setup()
    app.run()


if __name__ == "__main__":
    main()

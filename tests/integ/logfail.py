#!/usr/bin/env python3
"""logfail.py: a log write never stops or kills herd. The log may be a file
at its size limit (systemd's LimitFSIZE=), a full disk, a FIFO or a pipe on
/dev/stdout whose reader stopped reading, or stderr on a socket (the
journal's) that nobody reads: each costs log lines, which are counted and
said once writing works again; the master keeps replacing workers and
obeys SIGTERM. And stderr on a file opened without O_APPEND (`2>file`),
shared with a program's own output, keeps every line herd wrote."""
import fcntl
import os
import re
import shutil
import signal
import subprocess
import socket
import struct
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

F_SETPIPE_SZ = 1031
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) \d+ "
                     r"[^:]+: .+$")
LOST_RE = r"log: (\d+) lines? could not be written \(%s\); \d+ in all"

# Sets up herd's process the way a service manager would, then runs it:
# default dispositions for SIGPIPE and SIGXFSZ (Python ignores both, and an
# ignored signal stays ignored across exec), then each KEY=VALUE before "--".
# No braces in here: Herd formats its arguments with str.format.
WRAP = r"""
import os, resource, signal, socket, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
args = sys.argv[1:]
while args[0] != "--":
    key, _, value = args.pop(0).partition("=")
    if key == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(value), int(value)))
    elif key in ("stdout-fifo", "stderr-fifo"):
        fd = os.open(value, os.O_WRONLY)
        os.dup2(fd, 1 if key == "stdout-fifo" else 2)
        os.close(fd)
    elif key == "stderr-unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s.connect(value)
        os.dup2(s.fileno(), 2)
        s.close()
    elif key == "stderr-noappend":
        fd = os.open("/proc/self/fd/2", os.O_WRONLY)
        os.dup2(fd, 2)
        os.close(fd)
os.execv(args[1], args[1:])
"""


def wrapped(opts, *herd_args, **kw):
    return ht.Herd("-c", WRAP, *opts, "--", ht.HERD, *herd_args, prog=sys.executable, **kw)


def answer(h):
    try:
        return ht.whoami(h.addr, timeout=2)
    except (OSError, ValueError):
        return None


def serving(h, timeout=10):
    ht.wait_until(lambda: not h.running() or answer(h), timeout, step=0.1)
    return h.running() and answer(h) is not None


def kill_round(h, n):
    """SIGKILLs every worker (the master logs two lines for each); whether
    the master had n new ones running within 10 s."""
    victims = h.workers()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    back = ht.wait_until(lambda: len(h.workers()) == n and
                         not set(victims) & set(h.workers()), 10)
    time.sleep(0.15)  # replaced at once only what lived 100 ms
    return bool(back)


def zombies(h):
    return [p for p in ht.children(h.pid) if (ht.proc_stat(p) or "Z")[0] == "Z"]


def signame(rc):
    try:
        return signal.Signals(-rc).name if rc is not None and rc < 0 else "-"
    except ValueError:
        return "?"


def sigterm_exits(h, what, timeout=5):
    start = time.monotonic()
    h.signal(signal.SIGTERM)
    rc = h.wait_exit(timeout)
    ht.ok(rc == 0, "%s: SIGTERM: exit status 0 within %d s" % (what, timeout),
          "status %r (%s) after %.1f s" % (rc, signame(rc), time.monotonic() - start))


def broken_lines(text, also=None):
    """The lines of text that are neither a whole log line nor match also."""
    return [l for l in text.split("\n")[:-1]
            if not LINE_RE.match(l) and not (also and re.match(also, l))]


# ---- a file at its size limit, a full disk ----------------------------------


def test_file_size_limit():
    """RLIMIT_FSIZE on --log: writes past it fail with EFBIG instead of
    SIGXFSZ killing the master (and, through PDEATHSIG, every worker)."""
    limit = 4096
    with wrapped(["fsize=%d" % limit], "-l", "{addr}", "-w", "2", "--log", "{dir}/herd.log",
                 name="herd --log FILE under RLIMIT_FSIZE=%d" % limit) as h:
        log = h.log_path()
        rounds = replaced = past = 0
        while rounds < 40 and past < 5:
            rounds += 1
            if not kill_round(h, 2):
                break
            replaced += 1
            past += os.path.getsize(log) >= limit - 512
        ht.ok(past == 5 and h.running(),
              "file size limit: the master lives on with its log at the limit",
              "log %d bytes; %d rounds; master status %r (%s)"
              % (os.path.getsize(log), rounds, h.proc.poll(), signame(h.proc.poll())))
        ht.is_(replaced, rounds, "file size limit: every killed worker is replaced")
        if not h.running():
            return
        os.rename(log, log + ".1")  # logrotate, then SIGUSR1: writing works again
        h.signal(signal.SIGUSR1)
        m = h.wait_log(LOST_RE % "File too large", timeout=10)
        ht.ok(m and int(m.group(1)) >= 5,
              "file size limit: after a reopen, one line says how many lines were lost",
              lambda: h.log()[-2000:])
        sigterm_exits(h, "file size limit")


def test_full_disk():
    """--log on a full disk (/dev/full: ENOSPC on every write)."""
    d = tempfile.mkdtemp(prefix="herd-integ-")
    link, real = os.path.join(d, "herd.log"), os.path.join(d, "real.log")
    os.symlink("/dev/full", link)
    try:
        # --log=PATH: the Herd helper must not read /dev/full as the log.
        with wrapped([], "-l", "{addr}", "-w", "2", "--log=" + link,
                     "--control", "{dir}/ctl.sock", wait_ready=False,
                     name="herd --log /dev/full") as h:
            ht.ok(serving(h), "full disk: herd serves")
            ht.ok(all(kill_round(h, 2) for _ in range(3)),
                  "full disk: killed workers are replaced")
            out = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl.sock"),
                                  "metrics"], capture_output=True, text=True, timeout=10).stdout
            lost = re.search(r"^herd_log_lines_lost_total (\d+)$", out, re.M)
            ht.ok(lost and int(lost.group(1)) >= 6,
                  "full disk: the metrics count the lost lines", out[-600:])
            os.symlink(real, link + ".new")  # room again: the log moves
            os.rename(link + ".new", link)
            h.signal(signal.SIGUSR1)
            found = ht.wait_until(lambda: re.search(LOST_RE % "No space left on device",
                                                    ht._read(real)), 10)
            ht.ok(found and int(found.group(1)) >= 6,
                  "full disk: once a write works, one line says how many lines were lost",
                  lambda: ht._read(real)[-2000:])
            sigterm_exits(h, "full disk")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ignored(pid):
    """The signals a process ignores, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", f.read(), re.M).group(1), 16)
    return {s for s in (signal.SIGPIPE, signal.SIGXFSZ) if mask >> (s - 1) & 1}


def test_dispositions():
    """SIGXFSZ and SIGPIPE are ignored where herd writes its log (the
    master, in-process workers) and at their defaults in a program herd
    runs: an ignored disposition would survive its exec."""
    both = {signal.SIGPIPE, signal.SIGXFSZ}
    with ht.Herd("-w", "1", name="herd -w 1") as h:
        ht.is_((ignored(h.pid), ignored(h.workers()[0])), (both, both),
               "the master and an in-process worker ignore SIGPIPE and SIGXFSZ")
    with ht.Herd("-w", "1", "--ready-delay", "0.2", "--", "/bin/sleep", "600",
                 name="herd -w 1 -- sleep") as h:
        ht.is_(ignored(h.workers()[0]), set(),
               "a program run by herd gets SIGPIPE and SIGXFSZ at their defaults")


# ---- a reader that stops reading ---------------------------------------------


def unread(fd):
    """Bytes waiting to be read on fd."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]


class Fifo:
    """A FIFO of 4 KiB whose read end the test holds and reads only when
    asked."""

    def __init__(self, d):
        self.path = os.path.join(d, "log.fifo")
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(self.fd, F_SETPIPE_SZ, 4096)
        self.data = b""

    def connect(self):
        pass

    def queued(self):
        return unread(self.fd)

    def drain(self):
        self.data += drained(lambda: os.read(self.fd, 65536))

    def close(self):
        os.close(self.fd)


def drained(read):
    """All that read() gives until it would block or reaches the end."""
    got = b""
    while True:
        try:
            b = read()
        except BlockingIOError:
            return got
        if not b:
            return got
        got += b


class UnixStream:
    """A unix stream socket, as the journal gives a service for stdout and
    stderr, that accepts herd's connection and reads only when asked."""

    def __init__(self, d):
        self.path = os.path.join(d, "journal")
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(1)
        self.lsock.settimeout(10)
        self.conn = None
        self.data = b""

    def connect(self):
        self.conn, _ = self.lsock.accept()
        self.conn.setblocking(False)

    def queued(self):
        return unread(self.conn.fileno())

    def drain(self):
        self.data += drained(lambda: self.conn.recv(65536))

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.lsock.close()


def fill(h, reader, n):
    """Kill rounds until what waits for the reader stopped growing for 3
    rounds (lines are being lost). Returns (full, every worker replaced)."""
    last, still = None, 0
    for _ in range(60):
        if not kill_round(h, n):
            return False, False
        q = reader.queued()
        still, last = (still + 1 if q == last else 0), q
        if still == 3:
            return True, True
    return False, True


def stalled_reader(what, reader_class, opts, log_args):
    """herd logging to a reader that stops reading: the master keeps
    replacing workers (no zombie waits), obeys SIGTERM with the log full,
    and once the reader reads again, says how many lines were lost; every
    line that went out is whole."""
    d = tempfile.mkdtemp(prefix="herd-integ-")
    reader = reader_class(d)
    n = 4
    start = time.monotonic()
    try:
        with wrapped([o.replace("READER", reader.path) for o in opts],
                     "-l", "{addr}", "-w", str(n),
                     *[a.replace("READER", reader.path) for a in log_args], wait_ready=False,
                     name="herd, %s" % what) as h:
            reader.connect()
            ht.ok(serving(h), "%s: herd serves" % what)
            full, replaced = fill(h, reader, n)
            ht.ok(full and replaced, "%s: with the log full, killed workers are still replaced"
                  % what, "full %r, replaced %r, master status %r (%s)"
                  % (full, replaced, h.proc.poll(), signame(h.proc.poll())))
            ht.ok(ht.wait_until(lambda: not zombies(h), 5),
                  "%s: no zombie waits to be reaped" % what, lambda: repr(zombies(h)))
            reader.drain()
            kill_round(h, n)  # lines again, and one saying what was lost
            ht.wait_until(lambda: reader.drain() or re.search(
                LOST_RE % "Resource temporarily unavailable", reader.data.decode()), 5)
            m = re.search(LOST_RE % "Resource temporarily unavailable", reader.data.decode())
            ht.ok(m and int(m.group(1)) > 0,
                  "%s: read again, the log says how many lines were lost" % what,
                  lambda: reader.data.decode()[-1500:])
            full, replaced = fill(h, reader, n)
            ht.ok(full, "%s: the log is full again" % what)
            sigterm_exits(h, what)
            reader.drain()
            bad = broken_lines(reader.data.decode("utf-8", "replace"))
            ht.ok(not bad, "%s: every line written is whole" % what, lambda: repr(bad[:5]))
            said = len(re.findall(LOST_RE % "[^)]+", reader.data.decode("utf-8", "replace")))
            secs = time.monotonic() - start
            ht.ok(said <= 1 + secs, "%s: lost lines said at most once a second" % what,
                  "%d times in %.1f s" % (said, secs))
            # What reached the reader is herd's stderr here, sanitizer reports included.
            out = os.path.join(h.dir, "reader")
            with open(out, "wb") as f:
                f.write(reader.data)
            h.extra_logs.append(out)
    finally:
        reader.close()
        shutil.rmtree(d, ignore_errors=True)


def test_fifo_reader_stops():
    # --log=PATH: the Herd helper must not open the FIFO to read the log.
    stalled_reader("--log FIFO", Fifo, [], ["--log=READER"])


def test_stdout_pipe_reader_stops():
    stalled_reader("--log /dev/stdout, a pipe", Fifo, ["stdout-fifo=READER"],
                   ["--log=/dev/stdout"])


def test_stderr_pipe_reader_stops():
    stalled_reader("stderr a pipe", Fifo, ["stderr-fifo=READER"], [])


def test_stderr_socket_reader_stops():
    stalled_reader("stderr a unix stream socket", UnixStream, ["stderr-unix=READER"], [])


def test_fifo_without_reader_is_refused():
    """A FIFO is opened without waiting for a reader: with none, herd says
    so and exits, instead of hanging before it has even bound."""
    d = tempfile.mkdtemp(prefix="herd-integ-")
    fifo = os.path.join(d, "log.fifo")
    os.mkfifo(fifo)
    try:
        with ht.Herd("-w", "1", "--log=" + fifo, wait_ready=False,
                     name="herd --log FIFO, no reader") as h:
            ht.is_(h.wait_exit(10), 1, "--log FIFO without a reader: exit status 1 at once")
            ht.ok(re.search(r"log .*: No such device or address \(a FIFO with no reader",
                            h.log()), "and it says why", lambda: h.log()[-1000:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- stderr a file shared with a program ------------------------------------


CHILD_LINE = r"child \d+ writes a line of its own$"


def test_stderr_file_without_append():
    """2>file opens without O_APPEND: a program writing its own output
    through that description would write over herd's lines, appended
    through herd's own description, unless the description appends too."""
    prog = 'while :; do echo "child $$ writes a line of its own" >&2; sleep 0.01; done'
    with wrapped(["stderr-noappend"], "-l", "{addr}", "-w", "3", "--ready-delay", "0.2",
                 "--", "/bin/sh", "-c", prog, wait_ready=False,
                 name="herd 2>file -- PROGRAM writing to stderr") as h:
        ready = h.wait_log(r"ready: 3 workers", timeout=10)
        time.sleep(0.5)
        h.signal(signal.SIGHUP)
        reloaded = h.wait_log(r"generation 2 ready", timeout=10)
        time.sleep(0.5)
        sigterm_exits(h, "stderr a file without O_APPEND")
        text = h.log()
        want = [r"listening on ", r"herd \S+ master started", r"worker 0 started",
                r"worker 1 started", r"worker 2 started", r"ready: 3 workers",
                r"reload: starting generation 2", r"generation 2 ready",
                r"master exiting with status 0"]
        missing = [w for w in want if not re.search(r"^\S+ \w+ \d+ master: " + w, text, re.M)]
        ht.ok(ready and reloaded and not missing,
              "stderr a file without O_APPEND: herd's lines are all there",
              "missing %r" % missing)
        bad = broken_lines(text, CHILD_LINE)
        ht.ok(not bad and len(re.findall(CHILD_LINE, text, re.M)) > 10,
              "stderr a file without O_APPEND: every line whole, herd's and the program's",
              lambda: repr(bad[:5]))


ht.run(test_dispositions,
       test_file_size_limit,
       test_full_disk,
       test_fifo_reader_stops,
       test_stdout_pipe_reader_stops,
       test_stderr_pipe_reader_stops,
       test_stderr_socket_reader_stops,
       test_fifo_without_reader_is_refused,
       test_stderr_file_without_append)

#!/usr/bin/env python3
"""hostile.py: no peer can freeze the master (or a worker's loop) with an
fd whose close() blocks.

Another uid (nobody) sends a TCP socket with SO_LINGER {1, 20 s} and unsent
data (tests/progs/lingerfd.py) to each surface herd listens on: the
children's notify socket, the control socket (a refused connection), a unix
--metrics socket, a worker's channel (a program under -u nobody), and a
built-in worker's unix listener. Closing that socket, or purging it from a
queue, on a loop's thread would put the thread to sleep for 20 s. Then,
within a few seconds: the master replaces a SIGKILLed worker, obeys SIGTERM,
and (unix listener) the worker answers. Each surface is tried twice: as the
kernel has it (SO_PASSRIGHTS, Linux 6.16: the sender gets EPERM), and with
HERD_TEST_NO_PASSRIGHTS=1, herd's fallback for older kernels (a helper
thread closes what arrives).
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

LINGERFD = os.path.join(ht.REPO, "tests", "progs", "lingerfd.py")
LINGER = 20  # seconds a blocking close would sleep
SOON = 4  # what "at once" means here: far below LINGER, far above noise
PROGRAM = ("import os,socket,time\n"
           "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n"
           "n=os.environ['NOTIFY_SOCKET']\n"
           "s.sendto(b'READY=1',('\\0'+n[1:]) if n[0]=='@' else n)\n"
           "time.sleep(60)\n")


class Sink:
    """A TCP listener that accepts and never reads: the lingering socket's
    unsent data stays unsent while the test runs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((ht.HOST, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for s in self.held:
            s.close()
        self.sock.close()


def nobody():
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def attack(h, sink, *args, stop=None):
    """Runs lingerfd.py as nobody; returns its outcome lines. The process
    stop (the receiver) is stopped until the fd is sent and the sender's
    copy closed: the receiver's reference is then the last, and the fd is
    queued before the receiver reads (or accepts, or refuses) anything."""
    uid, gid = nobody()
    os.kill(stop, signal.SIGSTOP)
    result = os.path.join(h.dir, "attack")
    open(result, "w").close()
    os.chmod(result, 0o666)

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.chmod(h.dir, 0o755)
    with open(os.path.join(h.dir, "attack.err"), "wb") as err:
        p = subprocess.Popen([ht.python_for_all(), LINGERFD, str(sink.port), str(LINGER),
                              result] + list(args), preexec_fn=drop, stdin=subprocess.DEVNULL,
                             stderr=err)
    h.extra_logs.append(os.path.join(h.dir, "attack.err"))
    h.extra_pids = getattr(h, "extra_pids", []) + [p]
    ht.wait_until(lambda: "closed" in ht._read(result), SOON)
    os.kill(stop, signal.SIGCONT)
    ht.wait_until(lambda: "answer" in ht._read(result) or args[0] != "stream", SOON + 2)
    return [l for l in ht._read(result).splitlines() if l != "closed"]


def outcome_ok(lines, fallback, what):
    want = "sent" if fallback else "refused EPERM"
    ht.ok(lines[:1] == [want], "%s: the fd is %s" % (
        what, "sent (the fallback takes it)" if fallback else "refused at the source (EPERM)"),
        "attacker said %r" % lines)


def master_alive(h, what):
    """The master reaps and replaces a SIGKILLed worker, then obeys SIGTERM,
    each within SOON seconds."""
    pids = h.workers()
    mark = h.mark()
    victim = pids[-1]
    os.kill(victim, signal.SIGKILL)
    ht.ok(h.wait_log(r"worker \d+ started", since=mark, timeout=SOON) is not None,
          "%s: a SIGKILLed worker is replaced at once" % what, lambda: h.log()[-1500:])
    h.signal(signal.SIGTERM)
    ht.ok(h.wait_exit(SOON) is not None, "%s: SIGTERM is obeyed at once" % what,
          lambda: h.log()[-1500:])


def cleanup(h):
    for p in getattr(h, "extra_pids", []):
        p.kill()
        p.wait()


def env(fallback):
    if fallback:
        os.environ["HERD_TEST_NO_PASSRIGHTS"] = "1"
    else:
        os.environ.pop("HERD_TEST_NO_PASSRIGHTS", None)


def notify_name(h):
    def find():
        for pid in h.workers():
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    for kv in f.read().split(b"\0"):
                        if kv.startswith(b"NOTIFY_SOCKET="):
                            return kv[14:].decode()
            except OSError:
                pass
        return None
    return ht.wait_until(find, 5)


def surface_notify(fallback):
    sink = Sink()
    with ht.Herd("-w", "2", "--notify", "--", sys.executable, "-c", PROGRAM,
                 name="herd --notify (lingering fd)") as h:
        name = notify_name(h)
        ht.ok(name is not None, "notify: the children's NOTIFY_SOCKET is known")
        outcome_ok(attack(h, sink, "notify", name or "@none", stop=h.pid), fallback, "notify")
        master_alive(h, "notify")
        cleanup(h)
    sink.close()


def stream_surface(fallback, what, option, sock, text, answer, says):
    """A unix stream socket of the master's (option {dir}/sock), opened to
    all users as if its directory were: nobody connects and sends text
    with the fd while the master is stopped."""
    sink = Sink()
    where = ("unix:{dir}/" if option == "--metrics" else "{dir}/") + sock
    with ht.Herd("-w", "2", option, where, name="herd %s unix" % option) as h:
        path = os.path.join(h.dir, sock)
        os.chmod(path, 0o666)
        lines = attack(h, sink, "stream", path, text, stop=h.pid)
        outcome_ok(lines, fallback, what)
        ht.ok(any(l.startswith("answer " + answer) for l in lines),
              "%s: %s, at once" % (what, says), "attacker said %r" % lines)
        master_alive(h, what)
        cleanup(h)
    sink.close()


def surface_control(fallback):
    """The control socket refuses nobody (not root, not herd's user): the
    master closes a connection that has the fd queued."""
    stream_surface(fallback, "control", "--control", "ctl.sock", "status\\n",
                   "error: refused", "nobody is refused")


def surface_metrics(fallback):
    stream_surface(fallback, "metrics", "--metrics", "metrics.sock",
                   "GET /metrics HTTP/1.0\\r\\n\\r\\n", "HTTP/1.0 200",
                   "the request is answered")


def surface_channel(fallback):
    """A program under -u nobody sends READY with the fd on its channel."""
    sink = Sink()
    d = tempfile.mkdtemp(prefix="herd-hostile-")
    os.chmod(d, 0o777)
    result = os.path.join(d, "attack")
    with ht.Herd("-w", "2", "-m", "passfd", "-u", "nobody", "--", ht.python_for_all(), LINGERFD,
                 str(sink.port), str(LINGER), result, "channel",
                 name="herd -m passfd -u nobody -- lingerfd channel") as h:
        h.signal(signal.SIGSTOP)
        open(result + ".go", "w").close()
        ht.wait_until(lambda: "closed" in ht._read(result), SOON)
        h.signal(signal.SIGCONT)
        outcome_ok(ht._read(result).splitlines(), fallback, "channel")
        master_alive(h, "channel")
    shutil.rmtree(d, ignore_errors=True)
    sink.close()


def surface_unix_listener(fallback):
    """The built-in worker's own loop: a client of its unix listener."""
    sink = Sink()
    with ht.Herd("-l", "unix:{dir}/http.sock", "-w", "1", tcp=False,
                 name="herd -l unix: (lingering fd)") as h:
        path = os.path.join(h.dir, "http.sock")
        os.chmod(path, 0o666)
        lines = attack(h, sink, "stream", path, "GET / HTTP/1.0\\r\\n\\r\\n",
                       stop=h.workers()[0])
        outcome_ok(lines, fallback, "unix listener")
        ht.ok(any(l.startswith("answer HTTP/1.") for l in lines),
              "unix listener: the worker answers at once", "attacker said %r" % lines)
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(SOON)
        try:
            c.connect(path)
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            first = c.recv(100)
        except OSError as e:
            first = repr(e).encode()
        c.close()
        ht.ok(first.startswith(b"HTTP/1."), "unix listener: the next client is served at once",
              repr(first))
        master_alive(h, "unix listener")
        cleanup(h)
    sink.close()


def main():
    if os.geteuid() != 0 or nobody() is None or ht.python_for_all() is None:
        ht.skip("hostile fds", "needs root, a user nobody and a Python it may run")
        return ht.done()
    for fallback in (False, True):
        env(fallback)
        ht.diag("SO_PASSRIGHTS %s" % ("off: herd's fallback" if fallback else "as the kernel has it"))
        for t in (surface_notify, surface_control, surface_metrics, surface_channel,
                  surface_unix_listener):
            t(fallback)
    env(False)
    return ht.done()


if __name__ == "__main__":
    sys.exit(main())

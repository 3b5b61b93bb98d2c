#!/usr/bin/env python3
"""
herdtest.py: what the integration tests share: a TAP reporter, a Herd class
that runs the real binary on a free loopback port and always cleans up after
it, HTTP helpers over raw sockets, and a load generator.

Every wait here is bounded; every process started here is killed on teardown
(the `with` block, and atexit as a last resort).

The Makefile's `prove tests/integ/*.py` runs this file too: run as a
program, it tests its own helpers, which the other tests rely on.
"""
import atexit
import glob
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HERD_BUILD") or os.path.join(REPO, "build", "asan")
HERD = os.path.join(BUILD, "herd")
ECHO = os.path.join(BUILD, "examples", "echo")
HOST = "127.0.0.1"

# The same sanitizer settings as `make test`, when run by hand.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|LeakSanitizer|runtime error:")
# The master's own line, not a program's output that looks like it (a
# program's lines are "master: worker N (pid P, generation G): ...").
STARTED_RE = re.compile(r"master: worker (\d+) started \(pid (\d+), generation (\d+)\)$",
                        re.M)
WHOAMI_RE = re.compile(rb"^pid=(\d+) slot=(\d+) gen=(\d+)\n$")

# ---- TAP -------------------------------------------------------------------

_count = 0
_failed = 0


def diag(msg, out=None):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, file=out or sys.stdout, flush=True)


def why(msg):
    """A failed test's diagnostics, on stderr: prove shows them in a run
    that is not verbose too (CI's), where a TAP comment on stdout is
    dropped, and a failure seen once on a loaded machine stays readable."""
    sys.stdout.flush()
    diag(msg, sys.stderr)


def ok(cond, name, diag_=None):
    """One test line; diag_ (a string or a callable giving one) is printed
    when the test fails."""
    global _count, _failed
    _count += 1
    name = str(name).replace("#", "No.")
    print("%s %d - %s" % ("ok" if cond else "not ok", _count, name), flush=True)
    if not cond:
        _failed += 1
        if diag_ is not None:
            why(diag_() if callable(diag_) else diag_)
    return bool(cond)


def skip(name, reason):
    """A test that could not be run here; not a failure."""
    global _count
    _count += 1
    print("ok %d - %s # SKIP %s" % (_count, name.replace("#", "No."), reason), flush=True)


def is_(got, want, name):
    return ok(got == want, name, "got:  %r\nwant: %r" % (got, want))


def done():
    _teardown_all()
    print("1..%d" % _count, flush=True)
    sys.exit(1 if _failed else 0)


def run(*tests):
    """Runs test functions in order; one that raises is a failed test."""
    for t in tests:
        try:
            t()
        except Exception as e:
            if isinstance(e, RuntimeError) and "did not become ready" in str(e):
                ok(False, "%s: herd started and became ready" % t.__name__, str(e)[-2500:])
            else:
                ok(False, "%s ran to the end" % t.__name__, traceback.format_exc())
        _teardown_all()
    done()


def wait_until(pred, timeout, step=0.02):
    """Polls pred() until it returns something true; returns that, or the
    last (false) value after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return None if n == 0 else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)


def source_define(name):
    """An integer #define from herd's source (src/, demo/, include/), so the
    tests follow it wherever it lives. A name not found, or defined twice
    with different values, is an error: a test falling back to a guess
    after a refactoring moved the define would test nothing."""
    rx = re.compile(r"^\s*#define\s+%s\s+\(?(\d+)" % re.escape(name), re.M)
    found = set()
    for d in ("src", "demo", "include"):
        for path in glob.glob(os.path.join(REPO, d, "*.[ch]")):
            with open(path) as f:
                found.update(int(v) for v in rx.findall(f.read()))
    if len(found) != 1:
        raise LookupError("#define %s: %s in herd's source" %
                          (name, "not found" if not found else "values %r" % sorted(found)))
    return found.pop()


def herd_version():
    try:
        with open(os.path.join(REPO, "include", "herd.h")) as f:
            return re.search(r'#define HERD_VERSION "([^"]+)"', f.read()).group(1)
    except (OSError, AttributeError):
        return "0.1.0"

# ---- processes ---------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid, comm, start time) of a process, or None when it is
    gone. The start time tells a process from a later one with its pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), comm, int(rest[19])


def alive(pid):
    """Running (a zombie is as good as gone: it runs no code)."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return sorted(int(x) for x in f.read().split())
    except OSError:
        pass
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None and st[1] == pid:
                out.append(int(d))
    return sorted(out)


def fd_links(pid):
    """{fd: readlink target} of a process."""
    out = {}
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except OSError:
            pass  # closed while we looked
    return out


def world_runnable(path):
    """Whether any user may execute path (every directory on the way
    searchable by others, the file executable by others)."""
    path = os.path.realpath(path)
    try:
        if not os.stat(path).st_mode & 0o001:
            return False
        d = os.path.dirname(path)
        while d != "/":
            if not os.stat(d).st_mode & 0o001:
                return False
            d = os.path.dirname(d)
    except OSError:
        return False
    return True


def python_for_all():
    """A Python interpreter that a dropped user (nobody) may run, or None."""
    return next((p for p in (sys.executable, "/usr/bin/python3") if world_runnable(p)), None)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_live = set()


def _same_alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[3] == start and st[0] not in ("Z", "X")


def _kill(pid, sig, start=None):
    """kill(), only to the process that had this start time, if given."""
    st = proc_stat(pid)
    if st is not None and (start is None or st[3] == start):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _teardown_all():
    for h in list(_live):
        h.kill_all()


atexit.register(_teardown_all)


class Herd:
    """The herd binary (or an example) on a free loopback port.

    args may use {addr} (HOST:PORT), {port} and {dir} (a private temporary
    directory). Unless tcp=False or args already hold {addr}, "-l {addr}"
    is put first. env (added to the test's environment) and cwd are herd's,
    and so its programs'. control=True puts "--control {dir}/ctl.sock" first,
    for status(); args may give --control themselves instead. Use as a
    context manager: leaving the block kills the master and every worker
    and reports sanitizer findings as a test.
    """

    def __init__(self, *args, prog=None, tcp=True, name=None, report_clean=True,
                 wait_ready=True, stderr_pipe=False, env=None, cwd=None, control=False):
        if control:
            args = ("--control", "{dir}/ctl.sock") + args
        self.last_status = None  # status()'s last answer, or why there was none
        self.env = dict(os.environ, **env) if env else None
        self.cwd = cwd
        self.stderr_pipe = stderr_pipe  # stderr is a pipe: see close_log_reader
        self.pipe_reader = None
        self.prog = prog or HERD
        self.args = list(args)
        self.tcp = tcp
        self.name = name or " ".join([os.path.basename(self.prog)] + self.args)
        self.report_clean = report_clean
        self.wait_ready = wait_ready
        self.dir = tempfile.mkdtemp(prefix="herd-integ-")
        self.out_path = os.path.join(self.dir, "stderr")
        self.extra_logs = []
        self.proc = None
        self.port = None
        self.seen_workers = {}  # pid: start time, of every child ever seen
        self.closed = False

    # -- start and stop --

    def __enter__(self):
        self._failed_before = _failed
        _live.add(self)
        try:
            self.start()
        except BaseException:
            self.kill_all()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _argv(self):
        args = self.args
        if self.tcp and not any("{addr}" in a for a in args):
            args = ["-l", "{addr}"] + args
        fmt = dict(addr="%s:%s" % (HOST, self.port), port=self.port, dir=self.dir)
        return [self.prog] + [a.format(**fmt) for a in args]

    def start(self, timeout=10):
        for _ in range(5):
            self.port = free_port() if self.tcp else None
            self.argv = self._argv()
            with open(self.out_path, "ab") as out:
                err = out
                if self.stderr_pipe:
                    r, err = os.pipe()
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, close_fds=True,
                                             env=self.env, cwd=self.cwd)
                if self.stderr_pipe:
                    os.close(err)
                    self.pipe_reader = _PipeReader(r, self.out_path)
            self.pid = self.proc.pid
            if not self.wait_ready:
                return self
            if self.wait_log(r"ready:", timeout=timeout):
                self.workers()  # remember them for teardown
                return self
            if self.proc.poll() is not None and "Address already in use" in self.log():
                continue  # someone took the port between our probe and bind
            break
        raise RuntimeError("herd did not become ready: %s\n%s" % (self.argv, self.log()[-3000:]))

    def close(self):
        """SIGTERM first, so the sanitizers' exit-time checks (LeakSanitizer)
        run in the master and the workers; then SIGKILL whatever is left."""
        if self.closed:
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.workers()
                self.signal(signal.SIGCONT)  # in case a test stopped it
                self.signal(signal.SIGTERM)
            except OSError:
                pass
            self.wait_exit(10)
        self.kill_all()
        self.closed = True
        text = self.all_output()
        found = [l for l in text.splitlines() if SANITIZER_RE.search(l)]
        if found or self.report_clean:
            ok(not found, "%s: no sanitizer reports" % self.name, lambda: "\n".join(found[:10]))
        if _failed > self._failed_before:
            why("log of `%s` (last 60 lines):" % " ".join(self.argv))
            why("\n".join(text.splitlines()[-60:]))
        shutil.rmtree(self.dir, ignore_errors=True)

    def close_log_reader(self):
        """With stderr_pipe: the reader of herd's stderr goes away (what
        is logged after this is lost)."""
        if self.pipe_reader is not None:
            self.pipe_reader.stop()

    def kill_all(self):
        """SIGKILL the master and every worker it had, without relying on
        herd's own clean-up (PR_SET_PDEATHSIG) working; bounded waits."""
        _live.discard(self)
        self.close_log_reader()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _kill(self.pid, signal.SIGSTOP)  # no more respawns meanwhile
            self.workers()
            for pid in list(self.seen_workers):
                _kill(pid, signal.SIGKILL, self.seen_workers[pid])
            _kill(self.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # Workers the master started after we last looked, now orphans.
        for pid, start in self.seen_workers.items():
            _kill(pid, signal.SIGKILL, start)
        wait_until(lambda: not any(_same_alive(p, t) for p, t in self.seen_workers.items()), 5)

    # -- state --

    @property
    def addr(self):
        return (HOST, self.port)

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout=10):
        """The exit status, or None if the master is still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def workers(self):
        """The master's live children now."""
        pids = []
        for p in children(self.pid):
            st = proc_stat(p)
            if st is not None and st[0] not in ("Z", "X"):
                pids.append(p)
                self.seen_workers[p] = st[3]
        return pids

    def worker_info(self):
        """{pid: (slot, generation)} from the log's 'worker N started'."""
        return {int(m.group(2)): (int(m.group(1)), int(m.group(3)))
                for m in STARTED_RE.finditer(self.log())}

    def control_path(self):
        argv = self._argv()
        if "--control" not in argv[:-1]:
            raise ValueError("status() needs a herd started with --control (control=True)")
        return argv[argv.index("--control") + 1]

    def status(self, timeout=10):
        """`herd ctl status --json`, parsed: the master's own account of
        its pool ({"generation", "pending", "workers", "reloads", "procs":
        [{"slot", "pid", "generation", "state", "restarts", ...}]}; a slot
        backing off is a proc with state "backoff" and no pid). Raises
        StatusError when herd ctl fails or its answer does not parse."""
        try:
            p = subprocess.run([HERD, "ctl", "--control", self.control_path(), "status",
                                "--json"], capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.last_status = "herd ctl status --json: no answer in %s s" % timeout
            raise StatusError(self.last_status)
        try:
            if p.returncode != 0:
                raise ValueError("status %d" % p.returncode)
            self.last_status = json.loads(p.stdout)
            return self.last_status
        except ValueError as e:
            self.last_status = "herd ctl status --json: %s\n%s%s" % (
                e, p.stdout.decode(errors="replace")[-1000:], p.stderr.decode(errors="replace"))
            raise StatusError(self.last_status)

    def wait_status(self, pred, timeout=10, step=0.05):
        """Reads status() until pred(status) holds; returns that status, or
        None after timeout (self.last_status has the last answer, for a
        diagnostic). A status herd ctl could not get, as before the
        control socket exists, is retried."""
        def look():
            try:
                st = self.status()
            except StatusError:
                return None
            return st if pred(st) else None
        return wait_until(look, timeout, step)

    def log_path(self):
        argv = self._argv()
        if "--log" in argv[:-1]:
            return argv[argv.index("--log") + 1]
        return self.out_path

    def log(self):
        return _read(self.log_path())

    def all_output(self):
        paths = [self.out_path] + self.extra_logs
        if self.log_path() != self.out_path:
            paths.append(self.log_path())
        return "\n".join(_read(p) for p in paths)

    def mark(self):
        """A position in the log: wait_log(since=mark) looks after it."""
        return len(self.log())

    def wait_log(self, pattern, since=0, timeout=10):
        """The first match of pattern in the log after since, or None."""
        rx = re.compile(pattern, re.M)

        def look():
            return rx.search(self.log(), since)
        m = wait_until(lambda: look() or (self.proc.poll() is not None and "exit"), timeout)
        return m if m and m != "exit" else look()

    def count_log(self, pattern, since=0):
        return len(re.findall(pattern, self.log()[since:], re.M))


class Copy:
    """A private copy of the herd binary that a test can replace."""

    def __init__(self, h_dir):
        self.path = os.path.join(h_dir, "herd")
        shutil.copy2(HERD, self.path)

    def replace(self, content=None):
        """Replaces the file (a new inode, as dpkg does): with the real
        binary again, or with a script."""
        tmp = self.path + ".new"
        if content is None:
            shutil.copy2(HERD, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(content)
            os.chmod(tmp, 0o755)
        os.rename(tmp, self.path)


def upgraded_herd(*args, name, **kw):
    # The binary's copy must exist before Herd starts it: a directory of
    # our own, then the copy, then the Herd on it.
    d = tempfile.mkdtemp(prefix="herd-integ-up-")
    c = Copy(d)
    return Herd(*args, prog=c.path, name=name, **kw), c, d


def ctl(path, *args, user=None, timeout=20):
    """(status, stdout, stderr) of `herd ctl --control path args`, run as
    user if given (herd's tests run as root for that)."""
    import pwd
    pre = None
    if user is not None:
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    p = subprocess.run([HERD, "ctl", "--control", path] + list(args),
                       capture_output=True, timeout=timeout, preexec_fn=pre)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def controlled(*args, name, **kw):
    """A Herd with its control socket at {dir}/run/herd.sock (a directory
    herd creates): h.control_path()."""
    return Herd("--control", "{dir}/run/herd.sock", *args, name=name, **kw)


class StatusError(Exception):
    """herd ctl status --json failed or gave no JSON."""


def procs(status, state=None, generation=None):
    """A status()'s workers (not slots backing off), those in state and of
    generation when given."""
    return [p for p in status.get("procs", []) if "pid" in p and
            (state is None or p["state"] == state) and
            (generation is None or p["generation"] == generation)]


def serving(status, generation, n):
    """Whether generation serves alone: it is the master's generation,
    none is pending, and its n workers, and only they, are ready."""
    ready = procs(status, "ready")
    return (status.get("generation") == generation and status.get("pending") == 0 and
            len(ready) == n and all(p["generation"] == generation for p in ready))


class _PipeReader:
    """Copies a pipe into a file from a thread, until stop() (which closes
    the pipe's only read end) or end of file."""

    def __init__(self, fd, path):
        import select
        self.fd, self.path, self.select = fd, path, select.select
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        with open(self.path, "ab", buffering=0) as out:
            while not self.stop_ev.is_set():
                if self.select([self.fd], [], [], 0.05)[0]:
                    data = os.read(self.fd, 65536)
                    if not data:
                        break
                    out.write(data)
        os.close(self.fd)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""

# ---- fds --------------------------------------------------------------------------


def _unix_table():
    """{inode: (type, listening)} from /proc/net/unix."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            p = line.split()
            out[int(p[6])] = (int(p[4], 16), int(p[3], 16) & 0x10000 != 0)
    return out


def _listening_inodes():
    out = {i for i, (_, lst) in _unix_table().items() if lst}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A":
                        out.add(int(p[9]))
        except OSError:
            pass
    return out


def _fd_kinds(pid):
    """(sockets {fd: inode}, anon {fd: name}, others {fd: target})."""
    socks, anon, other = {}, {}, {}
    for fd, link in fd_links(pid).items():
        m = re.match(r"socket:\[(\d+)\]$", link)
        if m:
            socks[fd] = int(m.group(1))
        elif link.startswith("anon_inode:"):
            anon[fd] = link
        else:
            other[fd] = link
    return socks, anon, other


def _fd_common(problems, who, anon, other, logfile, want_anon):
    # Without --log, the log is stderr reopened nonblocking (src/log.c):
    # one fd above 2 on the same file as fd 2.
    if logfile is None:
        logfile = other.get(2)
    got = sorted(anon.values())
    if got != sorted(want_anon):
        problems.append("%s: anon inodes %s, want %s" % (who, got, sorted(want_anon)))
    extra = {fd: t for fd, t in other.items() if fd > 2 and t != logfile}
    if extra:
        problems.append("%s: unexpected files/pipes %s" % (who, extra))
    logs = [fd for fd, t in other.items() if fd > 2 and t == logfile]
    if len(logs) != (1 if logfile else 0):
        problems.append("%s: the --log file open as fds %s" % (who, logs))


def fd_problems(h, n, nlisteners=1, mesh=False):
    """What is wrong with the fds of the master and its n workers; empty
    when all is as it should be (src/spawn.c spawn_one and child_run,
    src/worker.c):

      worker: 0-2, the log (the --log file, or stderr reopened), the
              listeners (the master's sockets), its
              channel and its inbox (no other worker holds them), one epoll,
              one signalfd, one write end of each peer's inbox;
      master: 0-2, the log, the listeners, one epoll, one signalfd,
              and per worker its channel end, its inbox's write end and a
              pidfd.
    Inboxes (and so peers' write ends) exist only with mesh: a program
    that reads peers' messages (herd_on_message); herd's built-in worker
    does not."""
    problems = []
    logfile = h.log_path() if h.log_path() != h.out_path else None
    master = h.pid
    workers = h.workers()
    if len(workers) != n:
        return ["%d workers, want %d: %s" % (len(workers), n, workers)]
    listening = _listening_inodes()
    utab = _unix_table()
    m_socks, m_anon, m_other = _fd_kinds(master)
    m_inodes = set(m_socks.values())
    listeners = m_inodes & listening
    if len(listeners) != nlisteners:
        problems.append("master: %d listening sockets, want %d" % (len(listeners), nlisteners))
    _fd_common(problems, "master", m_anon, m_other, logfile,
           ["anon_inode:[eventpoll]", "anon_inode:[signalfd]"] + ["anon_inode:[pidfd]"] * n)
    per = 2 if mesh else 1
    if len(m_inodes - listeners) != per * n:
        problems.append("master: %d non-listening sockets, want %d (channel%s per worker)"
                        % (len(m_inodes - listeners), per * n, " + inbox" if mesh else ""))
    w_inodes = {}
    for w in workers:
        socks, anon, other = _fd_kinds(w)
        inodes = set(socks.values())
        w_inodes[w] = inodes
        who = "worker pid %d" % w
        _fd_common(problems, who, anon, other, logfile,
               ["anon_inode:[eventpoll]", "anon_inode:[signalfd]"])
        if inodes & listening != listeners:
            problems.append("%s: listeners %s, master's %s" % (who, inodes & listening, listeners))
        own = inodes - m_inodes - listening
        peers = (inodes & m_inodes) - listeners
        if len(own) != per:
            problems.append("%s: %d sockets of its own (channel%s), want %d; fds %s"
                            % (who, len(own), ", inbox" if mesh else "", per, socks))
        if len(peers) != (n - 1 if mesh else 0):
            problems.append("%s: %d peer inbox sockets, want %d"
                            % (who, len(peers), n - 1 if mesh else 0))
        for i in own | peers:
            if utab.get(i, (None,))[0] != socket.SOCK_SEQPACKET:
                problems.append("%s: socket %d is not a unix seqpacket socket" % (who, i))
    for w, inodes in w_inodes.items():
        own = inodes - m_inodes - listening
        for v, others in w_inodes.items():
            if v != w and own & others:
                problems.append("worker pid %d holds a channel/inbox of worker pid %d" % (v, w))
    peer_union = set().union(*[(i & m_inodes) - listeners for i in w_inodes.values()])
    if not mesh:
        return problems
    if len(peer_union) != n:
        problems.append("%d distinct peer inbox sockets among workers, want %d" % (len(peer_union), n))
    for i in peer_union:
        holders = sum(1 for s in w_inodes.values() if i in s)
        if holders != n - 1:
            problems.append("peer inbox socket %d held by %d workers, want %d" % (i, holders, n - 1))
    return problems


# ---- HTTP ------------------------------------------------------------------------


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:80])


def connect(addr, timeout=5):
    """A connected socket to (host, port) or to a unix socket path."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def request_bytes(path="/", method="GET", close=True, extra=""):
    return ("%s %s HTTP/1.1\r\nHost: test\r\n%s%s\r\n" %
            (method, path, "Connection: close\r\n" if close else "", extra)).encode()


def read_response(f, head_only=False):
    """One response from a buffered reader (sock.makefile('rb')); None at
    a clean end of file before its first byte."""
    line = f.readline(65536)
    if not line:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", line)
    if not m:
        raise ValueError("bad status line %r" % line)
    headers = {}
    while True:
        h = f.readline(65536)
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            raise ValueError("end of file in the response head")
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = 0 if head_only else int(headers.get("content-length", "0"))
    body = f.read(n) if n else b""
    if len(body) != n:
        raise ValueError("short body: %d of %d bytes" % (len(body), n))
    return Response(int(m.group(1)), headers, body)


def get(addr, path="/", method="GET", timeout=5):
    """One request on a new connection (Connection: close)."""
    with connect(addr, timeout) as s:
        s.sendall(request_bytes(path, method))
        with s.makefile("rb") as f:
            r = read_response(f, head_only=(method == "HEAD"))
    if r is None:
        raise ConnectionError("closed without a response")
    return r


def slot_pid(h, slot):
    """The pid of the worker in slot, as herd's worker_info() says."""
    info = h.worker_info()
    return next(p for p in h.workers() if info.get(p, (None,))[0] == slot)


def which_answered(socks, timeout):
    """Which of send_requests()' sockets got a 200 within timeout, read
    as they become readable (answered() counts, reading in turn); leaves
    them open."""
    got, waiting = set(), set(socks)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(list(waiting), [], [], 0.2)
        for s in ready:
            try:
                if s.recv(65536).startswith(b"HTTP/1.1 200"):
                    got.add(s)
            except OSError:  # reset: not answered
                pass
            waiting.discard(s)
    return got


def whoami(addr, timeout=5):
    """(pid, slot, generation) of the worker that answered."""
    r = get(addr, "/whoami", timeout=timeout)
    m = WHOAMI_RE.match(r.body)
    if r.status != 200 or not m:
        raise ValueError("bad /whoami answer %r" % r)
    return tuple(int(x) for x in m.groups())


def send_requests(addr, n, path="/", timeout=5):
    """n connections, each with one whole request sent, not waiting for the
    answers: they queue wherever the server leaves them (a backlog, a
    channel). Returns the sockets, for answered()."""
    socks = []
    for _ in range(n):
        s = connect(addr, timeout)
        s.sendall(request_bytes(path))
        socks.append(s)
    return socks


def answered(socks, timeout=10):
    """How many of send_requests()' sockets got a 200 within timeout (all
    together); closes them."""
    deadline = time.monotonic() + timeout
    n = 0
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            with s.makefile("rb") as f:
                r = read_response(f)
            n += r is not None and r.status == 200
        except (OSError, ValueError):
            pass
        s.close()
    return n


def cpu_ticks(pid):
    """utime + stime of a process in clock ticks (os.sysconf("SC_CLK_TCK")
    a second); 0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError):
        return 0


def nfds(pid):
    """How many fds a process holds, or None once it is gone."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def cgi_fcgi(port, script):
    """One FastCGI request with cgi-fcgi (libfcgi-bin) to a script that
    prints "hello"; True when answered so."""
    env = dict(os.environ, SCRIPT_FILENAME=script, REQUEST_METHOD="GET",
               REDIRECT_STATUS="200", QUERY_STRING="")
    try:
        p = subprocess.run(["cgi-fcgi", "-bind", "-connect", "%s:%d" % (HOST, port)],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return p.returncode == 0 and p.stdout.endswith(b"\r\n\r\nhello\n")


def read_to_eof(s):
    """Everything s receives until the peer closes."""
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def raw_exchange(addr, data, timeout=5):
    """Sends data, half-closes, returns everything until the server closes."""
    with connect(addr, timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def until_answer(fetch, pred, timeout=10, threads=8):
    """Calls fetch() from several threads at once (so a busy worker lets an
    idle one accept) until pred(answer) holds; returns that answer or None.
    fetch may raise OSError or ValueError: that try is just not counted."""
    found = []
    stop = threading.Event()
    deadline = time.monotonic() + timeout

    def loop():
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                a = fetch()
            except (OSError, ValueError):
                continue
            if pred(a):
                found.append(a)
                stop.set()
    ts = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    stop.set()
    return found[0] if found else None


def whoami_until(addr, pred, timeout=10, threads=8):
    """/whoami (pid, slot, gen) answers until pred holds for one."""
    return until_answer(lambda: whoami(addr, timeout=3), pred, timeout, threads)


# ---- programs (herd -- PROGRAM) ------------------------------------------------------

# tests/progs/pyapp.py, run by the Python that runs the test:
# docs/protocol.md is what it implements.
PYAPP = os.path.join(REPO, "tests", "progs", "pyapp.py")


def supervised(*herd_args, app=(), prog=PYAPP, name=None, **kw):
    """A Herd running `herd -l ADDR HERD_ARGS -- python3 PROG APP...`."""
    if name is None:
        name = "herd %s -- %s %s" % (" ".join(herd_args), os.path.basename(prog), " ".join(app))
    return Herd(*herd_args, "--", sys.executable, prog, *app, name=name.strip(), **kw)


def fetch(addr, path):
    """(pid of the answering worker, body text) of one request to pyapp."""
    r = get(addr, path)
    if r.status != 200 or "x-pid" not in r.headers:
        raise ValueError("bad answer to %s: %r" % (path, r))
    return int(r.headers["x-pid"]), r.body.decode()


def env_of(addr):
    """(pid, {NAME: value}) from pyapp's /env."""
    pid, body = fetch(addr, "/env")
    return pid, dict(line.split("=", 1) for line in body.splitlines())


def fds_of(addr):
    """(pid, {fd: target}) from pyapp's /fds: its fds when it started."""
    pid, body = fetch(addr, "/fds")
    return pid, {int(a): b for a, b in (line.split(" ", 1) for line in body.splitlines())}


def from_each(addr, get_, n, timeout=15):
    """{pid: answer} of get_(addr) from n different workers (or fewer, after
    timeout), asking from several threads so that every worker gets some."""
    got = {}

    def one():
        pid, v = get_(addr)
        got[pid] = v
        return len(got)
    until_answer(one, lambda k: k >= n, timeout=timeout)
    return got


def socket_inode(target):
    m = re.match(r"socket:\[(\d+)\]$", target or "")
    return int(m.group(1)) if m else None


def log_time(h, pattern):
    """The time stamp of the first log line matching pattern, or None."""
    from datetime import datetime
    m = re.search(r"^(\S+?)Z? \S+ \d+ .*%s" % pattern, h.log(), re.M)
    try:
        return datetime.fromisoformat(m.group(1)) if m else None
    except ValueError:
        return None


def seconds_between(h, first, then):
    """Seconds between the log lines matching first and then, or None."""
    a, b = log_time(h, first), log_time(h, then)
    return (b - a).total_seconds() if a and b else None


def run_herd(args, timeout=10):
    """(status, stdout + stderr, seconds) of a herd expected to exit."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([HERD] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"") + (e.stderr or b""), "timeout"
    return rc, out.decode(errors="replace"), time.monotonic() - t0


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


class Load:
    """Client threads making requests until stop(): `close` threads GET
    path on a new connection per request, `keepalive` threads reuse one
    (http.client), and `calls` threads call fetch() instead (True when
    answered: a protocol other than HTTP, a client program). A failure is a
    refused or reset connection, a timeout, a non-200 status or a bad body,
    or fetch() giving False. With count, the threads stop by themselves
    once that many requests were made: join() waits for that. .slowest is
    the longest request, in seconds.

    One exception, as every HTTP client does it (RFC 9112, 9.3.1): a
    keep-alive connection that the server closed while idle, seen as a
    close or reset before any byte of the response, is retried once on a
    new connection and counted in .retried, not in .failed."""

    def __init__(self, addr=None, close=2, keepalive=2, path="/whoami", timeout=5,
                 max_seconds=120, fetch=None, calls=0, count=None):
        self.addr, self.path, self.timeout = addr, path, timeout
        self.fetch = fetch
        self.deadline = time.monotonic() + max_seconds
        self.ok = self.failed = self.retried = 0
        self.reused = 0  # answers on a keep-alive connection's 2nd+ request
        self.connects = 0  # connections the keep-alive threads opened
        self.slowest = 0.0
        self.left = count  # requests still to make, or None: until stop()
        self.errors = []
        self.gens = set()
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        loops = ([self._close_loop] * close + [self._keepalive_loop] * keepalive +
                 [self._fetch_loop] * calls)
        self.threads = [threading.Thread(target=self._guard, args=(loop,), daemon=True)
                        for loop in loops]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        return self

    def join(self):
        """With count: waits until the threads made their requests (or
        max_seconds passed)."""
        for t in self.threads:
            t.join(max(0, self.deadline - time.monotonic()) + self.timeout + 5)
        return self

    def _guard(self, loop):
        try:
            loop()
        except Exception:
            with self.lock:
                self._fail("client thread crashed: " + traceback.format_exc())

    def _running(self):
        """Whether to make one more request (taking it from count)."""
        if self.stop_ev.is_set() or time.monotonic() >= self.deadline:
            return False
        with self.lock:
            if self.left is None:
                return True
            if self.left == 0:
                return False
            self.left -= 1
            return True

    def _took(self, t0):
        with self.lock:
            self.slowest = max(self.slowest, time.monotonic() - t0)

    def _check(self, status, body, how):
        good = status == 200 and (WHOAMI_RE.match(body) if self.path == "/whoami"
                                  else body == b"hello\n")
        with self.lock:
            if good:
                self.ok += 1
                if self.path == "/whoami":
                    self.gens.add(int(WHOAMI_RE.match(body).group(3)))
            else:
                self._fail("%s: status %s body %r" % (how, status, body[:60]))

    def _fail(self, what):
        self.failed += 1
        if len(self.errors) < 10:
            self.errors.append("%.3f %s" % (time.monotonic(), what))

    def _fetch_loop(self):
        while self._running():
            t0 = time.monotonic()
            good = self.fetch()
            self._took(t0)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self._fail("fetch() gave %r" % (good,))

    def _close_loop(self):
        while self._running():
            t0 = time.monotonic()
            try:
                r = get(self.addr, self.path, timeout=self.timeout)
                self._took(t0)
                self._check(r.status, r.body, "new connection")
            except (OSError, ValueError, ConnectionError) as e:
                with self.lock:
                    self._fail("new connection: %r" % e)

    def _keepalive_loop(self):
        conn, served = None, 0
        while self._running():
            if conn is None:
                conn, served = http.client.HTTPConnection(
                    self.addr[0], self.addr[1], timeout=self.timeout), 0
                with self.lock:
                    self.connects += 1
            t0 = time.monotonic()
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
                self._took(t0)
                served += 1
                self._check(r.status, body, "keep-alive #%d" % served)
                if served > 1:
                    with self.lock:
                        self.reused += 1
                if r.will_close:
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                conn.close()
                conn = None
                if served == 0:
                    with self.lock:
                        self._fail("keep-alive, new connection: %r" % e)
                else:
                    with self.lock:
                        self.retried += 1
            except (OSError, http.client.HTTPException, ValueError) as e:
                conn.close()
                conn = None
                with self.lock:
                    self._fail("keep-alive #%d: %r" % (served + 1, e))
        if conn is not None:
            conn.close()

    def summary(self):
        return "ok=%d (of which on reused keep-alive connections %d) failed=%d " \
            "retried-idle-closes=%d gens=%s slowest=%.3f s" % (
                self.ok, self.reused, self.failed, self.retried, sorted(self.gens),
                self.slowest)


KILLED_GEN_RE = re.compile(r"killing generation (\d+)")


def reloads_under_load(h, times=3, timeout=15):
    """SIGHUP `times` times under continuous load (2 clients a connection
    per request, 2 keep-alive), each time waiting for the new generation
    to be ready. Returns (reloads that got ready, the stopped Load)."""
    load = Load(h.addr, close=2, keepalive=2).start()
    time.sleep(0.3)
    done = 0
    for _ in range(times):
        mark = h.mark()
        gen = max([g for _, g in h.worker_info().values()] or [1]) + 1
        h.signal(signal.SIGHUP)
        done += bool(h.wait_log(r"generation %d ready" % gen, since=mark,
                                timeout=timeout))
        time.sleep(0.3)
    load.stop()
    return done, load


class Notifications:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herd-integ-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []  # (monotonic time, text)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.msgs.append((time.monotonic(), data.decode(errors="replace")))

    def texts(self):
        return [m for _, m in self.msgs]

    def wait(self, pred, timeout=10):
        return wait_until(lambda: pred(self.texts()), timeout)

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Watch:
    """Samples the master's child count every `every` seconds in a thread;
    .max is the largest count seen. Children of a generation the master has
    already SIGKILLed (it logs "killing generation G" before the signal)
    are not counted: they hold nothing and are gone within milliseconds."""

    def __init__(self, herd, every=0.01):
        self.herd, self.every, self.max = herd, every, 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)

    def _count(self):
        kids = children(self.herd.pid)
        log = self.herd.log()  # read after the children: see above
        killed = {int(g) for g in KILLED_GEN_RE.findall(log)}
        gen = {int(m.group(2)): int(m.group(3)) for m in STARTED_RE.finditer(log)}
        return sum(1 for p in kids if gen.get(p) not in killed)

    def _loop(self):
        while not self.stop_ev.is_set():
            self.max = max(self.max, self._count())
            time.sleep(self.every)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.t.join(5)
        return False


# ---- run as a program: the helpers' own tests ------------------------------------


def _self_test():
    import io
    two = (b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n"
           b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    f = io.BytesIO(two)
    a, b, c = read_response(f), read_response(f), read_response(f)
    ok(a.status == 200 and a.body == b"hello\n" and b.status == 404 and
       b.headers["connection"] == "close" and c is None,
       "read_response: two responses back to back, then end of file", repr((a, b, c)))
    try:
        read_response(io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"))
        short = None
    except ValueError as e:
        short = e
    ok(short is not None, "read_response: a short body is an error")
    ok(WHOAMI_RE.match(b"pid=12 slot=0 gen=3\n") and not WHOAMI_RE.match(b"pid=12 slot=0\n"),
       "WHOAMI_RE: takes a /whoami body, refuses a partial one")
    ok(port_is_free(free_port()), "free_port: a port nobody holds")
    with Herd("-w", "2", name="self-test herd", control=True) as h:
        pids = [h.pid] + h.workers()
        ok(len(pids) == 3 and all(alive(p) for p in pids), "Herd: a master and 2 workers running")
        st = h.status()
        ok(st["pid"] == h.pid and serving(st, 1, 2) and not serving(st, 2, 2) and
           sorted(p["pid"] for p in procs(st, "ready", 1)) == sorted(pids[1:]),
           "Herd.status: the master's pid, generation 1 serving with its 2 workers, ready",
           lambda: repr((pids, st)))
        load = Load(h.addr, close=1, keepalive=1, max_seconds=10).start()
        time.sleep(0.3)
        load.stop()
        ok(load.ok > 0 and load.failed == 0, "Load: requests succeed", load.summary)
        import itertools
        calls = itertools.count()  # next() is atomic: every tenth call fails
        load = Load(fetch=lambda: next(calls) % 10 != 9, calls=3, close=0, keepalive=0,
                    count=50, max_seconds=10).start().join()
        ok(next(calls) == 50 and load.ok == 45 and load.failed == 5,
           "Load(fetch=, count=50): 50 calls, a False one counted as failed", load.summary)
        h.signal(signal.SIGSTOP)  # teardown must not depend on the master
    ok(not any(alive(p) for p in pids), "Herd: teardown leaves no process behind",
       lambda: repr([(p, proc_stat(p)) for p in pids]))


if __name__ == "__main__":
    _self_test()
    done()

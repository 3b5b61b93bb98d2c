#!/usr/bin/env python3
"""ctl.py: the control socket (--control PATH) and `herd ctl`: status that
agrees with the process table, scale, reload and quit through it, other
users refused (SO_PEERCRED), garbage and oversized commands, a live
socket of another herd refused and a stale one replaced."""
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def ctl(path, *args, user=None, timeout=20):
    """(status, stdout, stderr) of `herd ctl --control path args`."""
    pre = None
    if user is not None:
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    p = subprocess.run([ht.HERD, "ctl", "--control", path] + list(args),
                       capture_output=True, timeout=timeout, preexec_fn=pre)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def controlled(*args, name, **kw):
    return ht.Herd("--control", "{dir}/run/herd.sock", *args, name=name, **kw)


def sock_path(h):
    return os.path.join(h.dir, "run", "herd.sock")


def test_status_agrees():
    with controlled("-w", "2", name="herd --control") as h:
        path = sock_path(h)
        st = os.stat(path)
        ht.ok(st.st_mode & 0o777 == 0o600 and os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700,
              "the socket is 0600, in a 0700 directory herd created",
              "%o, dir %o" % (st.st_mode & 0o777, os.stat(os.path.dirname(path)).st_mode & 0o777))
        rc, out, err = ctl(path, "status")
        pids = sorted(int(line.split()[1]) for line in out.splitlines()
                      if line[:1].isdigit())
        ht.ok(rc == 0 and pids == sorted(h.workers()) and "pid %d" % h.pid in out,
              "status: the master's pid and exactly its children", out + err)
        rc, out, err = ctl(path, "status", "--json")
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {}
        ht.ok(rc == 0 and doc.get("pid") == h.pid and doc.get("mode") == "shared" and
              sorted(p["pid"] for p in doc.get("procs", [])) == sorted(h.workers()) and
              all(p["state"] == "ready" and p["rss_kib"] > 0 for p in doc["procs"]),
              "status --json: the same, as JSON, with states and RSS", out + err)


def test_status_json_escapes_strings():
    """Every string in status --json is escaped: an address is the user's
    text, and a unix path may hold a quote, a backslash, control
    characters, UTF-8 and bytes that are not UTF-8 (those become U+FFFD:
    JSON is UTF-8). The reply must parse, strictly, as bytes."""
    name = 'a"b\\c\x01\td\u00e9\udce9'  # \udce9: the byte 0xe9 (os.fsencode)
    with controlled("-w", "1", "-l", "unix:{dir}/" + name,
                    name="herd --control, a unix path that needs escaping") as h:
        p = subprocess.run([ht.HERD, "ctl", "--control", sock_path(h), "status", "--json"],
                           capture_output=True, timeout=20)
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            doc = {"error": repr(e)}
        want = "unix:" + os.path.join(h.dir, name.replace("\udce9", "\ufffd"))
        ht.ok(p.returncode == 0 and doc.get("listen", [None, None])[1:] == [want],
              "status --json with a quote, a backslash, control characters and a byte "
              "that is not UTF-8 in an address: valid JSON, the address intact",
              "%r\n%r" % (doc, p.stdout[:600]))
        ht.ok(doc.get("mode") == "shared" and doc.get("version") == ht.herd_version() and
              [w.get("state") for w in doc.get("procs", [])] == ["ready"],
              "and the other strings with it", repr(doc))


def test_scale_reload_quit():
    with controlled("-w", "2", name="herd --control, steered") as h:
        path = sock_path(h)
        rc, out, _ = ctl(path, "scale", "3")
        ht.ok(rc == 0 and ht.wait_until(lambda: len(h.workers()) == 3, 10),
              "scale 3: three workers", out)
        rc, out, _ = ctl(path, "scale", "1")
        ht.ok(rc == 0 and ht.wait_until(lambda: len(h.workers()) == 1, 10),
              "scale 1: one worker", out)
        mark = h.mark()
        rc, _, _ = ctl(path, "reload")
        ht.ok(rc == 0 and h.wait_log(r"generation 2 ready", since=mark),
              "reload: generation 2 takes over")
        rc, _, _ = ctl(path, "quit")
        code = h.wait_exit(10)
        ht.ok(rc == 0 and code == 0, "quit: herd exits 0 (status %r)" % code)
        ht.ok(not os.path.exists(path), "the socket file is removed on exit")


def test_scale_takes_a_count_only():
    """herd.1 and herd ctl's usage give `scale N`, N the number of workers;
    nothing relative. "+3" reads as three more but set the count to 3
    (strtol takes a sign): anything but digits is refused, status 1, and
    the pool is left as it was."""
    with controlled("-w", "1", name="herd --control, scale +N") as h:
        path = sock_path(h)
        mark = h.mark()
        for arg in ("+3", "-1", "+1", "3x", "0x3"):
            rc, out, err = ctl(path, "scale", arg)
            ht.ok(rc == 1 and "no sign" in err,
                  "herd ctl scale %s: refused, status 1, and why" % arg,
                  "status %r\n%s%s" % (rc, out, err))
        time.sleep(0.5)
        ht.ok(len(h.workers()) == 1 and not re.search(r"workers: \d+ ->", h.log()[mark:]),
              "and the pool kept its one worker", lambda: h.log()[mark:])
        rc, out, _ = ctl(path, "scale", "2")
        ht.ok(rc == 0 and out == "workers: 2\n" and
              ht.wait_until(lambda: len(h.workers()) == 2, 10),
              "herd ctl scale 2: two workers", out)


def test_bad_commands():
    with controlled("-w", "1", name="herd --control, bad commands") as h:
        path = sock_path(h)
        for args, want in ((["bogus"], "unknown command"), (["scale", "abc"], "scale"),
                           (["scale", "0"], "scale"), (["status", "extra"], "status"),
                           (["reload", "now"], "takes no argument")):
            rc, out, err = ctl(path, *args)
            ht.ok(rc == 1 and want in err, "herd ctl %s: status 1, '%s'" % (" ".join(args), want),
                  "status %r\n%s%s" % (rc, out, err))
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"x" * 4000)
        s.settimeout(5)
        reply = s.recv(100)
        s.close()
        ht.ok(reply.startswith(b"error: command too long"), "an oversized command is refused",
              repr(reply))
        idle = socket.socket(socket.AF_UNIX)
        idle.connect(path)
        rc, out, _ = ctl(path, "status")
        ht.ok(rc == 0, "a client that sends nothing does not hold the master up")
        idle.settimeout(5)
        t0 = time.monotonic()
        try:
            got = idle.recv(10)
        except OSError:
            got = None
        ht.ok(got == b"" and time.monotonic() - t0 < 4.5,
              "and it is cut off after a timeout", repr(got))
        idle.close()
        ht.ok(h.running() and ht.get(h.addr, "/").status == 200,
              "after all that the master serves on")


def test_upgrade_refusal_says_why():
    """herd ctl upgrade was refused with one text for four reasons ("not
    enabled, stopping, or a check or reload under way"); it names the one.
    Here a reload whose generation takes 30 s to be ready."""
    with controlled("-w", "1", "--ready-delay", "30", "--", "/bin/sleep", "600",
                    wait_ready=False, name="herd --control, upgrade during a reload") as h:
        path = sock_path(h)
        ht.wait_until(lambda: os.path.exists(path), 10)
        rc, _, _ = ctl(path, "reload")
        rc2, out, err = ctl(path, "upgrade")
        ht.ok(rc == 0 and rc2 == 1 and err == "herd ctl: upgrade refused: a reload is under way\n",
              "herd ctl upgrade during a reload: refused, status 1, and that is why",
              "status %r, %r\n%s%s" % (rc, rc2, out, err))
        # The log named SIGUSR2 whatever asked.
        said = h.wait_log(r"upgrade: a reload is under way; herd ctl upgrade refused", timeout=5)
        ht.ok(said and h.count_log(r"SIGUSR2") == 0,
              "and the log says herd ctl asked, not SIGUSR2", lambda: h.log()[-2000:])


def raw_ctl(path, data):
    """The master's whole reply to data sent as is on its control socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        reply = b""
        while True:
            got = s.recv(4096)
            if not got:
                return reply
            reply += got


def test_malformed_lines_and_raw_bytes():
    """A command line is text: one with a NUL, or a CR inside it, was cut
    there and the rest ignored ("quit\\0junk" quit herd); it is refused
    whole. An error reply quotes the client's words, and quoted raw bytes
    (a terminal's escape sequences) back to herd ctl's terminal: bytes
    outside printable ASCII come back as \\xHH."""
    with controlled("-w", "1", name="herd --control, malformed lines") as h:
        path = sock_path(h)
        for line, what in ((b"quit\0junk\n", "a NUL byte"), (b"stop\0\n", "a NUL byte"),
                           (b"quit\rjunk\n", "a CR inside the line")):
            reply = raw_ctl(path, line)
            ht.ok(reply == ("error: malformed command: %s\n" % what).encode(),
                  "%r is refused as malformed (%s), not cut there" % (line, what), repr(reply))
        time.sleep(0.3)
        ht.ok(h.running() and not re.search(r"graceful stop|fast stop", h.log()),
              "and none of them stopped herd", lambda: h.log()[-1500:])
        reply = raw_ctl(path, b"status\r\n")
        ht.ok(reply.startswith(b"ok\nmaster "), "a line ended by CRLF is still good", repr(reply))
        printable = re.compile(rb"^[\x20-\x7e]*\n$")
        for line, echo in ((b"\x1b]0;owned\x07\x1b[2Jbogus\xff\n",
                            b"'\\x1b]0;owned\\x07\\x1b[2Jbogus\\xff'"),
                           (b"scale \x1b[31m3\\\n", b"'\\x1b[31m3\\\\'")):
            reply = raw_ctl(path, line)
            ht.ok(reply.startswith(b"error: ") and printable.match(reply) and echo in reply,
                  "an error quoting %r: printable ASCII only, the rest as \\xHH" % line,
                  repr(reply))
        rc, out, err = ctl(path, "bogus\x1b[2J")
        ht.ok(rc == 1 and "\x1b" not in err and "\\x1b[2J" in err,
              "herd ctl prints such an error without the raw escape", repr(err))


def test_other_user_refused():
    if os.geteuid() != 0:
        ht.skip("another uid", "not running as root")
        return
    with controlled("-w", "1", name="herd --control, another uid") as h:
        path = sock_path(h)
        # Opened to everyone on purpose: the credentials check must hold.
        os.chmod(os.path.dirname(path), 0o755)
        os.chmod(path, 0o777)
        os.chmod(h.dir, 0o755)
        mark = h.mark()
        rc, out, err = ctl(path, "quit", user="nobody")
        ht.ok(rc == 1 and "refused" in err, "nobody's herd ctl is refused (status 1)",
              "status %r\n%s%s" % (rc, out, err))
        ht.ok(h.wait_log(r"control: refused pid \d+, uid %d" % pwd.getpwnam("nobody").pw_uid,
                         since=mark, timeout=5),
              "and the master logs it")
        time.sleep(0.3)
        ht.ok(h.running(), "the master did not quit")


def test_socket_ownership():
    with controlled("-w", "1", name="herd --control, first") as h:
        path = sock_path(h)
        p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                            "--control", path], capture_output=True, timeout=20)
        err = p.stderr.decode(errors="replace")
        ht.ok(p.returncode == 1 and "another herd answers there" in err,
              "a second herd refuses a live control socket", err[-500:])
        ht.ok(ctl(path, "status")[0] == 0, "the first still answers on it")
    # A file left by a dead herd is replaced.
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        stale = os.path.join(d, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        with ht.Herd("--control", stale, name="herd --control over a stale file") as h:
            ht.ok(ctl(stale, "status")[0] == 0, "a stale socket file is replaced")
        # Anything else at the path is not herd's to remove.
        plain = os.path.join(d, "plain")
        with open(plain, "w") as f:
            f.write("keep me\n")
        p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                            "--control", plain], capture_output=True, timeout=20)
        with open(plain) as f:
            kept = f.read()
        ht.ok(p.returncode == 1 and kept == "keep me\n",
              "--control on a path that is not a socket: refused, status 1, the file kept",
              p.stderr.decode(errors="replace")[-500:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_busy_listener_is_not_waited_on():
    """The liveness probe of an existing --control socket does not block:
    a listener whose backlog is full and that never accepts made herd's
    start hang in connect(). herd must refuse at once, say why, and leave
    the socket alone."""
    d = tempfile.mkdtemp(prefix="herd-integ-")
    lsock, queued = socket.socket(socket.AF_UNIX), []
    try:
        path = os.path.join(d, "busy.sock")
        lsock.bind(path)
        lsock.listen(0)
        while True:  # fill its backlog; it never accepts
            c = socket.socket(socket.AF_UNIX)
            c.setblocking(False)
            queued.append(c)
            try:
                c.connect(path)
            except BlockingIOError:
                break
        t0 = time.monotonic()
        try:
            p = subprocess.run([ht.HERD, "-l", "%s:%d" % (ht.HOST, ht.free_port()),
                                "--control", path], capture_output=True, timeout=10)
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, err = None, "still in start-up after 10 s"
        took = time.monotonic() - t0
        ht.ok(rc == 1 and "does not accept" in err and took < 5,
              "--control on a listener with a full backlog: refused in %.1f s, status 1, "
              "and why" % took, "status %r\n%s" % (rc, err[-800:]))
        ht.ok(os.path.exists(path), "and its socket file is left alone")
    finally:
        for c in queued:
            c.close()
        lsock.close()
        shutil.rmtree(d, ignore_errors=True)


PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.]+(e[+-]?[0-9]+)?$')


def parse_metrics(text):
    """{name or name{labels}: value}, or None when a line is not in
    Prometheus' text format."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        if not PROM_LINE.match(line):
            return None
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_metrics():
    with controlled("-w", "2", name="herd --control, metrics") as h:
        path = sock_path(h)
        for _ in range(20):
            ht.get(h.addr, "/")

        def total():
            rc, out, _ = ctl(path, "metrics")
            return (parse_metrics(out) or {}).get("herd_connections_total", 0)
        # Workers report their counts within 20 ms; what a worker served and
        # had not reported when killed is not counted.
        counted = ht.wait_until(lambda: total() >= 20, 10)
        ht.ok(counted, "metrics: the 20 connections are counted")
        victim = h.workers()[0]
        os.kill(victim, signal.SIGKILL)
        ht.wait_until(lambda: len(h.workers()) == 2 and victim not in h.workers(), 10)
        m = {}

        def settled():
            rc, out, _ = ctl(path, "metrics")
            m.clear()
            m.update(parse_metrics(out) or {"unparsed": out})
            return rc == 0 and m.get('herd_workers{state="ready"}') == 2
        ok = ht.wait_until(settled, 10)
        ht.ok(ok and "unparsed" not in m, "metrics: Prometheus text, 2 ready workers", repr(m))
        ht.ok(m.get("herd_restarts_total") == 1 and m.get("herd_generation") == 1 and
              m.get("herd_workers_wanted") == 2,
              "metrics: the kill -9 counts as one restart", repr(m))
        ht.ok(m.get("herd_connections_total", 0) >= 20,
              "metrics: and still counted once a worker that served some is gone", repr(m))


def http_get(port, path):
    s = socket.create_connection((ht.HOST, port), timeout=5)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def test_metrics_over_http():
    port = ht.free_port()
    with ht.Herd("-w", "2", "--metrics", "%s:%d" % (ht.HOST, port),
                 name="herd --metrics") as h:
        status_line, body = http_get(port, "/metrics")
        m = parse_metrics(body)
        ht.ok(status_line == "HTTP/1.0 200 OK" and m is not None and
              m.get("herd_workers_wanted") == 2,
              "--metrics: GET /metrics is Prometheus text over HTTP", status_line + "\n" + body)
        status_line, _ = http_get(port, "/other")
        ht.ok(status_line.startswith("HTTP/1.0 404"), "--metrics: another path is 404")
        # Read-only: no control command is reachable over HTTP.
        for path in ("/quit", "/stop", "/reload", "/scale%201", "/metrics/../quit"):
            status_line, _ = http_get(port, path)
            ht.ok(status_line.startswith("HTTP/1.0 404"), "--metrics: GET %s is 404" % path)
        s = socket.create_connection((ht.HOST, port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 600 + b"\r\n\r\n")
        data = s.recv(4096)
        s.close()
        ht.ok(b"200 OK" not in data, "--metrics: a request head over 512 bytes gets no metrics",
              repr(data[:200]))
        time.sleep(0.3)
        ht.ok(h.running() and len(h.workers()) == 2 and
              not re.search(r"reload|graceful stop|fast stop|workers: ", h.log()),
              "and none of it stopped, reloaded or scaled herd", lambda: h.log()[-1500:])
        ht.ok(ht.get(h.addr, "/").status == 200, "and the pool serves on its own port")


def test_metrics_under_abuse():
    """Strangers on --metrics cannot make the master spin or flood its log:
    past 16 clients the rest wait in the backlog, a full fd table pauses
    accepting, and the warnings come at most once a second."""
    prlimit = "/usr/bin/prlimit"
    port = ht.free_port()
    with ht.Herd("-w", "1", "--metrics", "%s:%d" % (ht.HOST, port),
                 name="herd --metrics, abused") as h:
        mark = h.mark()
        silent = [socket.create_connection((ht.HOST, port), timeout=5) for _ in range(100)]
        time.sleep(3)  # every client slot times out at least once
        warnings = h.count_log(r"metrics: ", since=mark)
        ht.ok(1 <= warnings <= 8, "100 silent clients for 3 s: %d warning lines, at most one a "
              "second" % warnings, lambda: h.log()[mark:][-2000:])
        for s in silent:
            s.close()
        status_line, _ = http_get(port, "/metrics")
        ht.is_(status_line, "HTTP/1.0 200 OK", "then GET /metrics is answered")
        if not os.access(prlimit, os.X_OK):
            ht.skip("--metrics at EMFILE", "no prlimit")
            return
        # The master's table nearly full: two fds to spare, and three
        # clients want them.
        used = ht.nfds(h.pid)
        limit = used + 2
        # The soft limit only: lowering the hard one could not be undone
        # without CAP_SYS_RESOURCE.
        soft = subprocess.run([prlimit, "--pid", str(h.pid), "--nofile", "-o", "SOFT",
                               "--noheadings"], check=True, capture_output=True,
                              text=True).stdout.strip()
        subprocess.run([prlimit, "--pid", str(h.pid), "--nofile=%d:" % limit], check=True)
        mark = h.mark()
        held = [socket.create_connection((ht.HOST, port), timeout=5) for _ in range(4)]
        before = ht.cpu_ticks(h.pid)
        time.sleep(2)
        used_ticks = ht.cpu_ticks(h.pid) - before
        ht.ok(used_ticks < 40, "--metrics at EMFILE: the master does not spin (%d ticks in 2 s)"
              % used_ticks)
        lines = h.count_log(r"accept: Too many open files", since=mark)
        ht.ok(1 <= lines <= 4, "--metrics at EMFILE: said at most once a second (%d lines)" % lines,
              lambda: h.log()[mark:][-2000:])
        for s in held:
            s.close()
        subprocess.run([prlimit, "--pid", str(h.pid), "--nofile=%s:" % soft], check=True)
        status_line = ht.until_answer(lambda: http_get(port, "/metrics")[0],
                                      lambda r: r == "HTTP/1.0 200 OK", timeout=10)
        ht.ok(status_line, "--metrics: answers again once fds are free")
        ht.ok(ht.get(h.addr, "/").status == 200 and h.running(), "and the pool serves")


class FakeMaster:
    """A control socket that answers each client with a reply given in
    advance, to see what herd ctl makes of it. read_line=False closes
    without reading the command: then the kernel ends the client's reading
    with ECONNRESET instead of an end of file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="herd-integ-")
        self.path = os.path.join(self.dir, "ctl")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.stderr = []  # for sanitizer reports

    def answer(self, reply, *args, read_line=True):
        """(status, stdout bytes, stderr) of herd ctl args against reply."""
        p = subprocess.Popen([ht.HERD, "ctl", "--control", self.path] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        conn, _ = self.sock.accept()
        with conn:
            if read_line:
                got = b""
                while not got.endswith(b"\n"):
                    got += conn.recv(600)
            else:
                conn.recv(1, socket.MSG_PEEK)  # the line is there, unread
            try:
                conn.sendall(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: its output tells
        out, err = p.communicate(timeout=20)
        self.stderr.append(err.decode(errors="replace"))
        return p.returncode, out, self.stderr[-1]

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_ctl_reads_the_whole_reply():
    """A reply ends where the master closes the connection, and with a
    newline: herd ctl reads all of it, however long (it read 64 KiB at
    most, and printed that as if it were all), and fails, printing nothing
    on standard output, when the reply is cut short."""
    fake = FakeMaster()
    try:
        doc = {"procs": [{"slot": i, "state": "ready", "pad": "x" * 200} for i in range(1000)]}
        body = (json.dumps(doc) + "\n").encode()
        rc, out, err = fake.answer(b"ok\n" + body, "status", "--json")
        try:
            parsed = json.loads(out)
        except ValueError:
            parsed = None
        ht.ok(rc == 0 and out == body and parsed == doc,
              "herd ctl: a %d KiB reply is printed whole and parses" % (len(body) // 1024),
              "status %r, %d of %d bytes\n%s" % (rc, len(out), len(body), err))
        rc, out, err = fake.answer(b"ok\n" + body[:100000], "status", "--json")
        ht.ok(rc == 1 and out == b"" and "cut short" in err,
              "herd ctl: a reply that ends without its newline fails (status 1), "
              "nothing on stdout", "status %r, %d bytes out\n%s" % (rc, len(out), err))
        rc, out, err = fake.answer(b"ok\nmaster   pid 1\n", "status", read_line=False)
        ht.ok(rc == 1 and out == b"" and "reset" in err,
              "herd ctl: a connection reset after an ok line fails (status 1)",
              "status %r, %r\n%s" % (rc, out, err))
        rc, out, err = fake.answer(b"error: refused: not root or herd's own user\n", "quit",
                                   read_line=False)
        ht.ok(rc == 1 and "herd ctl: refused: not root" in err,
              "herd ctl: a refusal, closed without reading the command, is still "
              "printed as the master's error", "status %r\n%s" % (rc, err))
        rc, out, err = fake.answer(b"", "status")
        ht.ok(rc == 1 and "no reply" in err, "herd ctl: no reply at all fails (status 1)",
              "status %r\n%s" % (rc, err))
        found = [e for e in fake.stderr if ht.SANITIZER_RE.search(e)]
        ht.ok(not found, "herd ctl against those replies: no sanitizer reports", "\n".join(found))
    finally:
        fake.close()


def test_usage():
    p = subprocess.run([ht.HERD, "ctl"], capture_output=True, timeout=10,
                       env={k: v for k, v in os.environ.items() if k != "HERD_CONTROL"})
    ht.ok(p.returncode == 2, "herd ctl without a command: status 2")
    p = subprocess.run([ht.HERD, "ctl", "status"], capture_output=True, timeout=10,
                       env={k: v for k, v in os.environ.items() if k != "HERD_CONTROL"})
    ht.ok(p.returncode == 2 and b"--control" in p.stderr,
          "herd ctl without --control or HERD_CONTROL: status 2")
    rc, _, err = ctl("/nonexistent/herd.sock", "status")
    ht.ok(rc == 1 and "No such file" in err, "no herd there: status 1 and why")


ht.run(test_status_agrees, test_status_json_escapes_strings, test_scale_reload_quit,
       test_scale_takes_a_count_only, test_bad_commands, test_upgrade_refusal_says_why,
       test_malformed_lines_and_raw_bytes,
       test_other_user_refused, test_socket_ownership, test_busy_listener_is_not_waited_on,
       test_metrics, test_metrics_over_http, test_metrics_under_abuse,
       test_ctl_reads_the_whole_reply, test_usage)
ht.done()

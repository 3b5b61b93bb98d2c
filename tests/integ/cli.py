#!/usr/bin/env python3
"""cli.py: herd's command line: bad options are refused with status 2
before anything is bound; --help and --version; listen failures exit 1;
unix sockets (serving, a live one refused, a stale one replaced)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def run_cli(args, timeout=10):
    """(status, stdout, stderr); a herd that does not exit is killed."""
    try:
        p = subprocess.run([ht.HERD] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode(errors="replace"), \
            (e.stderr or b"").decode(errors="replace")


def held_port():
    """A port we listen on ourselves: binding it must fail."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((ht.HOST, 0))
    s.listen(1)
    return s, s.getsockname()[1]


BAD = [  # (arguments after a good -l, what the message must name)
    (["-w", "0"], "-w"),
    (["-w", "abc"], "-w"),
    (["-w", "-1"], "-w"),
    (["-w", "513"], "-w"),
    (["-l", "127.0.0.1"], "-l"),
    (["-l", "127.0.0.1:0"], "-l"),
    (["-l", "127.0.0.1:70000"], "-l"),
    (["-l", "::1:80"], "-l"),
    (["-l", "unix:"], "-l"),
    (["-m", "bogus"], "-m"),
    (["--shutdown-timeout", "x"], "--shutdown-timeout"),
    (["--shutdown-timeout", "-1"], "--shutdown-timeout"),
    (["--reload-batch", "-1"], "--reload-batch"),
    (["--reload-batch", "513"], "--reload-batch"),
    (["--reload-batch", "1.5"], "--reload-batch"),
    (["-w", "0:4"], "-w"),
    (["-w", "4:2"], "-w"),
    (["-w", "1:513"], "-w"),
    (["-w", "1:"], "-w"),
    (["-w", ":4"], "-w"),
    (["-w", "1:4:8"], "-w"),
    (["-w", "1:4", "--idle-timeout", "0"], "--idle-timeout"),
    (["-w", "1:4", "--idle-timeout", "x"], "--idle-timeout"),
    (["-w", "1:4", "--spawn-rate", "0"], "--spawn-rate"),
    (["-w", "1:4", "--spawn-rate", "513"], "--spawn-rate"),
    (["--idle-timeout", "2"], "--idle-timeout"),
    (["--spawn-rate", "4"], "--spawn-rate"),
    (["--nope"], "--nope"),
    (["-l"], "-l"),
    # options for a PROGRAM, given none
    (["--fd0"], "--fd0"),
    (["--notify"], "--notify"),
    (["--ready-delay", "2"], "--ready-delay"),
    (["--stop-signal", "QUIT"], "--stop-signal"),
    (["--reload-signal", "HUP"], "--reload-signal"),
    (["--reopen-signal", "HUP"], "--reopen-signal"),
    (["--inherit-output"], "--inherit-output"),
    (["-u", "no-such-user-here"], "no-such-user-here"),
]


def test_bad_options_exit_2_before_binding():
    # The good first -l names a port we hold: had herd bound anything before
    # checking every option, it would fail with 1 ("cannot listen").
    sock, port = held_port()
    try:
        for extra, names in BAD:
            args = ["-l", "%s:%d" % (ht.HOST, port)] + extra
            rc, out, err = run_cli(args)
            first = (err.splitlines() or [""])[0]
            ht.ok(rc == 2 and first.startswith("herd: ") and names in first and
                  "cannot listen" not in err,
                  "refused with status 2 naming %s: herd %s" % (names, " ".join(extra)),
                  "status %r\nstderr: %s" % (rc, err))
    finally:
        sock.close()


def test_bad_second_listen_binds_nothing():
    d = tempfile.mkdtemp(prefix="herd-integ-")
    path = os.path.join(d, "first.sock")
    port = ht.free_port()
    try:
        rc, out, err = run_cli(["-l", "unix:" + path, "-l", "127.0.0.1:%d" % port,
                                "-l", "127.0.0.1:0"])
        ht.is_(rc, 2, "bad third -l: status 2")
        ht.ok("listening on" not in err and not os.path.exists(path),
              "bad third -l: the unix socket of the first was never created",
              "exists: %s\nstderr: %s" % (os.path.exists(path), err))
        ht.ok(ht.port_is_free(port), "bad third -l: the port of the second is free")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_help_and_version():
    rc, out, err = run_cli(["--help"])
    ht.ok(rc == 0 and out.startswith("usage: herd") and "--listen" in out,
          "--help: status 0 and the usage on stdout", "status %r\nstdout: %s\nstderr: %s" % (rc, out, err))
    rc, out, err = run_cli(["--version"])
    ht.ok(rc == 0 and out == "herd %s\n" % ht.herd_version(),
          "--version: status 0 and 'herd %s'" % ht.herd_version(), "status %r stdout %r" % (rc, out))


def test_port_in_use_exits_1():
    sock, port = held_port()
    try:
        rc, out, err = run_cli(["-l", "%s:%d" % (ht.HOST, port), "-w", "1"])
    finally:
        sock.close()
    ht.ok(rc == 1 and "cannot listen" in err, "a port in use: status 1, 'cannot listen'",
          "status %r\nstderr: %s" % (rc, err))


def test_unwritable_pid_file_or_log_exits_1():
    d = tempfile.mkdtemp(prefix="herd-integ-")
    try:
        missing = os.path.join(d, "no-such-dir")
        port = ht.free_port()
        rc, out, err = run_cli(["-l", "127.0.0.1:%d" % port, "-w", "1",
                                "-p", os.path.join(missing, "herd.pid")])
        ht.ok(rc == 1 and "pid file" in err and "ready:" not in err,
              "a pid file in a missing directory: status 1, nothing started",
              "status %r\nstderr: %s" % (rc, err))
        rc, out, err = run_cli(["-l", "127.0.0.1:%d" % port, "-w", "1",
                                "--log", os.path.join(missing, "herd.log")])
        ht.ok(rc == 1 and "herd.log" in err, "a log in a missing directory: status 1, said on stderr",
              "status %r\nstderr: %s" % (rc, err))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unix_socket_serves_and_refuses_a_second_herd():
    d = tempfile.mkdtemp(prefix="herd-integ-")
    path = os.path.join(d, "h.sock")
    try:
        with ht.Herd("-l", "unix:" + path, "-w", "2", tcp=False, name="herd -l unix:PATH -w 2") as h:
            r = ht.get(path, "/")
            ht.ok(r.status == 200 and r.body == b"hello\n", "unix socket: GET / is 200 hello", repr(r))
            rc, out, err = run_cli(["-l", "unix:" + path, "-w", "1"])
            ht.ok(rc == 1 and path in err, "unix socket: a second herd on a live one exits 1",
                  "status %r\nstderr: %s" % (rc, err))
            try:
                r = ht.get(path, "/")
            except OSError as e:
                r = e
            ht.ok(isinstance(r, ht.Response) and r.status == 200,
                  "unix socket: the first herd still serves after the refused second", repr(r))
            mark = h.mark()
            h.signal(signal.SIGHUP)
            h.wait_log(r"generation 2 ready", since=mark)
            a = ht.wait_until(lambda: _whoami_gen(path) == 2, 10)
            ht.ok(a and os.path.exists(path), "unix socket: still there and served after a reload")
            h.signal(signal.SIGTERM)
            ht.is_(h.wait_exit(10), 0, "unix socket: SIGTERM exits 0")
            ht.ok(not os.path.exists(path), "unix socket: the socket file is removed on exit")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _whoami_gen(path):
    try:
        r = ht.get(path, "/whoami")
        return int(ht.WHOAMI_RE.match(r.body).group(3))
    except (OSError, ValueError, AttributeError):
        return None


def test_unix_socket_stale_file_is_replaced():
    d = tempfile.mkdtemp(prefix="herd-integ-")
    path = os.path.join(d, "h.sock")
    try:
        with ht.Herd("-l", "unix:" + path, "-w", "2", tcp=False,
                     name="herd -l unix:PATH -w 2, to be SIGKILLed") as h:
            workers = h.workers()
            h.signal(signal.SIGKILL)
            h.wait_exit(10)
            gone = ht.wait_until(lambda: not any(ht.alive(p) for p in workers), 5)
            ht.ok(gone and os.path.exists(path), "stale unix socket: left behind by a SIGKILLed herd",
                  "workers gone: %s, file exists: %s" % (gone, os.path.exists(path)))
        with ht.Herd("-l", "unix:" + path, "-w", "1", tcp=False,
                     name="herd -l unix:PATH -w 1, on a stale socket") as h2:
            r = ht.get(path, "/whoami")
            ht.ok(r.status == 200 and str(h2.workers()[0]).encode() in r.body,
                  "stale unix socket: replaced, the new herd serves on it", repr(r))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_check():
    # What a binary upgrade runs first: validate, bind nothing, exit.
    sock, port = held_port()  # held: binding it would fail with 1
    try:
        addr = "%s:%d" % (ht.HOST, port)
        rc, out, err = run_cli(["--check", "-l", addr, "-w", "2"])
        ht.ok(rc == 0 and "cannot listen" not in err, "--check: good options, status 0, "
              "nothing bound", "status %r\n%s" % (rc, err))
        rc, out, err = run_cli(["--check", "-l", addr, "-w", "0"])
        ht.ok(rc == 2 and "-w" in err, "--check: a bad option, status 2")
        rc, out, err = run_cli(["--check", "-l", addr, "--", "/nonexistent/prog"])
        ht.ok(rc == 1 and "cannot execute /nonexistent/prog" in err,
              "--check: a program that cannot be executed, status 1", err)
    finally:
        sock.close()


def test_program_usage_errors():
    addr = "%s:%d" % (ht.HOST, ht.free_port())
    addr2 = "%s:%d" % (ht.HOST, ht.free_port())
    prog = ["--", sys.executable, ht.PYAPP]
    for args, what, names in [
            (["-m", "passfd", "--fd0"], "--fd0 with -m passfd", ["--fd0"]),
            (["-l", addr2, "--fd0"], "--fd0 with two -l", ["--fd0"]),
            (["--watchdog", "1"], "--watchdog without --notify", ["--watchdog", "--notify"]),
            (["--stop-signal", "NOPE"], "--stop-signal NOPE", ["--stop-signal", "NOPE"]),
            (["--reload-signal", "NOPE"], "--reload-signal NOPE", ["--reload-signal", "NOPE"]),
            (["--reopen-signal", "NOPE"], "--reopen-signal NOPE", ["--reopen-signal", "NOPE"])]:
        rc, out, _ = ht.run_herd(["-l", addr] + args + prog)
        ht.ok(rc == 2 and any(w in out for w in names) and "worker 0 started" not in out,
              "usage error, status 2 and a message naming %s: %s" % (" or ".join(names), what),
              "status %r\n%s" % (rc, out[-1500:]))
    user = "herd-no-such-user-%d" % os.getpid()
    rc, out, _ = ht.run_herd(["-l", addr, "-w", "1", "-u", user] + prog)
    ht.ok(rc not in (0, "timeout") and "worker 0 started" not in out and
          (user in out or os.geteuid() != 0),
          "-u with an unknown user: non-zero exit, the name in the message",
          "status %r\n%s" % (rc, out[-1500:]))
    with ht.supervised("-w", "1", "--stop-signal", "INT", "--reload-signal", "SIGWINCH") as h:
        ht.ok(h.running(), "signal names INT and SIGWINCH are accepted")


ht.run(test_bad_options_exit_2_before_binding, test_check,
       test_bad_second_listen_binds_nothing,
       test_help_and_version,
       test_port_in_use_exits_1,
       test_unwritable_pid_file_or_log_exits_1,
       test_unix_socket_serves_and_refuses_a_second_herd,
       test_unix_socket_stale_file_is_replaced,
       test_program_usage_errors)

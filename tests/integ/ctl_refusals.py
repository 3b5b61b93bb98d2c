#!/usr/bin/env python3
"""ctl_refusals.py: what the control socket refuses, leaving the master
serving: unknown commands and bad arguments, an oversized command, a
client that sends nothing (cut off after a timeout), a line with a NUL or
a CR inside it (refused whole, not cut there), raw bytes quoted back as
\\xHH, and another uid (SO_PEERCRED), logged."""
import os
import pwd
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_bad_commands():
    with ht.controlled("-w", "1", name="herd --control, bad commands") as h:
        path = h.control_path()
        for args, want in ((["bogus"], "unknown command"), (["scale", "abc"], "scale"),
                           (["scale", "0"], "scale"), (["status", "extra"], "status"),
                           (["reload", "now"], "takes no argument")):
            rc, out, err = ht.ctl(path, *args)
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
        rc, out, _ = ht.ctl(path, "status")
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


def raw_ctl(path, data):
    """The master's whole reply to data sent as is on its control socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        return ht.read_to_eof(s)


def test_malformed_lines_and_raw_bytes():
    """A command line is text: one with a NUL, or a CR inside it, was cut
    there and the rest ignored ("quit\\0junk" quit herd); it is refused
    whole. An error reply quotes the client's words, and quoted raw bytes
    (a terminal's escape sequences) back to herd ctl's terminal: bytes
    outside printable ASCII come back as \\xHH."""
    with ht.controlled("-w", "1", name="herd --control, malformed lines") as h:
        path = h.control_path()
        for line, what in ((b"quit\0junk\n", "a NUL byte"), (b"stop\0\n", "a NUL byte"),
                           (b"quit\rjunk\n", "a CR inside the line")):
            reply = raw_ctl(path, line)
            ht.ok(reply == ("error: malformed command: %s\n" % what).encode(),
                  "%r is refused as malformed (%s), not cut there" % (line, what), repr(reply))
        time.sleep(0.3)
        st = h.status()
        ht.ok(h.running() and [p["state"] for p in ht.procs(st)] == ["ready"],
              "and none of them stopped herd (status: its worker ready, not draining)",
              lambda: "status %r\n%s" % (st, h.log()[-1500:]))
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
        rc, out, err = ht.ctl(path, "bogus\x1b[2J")
        ht.ok(rc == 1 and "\x1b" not in err and "\\x1b[2J" in err,
              "herd ctl prints such an error without the raw escape", repr(err))


def test_other_user_refused():
    if os.geteuid() != 0:
        ht.skip("another uid", "not running as root")
        return
    with ht.controlled("-w", "1", name="herd --control, another uid") as h:
        path = h.control_path()
        # Opened to everyone on purpose: the credentials check must hold.
        os.chmod(os.path.dirname(path), 0o755)
        os.chmod(path, 0o777)
        os.chmod(h.dir, 0o755)
        mark = h.mark()
        rc, out, err = ht.ctl(path, "quit", user="nobody")
        ht.ok(rc == 1 and "refused" in err, "nobody's herd ctl is refused (status 1)",
              "status %r\n%s%s" % (rc, out, err))
        ht.ok(h.wait_log(r"control: refused pid \d+, uid %d" % pwd.getpwnam("nobody").pw_uid,
                         since=mark, timeout=5),
              "and the master logs it")
        time.sleep(0.3)
        ht.ok(h.running(), "the master did not quit")


ht.run(test_bad_commands,
       test_malformed_lines_and_raw_bytes,
       test_other_user_refused)

#!/usr/bin/env python3
"""ctl_client.py: `herd ctl` the client, against a fake master: it reads a
reply whole however long, fails with nothing on stdout when the reply is
cut short, reset or missing, prints a refusal as the master's error; and
its usage (no command, no --control, no herd there)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


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
    rc, _, err = ht.ctl("/nonexistent/herd.sock", "status")
    ht.ok(rc == 1 and "No such file" in err, "no herd there: status 1 and why")


ht.run(test_ctl_reads_the_whole_reply,
       test_usage)

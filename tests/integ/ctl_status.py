#!/usr/bin/env python3
"""ctl_status.py: `herd ctl status` tells what the process table does: the
master's pid and exactly its children, as text and as JSON with states and
RSS; every string in the JSON escaped (a unix path with quotes, control
characters and bytes that are not UTF-8 still parses). The control socket
is 0600, in a 0700 directory herd creates."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402


def test_status_agrees():
    with ht.controlled("-w", "2", name="herd --control") as h:
        path = h.control_path()
        st = os.stat(path)
        ht.ok(st.st_mode & 0o777 == 0o600 and os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700,
              "the socket is 0600, in a 0700 directory herd created",
              "%o, dir %o" % (st.st_mode & 0o777, os.stat(os.path.dirname(path)).st_mode & 0o777))
        rc, out, err = ht.ctl(path, "status")
        pids = sorted(int(line.split()[1]) for line in out.splitlines()
                      if line[:1].isdigit())
        ht.ok(rc == 0 and pids == sorted(h.workers()) and "pid %d" % h.pid in out,
              "status: the master's pid and exactly its children", out + err)
        rc, out, err = ht.ctl(path, "status", "--json")
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
    with ht.controlled("-w", "1", "-l", "unix:{dir}/" + name,
                       name="herd --control, a unix path that needs escaping") as h:
        p = subprocess.run([ht.HERD, "ctl", "--control", h.control_path(), "status", "--json"],
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


ht.run(test_status_agrees,
       test_status_json_escapes_strings)

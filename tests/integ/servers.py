#!/usr/bin/env python3
"""servers.py: the README's "Tested servers" table, one test per row. Each
real server from Debian's packages runs under herd with exactly the row's
command line (only the port and the directory differ) and must:

  (a) serve;
  (b) reload (SIGHUP to herd) under load with 0 failed requests, every
      process of the pool replaced by one of the new generation;
  (c) recycle itself where it can (gunicorn, uWSGI, php-cgi), a planned
      exit to herd: no back-off, no request waiting on one;
  (d) stop on SIGTERM to herd: herd exits 0, leaving no process of the pool
      and the port free to bind at once.

A row whose server is not installed is skipped. Every process of the pool
runs in the row's private directory (its cwd): that is how the test finds
them all, grandchildren included, whoever their parent is by then."""
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

README = os.path.join(ht.REPO, "README.md")
CRASHED = r"restarting in \d+ ms"  # a child's exit taken for a crash
PLANNED = r"exited with status 0: a planned exit; replacing it"
LEAST_REQUESTS = 60  # made under load, at least, before it stops

# Each answer takes 20 ms: under load every process is busy with one, so a
# stop signal that is not graceful would cut requests short.
WSGI = '''\
import time

def application(environ, start_response):
    time.sleep(0.02)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\\n"]
'''
RACK = '''\
run lambda { |env| sleep 0.02; [200, {"Content-Type" => "text/plain"}, ["hello\\n"]] }
'''
NODE = '''\
const http = require("http");
let stopping = false;
const server = http.createServer((req, res) => setTimeout(() => {
  if (stopping) res.setHeader("Connection", "close");
  res.end("hello\\n");
}, 20));
server.listen({ fd: 3 });
process.on("SIGTERM", () => { stopping = true; server.close(); });
'''
PHP = "<?php usleep(20000); echo \"hello\\n\";\n"


class Row:
    """A row of the table: cmd is its command line as the README shows it,
    on the address addr; files are written to its directory first;
    programs (or absolute paths) must be there, or the row is skipped.
    recycles: (what herd's log shows each time it recycles itself, at
    least how often under the test's load)."""

    def __init__(self, name, programs, cmd, files, addr="127.0.0.1:8000", fcgi=False,
                 recycles=None):
        self.name, self.programs, self.cmd, self.files = name, programs, cmd, files
        self.addr, self.fcgi, self.recycles = addr, fcgi, recycles

    def herd_args(self):
        """(environment, herd's arguments with {addr} for the address)."""
        words = shlex.split(self.cmd)
        env = {}
        while "=" in words[0]:
            k, _, v = words.pop(0).partition("=")
            env[k] = v
        assert words[0] == "herd", self.cmd
        return env, [w.replace(self.addr, "{addr}") for w in words[1:]]


ROWS = [
    Row("gunicorn", ["gunicorn"],
        "herd -l 127.0.0.1:8000 -w 2 -- gunicorn --max-requests 20 app:application",
        {"app.py": WSGI},
        recycles=(r"Autorestarting worker after current request", 2)),
        # A worker gunicorn forks as the arbiter gets TERM misses it (its
        # handlers are not installed yet); the arbiter waits for it
        # (--graceful-timeout, 30 s), herd kills the arbiter after 3 s, and
        # the worker, now herd's orphan, would keep the port: herd stops
        # it before exiting (src/orphans.c).
    Row("uWSGI", ["uwsgi", "/usr/lib/uwsgi/plugins/python3_plugin.so"],
        "herd -l 127.0.0.1:8000 -w 2 --notify --stop-signal HUP -- uwsgi --plugin python3 "
        "--protocol http --wsgi-file app.py --max-requests 20 --min-worker-lifetime 0",
        {"app.py": WSGI}, recycles=(PLANNED, 2)),
    Row("puma", ["puma"],
        "herd -l 127.0.0.1:8000 -w 2 -- puma -b tcp://127.0.0.1:8000 config.ru",
        {"config.ru": RACK}),
    Row("Node", ["node"], "herd -l 127.0.0.1:8000 -w 2 -- node app.js", {"app.js": NODE}),
    Row("php-cgi", ["php-cgi", "cgi-fcgi"],
        "PHP_FCGI_CHILDREN=0 PHP_FCGI_MAX_REQUESTS=5 "
        "herd --fd0 -l 127.0.0.1:9000 -w 2 -- php-cgi",
        {"index.php": PHP}, addr="127.0.0.1:9000", fcgi=True, recycles=(PLANNED, 5)),
]

# ---- clients ------------------------------------------------------------------


# ---- the pool's processes -----------------------------------------------------------


def in_dir(d):
    """{pid: start time} of the live processes whose cwd is d."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % name)
        except OSError:
            continue
        st = ht.proc_stat(int(name))
        if cwd == d and st is not None and st[0] not in ("Z", "X"):
            out[int(name)] = st[3]
    return out


def descendants(pid):
    out, todo = set(), [pid]
    while todo:
        for c in ht.children(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def describe(pids):
    return "\n".join("%d %s" % (p, _cmdline(p)) for p in sorted(pids)) or "(none)"


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone)"


def port_bindable(port):
    """What a restarted server does: SO_REUSEADDR, bind, listen. (A plain
    bind would also fail on the TIME_WAIT of closed connections.)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ht.HOST, port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()

# ---- the test of a row ----------------------------------------------------------------


def test_row(row, readme):
    ht.ok("`%s`" % row.cmd in readme, "%s: the README's table gives `%s`" % (row.name, row.cmd))
    missing = [p for p in row.programs
               if not (os.path.exists(p) if p.startswith("/") else shutil.which(p))]
    if missing:
        ht.skip("%s under herd" % row.name, "%s not installed" % " and ".join(missing))
        return
    d = os.path.realpath(tempfile.mkdtemp(prefix="herd-srv-"))
    for name, text in row.files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    env, args = row.herd_args()
    try:
        with ht.Herd(*args, env=env, cwd=d, name="%s: herd" % row.name) as h:
            run_row(row, h, d)
    finally:
        for pid, start in in_dir(d).items():  # whatever a failed test left
            ht._kill(pid, signal.SIGKILL, start)
        shutil.rmtree(d, ignore_errors=True)


def run_row(row, h, d):
    name = row.name
    if row.fcgi:
        script = os.path.join(d, "index.php")

        def fetch():
            return ht.cgi_fcgi(h.port, script)
    else:
        def fetch():
            try:
                r = ht.get(h.addr, "/", timeout=10)
                return r.status == 200 and r.body == b"hello\n"
            except (OSError, ValueError):
                return False
    # (a)
    ht.ok(fetch(), "%s: serves" % name, lambda: h.log()[-2000:])

    # (b), and (c) meanwhile. FastCGI through cgi-fcgi, HTTP from Load's
    # own clients, which keep connections alive too, across the reload.
    # The load runs a second or more on each side of the reload, and on
    # until it has made enough requests to count: a slow machine gets time.
    load = (ht.Load(fetch=fetch, calls=3, close=0, keepalive=0, timeout=10) if row.fcgi
            else ht.Load(h.addr, close=2, keepalive=2, path="/"))
    load.start()
    time.sleep(0.5)
    ht.wait_until(lambda: load.ok >= 20, 10)
    old = set(h.workers())
    old_pool = descendants(h.pid)
    mark = h.mark()
    t0 = time.monotonic()
    h.signal(signal.SIGHUP)
    ready = h.wait_log(r"generation 2 ready", since=mark, timeout=15)
    t_ready = time.monotonic() - t0
    drained = ht.wait_until(lambda: not old & set(h.workers()), 15)
    t_drained = time.monotonic() - t0
    time.sleep(1)
    ht.wait_until(lambda: load.ok >= LEAST_REQUESTS, 10)
    load.stop()
    pool = descendants(h.pid)
    gens = {h.worker_info().get(p, (None, None))[1] for p in h.workers()}
    ht.ok(ready and drained and gens == {2},
          "%s: SIGHUP under load: generation 2 ready, generation 1 gone" % name,
          lambda: "workers %s, generations %s\n%s" % (h.workers(), gens, h.log()[-3000:]))
    ht.ok(pool and not pool & old_pool,
          "%s: every process of the pool is new after the reload" % name,
          lambda: "before:\n%s\nafter:\n%s" % (describe(old_pool), describe(pool)))
    figures = load.summary()
    ht.diag("%s: across the reload under load: %s; new generation ready after %.1f s, "
            "the old one gone after %.1f s" % (name, figures, t_ready, t_drained))
    ht.ok(h.count_log(r"did not drain in time") == 0,
          "%s: generation 1 drained on its stop signal, none killed" % name,
          lambda: "\n".join(l for l in h.log().splitlines() if "in time" in l))
    ht.ok(load.failed == 0 and load.ok >= LEAST_REQUESTS,
          "%s: 0 failed requests across the reload (%d served)" % (name, load.ok),
          lambda: figures + "\n" + "\n".join(load.errors))
    if row.recycles:
        rx, least = row.recycles
        n = h.count_log(rx)
        ht.ok(n >= least, "%s: it recycled itself under load (%d times)" % (name, n),
              lambda: h.log()[-2000:])
    if row.fcgi:
        # A back-off's delays grow to seconds; a loaded machine's worst
        # FastCGI request (a cgi-fcgi process each) took 1.2 s.
        ht.ok(load.slowest < 3, "%s: no request waited on a back-off (slowest %.3f s)"
              % (name, load.slowest))
    ht.ok(h.count_log(CRASHED) == 0, "%s: no exit was taken for a crash" % name,
          lambda: "\n".join(l for l in h.log().splitlines() if re.search(CRASHED, l)))

    # (d)
    pool = {p: ht.proc_stat(p) for p in descendants(h.pid)}
    pool = {p: st[3] for p, st in pool.items() if st is not None}
    pool.update(in_dir(d))
    h.signal(signal.SIGTERM)
    status = h.wait_exit(20)
    left = set(in_dir(d)) | {p for p, start in pool.items() if ht._same_alive(p, start)}
    bindable = port_bindable(h.port)
    ht.is_(status, 0, "%s: SIGTERM: herd exits 0" % name)
    ht.ok(not left, "%s: no process of the pool outlives herd" % name,
          lambda: describe(left))
    ht.ok(bindable, "%s: the port is free at once" % name)


def table_commands(readme):
    """The command lines of the README's "Tested servers" table."""
    m = re.search(r"^### Tested servers\n(.*?)^#", readme, re.M | re.S)
    rows = [l.split(" | ") for l in (m.group(1) if m else "").splitlines() if l.startswith("| ")]
    return [r[1].strip("`") for r in rows if len(r) > 1 and r[1].startswith("`")]


def test_table(readme):
    """Each row of the table is a test here (and test_row checks that each
    test is a row)."""
    cmds = table_commands(readme)
    ht.ok(cmds and set(cmds) <= {r.cmd for r in ROWS},
          "every command line of the README's table of tested servers is a test here",
          lambda: "README: %r\ntests: %r" % (cmds, [r.cmd for r in ROWS]))


def main():
    with open(README) as f:
        readme = f.read()

    def table():
        test_table(readme)
    tests = [table]
    only = sys.argv[1:]  # row names, to run only those by hand
    for row in [r for r in ROWS if not only or r.name in only]:
        def t(row=row):
            test_row(row, readme)
        t.__name__ = "test_" + re.sub(r"\W", "_", row.name.lower())
        tests.append(t)
    ht.run(*tests)


main()

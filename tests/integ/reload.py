#!/usr/bin/env python3
"""reload.py: SIGHUP replaces every worker with a new generation without
failing a request; a generation that cannot become ready is abandoned and
the old one keeps serving; reloads in quick succession do not pile up."""
import os
import re
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

N = 2
MAX_DRAINING_GENS = ht.source_define("MAX_DRAINING_GENS")


def reload_once(h, problems):
    """SIGHUP, then wait for the new generation to be ready and the old
    workers to be gone; checks /whoami answers from the new generation."""
    old = set(h.workers())
    n = len(old)
    mark = h.mark()
    h.signal(signal.SIGHUP)
    m = h.wait_log(r"reload: starting generation (\d+)", since=mark)
    if not m:
        problems.append("no 'reload: starting generation' after SIGHUP")
        return
    gen = int(m.group(1))
    if not h.wait_log(r"generation %d ready" % gen, since=mark, timeout=15):
        problems.append("generation %d never ready" % gen)
        return
    if not ht.wait_until(lambda: not old & set(h.workers()), 15):
        problems.append("generation %d: old workers still running: %r" % (gen, old & set(h.workers())))
    new = set(h.workers())
    if len(new) != n:
        problems.append("generation %d: %d workers: %r" % (gen, len(new), new))
    answers = [ht.whoami(h.addr) for _ in range(4)]
    if any(a[2] != gen or a[0] not in new for a in answers):
        problems.append("generation %d: /whoami answers %r, workers %r" % (gen, answers, new))


def reloads_under_load(count):
    with ht.Herd("-w", str(N), name="herd -w %d, %d reloads under load" % (N, count)) as h:
        load = ht.Load(h.addr, close=2, keepalive=2).start()
        time.sleep(0.3)
        problems = []
        for _ in range(count):
            reload_once(h, problems)
        time.sleep(0.3)
        load.stop()
        ht.ok(not problems, "%d reloads: each replaced every worker, /whoami shows the new generation"
              % count, lambda: "\n".join(problems))
        ht.ok(load.ok > 0 and load.failed == 0, "%d reloads under load: 0 failed requests" % count,
              lambda: load.summary() + "\n" + "\n".join(load.errors))
        ht.diag("%d reloads: %s" % (count, load.summary()))
        return load


def test_5_reloads_under_load():
    reloads_under_load(5)


def test_20_reloads_under_load():
    reloads_under_load(20)


def signal_new_children(h, known, mark, sig=signal.SIGKILL, timeout=5):
    """Sends sig to every child not in known as soon as it shows up, until
    the log says how the reload ended. Returns what it said, or None."""
    start = time.monotonic()
    rx = re.compile(r"reload abandoned|generation \d+ ready")
    while time.monotonic() < start + timeout:
        if time.monotonic() > start + 1:
            time.sleep(0.01)  # the new workers are long born: stop spinning
        for p in ht.children(h.pid):
            if p not in known:
                known.add(p)
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
        m = rx.search(h.log(), mark)
        if m:
            return m.group(0)
    return None


def expect_old_generation_serves(h, old, gen, how):
    back = ht.wait_until(lambda: set(h.workers()) == old, 10)
    ht.ok(back, "%s: only the old generation's %d workers remain" % (how, len(old)),
          "workers %r, old %r" % (h.workers(), old))
    answers = [ht.whoami(h.addr) for _ in range(6)]
    ht.ok(all(a[2] == gen and a[0] in old for a in answers),
          "%s: the old generation keeps serving" % how, "answers %r" % answers)


def expect_next_reload_works(h, how):
    problems = []
    reload_once(h, problems)
    ht.ok(not problems, "%s: a later reload succeeds" % how, lambda: "\n".join(problems))


def reload_signalling_new_workers(h, sig, timeout):
    """SIGHUP, then sig to each new worker as soon as it appears. That races
    with the workers becoming ready: when the whole new generation was ready
    (and promoted) first, the race was lost, and it is tried again.
    Returns (outcome, old workers, old generation, log mark); outcome is
    'reload abandoned', 'lost' (every try), or None (herd said nothing)."""
    for attempt in range(5):
        old = set(h.workers())
        gen = max(g for p, (s, g) in h.worker_info().items() if p in old)
        mark = h.mark()
        h.signal(signal.SIGHUP)
        known = set(old)
        outcome = signal_new_children(h, known, mark, sig, timeout)
        if outcome in ("reload abandoned", None):
            return outcome, old, gen, mark
        ht.diag("try %d: the new generation was ready before the signal" % attempt)
        for p in known - old:
            _kill_quietly(p, signal.SIGCONT)
        ht.wait_until(lambda: len(h.workers()) == len(old), 10)
    return "lost", old, gen, mark


def _kill_quietly(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def test_reload_abandoned_when_new_workers_die():
    with ht.Herd("-w", "4", name="herd -w 4, new generation killed") as h:
        outcome, old, gen, mark = reload_signalling_new_workers(h, signal.SIGKILL, 5)
        if outcome == "lost":
            ht.skip("new workers SIGKILLed before ready", "the new generation won every race")
            return
        ht.ok(outcome == "reload abandoned" and
              re.search(r"reload abandoned: generation \d+ did not start", h.log()[mark:]),
              "new workers SIGKILLed before ready: 'reload abandoned'", lambda: h.log()[mark:])
        expect_old_generation_serves(h, old, gen, "abandoned reload")
        expect_next_reload_works(h, "abandoned reload")


def test_reload_abandoned_when_not_ready_in_time():
    # New workers SIGSTOPped as they appear never report ready; after
    # PENDING_READY_MS the reload is abandoned and they are stopped.
    wait = ht.source_define("PENDING_READY_MS") / 1000
    with ht.Herd("-w", "4", name="herd -w 4, new generation frozen") as h:
        outcome, old, gen, mark = reload_signalling_new_workers(h, signal.SIGSTOP, wait + 10)
        if outcome == "lost":
            ht.skip("new workers frozen: reload abandoned", "the new generation won every race")
            return
        ht.ok(outcome == "reload abandoned" and
              re.search(r"reload abandoned: generation \d+ was not ready in time", h.log()[mark:]),
              "new workers never ready: reload abandoned after %g s" % wait, lambda: h.log()[mark:])
        expect_old_generation_serves(h, old, gen, "reload not ready in time")


def lowest_free_fd(pid):
    used = set(ht.fd_links(pid))
    return min(i for i in range(len(used) + 1) if i not in used)


def test_reload_abandoned_when_workers_cannot_be_started():
    # The master at its fd limit cannot make a worker's socketpairs.
    with ht.Herd("-w", str(N), "--control", "{dir}/ctl.sock",
                 name="herd -w %d, reload at the fd limit" % N) as h:
        old = set(h.workers())
        soft, hard = resource.prlimit(h.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(h.pid, resource.RLIMIT_NOFILE, (lowest_free_fd(h.pid), hard))
        mark = h.mark()
        h.signal(signal.SIGHUP)
        m = h.wait_log(r"reload abandoned.*", since=mark)
        resource.prlimit(h.pid, resource.RLIMIT_NOFILE, (soft, hard))
        ht.ok(m is not None, "no fds for new workers: 'reload abandoned'",
              lambda: h.log()[mark:])
        ht.ok(h.running(), "no fds for new workers: the master stays up")
        expect_old_generation_serves(h, old, 1, "fd limit")
        expect_next_reload_works(h, "fd limit")
        out = subprocess.run([ht.HERD, "ctl", "--control", os.path.join(h.dir, "ctl.sock"),
                              "metrics"], capture_output=True, text=True, timeout=10).stdout
        counts = dict(re.findall(r"^(herd_reloads(?:_abandoned)?_total) (\d+)$", out, re.M))
        ht.is_(counts, {"herd_reloads_total": "1", "herd_reloads_abandoned_total": "1"},
               "the metrics count the completed reload, and the abandoned one apart")


def test_quick_reloads_do_not_pile_up():
    limit = (MAX_DRAINING_GENS + 2) * N
    with ht.Herd("-w", str(N), name="herd -w %d, quick reloads" % N) as h:
        load = ht.Load(h.addr, close=2, keepalive=2).start()
        time.sleep(0.2)
        with ht.Watch(h) as watch:
            for _ in range(5):
                h.signal(signal.SIGHUP)
                time.sleep(0.05)
            last = []

            def settled():
                info, ws = h.worker_info(), h.workers()
                gens = {info.get(p, (None, None))[1] for p in ws}
                newest = max(g for s, g in info.values())
                last[:] = [ws, gens, newest]
                return len(ws) == N and gens == {newest} and \
                    re.search(r"generation %d ready" % newest, h.log())
            ok = ht.wait_until(settled, 20)
        load.stop()
        ht.ok(ok, "5 SIGHUPs 50 ms apart: settles to %d workers of the newest generation" % N,
              lambda: "workers, their generations, newest: %r" % last)
        ht.ok(watch.max <= limit, "5 SIGHUPs 50 ms apart: never more than %d children" % limit,
              "at most %d children seen" % watch.max)
        ht.diag("quick reloads: at most %d children; load %s" % (watch.max, load.summary()))
        if ok:
            gen = last[1].copy().pop()
            answers = [ht.whoami(h.addr) for _ in range(4)]
            ht.ok(all(a[2] == gen for a in answers),
                  "5 SIGHUPs 50 ms apart: /whoami answers from the last generation", repr(answers))
        ht.ok(load.failed == 0, "5 SIGHUPs 50 ms apart under load: 0 failed requests",
              lambda: load.summary() + "\n" + "\n".join(load.errors))


def test_a_sighup_storm_does_not_pile_up():
    # The same bound, with SIGHUPs faster than a generation gets ready:
    # pending generations are retired unready, and retiring generations
    # beyond MAX_DRAINING_GENS are killed outright. A worker told to drain
    # or stop counts until it exits; a SIGKILLed one does not (Watch).
    limit = (MAX_DRAINING_GENS + 2) * N
    with ht.Herd("-w", str(N), name="herd -w %d, SIGHUP storm" % N) as h:
        with ht.Watch(h, every=0.002) as watch:
            for _ in range(20):
                h.signal(signal.SIGHUP)
                time.sleep(0.005)
            ht.wait_until(lambda: len(h.workers()) == N, 20)
            time.sleep(0.5)
        ht.ok(watch.max <= limit, "20 SIGHUPs 5 ms apart: never more than %d children" % limit,
              lambda: "at most %d children seen; %d generations killed outright" % (
                  watch.max, h.count_log(r"killing generation \d+")))
        ht.is_(len(h.workers()), N, "20 SIGHUPs 5 ms apart: %d workers once settled" % N)


def test_program_reloads_under_load():
    with ht.supervised("-w", "2", control=True) as h:
        done, load = ht.reloads_under_load(h, 3)
        ht.ok(done == 3 and load.failed == 0 and load.ok > 100,
              "3 reloads of pyapp -w 2 under load: no request fails", load.summary())
        a = ht.whoami_until(h.addr, lambda a: a[2] == 4, timeout=10)
        ht.ok(a is not None, "generation 4 answers after the third reload", repr(a))
        st = h.wait_status(lambda st: ht.serving(st, 4, 2) and len(ht.procs(st)) == 2 and
                           sorted(p["pid"] for p in ht.procs(st)) == sorted(h.workers()), 5)
        ht.ok(st, "only generation 4 is left (status: its 2 workers, ready, and no other)",
              lambda: "status %r\nchildren %r" % (h.last_status, h.workers()))


def test_reload_while_one_starts_follows_it():
    # A reload asked while a generation is still starting does not replace
    # it (its workers may have taken connections): it follows it, once,
    # however many were asked.
    with ht.Herd("-w", "1", "--ready-delay", "0.5", "--", "/bin/sleep", "600",
                 name="herd -- sleep, reloads while one starts") as h:
        mark = h.mark()
        h.signal(signal.SIGHUP)
        h.wait_log(r"reload: starting generation 2", since=mark)
        h.signal(signal.SIGHUP)
        h.signal(signal.SIGHUP)
        queued = h.wait_log(r"generation 2 is still starting; the next one starts", since=mark)
        ready = h.wait_log(r"generation 3 ready", since=mark, timeout=15)
        log = h.log()[mark:]
        ht.ok(queued and ready and re.search(r"generation 2 ready", log),
              "reloads while generation 2 starts: it becomes ready, then generation 3 follows",
              lambda: log[-2000:])
        ht.ok("generation 4" not in log and "killed by signal 9" not in log,
              "one reload follows, however many were asked; nothing is killed", lambda: log[-2000:])


ht.run(test_5_reloads_under_load,
       test_20_reloads_under_load,
       test_reload_abandoned_when_new_workers_die,
       test_reload_abandoned_when_workers_cannot_be_started,
       test_reload_abandoned_when_not_ready_in_time,
       test_quick_reloads_do_not_pile_up,
       test_a_sighup_storm_does_not_pile_up,
       test_program_reloads_under_load,
       test_reload_while_one_starts_follows_it)

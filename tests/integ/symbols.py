#!/usr/bin/env python3
"""symbols.py: libherd.a is linked into other people's programs, so the
only names it exports are herd_* (include/herd.h); everything internal is
local to it. A program with its own log_open(), chan_new() or worker_main()
links against it and runs."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import herdtest as ht  # noqa: E402

LIB = os.path.join(ht.BUILD, "libherd.a")
HEADER = os.path.join(ht.REPO, "include", "herd.h")

# Names libherd uses inside, defined again by the user's program.
CLASHING = r"""
#include <stdio.h>
#include "herd.h"
int log_open(const char *path) { (void)path; return 42; }
int chan_new(void) { return 43; }
int worker_main(void) { return 44; }
unsigned long msg_refused[4];
int main(void)
{
	herd *h = herd_new();
	int ok = h != NULL && log_open(NULL) == 42 && chan_new() == 43 &&
		 worker_main() == 44;
	herd_free(h);
	puts(ok ? "linked" : "wrong");
	return !ok;
}
"""


def exported():
    out = subprocess.run(["nm", "-g", "--defined-only", LIB], capture_output=True,
                         text=True, check=True).stdout
    return [l.split() for l in out.splitlines() if len(l.split()) == 3]


def test_exports():
    syms = exported()
    ht.ok(len(syms) > 20, "nm lists libherd.a's exports", "%d" % len(syms))
    others = sorted(n for _, _, n in syms if not n.startswith("herd_"))
    ht.ok(not others, "every exported name is herd_*", "others: %r" % others[:20])
    data = sorted(n for _, t, n in syms if t in "BDGSbdgs")
    ht.ok(not data, "no exported data", "%r" % data)
    with open(HEADER) as f:
        declared = set(re.findall(r"\b(herd_\w+)\s*\(", f.read()))
    undeclared = sorted(n for _, t, n in syms if t == "T" and n not in declared)
    ht.ok(not undeclared, "every exported function is declared in herd.h",
          "%r" % undeclared)


def test_clashing_program():
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "clash.c")
        exe = os.path.join(d, "clash")
        with open(src, "w") as f:
            f.write(CLASHING)
        # The ASan build's archive needs the sanitizer runtimes.
        san = ["-fsanitize=address,undefined"] if "asan" in ht.BUILD else []
        r = subprocess.run([cc, "-std=c11", "-I", os.path.dirname(HEADER), *san,
                            "-o", exe, src, LIB], capture_output=True, text=True)
        if not ht.ok(r.returncode == 0, "a program defining libherd's internal names links",
                     r.stderr[-2000:]):
            return
        r = subprocess.run([exe], capture_output=True, text=True, timeout=30)
        ht.is_(r.stdout.strip(), "linked", "and runs with its own definitions")


ht.run(test_exports, test_clashing_program)

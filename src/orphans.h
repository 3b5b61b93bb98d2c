/*
 * orphans.h: what a program's pool leaves behind at stop. herd is the
 * subreaper of its programs (PR_SET_CHILD_SUBREAPER), so a process a
 * worker forked (gunicorn's workers under its arbiter, a helper that
 * ignores TERM) becomes herd's child when the worker exits. Such a process
 * may hold the listening socket: if herd exited before it, the port would
 * stay bound and herd's restart would fail with EADDRINUSE. Once the pool
 * is gone, the master calls orphans_stop() each turn: every child it still
 * has gets the stop signal once, SIGKILL at the deadline, and herd exits
 * only when it has none left.
 */
#ifndef HERD_ORPHANS_H
#define HERD_ORPHANS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ORPHANS_POLL_MS 100 /* SIGCHLD says one died, not that one came */

struct orphans {
	pid_t *told;	   /* got the stop signal already */
	size_t ntold;	   /* of told */
	size_t cap;	   /* of told */
	uint64_t deadline; /* SIGKILL at this; 0 until the first is seen */
	int killing;	   /* the deadline passed */
};

/* Up to max of this process's children, from /proc (every thread's
 * children file, or a scan of /proc where the kernel has none). Returns
 * how many there are, which may be more than max, or -1. */
long orphans_children(pid_t *pids, size_t max);
/* The same from a scan of every /proc/PID/stat: the fallback, apart for
 * its unit test. */
long orphans_scan_proc(pid_t self, pid_t *pids, size_t max);
/* Signals the children left (sig, then SIGKILL once grace_ms after the
 * first was found) and returns 0 when there are none, else the time to
 * look again. A shorter grace (a fast stop after a graceful one) brings
 * the deadline nearer, never further. */
uint64_t orphans_stop(struct orphans *o, uint64_t now, int sig,
		      uint64_t grace_ms);
/* Every child SIGKILLed and waited for: the last resort of an exit path
 * that did not go through orphans_stop(). */
void orphans_kill_all(void);
void orphans_free(struct orphans *o);

#endif

/*
 * orphans.c: what a program's pool leaves behind at stop (orphans.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "orphans.h"

#define ORPHANS_MAX   256 /* signalled in one look; the rest the next */
#define ORPHANS_NAMED 8	  /* pids named in the log line */

static void add(pid_t *pids, size_t max, long *n, long pid)
{
	if (pid > 0 && (size_t)*n < max)
		pids[*n] = (pid_t)pid;
	if (pid > 0)
		(*n)++;
}

/* One thread's children file: pids separated by spaces, read in pieces
 * with a number possibly cut between two reads. */
static int read_children(int dir, const char *tid, pid_t *pids, size_t max,
			 long *n)
{
	char path[64], buf[4096];
	long pid = 0;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "%s/children", tid);
	if ((fd = openat(dir, path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((got = read(fd, buf, sizeof(buf))) != 0) {
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			close(fd);
			return -1;
		}
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
			} else {
				add(pids, max, n, pid);
				pid = 0;
			}
		}
	}
	add(pids, max, n, pid);
	close(fd);
	return 0;
}

/* Where the kernel has no children files (CONFIG_PROC_CHILDREN): every
 * process's stat, its parent the fourth field, after "(comm)" which may
 * hold anything but ends at the last ')'. */
long orphans_scan_proc(pid_t self, pid_t *pids, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512], *paren;
		long ppid;
		ssize_t got;
		int fd;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue; /* gone since readdir */
		got = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (got <= 0)
			continue;
		buf[got] = '\0';
		if ((paren = strrchr(buf, ')')) == NULL ||
		    sscanf(paren + 1, " %*c %ld", &ppid) != 1)
			continue;
		if (ppid == (long)self)
			add(pids, max, &n, strtol(e->d_name, NULL, 10));
	}
	closedir(d);
	return n;
}

long orphans_children(pid_t *pids, size_t max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long n = 0;
	int err = 0;

	if (d == NULL)
		return orphans_scan_proc(getpid(), pids, max);
	/* An orphan goes to a live thread of its subreaper, not always the
	 * one that forked: every thread's list counts. */
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (read_children(dirfd(d), e->d_name, pids, max, &n) == -1) {
			err = errno;
			break;
		}
	}
	closedir(d);
	if (err == ENOENT)
		return orphans_scan_proc(getpid(), pids, max);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return n;
}

static int told(const struct orphans *o, pid_t pid)
{
	for (size_t i = 0; i < o->ntold; i++)
		if (o->told[i] == pid)
			return 1;
	return 0;
}

/* Remembered so each gets sig once: some servers read a second TERM or
 * QUIT as "now, not gracefully". Unremembered (no memory), it gets sig
 * again on the next look, which is the lesser harm. */
static void tell(struct orphans *o, pid_t pid, int sig)
{
	if (told(o, pid))
		return;
	if (o->ntold == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		pid_t *v = realloc(o->told, cap * sizeof(*v));

		if (v != NULL) {
			o->told = v;
			o->cap = cap;
		}
	}
	if (o->ntold < o->cap)
		o->told[o->ntold++] = pid;
	if (kill(pid, sig) == -1 && errno != ESRCH)
		log_warn("signal %d to pid %d: %s", sig, (int)pid,
			 strerror(errno));
}

static void say(const char *what, const pid_t *pids, long n, int sig)
{
	char list[ORPHANS_NAMED * 12 + 8] = "";
	size_t len = 0;

	for (long i = 0; i < n && i < ORPHANS_NAMED; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d",
					i ? " " : "", (int)pids[i]);
	if (n > ORPHANS_NAMED)
		snprintf(list + len, sizeof(list) - len, " ...");
	log_warn("stop: %ld process%s the pool left behind (pid%s %s); %s "
		 "signal %d (%s)",
		 n, n == 1 ? "" : "es", n == 1 ? "" : "s", list, what, sig,
		 strsignal(sig));
}

uint64_t orphans_stop(struct orphans *o, uint64_t now, int sig,
		      uint64_t grace_ms)
{
	pid_t pids[ORPHANS_MAX];
	long n = orphans_children(pids, ORPHANS_MAX);
	size_t seen;

	if (n == 0)
		return 0;
	if (n == -1) { /* EMFILE, say: the pool's fds are closing */
		log_warn("stop: cannot list herd's children: %s",
			 strerror(errno));
		return now + ORPHANS_POLL_MS;
	}
	seen = (size_t)n < ORPHANS_MAX ? (size_t)n : ORPHANS_MAX;
	if (o->deadline == 0) {
		o->deadline = now + grace_ms;
		say("sending them", pids, n, sig);
	} else if (now + grace_ms < o->deadline) {
		o->deadline = now + grace_ms;
	}
	if (!o->killing && now >= o->deadline) {
		o->killing = 1;
		say("did not stop in time; sending them", pids, n, SIGKILL);
	}
	for (size_t i = 0; i < seen; i++) {
		if (o->killing)
			kill(pids[i], SIGKILL);
		else
			tell(o, pids[i], sig);
	}
	if (o->killing || now + ORPHANS_POLL_MS < o->deadline)
		return now + ORPHANS_POLL_MS;
	return o->deadline;
}

void orphans_kill_all(void)
{
	pid_t pids[ORPHANS_MAX];
	long n;

	/* Bounded: a child waitpid() cannot have (none should exist) must
	 * not keep an exit path going round for ever. */
	for (int round = 0; round < 16; round++) {
		if ((n = orphans_children(pids, ORPHANS_MAX)) <= 0)
			return;
		if (n > ORPHANS_MAX)
			n = ORPHANS_MAX;
		for (long i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		for (long i = 0; i < n; i++)
			while (waitpid(pids[i], NULL, 0) == -1 &&
			       errno == EINTR)
				;
	}
}

void orphans_free(struct orphans *o)
{
	free(o->told);
	o->told = NULL;
	o->ntold = o->cap = 0;
}

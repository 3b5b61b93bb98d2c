/*
 * boot.c: herd_run()'s start-up, from a configuration to a running master:
 * stdio and the log, the hand-over of a binary upgrade, the fd limit, the
 * listening sockets (bound, inherited from a service manager or kept
 * across an upgrade) and the pid file; and the teardown after.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdstore.h"
#include "internal.h"
#include "kind.h"
#include "log.h"
#include "mode.h"
#include "rights.h"

/* Refuses to start a pool the fd limit cannot hold through a reload,
 * rather than starting part of it and retrying the rest forever. The soft
 * limit is raised to the hard one first, as the limit is there to be. */
static int check_fd_limit(herd *h)
{
	int want = h->workers > 0 ? h->workers : herd_ncpu();
	struct rlimit rl;

	if (master_max_workers(h) >= want)
		return 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    master_max_workers(h) >= want)
			return 0;
	}
	return start_fail(
	    h,
	    "%d workers need more fds than the limit allows (at most "
	    "%d workers; raise ulimit -n)",
	    want, master_max_workers(h));
}

/* The name LISTEN_FDNAMES gives fd 3 + k, if it gives a usable one, for
 * an address the -l option did not name: what the socket unit calls it is
 * what programs look for (sd_listen_fds_with_names). */
/* The k-th name of a LISTEN_FDNAMES list, *len bytes long; NULL if none. */
static const char *name_at(const char *names, long k, size_t *len)
{
	for (; k > 0 && names != NULL; k--)
		if ((names = strchr(names, ':')) != NULL)
			names++;
	if (names != NULL)
		*len = strcspn(names, ":");
	return names;
}

static void inherit_name(struct listen_addr *a, const char *names, long k)
{
	size_t len = 0;

	if (names == NULL || a->name[0] != '\0')
		return;
	if ((names = name_at(names, k, &len)) == NULL)
		return;
	if (len == 0)
		return; /* none given: derived */
	if (!fdname_valid(names, len)) {
		log_warn("%s: LISTEN_FDNAMES gives it no usable name; "
			 "programs see it as derived from the address",
			 a->text);
		return;
	}
	memcpy(a->name, names, len);
	a->name[len] = '\0';
}

/* How many names LISTEN_FDNAMES holds. */
static long count_names(const char *names)
{
	long n = 1;

	for (; *names; names++)
		n += *names == ':';
	return n;
}

#define MAX_PASSED (MAX_LISTEN * 4)

/* The sockets a service manager passed: fds 3 .. 3 + n - 1. Some may be
 * herd's own, from the fd store (fdstore.h), told by their names. */
struct passed {
	long n;
	char *names;			/* a copy of LISTEN_FDNAMES, or NULL */
	unsigned char used[MAX_PASSED]; /* taken by a -l address */
	unsigned char kind[MAX_PASSED]; /* enum fdstore_kind */
	size_t addr[MAX_PASSED];	/* the store's listener index */
	int slot[MAX_PASSED];		/* FDSTORE_SLOT: its slot */
	int stored;			/* any of them from the store */
};

static void classify(struct passed *p)
{
	for (long k = 0; k < p->n && p->names != NULL; k++) {
		size_t len = 0;
		const char *name = name_at(p->names, k, &len);

		if (name == NULL)
			break;
		p->kind[k] = (unsigned char)fdstore_parse(
		    name, len, &p->addr[k], &p->slot[k]);
		p->stored |= p->kind[k] != FDSTORE_NOT_OURS;
	}
}

/* sd_listen_fds_with_names refuses a list of another length; herd falls
 * back to the derived names instead. */
static void check_names(struct passed *p)
{
	if (p->names != NULL && count_names(p->names) != p->n) {
		log_warn("LISTEN_FDNAMES has %ld names for %ld sockets; "
			 "ignoring it",
			 count_names(p->names), p->n);
		free(p->names);
		p->names = NULL;
	}
}

/* LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, read and unset. Returns 1
 * when sockets were passed to this process, 0 when none were, -1 when
 * LISTEN_FDS is not a count herd takes. */
static int passed_read(herd *h, struct passed *p)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *fdnames = getenv("LISTEN_FDNAMES");
	char *end;
	int rc = 1;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid())
		return 0;
	p->n = strtol(fds, &end, 10);
	/* unsetenv may free what getenv returned: keep a copy, and say what
	 * is wrong with fds before. */
	if (fdnames != NULL && (p->names = strdup(fdnames)) == NULL)
		return start_fail(h, "LISTEN_FDNAMES: %s", strerror(errno));
	if (*end != '\0' || p->n < 1 || p->n > MAX_PASSED)
		rc = start_fail(h, "LISTEN_FDS='%s': expected 1..%d sockets",
				fds, MAX_PASSED);
	/* Theirs, not for herd's children (programs get their own). */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (rc == 1) {
		check_names(p);
		classify(p);
	}
	return rc;
}

/* Takes the passed socket that is a's address (by getsockname), named by
 * LISTEN_FDNAMES unless -l named it. One of herd's from the fd store comes
 * back with its backlog; an address with none there is bound afresh. */
static int adopt_passed(herd *h, struct listen_addr *a, struct passed *p)
{
	long k = 0;

	while (k < p->n && (p->used[k] || p->kind[k] == FDSTORE_SLOT ||
			    !addr_matches(a, 3 + (int)k)))
		k++;
	if (k == p->n && p->stored)
		return 0;
	if (k == p->n)
		return start_fail(h,
				  "%s: not among the %ld sockets passed in "
				  "LISTEN_FDS",
				  a->text, p->n);
	if (addr_adopt(a, 3 + (int)k) == -1)
		return start_fail(h, "%s: %s", a->text, strerror(errno));
	p->used[k] = 1;
	if (p->kind[k] == FDSTORE_LISTENER) {
		a->inherited = 0; /* herd's own, as if bound now */
		a->stored = 1;
		fdstore_held();
		log_info("listening on %s (from the fd store, fd %ld)", a->text,
			 3 + k);
		return 0;
	}
	inherit_name(a, p->names, k);
	log_info("listening on %s (inherited, fd %ld)", a->text, 3 + k);
	return 0;
}

/* What no -l address took is closed, and said so; a slot's socket from
 * the fd store waits for its slot (fdstore_take_slot), and a listener of
 * the store that no -l address wants any more leaves it. */
static void close_unmatched(const struct passed *p)
{
	char name[FDSTORE_NAME_MAX];

	for (long k = 0; k < p->n; k++) {
		int fd = 3 + (int)k;

		if (p->used[k])
			continue;
		if (p->kind[k] == FDSTORE_SLOT &&
		    fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 &&
		    fdstore_keep_slot(p->addr[k], p->slot[k], fd) == 0) {
			fdstore_held();
			continue;
		}
		log_warn("fd %ld from LISTEN_FDS matches no -l address; "
			 "closing it",
			 3 + k);
		if (p->kind[k] != FDSTORE_NOT_OURS) {
			if (p->kind[k] == FDSTORE_LISTENER)
				fdstore_listener_name(p->addr[k], name,
						      sizeof(name));
			else
				fdstore_slot_name(p->addr[k], p->slot[k], name,
						  sizeof(name));
			fdstore_remove(name);
		}
		close(fd);
	}
}

/* systemd's socket activation (or anything speaking its protocol): when
 * LISTEN_PID is this process, the LISTEN_FDS sockets from fd 3 are the
 * listeners, each -l address matched to one by getsockname and named by
 * LISTEN_FDNAMES unless -l named it. Returns 1 when they were taken, 0 when
 * none were passed, -1 on a mismatch. */
static int inherit_sockets(herd *h)
{
	struct passed p = {0};
	int rc = passed_read(h, &p);

	for (size_t i = 0; rc == 1 && i < h->naddrs; i++)
		if (adopt_passed(h, &h->addrs[i], &p) == -1)
			rc = -1;
	if (rc == 1)
		close_unmatched(&p);
	free(p.names);
	return rc;
}

/* An inherited socket for reuseport mode must have been bound with
 * SO_REUSEPORT (systemd: ReusePort=yes), or no slot can join it. */
static int check_inherited(herd *h)
{
	for (size_t i = 0; i < h->naddrs; i++) {
		int on = 0;
		socklen_t len = sizeof(on);

		if (!h->addrs[i].reuseport || h->addrs[i].fd < 0)
			continue;
		if (getsockopt(h->addrs[i].fd, SOL_SOCKET, SO_REUSEPORT, &on,
			       &len) == -1 ||
		    !on)
			return start_fail(
			    h,
			    "%s: the inherited socket has no "
			    "SO_REUSEPORT (systemd: ReusePort=yes), "
			    "which --mode reuseport needs",
			    h->addrs[i].text);
	}
	return 0;
}

/* Every listening socket closed (one never opened is -1: a no-op). */
static void addrs_close(herd *h)
{
	for (size_t i = 0; i < h->naddrs; i++)
		addr_close(&h->addrs[i]);
}

/* Each address's socket options, from the configuration: SO_REUSEPORT
 * (not on unix sockets: every slot shares those) and TCP_DEFER_ACCEPT. */
static void mark_options(herd *h)
{
	for (size_t i = 0; i < h->naddrs; i++) {
		h->addrs[i].reuseport = h->conn->slot_sockets &&
					h->addrs[i].sa.ss_family != AF_UNIX;
		h->addrs[i].defer = h->defer_accept;
	}
}

/* Binds a, unless it was passed, and sets it up for whoever reads it. */
static int listen_one(herd *h, struct listen_addr *a)
{
	int passed = a->fd >= 0;
	char err[256];

	if (!passed && addr_bind(a, err, sizeof(err)) == -1)
		return start_fail(h, "%s", err);
	if (passed && addr_defer_accept(a, a->fd) == -1)
		return start_fail(h, "%s: TCP_DEFER_ACCEPT: %s", a->text,
				  strerror(errno));
	/* A program's sockets are blocking, as systemd and FastCGI hand them
	 * over; a program wanting otherwise sets it (for every process
	 * sharing them). Only passfd's master accepts. */
	if (h->kind->blocking && !h->conn->passes &&
	    fd_blocking(a->fd, 1) == -1)
		return start_fail(h, "%s: %s", a->text, strerror(errno));
	/* Whoever reads a unix connection (a built-in worker; passfd's
	 * master, which may have to close one) takes no fds from its
	 * clients: see rights.h. A program's own sockets are its business. */
	if (h->kind->herd_reads || h->conn->passes)
		rights_refuse(a->fd);
	if (!passed)
		log_info("listening on %s", a->text);
	return 0;
}

/* Every -l address bound, or taken from a service manager. On failure
 * none is left open. */
static int bind_all(herd *h)
{
	if (h->naddrs == 0)
		return start_fail(h, "%s", "no address to listen on");
	mark_options(h);
	if (inherit_sockets(h) == -1 || check_inherited(h) == -1) {
		addrs_close(h);
		return -1;
	}
	for (size_t i = 0; i < h->naddrs; i++)
		if (listen_one(h, &h->addrs[i]) == -1) {
			addrs_close(h);
			return -1;
		}
	return 0;
}

/* Written to a temporary name and renamed, so a reader never sees it half
 * written. */
static int write_pid_file(herd *h)
{
	char tmp[4096], line[32];
	int fd, e, n = snprintf(line, sizeof(line), "%d\n", (int)getpid());

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", h->pid_file, (int)getpid());
	/* A fresh file, never one (or a symlink) someone left at that name:
	 * herd may be root, and the directory may not be only root's. */
	if (unlink(tmp) == -1 && errno != ENOENT)
		return start_fail(h, "pid file %s: %s", tmp, strerror(errno));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd == -1)
		return start_fail(h, "pid file %s: %s", h->pid_file,
				  strerror(errno));
	if (write(fd, line, (size_t)n) != n) {
		e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return start_fail(h, "pid file %s: %s", h->pid_file,
				  strerror(e));
	}
	if (close(fd) == -1 || rename(tmp, h->pid_file) == -1) {
		e = errno;
		unlink(tmp);
		return start_fail(h, "pid file %s: %s", h->pid_file,
				  strerror(e));
	}
	return 0;
}

/* With fd 0, 1 or 2 closed, the next socket would take its number and
 * receive whatever is written to stdout or stderr. Not CLOEXEC: stdio. */
static int stdio_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		int null;

		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* fd is the lowest free number, so open() returns it. */
		if ((null = open("/dev/null", O_RDWR)) == -1)
			return -1;
		if (null != fd) {
			close(null);
			errno = EBADF;
			return -1;
		}
	}
	return 0;
}

/* A log write must fail, not kill the master: past RLIMIT_FSIZE (systemd's
 * LimitFSIZE=) the kernel sends SIGXFSZ, and to a pipe whose reader is gone
 * SIGPIPE, both fatal by default. Ignored before the first line is written;
 * spawn_fork() gives children their defaults back, and in-process workers
 * ignore both again (worker.c). */
static int ignore_write_signals(void)
{
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -1;
	return 0;
}

/* Started by an upgrade: the listening sockets come from the old image,
 * in -l order, and must still be what -l says. */
static int resume_sockets(herd *h)
{
	struct upgrade_state *st = h->resume;

	if (st->naddrs != (int)h->naddrs)
		return start_fail(h,
				  "upgrade: %d listening sockets handed over, "
				  "%zu -l addresses given",
				  st->naddrs, h->naddrs);
	mark_options(h);
	for (size_t i = 0; i < h->naddrs; i++) {
		if (!addr_matches(&h->addrs[i], st->addr_fds[i]))
			return start_fail(
			    h, "upgrade: %s is not the socket handed over",
			    h->addrs[i].text);
		h->addrs[i].fd = st->addr_fds[i];
		if (addr_defer_accept(&h->addrs[i], h->addrs[i].fd) == -1)
			return start_fail(h, "%s: TCP_DEFER_ACCEPT: %s",
					  h->addrs[i].text, strerror(errno));
		h->addrs[i].stored =
		    1; /* by the old image, if there is a store */
		/* -l names come again with the argv; socket activation's
		 * only from the old image. */
		inherit_name(&h->addrs[i], st->names, (long)i);
		log_info("listening on %s (kept across the upgrade)",
			 h->addrs[i].text);
	}
	return 0;
}

/* The master's log, at its level and under its name. On failure the
 * message goes to stderr, where the log still is. */
static int log_start(herd *h)
{
	int e;

	log_set_level(h->log_level);
	log_set_role("master");
	if (log_open(h->log_file) == 0)
		return 0;
	e = errno;
	/* ENXIO: a FIFO is opened without waiting for a reader (log.c), a
	 * socket not at all */
	return start_fail(h, "log %s: %s%s", h->log_file, strerror(e),
			  e == ENXIO ? " (a FIFO with no reader, or a socket?)"
				     : "");
}

/* The process made fit to be the master, up to its open log. On failure
 * h's error says why (logged only if the log was open to say it). */
static int process_start(herd *h)
{
	if (stdio_open() == -1) {
		snprintf(h->err, sizeof(h->err), "/dev/null: %s",
			 strerror(errno));
		return -1;
	}
	if (ignore_write_signals() == -1) {
		snprintf(h->err, sizeof(h->err), "signal: %s", strerror(errno));
		return -1;
	}
	/* A child must not flush the caller's unwritten stdio twice. */
	fflush(NULL);
	return log_start(h);
}

/* Started by a binary upgrade: the old image's hand-over in h->resume;
 * otherwise h->resume stays NULL. */
static int resume_load(herd *h)
{
	if ((h->resume = calloc(1, sizeof(*h->resume))) == NULL)
		return -1;
	switch (upgrade_load(h->resume)) {
	case -1:
		return start_fail(
		    h,
		    "upgrade: the hand-over from the old image is unusable: "
		    "%s",
		    strerror(errno));
	case 0:
		free(h->resume);
		h->resume = NULL;
	}
	return 0;
}

/* Everything between the open log and the master: the hand-over, the
 * checks, the sockets, the pid file. 0, or -1 with h's error set. */
static int prepare(herd *h)
{
	if (resume_load(h) == -1 || config_check(h) == -1 ||
	    check_fd_limit(h) == -1 ||
	    (h->resume ? resume_sockets(h) : bind_all(h)) == -1)
		return -1;
	if (h->pid_file != NULL && write_pid_file(h) == -1) {
		addrs_close(h);
		return -1;
	}
	return 0;
}

int herd_run(herd *h)
{
	int rc = 1;

	if (process_start(h) == -1)
		return 1;
	if (prepare(h) == 0) {
		rc = master_run(h);
		if (h->pid_file != NULL)
			unlink(h->pid_file);
		addrs_close(h);
	}
	log_close();
	return rc;
}

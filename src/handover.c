/*
 * handover.c: the master's side of a binary upgrade: the new binary's --check,
 * collecting the state to hand over, the exec, and resuming from it in the new
 * image (the record itself is upgrade.c's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "output.h"
#include "rights.h"
#include "master.h"

/* The state the new image needs, pointing into m (fds stay m's). */
/* The names given (by -l or by socket activation), "" for a derived one,
 * ':'-joined: a malloc'ed string, or NULL with errno. */
static char *upgrade_names(const herd *h)
{
	char *names = malloc(h->naddrs * (FDNAME_MAX + 1) + 1), *w = names;

	if (names == NULL)
		return NULL;
	for (size_t i = 0; i < h->naddrs; i++)
		w += sprintf(w, "%s%s", i > 0 ? ":" : "", h->addrs[i].name);
	*w = '\0';
	return names;
}

static int upgrade_collect(struct master *m, struct upgrade_state *st)
{
	herd *h = m->h;
	uint64_t now = herd_loop_now(m->loop);
	int top = 0;

	memset(st, 0, sizeof(*st));
	st->nworkers = m->nworkers;
	st->gen = m->gen;
	st->last_gen = m->last_gen;
	st->naddrs = (int32_t)h->naddrs;
	for (size_t i = 0; i < h->naddrs; i++)
		st->addr_fds[i] = h->addrs[i].fd;
	st->notify_fd = m->notify_fd;
	memcpy(st->notify_name, m->notify_name, sizeof(st->notify_name));
	if ((st->names = upgrade_names(h)) == NULL)
		return -1;
	for (int sl = 1; sl < MAX_WORKERS; sl++)
		if (m->slots[sl].fds != NULL)
			top = sl;
	st->nslots = top;
	st->slot_fds = calloc((size_t)top * h->naddrs + 1, sizeof(int32_t));
	st->procs = calloc(m->procs.n + 1, sizeof(*st->procs));
	if (st->slot_fds == NULL || st->procs == NULL)
		return -1;
	for (int sl = 1; sl <= top; sl++)
		for (size_t i = 0; i < h->naddrs; i++)
			st->slot_fds[(size_t)(sl - 1) * h->naddrs + i] =
			    m->slots[sl].fds ? m->slots[sl].fds[i] : -1;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		struct upgrade_proc *u = &st->procs[st->nprocs++];

		if (p->chan != NULL)
			chan_flush(p->chan); /* best effort: a queue is lost */
		u->pid = p->pid;
		u->pidfd = p->pidfd;
		u->slot = p->slot;
		u->state = p->state;
		u->killed = p->killed;
		u->gen = p->gen;
		u->chan = p->chan != NULL ? chan_fd(p->chan) : -1;
		u->inbox_w = p->inbox_w;
		u->worker_end = p->worker_end;
		u->exec_err = p->exec_err;
		u->active = p->active;
		u->total = p->total;
		u->assigned = p->assigned;
		u->age_ms = now - p->started;
		u->deadline_left_ms =
		    p->deadline == 0
			? 0
			: (p->deadline > now ? p->deadline - now : 1);
	}
	return output_collect(st);
}

static void upgrade_exec_now(struct master *m)
{
	struct upgrade_state st;
	herd *h = m->h;

	if (upgrade_collect(m, &st) == -1) {
		log_error("upgrade: %s; carrying on", strerror(errno));
		upgrade_free(&st);
		return;
	}
	log_info("upgrade: executing %s (pid %d stays)", h->upgrade_path,
		 (int)m->pid);
	sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu", sdnotify_monotonic_usec());
	upgrade_exec(&st, h->upgrade_path, h->upgrade_argv);
	log_error("upgrade: cannot execute %s: %s; carrying on",
		  h->upgrade_path, strerror(errno));
	sdnotify("READY=1");
	upgrade_free(&st);
}

void upgrade_checked(struct master *m, int status)
{
	char why[96];

	m->check_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (m->state == M_RUNNING)
			upgrade_exec_now(m);
		return;
	}
	describe_exit(status, why, sizeof(why));
	log_error("upgrade: '%s --check' %s; the running binary carries on",
		  m->h->upgrade_path, why);
}

/* SIGUSR2: first the new binary checks the arguments it will be given, in
 * a child of its own, so that a broken binary never replaces a working
 * master; the master goes on meanwhile (upgrade_checked). */
int upgrade_start(struct master *m)
{
	herd *h = m->h;
	size_t n = 0;
	char **argv;
	pid_t pid;

	if (h->upgrade_path == NULL) {
		log_warn("upgrade: not enabled; SIGUSR2 ignored");
		return -1;
	}
	if (m->state != M_RUNNING || m->check_pid != 0 || m->pending != 0) {
		log_warn("upgrade: %s; SIGUSR2 ignored",
			 m->state != M_RUNNING ? "stopping"
			 : m->check_pid != 0   ? "a check is running"
					       : "a reload is under way");
		return -1;
	}
	while (h->upgrade_argv[n] != NULL)
		n++;
	if ((argv = calloc(n + 2, sizeof(*argv))) == NULL) {
		log_error("upgrade: %s", strerror(errno));
		return -1;
	}
	argv[0] = h->upgrade_path;
	argv[1] = "--check";
	for (size_t i = 1; i < n; i++)
		argv[i + 1] = h->upgrade_argv[i];
	if ((pid = spawn_fork(m->pid)) == 0) {
		int keep[] = {0, 1, 2};
		sigset_t none;

		sigemptyset(&none);
		if (spawn_close_except(keep, 3) == -1 ||
		    sigprocmask(SIG_SETMASK, &none, NULL) == -1)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	free(argv);
	if (pid == -1) {
		log_error("upgrade: cannot fork the check: %s",
			  strerror(errno));
		return -1;
	}
	m->check_pid = pid;
	m->check_deadline = herd_loop_now(m->loop) + h->upgrade_timeout_ms;
	log_info("upgrade: checking %s (pid %d)", h->upgrade_path, (int)pid);
	return 0;
}

/* The new image: the old one's workers, sockets and counters are ours. */
int upgrade_resume(struct master *m)
{
	struct upgrade_state *st = m->h->resume;
	uint64_t now = herd_loop_now(m->loop);
	herd *h = m->h;

	m->nworkers = st->nworkers;
	m->gen = st->gen;
	m->last_gen = st->last_gen;
	m->announced = 1;
	m->upgraded = 1;
	for (int sl = 1; sl <= st->nslots && sl < MAX_WORKERS; sl++) {
		int32_t *fds = st->slot_fds + (size_t)(sl - 1) * h->naddrs;
		int any = 0;

		for (size_t i = 0; i < h->naddrs; i++)
			any |= fds[i] >= 0;
		if (!any)
			continue;
		if ((m->slots[sl].fds = malloc(h->naddrs * sizeof(int))) ==
		    NULL)
			return -1;
		for (size_t i = 0; i < h->naddrs; i++)
			m->slots[sl].fds[i] = fds[i];
	}
	if (st->notify_fd >= 0) {
		m->notify_fd = st->notify_fd;
		rights_refuse(m->notify_fd); /* an older image may not have */
		memcpy(m->notify_name, st->notify_name, sizeof(m->notify_name));
		if (herd_loop_add(m->loop, m->notify_fd, HERD_READ, on_notify,
				  m) == -1)
			return -1;
	}
	for (size_t i = 0; i < st->nprocs; i++) {
		const struct upgrade_proc *u = &st->procs[i];
		struct proc *p = proc_add(&m->procs);

		if (p == NULL)
			return -1;
		p->pid = u->pid;
		p->pidfd = u->pidfd;
		p->slot = u->slot;
		p->gen = u->gen;
		p->state = (enum proc_state)u->state;
		p->killed = u->killed;
		p->inbox_w = u->inbox_w;
		p->introduced = 1; /* the old image introduced them */
		p->worker_end = u->worker_end;
		p->exec_err = u->exec_err;
		p->active = u->active;
		p->total = u->total;
		p->assigned = u->assigned;
		p->started = now > u->age_ms ? now - u->age_ms : 0;
		p->deadline =
		    u->deadline_left_ms ? now + u->deadline_left_ms : 0;
		p->watchdog_at = now + h->watchdog_ms;
		if (u->chan >= 0 &&
		    (p->chan = chan_new(u->chan, MSG_TO_MASTER, m->loop,
					on_worker_chan, p)) == NULL)
			return -1;
	}
	if (output_resume(m->loop, st, &m->procs) == -1)
		return -1;
	log_info("upgrade: resumed as %s %s (pid %d) with %zu workers of "
		 "generation %u",
		 h->upgrade_path ? h->upgrade_path : "herd", HERD_VERSION,
		 (int)m->pid, m->procs.n, m->gen);
	/* Then as a reload: a new generation on the new binary, the old one
	 * retired once it is ready, or kept if it is not in time. */
	reload(m);
	m->pending_ms = h->upgrade_timeout_ms;
	return 0;
}

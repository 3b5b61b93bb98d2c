/*
 * exit.c: a worker's exit: reaping, what the exit means (crash, planned exit, a
 * program that cannot run), the slot's back-off or pace, and the listeners a
 * dying worker may have shut down.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "channel.h"
#include "load.h"
#include "log.h"
#include "output.h"
#include "master.h"

/* A program's exec: 1 done (its error pipe closed on exec), 0 not yet,
 * -1 failed (p->exec_error says why). In-process workers: 1. */
int exec_done(struct proc *p)
{
	ssize_t n;

	if (p->exec_failed)
		return -1;
	if (p->exec_err < 0)
		return 1;
	n = read(p->exec_err, p->exec_error, sizeof(p->exec_error));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	close(p->exec_err);
	p->exec_err = -1;
	if (n == (ssize_t)sizeof(p->exec_error)) {
		p->exec_failed = 1;
		return -1;
	}
	return 1; /* EOF: the exec happened */
}

void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s",
			 WTERMSIG(status), strsignal(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "ended with wait status %#x", status);
}

void proc_gone(struct master *m, struct proc *p)
{
	worker_chan_last(p); /* its last relays, and reports */
	load_release(p);     /* its last counts, and out of the pool's share */
	m->gone_total += p->total;
	mesh_gone(&m->mesh, p);
	leftover_keep(m, p);
	chan_free(p->chan);
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->inbox_w >= 0)
		close(p->inbox_w);
	if (p->exec_err >= 0)
		close(p->exec_err);
	output_gone(p->out);
	proc_remove(&m->procs, p);
}

/* shutdown(2) by one process on a listening socket it shares stops the
 * socket for all: the whole pool would stop accepting, for good. Programs
 * do it (some on their way out), so after every worker's exit the master
 * makes sure its TCP listeners still listen. One getsockopt each. */
static void listeners_check(struct master *m)
{
	const herd *h = m->h;

	for (int sl = 0; sl < MAX_WORKERS; sl++) {
		if (sl > 0 && m->slots[sl].fds == NULL)
			continue;
		for (size_t i = 0; i < h->naddrs; i++) {
			int fd = sl == 0 ? h->addrs[i].fd : m->slots[sl].fds[i];
			int r = fd < 0 ? 0 : addr_relisten(fd);

			if (r == 1)
				log_warn(
				    "%s: the listening socket was shut down "
				    "(by a worker?); listening again",
				    h->addrs[i].text);
			else if (r == -1)
				log_error("%s: the listening socket: %s",
					  h->addrs[i].text, strerror(errno));
		}
	}
}

/* The slot's back-off after a crash (policy_backoff()). */
uint64_t slot_backoff(struct master *m, int slot, uint64_t lived, int ready)
{
	return policy_backoff(&m->slots[slot], herd_loop_now(m->loop), lived,
			      ready);
}

/* The facts of an exit, and the line that says it; a program that never
 * ran says why first. */
static void exit_facts(struct master *m, struct proc *p, int status,
		       struct exit_facts *e, char *what, size_t len)
{
	struct spawn_error se;
	char why[96];

	/* exec_done() first: it reads the stage and errno it reports. */
	*e = (struct exit_facts){p->slot,
				 p->gen,
				 proc_info(p->state)->live,
				 proc_info(p->state)->serving,
				 exec_done(p),
				 status,
				 herd_loop_now(m->loop) - p->started};
	se = (struct spawn_error){p->exec_error[0], p->exec_error[1]};
	describe_exit(status, why, sizeof(why));
	snprintf(what, len, "worker %d (pid %d, generation %u) %s", e->slot,
		 (int)p->pid, e->gen, why);
	if (e->ran == -1)
		log_error("worker %d (pid %d): %s%s%s: %s", e->slot,
			  (int)p->pid, spawn_stage_name(se.stage),
			  se.stage == SPAWN_EXEC ? " " : "",
			  se.stage == SPAWN_EXEC ? m->h->argv[0] : "",
			  strerror(se.err));
}

/* A worker of the pending generation died before it was ready: the
 * reload is abandoned, and herd ctl reload says which worker and how. */
static void pending_died(struct master *m, const char *what)
{
	char why[200];

	log_error("%s before its generation was ready", what);
	snprintf(why, sizeof(why), "did not start: %s", what);
	abandon_pending(m, why);
}

static void stop_failed(struct master *m)
{
	m->exit_code = 1;
	fast_stop(m);
}

/* What policy_exit() decided, done and said. */
static void exit_apply(struct master *m, enum exit_verdict v,
		       const struct exit_facts *e, const char *what,
		       uint64_t delay)
{
	if (v != EXIT_EXPECTED && v != EXIT_PLANNED)
		crash_note(&m->crashes, what, herd_loop_now(m->loop));
	switch (v) {
	case EXIT_EXPECTED:
		log_info("%s", what);
		break;
	case EXIT_PLANNED:
		log_info("%s: a planned exit; replacing it in %llu ms", what,
			 (unsigned long long)delay);
		break;
	case EXIT_CANNOT_RUN:
		log_error("%s: the program could not be started; stopping",
			  what);
		stop_failed(m);
		break;
	case EXIT_PENDING:
		pending_died(m, what);
		break;
	case EXIT_CONFIG:
		log_error("%s: its start failed before the pool was ever "
			  "ready; stopping",
			  what);
		stop_failed(m);
		break;
	case EXIT_GIVE_UP:
		m->restarts++;
		log_error("%s; %u quick deaths in a row before the pool was "
			  "ever ready: giving up",
			  what, m->slots[e->slot].fails);
		stop_failed(m);
		break;
	case EXIT_RESTART:
		m->restarts++;
		log_warn("%s; restarting in %llu ms", what,
			 (unsigned long long)delay);
		break;
	case EXIT_STRAY:
		log_warn("%s", what);
		break;
	}
}

static void proc_exited(struct master *m, struct proc *p, int status)
{
	struct exit_facts e;
	struct pool_facts pool;
	struct slot_state spare = {0};
	char what[160];
	uint64_t delay;
	enum exit_verdict v;

	exit_facts(m, p, status, &e, what, sizeof(what));
	proc_gone(m, p);
	listeners_check(m);
	pool_facts(m, &pool);
	v = policy_exit(&e, &pool,
			e.slot >= 0 && e.slot < MAX_WORKERS ? &m->slots[e.slot]
							    : &spare,
			herd_loop_now(m->loop), &delay);
	exit_apply(m, v, &e, what, delay);
}

/* At most REAP_BATCH a turn: when a reload's old generation of 512 exits
 * at once, the rest waits a turn rather than the loop waiting for all. */
void reap(struct master *m)
{
	m->reap_more = 0;
	for (int i = 0; i < REAP_BATCH; i++) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct proc *p;

		if (pid == -1 && errno == EINTR)
			continue;
		if (pid <= 0)
			return; /* 0: none exited; ECHILD: no children */
		if ((p = proc_by_pid(&m->procs, pid)) != NULL)
			proc_exited(m, p, status);
		else if (pid == m->check_pid)
			upgrade_checked(m, status);
		else
			log_debug("reaped pid %d, not a worker", (int)pid);
	}
	m->reap_more = 1; /* the wake timer comes back at once */
}

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

/* The respawn delay for a slot whose worker just died.
 *
 * A worker that was ready and had lived BACKOFF_FIRST_MS (proven) showed
 * that it can start: it is replaced at once, as nginx does, whatever killed
 * it (a crash on one request, the OOM killer, an operator), and the slot's
 * count of quick deaths starts again.
 *
 * Any other death (before ready, within BACKOFF_FIRST_MS, or by the
 * watchdog) is a quick death: 0 the first time, then doubling from
 * BACKOFF_FIRST_MS up to BACKOFF_MAX_MS while the slot's workers keep dying
 * so; one that lived HEALTHY_MS starts the count again. A crash loop at
 * start-up backs off; a pool under fire keeps its strength, and the master
 * never forks for a slot more often than every BACKOFF_FIRST_MS unless the
 * worker before lived that long. */
uint64_t slot_backoff(struct master *m, int slot, uint64_t lived, int ready)
{
	struct slot_state *s = &m->slots[slot];
	int proven = ready && lived >= BACKOFF_FIRST_MS;
	uint64_t delay;

	if (proven || lived >= HEALTHY_MS)
		s->fails = 0;
	if (proven)
		delay = 0;
	else if (++s->fails == 1)
		delay = 0;
	else if (s->fails - 2 >= 6)
		delay = BACKOFF_MAX_MS;
	else
		delay = earlier((uint64_t)BACKOFF_FIRST_MS << (s->fails - 2),
				BACKOFF_MAX_MS);
	s->not_before = herd_loop_now(m->loop) + delay;
	return delay;
}

/* A program that exits with status 0 on its own (herd did not ask it to
 * stop) after its exec ended as planned: php-cgi does so after
 * PHP_FCGI_MAX_REQUESTS. Under load that is well within 100 ms and the
 * ready delay, so neither its age nor its readiness may make it a crash.
 * What herd cannot see is whether it served; `true` looks the same. */
static int planned_exit(const struct master *m, int status, int ran)
{
	return m->h->argv != NULL && ran && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

/* The successor of a planned exit starts at once, but never sooner than
 * PLANNED_GAP_MS after its predecessor started, in the serving and the
 * pending generation alike: a program that exits 0 at every start costs
 * 10 forks a second per slot, not a tight loop, and one that recycles
 * after PHP_FCGI_MAX_REQUESTS=500 is never held. */
static uint64_t slot_pace(struct master *m, int slot, uint64_t lived)
{
	uint64_t delay = lived >= PLANNED_GAP_MS ? 0 : PLANNED_GAP_MS - lived;

	m->slots[slot].paced = herd_loop_now(m->loop) + delay;
	return delay;
}

void proc_gone(struct master *m, struct proc *p)
{
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

static void proc_exited(struct master *m, struct proc *p, int status)
{
	int slot = p->slot, crashed = p->state <= PS_READY;
	int ready = p->state == PS_READY;
	unsigned gen = p->gen;
	uint64_t lived = herd_loop_now(m->loop) - p->started;
	char why[96], what[160];

	int ran = exec_done(p), never_ran = ran == -1;
	struct spawn_error se = {p->exec_error[0], p->exec_error[1]};

	describe_exit(status, why, sizeof(why));
	snprintf(what, sizeof(what), "worker %d (pid %d, generation %u) %s",
		 slot, (int)p->pid, gen, why);
	if (never_ran)
		log_error("worker %d (pid %d): %s%s%s: %s", slot, (int)p->pid,
			  spawn_stage_name(se.stage),
			  se.stage == SPAWN_EXEC ? " " : "",
			  se.stage == SPAWN_EXEC ? m->h->argv[0] : "",
			  strerror(se.err));
	proc_gone(m, p);
	listeners_check(m);
	if (!crashed || m->state != M_RUNNING) {
		log_info("%s", what);
	} else if (planned_exit(m, status, ran == 1)) {
		/* Not a crash: no back-off, no restart counted; in a pending
		 * generation it is replaced, the reload not abandoned. */
		m->slots[slot].proven = gen;
		log_info("%s: a planned exit; replacing it in %llu ms", what,
			 (unsigned long long)slot_pace(m, slot, lived));
	} else if (never_ran && !m->announced) {
		/* Not a crash loop to wait out: the program cannot run. */
		log_error("%s: the program could not be started; stopping",
			  what);
		m->exit_code = 1;
		fast_stop(m);
	} else if (gen == m->pending) {
		log_error("%s before its generation was ready", what);
		abandon_pending(m, "did not start");
	} else if (!m->announced && m->h->argv == NULL && WIFEXITED(status) &&
		   WEXITSTATUS(status) == HERD_EXIT_CONFIG) {
		/* A worker that cannot start before the pool ever served is a
		 * configuration error: say so and stop, not respawn forever. */
		log_error(
		    "%s: its start failed before the pool was ever ready; "
		    "stopping",
		    what);
		m->exit_code = 1;
		fast_stop(m);
	} else if (gen == m->gen && slot < m->nworkers) {
		uint64_t delay = slot_backoff(m, slot, lived, ready);

		m->slots[slot].restarts++;
		m->restarts++;
		if (!m->announced && m->slots[slot].fails >= START_LIMIT) {
			/* As systemd's StartLimitBurst: a pool that never
			 * served says so with its exit status, rather than
			 * retry every 5 s where nobody is told (a container's
			 * orchestrator restarts it, or reports it). */
			log_error("%s; %u quick deaths in a row before the "
				  "pool was ever ready: giving up",
				  what, m->slots[slot].fails);
			m->exit_code = 1;
			fast_stop(m);
		} else {
			log_warn("%s; restarting in %llu ms", what,
				 (unsigned long long)delay);
		}
	} else {
		log_warn("%s", what);
	}
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

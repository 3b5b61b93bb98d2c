/*
 * apply.c: what the planner's actions (supervise.h) do to the master: the
 * signals, spawns, messages and log lines, and the view the planner looks
 * at. Decisions stay in supervise.c and policy.c; here each action is done
 * and said.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "master.h"

void pool_facts(const struct master *m, struct pool_facts *pool)
{
	*pool = (struct pool_facts){
	    m->state == M_RUNNING, m->announced, m->h->kind,
	    m->nworkers,	   m->gen,	 m->pending};
}

/* A reload asked while the last one was starting (ctl.c's reload()). */
static void reload_queued(struct master *m)
{
	if (!m->reload_queued)
		return;
	m->reload_queued = 0;
	reload(m);
}

void abandon_pending(struct master *m, const char *why)
{
	log_error("reload abandoned: generation %u %s; generation %u keeps "
		  "serving",
		  m->pending, why, m->gen);
	sdnotify("READY=1\nSTATUS=reload abandoned: generation %u %s; "
		 "generation %u serves",
		 m->pending, why, m->gen);
	for (size_t i = 0; i < m->procs.n; i++)
		if (m->procs.v[i]->gen == m->pending)
			terminate_proc(m, m->procs.v[i]);
	history_end(&m->history, m->pending, ATT_ABANDONED, why,
		    herd_loop_now(m->loop));
	m->pending = 0;
	m->upgraded = 0; /* the upgrade's reload is over, too */
	m->reloads_abandoned++;
	reload_queued(m);
}

static void look(void *ctx, struct view *v)
{
	struct master *m = ctx;
	const herd *h = m->h;

	/* A new pass of the loop: SPAWN_BATCH more starts. */
	if (m->spawn_pass != loop_pass(m->loop)) {
		m->spawn_pass = loop_pass(m->loop);
		m->spawn_budget = SPAWN_BATCH;
	}
	*v = (struct view){.procs = &m->procs,
			   .slots = m->slots,
			   .now = herd_loop_now(m->loop),
			   .pending_since = m->pending_since,
			   .pending_ms = m->pending_ms,
			   .ready_delay_ms = h->ready_delay_ms,
			   .notify = h->notify,
			   .watchdog_ms = h->watchdog_ms,
			   .max_requests = h->max_requests,
			   .max_rss_kib = h->max_rss_kib,
			   .spawn_budget = m->spawn_budget,
			   .reload_batch = h->reload_batch};
	pool_facts(m, &v->pool);
}

/* SIGABRT for a program (a core to look at), SIGKILL for an in-process
 * worker; SIGKILL after FAST_STOP_MS either way, and a replacement. */
static void watchdog_kill(struct master *m, struct proc *p, int verdict,
			  uint64_t now)
{
	if (verdict == WATCHDOG_KILL) {
		/* An in-process worker's loop sends a heartbeat at least
		 * three times per watchdog period: silence means a handler
		 * that does not return. */
		log_warn("worker %d (pid %d): watchdog: its loop has not run "
			 "for %llu ms (stuck in a handler?); killing it",
			 p->slot, (int)p->pid,
			 (unsigned long long)m->h->watchdog_ms);
		proc_signal(p, SIGKILL);
		proc_fire(p, PE_KILL);
	} else {
		log_warn("worker %d (pid %d): watchdog: %s; killing it",
			 p->slot, (int)p->pid,
			 p->watchdog_trigger ? "it sent WATCHDOG=trigger"
					     : "no WATCHDOG=1 in time");
		proc_signal(p, SIGABRT);
		proc_fire(p, PE_WATCHDOG);
	}
	p->deadline = now + FAST_STOP_MS;
	/* A failure like a crash: a program that hangs at once must not be
	 * replaced (and dump core) in a tight loop. */
	log_warn(
	    "worker %d: restarting in %llu ms", p->slot,
	    (unsigned long long)slot_backoff(m, p->slot, now - p->started, 0));
}

static void take_over(struct master *m, struct proc *p)
{
	struct proc *next = proc_in_slot(&m->procs, m->gen, p->slot);

	if (next != NULL)
		log_info("worker %d: pid %d takes over from pid %d", p->slot,
			 (int)next->pid, (int)p->pid);
	quit_proc(m, p);
}

static void limit(struct master *m, struct proc *p, int verdict, uint64_t taken)
{
	proc_fire(p, PE_LIMIT);
	if (verdict == RECYCLE_REQUESTS)
		log_info("worker %d (pid %d) took %llu connections (limit "
			 "%llu); replacing it",
			 p->slot, (int)p->pid, (unsigned long long)taken,
			 (unsigned long long)p->request_limit);
	else
		log_info("worker %d (pid %d) uses %lu KiB (limit %llu); "
			 "replacing it",
			 p->slot, (int)p->pid, p->rss_kib,
			 (unsigned long long)m->h->max_rss_kib);
}

static void kill_proc(struct proc *p, int why)
{
	if (why == KILL_DEADLINE)
		log_warn("worker %d (pid %d) did not %s in time; killing it",
			 p->slot, (int)p->pid,
			 proc_info(p->state)->draining ? "drain" : "stop");
	proc_signal(p, SIGKILL);
	proc_fire(p, PE_KILL);
}

/* A failed start: a pending generation is abandoned, a serving slot
 * backs off. Returns when to look again. */
static uint64_t spawn(struct master *m, unsigned gen, int slot, uint64_t now)
{
	if (gen != m->gen && gen != m->pending) /* abandoned meanwhile */
		return UINT64_MAX;
	m->spawn_budget -= m->spawn_budget > 0;
	if (spawn_one(m, gen, slot) == 0)
		return UINT64_MAX;
	if (gen == m->pending) {
		abandon_pending(m, "could not be started");
		return UINT64_MAX;
	}
	return now + slot_backoff(m, slot, 0, 0);
}

/* Not before the program runs: a fork slow to exec, or an exec that
 * failed, is not a ready worker. */
static uint64_t ready(struct master *m, struct proc *p, uint64_t now)
{
	switch (exec_done(p)) {
	case 1:
		mark_ready(m, p);
		break;
	case 0:
		return now + EXEC_POLL_MS;
	}
	return UINT64_MAX;
}

static void promote(struct master *m)
{
	log_info("generation %u ready; retiring generation %u", m->pending,
		 m->gen);
	if (m->upgraded) /* the pid systemd watches: still this one */
		sdnotify("MAINPID=%d\nREADY=1\nSTATUS=%d workers, generation "
			 "%u, upgraded",
			 (int)m->pid, m->nworkers, m->pending);
	else
		sdnotify("READY=1\nSTATUS=%d workers, generation %u",
			 m->nworkers, m->pending);
	m->upgraded = 0; /* the old ones are told to drain, in waves */
	m->reloads++;	 /* done: abandoned ones are counted apart */
	history_end(&m->history, m->pending, ATT_READY, NULL,
		    herd_loop_now(m->loop));
	m->gen = m->pending;
	m->pending = 0;
	for (size_t i = 0; i < m->procs.n; i++)
		m->procs.v[i]->served |= m->procs.v[i]->gen == m->gen;
	for (int s = 0; s < MAX_WORKERS; s++) { /* fresh back-off, same fds */
		m->slots[s].fails = 0;
		m->slots[s].not_before = 0;
	}
	reload_queued(m);
}

static void announce(struct master *m)
{
	m->announced = 1;
	log_info("ready: %d workers (generation %u)", m->nworkers, m->gen);
	sdnotify("READY=1\nSTATUS=%d workers, generation %u", m->nworkers,
		 m->gen);
}

static uint64_t apply_one(struct master *m, const struct action *a,
			  uint64_t now)
{
	switch (a->kind) {
	case ACT_ABANDON:
		if (m->pending == a->gen)
			abandon_pending(m, a->say);
		break;
	case ACT_WATCHDOG:
		watchdog_kill(m, a->p, a->why, now);
		break;
	case ACT_SAMPLE_RSS:
		return sample_rss(m, now);
	case ACT_TAKE_OVER:
		take_over(m, a->p);
		break;
	case ACT_LIMIT:
		limit(m, a->p, a->why, a->arg);
		break;
	case ACT_BOUND:
		log_warn("more than %d generations retiring; killing "
			 "generation %u",
			 MAX_DRAINING_GENS, a->gen);
		break;
	case ACT_KILL:
		kill_proc(a->p, a->why);
		break;
	case ACT_STEER:
		m->h->conn->steer(m);
		break;
	case ACT_SPAWN:
		return spawn(m, a->gen, a->slot, now);
	case ACT_QUIT:
		quit_proc(m, a->p);
		break;
	case ACT_MESH:
		mesh_update(&m->mesh, &m->procs, m->gen);
		break;
	case ACT_READY:
		return ready(m, a->p, now);
	case ACT_PROMOTE:
		if (m->pending == a->gen)
			promote(m);
		break;
	case ACT_ANNOUNCE:
		announce(m);
		break;
	case ACT_WARN_UNREADY:
		return warn_unready(m, now);
	case ACT_RETIRE_SOCKETS:
		slot_sockets_retire(m);
		break;
	case ACT_ESCALATE:
		escalate(m, a->p, now);
		return a->p->deadline;
	case ACT_NKINDS:
		break;
	}
	return UINT64_MAX;
}

static uint64_t apply(void *ctx, const struct plan *pl)
{
	struct master *m = ctx;
	uint64_t now = herd_loop_now(m->loop), wake = UINT64_MAX;

	for (size_t i = 0; i < pl->n; i++)
		wake = earlier(wake, apply_one(m, &pl->v[i], now));
	return wake;
}

static struct supervisor *supervisor(struct master *m)
{
	m->sup.look = look;
	m->sup.apply = apply;
	m->sup.ctx = m;
	return &m->sup;
}

uint64_t supervise(struct master *m)
{
	return supervise_turn(supervisor(m));
}

uint64_t enforce_deadlines(struct master *m)
{
	return supervise_deadlines(supervisor(m));
}

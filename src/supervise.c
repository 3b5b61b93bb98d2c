/*
 * supervise.c: the supervision policy: fill the slots, promote or abandon a new
 * generation, retire and bound old ones, readiness by delay, the watchdog,
 * recycling, deadlines.
 */
#include <stdio.h>

#include "log.h"
#include "master.h"

void pool_facts(const struct master *m, struct pool_facts *pool)
{
	*pool = (struct pool_facts){
	    m->state == M_RUNNING, m->announced, m->h->argv != NULL,
	    m->nworkers,	   m->gen,	 m->pending};
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
	m->pending = 0;
	m->upgraded = 0; /* the upgrade's reload is over, too */
	m->reloads_abandoned++;
}

/* Programs that speak neither sd_notify nor the channel's READY are ready
 * after the ready delay. Returns when to look again. */
uint64_t ready_by_delay(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (m->h->argv == NULL || m->h->notify)
		return next;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		uint64_t at = p->started + m->h->ready_delay_ms;

		if (p->state != PS_STARTING)
			continue;
		if (policy_proven(&m->slots[p->slot], p->gen))
			at = p->started;
		if (now < at) {
			next = earlier(next, at);
			continue;
		}
		/* Not before the program runs: a fork slow to exec, or an exec
		 * that failed, is not a ready worker. */
		switch (exec_done(p)) {
		case 1:
			mark_ready(m, p);
			break;
		case 0:
			next = earlier(next, now + EXEC_POLL_MS);
			break;
		}
	}
	return next;
}

/* systemd's WatchdogSec for each worker: SIGABRT (a core to look at),
 * SIGKILL after FAST_STOP_MS, and a replacement at once. */
uint64_t enforce_watchdog(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (m->h->watchdog_ms == 0)
		return next;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		enum watchdog_verdict v =
		    policy_watchdog(p, now, m->h->argv != NULL);

		if (v == WATCHDOG_NONE)
			continue;
		if (v == WATCHDOG_LATER) {
			next = earlier(next, p->watchdog_at);
			continue;
		}
		if (v == WATCHDOG_KILL) {
			/* An in-process worker's loop sends a heartbeat at
			 * least three times per watchdog period: silence means
			 * a handler that does not return. */
			log_warn("worker %d (pid %d): watchdog: its loop has "
				 "not run for %llu ms (stuck in a handler?); "
				 "killing it",
				 p->slot, (int)p->pid,
				 (unsigned long long)m->h->watchdog_ms);
			proc_signal(p, SIGKILL);
			proc_fire(p, PE_KILL);
		} else {
			log_warn("worker %d (pid %d): watchdog: %s; killing it",
				 p->slot, (int)p->pid,
				 p->watchdog_trigger
				     ? "it sent WATCHDOG=trigger"
				     : "no WATCHDOG=1 in time");
			proc_signal(p, SIGABRT);
			proc_fire(p, PE_WATCHDOG);
		}
		p->deadline = now + FAST_STOP_MS;
		/* A failure like a crash: a program that hangs at once must
		 * not be replaced (and dump core) in a tight loop. */
		log_warn("worker %d: restarting in %llu ms", p->slot,
			 (unsigned long long)slot_backoff(m, p->slot,
							  now - p->started, 0));
	}
	return next;
}

/* --max-requests, --max-rss: a worker past a limit is marked; its slot then
 * counts as empty, so fill_slots() starts a successor in the same slot, and
 * the worker drains once that successor is ready. Returns when to look
 * again (RSS is read once a second). */
/* One of the serving generation past a limit is REPLACING: its
 * slot gets a successor, and it drains once that one is ready. */
static void recycle_one(struct master *m, struct proc *p,
			enum recycle_verdict v, uint64_t taken)
{
	struct proc *next;

	switch (v) {
	case RECYCLE_NONE:
		break;
	case RECYCLE_TAKEN_OVER:
		next = proc_in_slot(&m->procs, m->gen, p->slot);
		log_info("worker %d: pid %d takes over from pid %d", p->slot,
			 (int)next->pid, (int)p->pid);
		quit_proc(m, p);
		break;
	case RECYCLE_REQUESTS:
		proc_fire(p, PE_LIMIT);
		log_info("worker %d (pid %d) took %llu connections (limit "
			 "%llu); replacing it",
			 p->slot, (int)p->pid, (unsigned long long)taken,
			 (unsigned long long)p->request_limit);
		break;
	case RECYCLE_RSS:
		proc_fire(p, PE_LIMIT);
		log_info("worker %d (pid %d) uses %lu KiB (limit %llu); "
			 "replacing it",
			 p->slot, (int)p->pid, p->rss_kib,
			 (unsigned long long)m->h->max_rss_kib);
		break;
	}
}

uint64_t recycle(struct master *m, uint64_t now)
{
	herd *h = m->h;
	size_t draining = 0;

	(void)now;
	if (!h->max_requests && !h->max_rss_kib)
		return UINT64_MAX;
	for (size_t i = 0; i < m->procs.n; i++)
		draining += m->procs.v[i]->gen == m->gen &&
			    proc_info(m->procs.v[i]->state)->draining;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];
		uint64_t taken = h->argv != NULL ? p->assigned : p->total;
		enum recycle_verdict v;

		if (p->gen != m->gen)
			continue;
		v = policy_recycle(
		    p,
		    p->state == PS_REPLACING
			? proc_in_slot(&m->procs, m->gen, p->slot)
			: NULL,
		    draining, m->nworkers, taken, h->max_requests,
		    h->max_rss_kib);
		draining += v == RECYCLE_REQUESTS || v == RECYCLE_RSS;
		recycle_one(m, p, v, taken);
	}
	return UINT64_MAX; /* sample_rss() says when RSS is read again */
}

uint64_t enforce_deadlines(struct master *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		enum deadline_verdict v =
		    policy_deadline(p, now, m->h->argv != NULL);

		if (v == DEADLINE_NONE)
			continue;
		if (v == DEADLINE_ESCALATE) {
			escalate(m, p, now); /* a new, later deadline */
			v = policy_deadline(p, now, 1);
		}
		if (v == DEADLINE_LATER) {
			next = earlier(next, p->deadline);
			continue;
		}
		log_warn("worker %d (pid %d) did not %s in time; killing it",
			 p->slot, (int)p->pid,
			 proc_info(p->state)->draining ? "drain" : "stop");
		proc_signal(p, SIGKILL);
		proc_fire(p, PE_KILL);
	}
	return next;
}

/* How many workers fill_slots() may start now: SPAWN_BATCH a turn, and
 * in-process workers only while fewer than STARTING_MAX are still on
 * their way to READY (a few ms each). Forked faster than they start, a
 * reload's new workers pile up runnable and take the CPU from the master.
 * A program's start is its own business, and its --ready-delay would make
 * such a bound a crawl. */
void spawn_budget(struct master *m)
{
	size_t starting = 0;

	if (m->spawn_pass != loop_pass(m->loop)) {
		m->spawn_pass = loop_pass(m->loop);
		m->spawn_budget = SPAWN_BATCH;
	}
	for (size_t i = 0; i < m->procs.n; i++)
		starting += m->procs.v[i]->state == PS_STARTING;
	m->spawn_budget = policy_spawn_budget(
	    m->spawn_budget, starting, m->h->argv != NULL, &m->spawn_held);
}

/* Starts what generation gen lacks in slots 0..nworkers-1 (as much as the
 * spawn budget allows) and retires its workers above. Returns when
 * reconcile should look again. */
uint64_t fill_slots(struct master *m, unsigned gen, uint64_t now)
{
	struct proc *by_slot[MAX_WORKERS];
	uint64_t next = UINT64_MAX;

	proc_slots(&m->procs, gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers && gen != 0; s++) {
		uint64_t until;

		if (by_slot[s] != NULL)
			continue;
		if (policy_slot(&m->slots[s], now, gen == m->gen, &until) !=
		    SLOT_START) {
			next = earlier(next, until);
			continue;
		}
		if (m->spawn_budget == 0) {
			/* The rest on the next turn; or, held back by workers
			 * still starting, when one is ready (or dies). */
			if (!m->spawn_held)
				next = now;
			break;
		}
		m->spawn_budget--;
		if (spawn_one(m, gen, s) == -1) {
			if (gen == m->pending) {
				abandon_pending(m, "could not be started");
				break;
			}
			next = earlier(next, now + slot_backoff(m, s, 0, 0));
		}
	}
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		if (p->gen == gen && proc_info(p->state)->live &&
		    p->slot >= m->nworkers)
			quit_proc(m, p);
	}
	return next;
}

static int gen_ready(const struct master *m, unsigned gen)
{
	struct proc *by_slot[MAX_WORKERS];

	proc_slots(&m->procs, gen, by_slot, m->nworkers);
	return policy_gen_ready(by_slot, m->nworkers);
}

void promote_pending(struct master *m)
{
	if (m->pending == 0 || !gen_ready(m, m->pending))
		return;
	log_info("generation %u ready; retiring generation %u", m->pending,
		 m->gen);
	if (m->upgraded) /* the pid systemd watches: still this one */
		sdnotify("MAINPID=%d\nREADY=1\nSTATUS=%d workers, generation "
			 "%u, upgraded",
			 (int)m->pid, m->nworkers, m->pending);
	else
		sdnotify("READY=1\nSTATUS=%d workers, generation %u",
			 m->nworkers, m->pending);
	m->upgraded = 0; /* retire_old() tells the old ones, in waves */
	m->reloads++;	 /* done: abandoned ones are counted apart */
	m->gen = m->pending;
	m->pending = 0;
	for (size_t i = 0; i < m->procs.n; i++)
		m->procs.v[i]->served |= m->procs.v[i]->gen == m->gen;
	for (int s = 0; s < MAX_WORKERS; s++) { /* fresh back-off, same fds */
		m->slots[s].fails = 0;
		m->slots[s].not_before = 0;
	}
}

/* Of a generation that no longer serves (draining, stopping, or waiting
 * for retire_old() to tell it), and not yet sent SIGKILL. */
int retiring(const struct master *m, const struct proc *p)
{
	struct pool_facts pool;

	pool_facts(m, &pool);
	return policy_retiring(p, &pool);
}

/* Tells the workers of generations that no longer serve to drain, oldest
 * first, at most RETIRE_BATCH draining at a time. All at once, a reload's
 * N old workers exited together: with 512 on two CPUs the master waited
 * a third of a second for one, and nothing is gained, since every slot is
 * served by the new generation already. The rest serve meanwhile. */
void retire_old(struct master *m)
{
	size_t draining = 0, i;

	for (i = 0; i < m->procs.n; i++)
		draining += retiring(m, m->procs.v[i]) &&
			    proc_info(m->procs.v[i]->state)->draining;
	while (draining < RETIRE_BATCH) {
		struct proc *oldest = NULL;

		for (i = 0; i < m->procs.n; i++) {
			struct proc *p = m->procs.v[i];

			if (retiring(m, p) && proc_info(p->state)->live &&
			    (oldest == NULL || p->gen < oldest->gen))
				oldest = p;
		}
		if (oldest == NULL)
			return;
		quit_proc(m, oldest);
		draining++;
	}
}

/* Counts the retiring generations and finds the oldest of them. */
/* The distinct generations retiring, in one pass: a reload's N exits each
 * ran the O(N^2) scan this was. Past the array, a generation may be
 * counted twice: only when there are more than MAX_DRAINING_GENS anyway. */
static size_t retiring_gens(const struct master *m, unsigned *oldest)
{
	struct pool_facts pool;

	pool_facts(m, &pool);
	return policy_retiring_gens(&m->procs, &pool, oldest);
}

void bound_retiring(struct master *m)
{
	unsigned g;

	while (retiring_gens(m, &g) > MAX_DRAINING_GENS) {
		log_warn(
		    "more than %d generations retiring; killing generation "
		    "%u",
		    MAX_DRAINING_GENS, g);
		for (size_t i = 0; i < m->procs.n; i++) {
			struct proc *p = m->procs.v[i];

			if (p->gen == g && retiring(m, p)) {
				proc_signal(p, SIGKILL);
				proc_fire(p, PE_KILL);
			}
		}
	}
}

/* The serving generation's slots at start-up: ready, starting, or empty
 * (backing off after quick deaths, the first of them in slot). */
struct unready {
	unsigned ready, starting, empty;
	int slot;
};
static void unready_count(const struct master *m, struct unready *u)
{
	struct proc *by_slot[MAX_WORKERS];

	*u = (struct unready){0, 0, 0, -1};
	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++) {
		const struct proc *p = by_slot[s];

		if (p == NULL && u->empty++ == 0)
			u->slot = s;
		else if (p != NULL && p->state == PS_READY)
			u->ready++;
		else if (p != NULL)
			u->starting++;
	}
}

/* What a starting worker waits for before it counts as ready. */
static void starting_waits_for(const struct master *m, unsigned n, char *buf,
			       size_t len)
{
	const herd *h = m->h;
	const char *s = n == 1 ? "" : "s";

	if (h->argv == NULL)
		snprintf(buf, len,
			 "READY from %u starting worker%s (a start callback "
			 "that has not returned?)",
			 n, s);
	else if (h->notify)
		snprintf(buf, len, "READY=1 from %u program%s (--notify)", n,
			 s);
	else
		snprintf(buf, len,
			 "%u program%s to run for --ready-delay (%g s)%s", n, s,
			 (double)h->ready_delay_ms / 1000,
			 h->mode == HERD_MODE_PASSFD ? " or send READY" : "");
}

/* A pool that never becomes ready would wait in silence: UNREADY_FIRST_MS
 * after the start, and every UNREADY_EVERY_MS after that, say what it
 * waits for. Returns when to look again. */
uint64_t warn_unready(struct master *m, uint64_t now)
{
	char starting[160] = "", empty[160] = "";
	struct unready u;

	if (m->announced)
		return UINT64_MAX;
	if (m->unready_warn == 0)
		m->unready_warn = m->started + UNREADY_FIRST_MS;
	if (now < m->unready_warn)
		return m->unready_warn;
	m->unready_warn = now + UNREADY_EVERY_MS;
	unready_count(m, &u);
	if (u.starting > 0)
		starting_waits_for(m, u.starting, starting, sizeof(starting));
	if (u.empty > 0) {
		uint64_t at = m->slots[u.slot].not_before;

		snprintf(empty, sizeof(empty),
			 "%s%u slot%s backing off after quick deaths (slot "
			 "%d: %u in a row, next start in %llu ms)",
			 u.starting > 0 ? "; " : "", u.empty,
			 u.empty == 1 ? "" : "s", u.slot,
			 m->slots[u.slot].fails,
			 (unsigned long long)(at > now ? at - now : 0));
	}
	log_warn("%u of %d workers ready %llu s after start: waiting for %s%s",
		 u.ready, m->nworkers,
		 (unsigned long long)(now - m->started) / 1000, starting,
		 empty);
	return m->unready_warn;
}

void announce(struct master *m)
{
	if (m->announced || !gen_ready(m, m->gen))
		return;
	m->announced = 1;
	log_info("ready: %d workers (generation %u)", m->nworkers, m->gen);
	sdnotify("READY=1\nSTATUS=%d workers, generation %u", m->nworkers,
		 m->gen);
}

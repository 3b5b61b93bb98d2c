/*
 * policy.c: the supervision policy's decisions, pure (policy.h).
 */
#include <sys/wait.h>

#include "internal.h"
#include "policy.h"

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
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
uint64_t policy_backoff(struct slot_state *s, uint64_t now, uint64_t lived,
			int ready)
{
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
		delay = min64((uint64_t)BACKOFF_FIRST_MS << (s->fails - 2),
			      BACKOFF_MAX_MS);
	s->not_before = now + delay;
	return delay;
}

/* The successor of a planned exit starts at once, but never sooner than
 * PLANNED_GAP_MS after its predecessor started, in the serving and the
 * pending generation alike: a program that exits 0 at every start costs
 * 10 forks a second per slot, not a tight loop, and one that recycles
 * after PHP_FCGI_MAX_REQUESTS=500 is never held. */
uint64_t policy_pace(struct slot_state *s, uint64_t now, uint64_t lived)
{
	uint64_t delay = lived >= PLANNED_GAP_MS ? 0 : PLANNED_GAP_MS - lived;

	s->paced = now + delay;
	return delay;
}

/* A program that exits with status 0 on its own (herd did not ask it to
 * stop) after its exec ended as planned: php-cgi does so after
 * PHP_FCGI_MAX_REQUESTS. Under load that is well within 100 ms and the
 * ready delay, so neither its age nor its readiness may make it a crash.
 * What herd cannot see is whether it served; `true` looks the same. */
/* An in-process worker has no such exit: 0 there is a crash like any. */
static int planned(const struct exit_facts *e, const struct pool_facts *pool)
{
	return pool->kind->exit0_planned && e->ran == 1 &&
	       WIFEXITED(e->status) && WEXITSTATUS(e->status) == 0;
}

/* A crash of a serving slot: its back-off, and the start limit. */
static enum exit_verdict crashed(const struct exit_facts *e,
				 const struct pool_facts *pool,
				 struct slot_state *s, uint64_t now,
				 uint64_t *delay)
{
	*delay = policy_backoff(s, now, e->lived, e->ready);
	s->restarts++;
	/* As systemd's StartLimitBurst: a pool that never served says so
	 * with its exit status, rather than retry every 5 s where nobody is
	 * told (a container's orchestrator restarts it, or reports it). */
	if (!pool->announced && s->fails >= START_LIMIT)
		return EXIT_GIVE_UP;
	return EXIT_RESTART;
}

enum exit_verdict policy_exit(const struct exit_facts *e,
			      const struct pool_facts *pool,
			      struct slot_state *s, uint64_t now,
			      uint64_t *delay)
{
	*delay = 0;
	if (!e->unasked || !pool->running)
		return EXIT_EXPECTED;
	if (planned(e, pool)) {
		/* No back-off, no restart counted; in a pending generation
		 * it is replaced, the reload not abandoned. */
		/* The newest generation that did: a draining or retiring
		 * one recycling in the same slot must not unprove the
		 * pending one, or its workers wait out the ready delay. */
		if (e->gen > s->proven)
			s->proven = e->gen;
		*delay = policy_pace(s, now, e->lived);
		return EXIT_PLANNED;
	}
	if (e->ran == -1 && !pool->announced)
		return EXIT_CANNOT_RUN; /* not a crash loop to wait out */
	if (e->gen == pool->pending)
		return EXIT_PENDING;
	if (!pool->announced && pool->kind->config_exit &&
	    WIFEXITED(e->status) && WEXITSTATUS(e->status) == HERD_EXIT_CONFIG)
		return EXIT_CONFIG;
	if (e->gen == pool->gen && e->slot < pool->nworkers)
		return crashed(e, pool, s, now, delay);
	return EXIT_STRAY;
}

int policy_proven(const struct slot_state *s, unsigned gen)
{
	return s->proven != 0 && s->proven >= gen;
}

enum slot_verdict policy_slot(const struct slot_state *s, uint64_t now,
			      int serving, uint64_t *until)
{
	if (serving && s->not_before > now) {
		*until = s->not_before;
		return SLOT_BACKOFF;
	}
	if (s->paced > now) {
		*until = s->paced;
		return SLOT_PACED;
	}
	return SLOT_START;
}

unsigned policy_spawn_budget(unsigned left, size_t starting, int own_pace,
			     int *held)
{
	*held = 0;
	/* A program's start is its own business, and its --ready-delay
	 * would make such a bound a crawl. */
	if (own_pace || starting + left <= STARTING_MAX)
		return left;
	*held = 1;
	return starting < STARTING_MAX ? (unsigned)(STARTING_MAX - starting)
				       : 0;
}

enum deadline_verdict policy_deadline(const struct proc *p, uint64_t now,
				      int escalates)
{
	if (p->deadline == 0 || p->state == PS_KILLED)
		return DEADLINE_NONE;
	/* A passfd program still draining at the shutdown timeout gets its
	 * stop signal, and the fast stop's time to act on it. */
	if (now >= p->deadline && p->state == PS_DRAINING && escalates)
		return DEADLINE_ESCALATE;
	return now < p->deadline ? DEADLINE_LATER : DEADLINE_KILL;
}

enum watchdog_verdict policy_watchdog(const struct proc *p, uint64_t now,
				      int aborts)
{
	if (!proc_info(p->state)->serving)
		return WATCHDOG_NONE;
	if (now < p->watchdog_at)
		return WATCHDOG_LATER;
	return aborts ? WATCHDOG_ABORT : WATCHDOG_KILL;
}

enum recycle_verdict policy_recycle(const struct proc *p,
				    const struct proc *successor,
				    size_t draining, int nworkers,
				    uint64_t taken, uint64_t max_requests,
				    unsigned long max_rss_kib)
{
	if (p->state == PS_REPLACING)
		return successor != NULL && successor->state == PS_READY
			   ? RECYCLE_TAKEN_OVER
			   : RECYCLE_NONE;
	if (p->state != PS_READY)
		return RECYCLE_NONE;
	/* At most one recycled worker draining per slot: however low the
	 * limits, they cannot pile up past the fd budget. */
	if (draining + 1 > (size_t)nworkers)
		return RECYCLE_NONE; /* looked at again on the next report */
	if (max_requests && taken >= p->request_limit)
		return RECYCLE_REQUESTS;
	if (max_rss_kib && p->rss_kib > max_rss_kib)
		return RECYCLE_RSS;
	return RECYCLE_NONE;
}

int policy_gen_ready(struct proc *const *by_slot, int n)
{
	for (int s = 0; s < n; s++)
		if (by_slot[s] == NULL || by_slot[s]->state != PS_READY)
			return 0;
	return 1;
}

int policy_retiring(const struct proc *p, const struct pool_facts *pool)
{
	return p->gen != pool->gen && p->gen != pool->pending &&
	       p->state != PS_KILLED;
}

/*
 * supervise.c: the supervision policy as a planner (supervise.h): the phases
 * of a turn, each a pure function from a view of the table to actions, and
 * the turn that runs them in order. It forks, signals and logs nothing;
 * apply.c does what the actions say.
 */
#include <stdlib.h>

#include "gens.h"
#include "internal.h"
#include "supervise.h"

typedef void (*phase_fn)(const struct view *v, struct plan *pl);

static void push(struct plan *pl, struct action a)
{
	if (pl->full)
		return;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 64;
		struct action *v = realloc(pl->v, cap * sizeof(*v));

		if (v == NULL) { /* the rest next turn, at once */
			pl->full = 1;
			pl->wake = 0;
			return;
		}
		pl->v = v;
		pl->cap = cap;
	}
	pl->v[pl->n++] = a;
}

static void act(struct plan *pl, enum action_kind k, struct proc *p, int why)
{
	push(pl, (struct action){.kind = k, .p = p, .why = why});
}

static void wake_at(struct plan *pl, uint64_t t)
{
	pl->wake = earlier(pl->wake, t);
}

/* A reload not ready within its time is abandoned. */
static void plan_pending(const struct view *v, struct plan *pl)
{
	if (v->pool.pending == 0)
		return;
	if (v->now - v->pending_since >= v->pending_ms)
		push(pl, (struct action){.kind = ACT_ABANDON,
					 .gen = v->pool.pending,
					 .say = "was not ready in time"});
	else
		wake_at(pl, v->pending_since + v->pending_ms);
}

/* systemd's WatchdogSec for each worker. */
static void plan_watchdog(const struct view *v, struct plan *pl)
{
	if (v->watchdog_ms == 0)
		return;
	for (size_t i = 0; i < v->procs->n; i++) {
		struct proc *p = v->procs->v[i];
		enum watchdog_verdict w =
		    policy_watchdog(p, v->now, v->pool.kind->watchdog_abort);

		if (w == WATCHDOG_LATER)
			wake_at(pl, p->watchdog_at);
		else if (w != WATCHDOG_NONE)
			act(pl, ACT_WATCHDOG, p, w);
	}
}

static void plan_sample(const struct view *v, struct plan *pl)
{
	(void)v;
	act(pl, ACT_SAMPLE_RSS, NULL, 0);
}

/* --max-requests, --max-rss: a worker of the serving generation past a
 * limit is REPLACING; its slot then counts as empty, so plan_fill() starts
 * a successor, and it drains once that one is ready. */
static void plan_recycle(const struct view *v, struct plan *pl)
{
	const struct proctab *t = v->procs;
	size_t draining = 0;

	if (!v->max_requests && !v->max_rss_kib)
		return;
	for (size_t i = 0; i < t->n; i++)
		draining += t->v[i]->gen == v->pool.gen &&
			    proc_info(t->v[i]->state)->draining;
	for (size_t i = 0; i < t->n; i++) {
		struct proc *p = t->v[i];
		uint64_t taken =
		    v->pool.kind->master_counts ? p->assigned : p->total;
		enum recycle_verdict r;

		if (p->gen != v->pool.gen)
			continue;
		r = policy_recycle(p,
				   p->state == PS_REPLACING
				       ? proc_in_slot(t, v->pool.gen, p->slot)
				       : NULL,
				   draining, v->pool.nworkers, taken,
				   v->max_requests, v->max_rss_kib);
		if (r == RECYCLE_NONE)
			continue;
		draining += r == RECYCLE_REQUESTS || r == RECYCLE_RSS;
		push(pl, (struct action){.kind = r == RECYCLE_TAKEN_OVER
						     ? ACT_TAKE_OVER
						     : ACT_LIMIT,
					 .p = p,
					 .why = r,
					 .arg = taken});
	}
}

/* More than MAX_DRAINING_GENS generations retiring: the one gens_victim()
 * picks is killed. The turn runs this phase until it has nothing to do,
 * one generation each time. */
static void plan_bound(const struct view *v, struct plan *pl)
{
	struct gens gens;
	unsigned g;

	gens_take(&gens, v->procs, &v->pool);
	if (gens.retiring <= MAX_DRAINING_GENS)
		return;
	g = gens_victim(&gens);
	push(pl, (struct action){.kind = ACT_BOUND, .gen = g});
	for (size_t i = 0; i < v->procs->n; i++) {
		struct proc *p = v->procs->v[i];

		if (p->gen == g && policy_retiring(p, &v->pool))
			act(pl, ACT_KILL, p, KILL_BOUND);
	}
}

static void plan_steer(const struct view *v, struct plan *pl)
{
	(void)v;
	act(pl, ACT_STEER, NULL, 0);
}

/* A rolling reload (--reload-batch): the pending generation has taken
 * slot s over, or is taking it, so the serving one leaves it empty. */
static int rolled(const struct view *v, unsigned gen, struct proc **pending,
		  int s)
{
	return v->reload_batch > 0 && gen == v->pool.gen && pending[s] != NULL;
}

/* Starts what generation gen lacks in its slots, as the budget allows,
 * and drains its workers above the pool's size. */
static void fill_gen(const struct view *v, struct plan *pl, unsigned gen,
		     unsigned *budget, int held)
{
	struct proc *by_slot[MAX_WORKERS], *pending[MAX_WORKERS];
	int n = v->pool.nworkers;

	if (gen == 0)
		return;
	proc_slots(v->procs, gen, by_slot, n);
	if (v->reload_batch > 0) /* rolled() reads it only then */
		proc_slots(v->procs, v->pool.pending, pending, n);
	for (int s = 0; s < n; s++) {
		uint64_t until;

		if (by_slot[s] != NULL || rolled(v, gen, pending, s))
			continue;
		if (policy_slot(&v->slots[s], v->now, gen == v->pool.gen,
				&until) != SLOT_START) {
			wake_at(pl, until);
			continue;
		}
		if (*budget == 0) {
			/* The rest on the next turn; or, held back by workers
			 * still starting, when one is ready (or dies). */
			if (!held)
				wake_at(pl, v->now);
			break;
		}
		(*budget)--;
		push(pl,
		     (struct action){.kind = ACT_SPAWN, .slot = s, .gen = gen});
	}
	for (size_t i = 0; i < v->procs->n; i++) {
		struct proc *p = v->procs->v[i];

		if (p->gen == gen && proc_info(p->state)->live && p->slot >= n)
			act(pl, ACT_QUIT, p, 0);
	}
}

/* Processes that will exist once this plan is applied: the table (every
 * process until it is reaped, draining ones too) and the starts planned. */
static size_t processes(const struct view *v, const struct plan *pl)
{
	size_t n = v->procs->n;

	for (size_t i = 0; i < pl->n; i++)
		n += pl->v[i].kind == ACT_SPAWN;
	return n;
}

/* The serving generation's slots first, then the pending one's, from one
 * budget: SPAWN_BATCH a pass of the loop, and fewer while in-process
 * workers are still starting (policy_spawn_budget). A rolling reload
 * starts new workers only while the processes stay within the pool's size
 * plus the batch: a slot's old worker has to be gone, not only draining,
 * before the next one starts. An exit is a turn, so nothing waits on a
 * clock here. */
static void plan_fill(const struct view *v, struct plan *pl)
{
	size_t starting = 0, cap = (size_t)v->pool.nworkers + v->reload_batch;
	unsigned budget;
	int held = 0;

	for (size_t i = 0; i < v->procs->n; i++)
		starting += v->procs->v[i]->state == PS_STARTING;
	budget = policy_spawn_budget(v->spawn_budget, starting,
				     v->pool.kind->own_pace, &held);
	fill_gen(v, pl, v->pool.gen, &budget, held);
	if (v->reload_batch > 0 && v->pool.pending != 0) {
		size_t now = processes(v, pl);

		if (now >= cap)
			return;
		if (cap - now < budget) {
			budget = (unsigned)(cap - now);
			held = 1; /* the rest when an old worker exits */
		}
	}
	fill_gen(v, pl, v->pool.pending, &budget, held);
}

static void plan_mesh(const struct view *v, struct plan *pl)
{
	(void)v;
	act(pl, ACT_MESH, NULL, 0);
}

/* Programs that speak neither sd_notify nor the channel's READY are ready
 * after the ready delay, or at once where the slot is proven
 * (policy_proven), once their exec is seen (apply.c). */
static void plan_ready(const struct view *v, struct plan *pl)
{
	if (v->pool.kind->sends_ready || v->notify)
		return;
	for (size_t i = 0; i < v->procs->n; i++) {
		struct proc *p = v->procs->v[i];
		uint64_t at = p->started + v->ready_delay_ms;

		if (p->state != PS_STARTING)
			continue;
		if (policy_proven(&v->slots[p->slot], p->gen))
			at = p->started;
		if (v->now < at)
			wake_at(pl, at);
		else
			act(pl, ACT_READY, p, 0);
	}
}

static int gen_ready(const struct view *v, unsigned gen)
{
	struct proc *by_slot[MAX_WORKERS];

	proc_slots(v->procs, gen, by_slot, v->pool.nworkers);
	return policy_gen_ready(by_slot, v->pool.nworkers);
}

/* A rolling reload: each slot whose new worker is ready has its old one
 * drain now, not when the whole generation is ready. */
static void plan_roll(const struct view *v, struct plan *pl)
{
	struct proc *old[MAX_WORKERS], *new[MAX_WORKERS];
	int n = v->pool.nworkers;

	if (v->reload_batch == 0 || v->pool.pending == 0)
		return;
	proc_slots(v->procs, v->pool.gen, old, n);
	proc_slots(v->procs, v->pool.pending, new, n);
	for (int s = 0; s < n; s++)
		if (new[s] != NULL &&new[s]->state == PS_READY &&
		    old[s] != NULL)
			act(pl, ACT_QUIT, old[s], 0);
}

static void plan_promote(const struct view *v, struct plan *pl)
{
	if (v->pool.pending != 0 && gen_ready(v, v->pool.pending))
		push(pl, (struct action){.kind = ACT_PROMOTE,
					 .gen = v->pool.pending});
}

static int planned(const struct plan *pl, const struct proc *p)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->v[i].p == p)
			return 1;
	return 0;
}

/* Generations that no longer serve drain oldest first, at most
 * RETIRE_BATCH workers at a time. All at once, a reload's N old workers
 * exited together: with 512 on two CPUs the master waited a third of a
 * second for one, and nothing is gained, since every slot is served by the
 * new generation already. The rest serve meanwhile. */
static void plan_retire(const struct view *v, struct plan *pl)
{
	const struct proctab *t = v->procs;
	size_t draining = 0, i;
	struct gens gens;

	gens_take(&gens, t, &v->pool);
	for (i = 0; i < gens.n; i++)
		if (gens.v[i].role == GEN_RETIRING)
			draining += gens.v[i].draining;
	for (; draining < RETIRE_BATCH; draining++) {
		struct proc *oldest = NULL;

		for (i = 0; i < t->n; i++) {
			struct proc *p = t->v[i];

			if (policy_retiring(p, &v->pool) &&
			    proc_info(p->state)->live &&
			    (oldest == NULL || p->gen < oldest->gen) &&
			    !planned(pl, p))
				oldest = p;
		}
		if (oldest == NULL)
			return;
		act(pl, ACT_QUIT, oldest, 0);
	}
}

static void plan_announce(const struct view *v, struct plan *pl)
{
	if (!v->pool.announced && gen_ready(v, v->pool.gen))
		act(pl, ACT_ANNOUNCE, NULL, 0);
}

static void plan_warn(const struct view *v, struct plan *pl)
{
	if (!v->pool.announced)
		act(pl, ACT_WARN_UNREADY, NULL, 0);
}

static void plan_retire_sockets(const struct view *v, struct plan *pl)
{
	(void)v;
	act(pl, ACT_RETIRE_SOCKETS, NULL, 0);
}

/* Past its deadline a worker is killed; a draining program first gets its
 * stop signal, and a new deadline (apply.c says when). */
static void plan_deadlines(const struct view *v, struct plan *pl)
{
	for (size_t i = 0; i < v->procs->n; i++) {
		struct proc *p = v->procs->v[i];

		switch (
		    policy_deadline(p, v->now, v->pool.kind->drain_escalates)) {
		case DEADLINE_NONE:
			break;
		case DEADLINE_LATER:
			wake_at(pl, p->deadline);
			break;
		case DEADLINE_ESCALATE:
			act(pl, ACT_ESCALATE, p, 0);
			break;
		case DEADLINE_KILL:
			act(pl, ACT_KILL, p, KILL_DEADLINE);
			break;
		}
	}
}

/* A turn, in order. The order is policy too:
 * - the pending generation's time and the watchdog first, so nothing is
 *   started for a reload about to be abandoned or kept for a stuck worker;
 * - the bound on retiring generations before any start, so it holds at
 *   every instant, and again after a promotion adds one;
 * - steering before the fill, which may drain a slot above the pool's
 *   size: that worker takes what is queued on its socket, and nothing
 *   more may be steered there after;
 * - readiness, then a rolling reload's slot by slot hand-over, then
 *   promotion, then retiring the old generation, then the first
 *   announcement. */
static const phase_fn running[] = {
    plan_pending, plan_watchdog,       plan_sample, plan_recycle,  plan_bound,
    plan_steer,	  plan_fill,	       plan_mesh,   plan_ready,	   plan_roll,
    plan_promote, plan_bound,	       plan_retire, plan_announce, plan_warn,
    plan_steer,	  plan_retire_sockets,
};

/* Plans one phase from a fresh look, and applies it; plan_bound again
 * until it has nothing to do (one generation each time). */
static uint64_t run_phase(struct supervisor *s, phase_fn phase)
{
	struct plan *pl = &s->plan;
	uint64_t wake = UINT64_MAX;
	struct view v;

	for (int round = 0; round < 2 * GENS_ALIVE; round++) {
		s->look(s->ctx, &v);
		pl->n = 0;
		pl->full = 0;
		pl->wake = UINT64_MAX;
		phase(&v, pl);
		if (pl->n > 0)
			wake = earlier(wake, s->apply(s->ctx, pl));
		wake = earlier(wake, pl->wake);
		if (phase != plan_bound || pl->n == 0 || pl->full)
			break;
	}
	return wake;
}

uint64_t supervise_turn(struct supervisor *s)
{
	uint64_t wake = UINT64_MAX;
	struct view v;

	s->look(s->ctx, &v);
	if (!v.pool.running) /* stopping: deadlines alone */
		return wake;
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
		wake = earlier(wake, run_phase(s, running[i]));
		if (s->plan.full) /* out of memory: the rest at once */
			break;
	}
	return wake;
}

uint64_t supervise_deadlines(struct supervisor *s)
{
	return run_phase(s, plan_deadlines);
}

void plan_free(struct plan *pl)
{
	free(pl->v);
	*pl = (struct plan){0};
}

const char *action_name(enum action_kind k)
{
	static const char *const names[ACT_NKINDS] = {
	    [ACT_ABANDON] = "abandon",
	    [ACT_WATCHDOG] = "watchdog",
	    [ACT_SAMPLE_RSS] = "sample-rss",
	    [ACT_TAKE_OVER] = "take-over",
	    [ACT_LIMIT] = "limit",
	    [ACT_BOUND] = "bound",
	    [ACT_KILL] = "kill",
	    [ACT_STEER] = "steer",
	    [ACT_SPAWN] = "spawn",
	    [ACT_QUIT] = "quit",
	    [ACT_MESH] = "mesh",
	    [ACT_READY] = "ready",
	    [ACT_PROMOTE] = "promote",
	    [ACT_ANNOUNCE] = "announce",
	    [ACT_WARN_UNREADY] = "warn-unready",
	    [ACT_RETIRE_SOCKETS] = "retire-sockets",
	    [ACT_ESCALATE] = "escalate",
	};

	return k < ACT_NKINDS && names[k] ? names[k] : "?";
}

/* test_supervise.c: whole turns of the supervision planner (src/supervise.c)
 * against a fake table, a fake clock and a fake apply that records each
 * action and moves the fake workers as the master would: start-up in
 * budgets, a reload's promotion and retirement in batches, abandonment,
 * the bound on retiring generations, scaling, recycling, the watchdog,
 * deadlines, readiness by delay, and the order of actions within a turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kind.h"
#include "supervise.h"
#include "tap.h"

#define SHUTDOWN_MS 1000

struct fake {
	struct proctab t;
	struct slot_state slots[MAX_WORKERS];
	struct pool_facts pool;
	uint64_t now, pending_since, pending_ms, ready_delay_ms, watchdog_ms;
	uint64_t max_requests;
	unsigned long max_rss_kib;
	int notify;
	int reload_batch;
	unsigned budget;
	pid_t next_pid;
	int fail_spawns; /* spawns fail (fork refused) */
	int all;	 /* log the actions of every turn, not only decisions */
	char log[4096];
};

static void look(void *ctx, struct view *v)
{
	struct fake *f = ctx;

	*v = (struct view){.procs = &f->t,
			   .slots = f->slots,
			   .pool = f->pool,
			   .now = f->now,
			   .pending_since = f->pending_since,
			   .pending_ms = f->pending_ms,
			   .ready_delay_ms = f->ready_delay_ms,
			   .notify = f->notify,
			   .watchdog_ms = f->watchdog_ms,
			   .max_requests = f->max_requests,
			   .max_rss_kib = f->max_rss_kib,
			   .spawn_budget = f->budget,
			   .reload_batch = f->reload_batch};
}

static void record(struct fake *f, const struct action *a)
{
	const char *name = action_name(a->kind);
	size_t n = strlen(f->log);
	char one[48];

	if (a->kind == ACT_SPAWN)
		snprintf(one, sizeof(one), "spawn %d:%u", a->slot, a->gen);
	else if (a->p != NULL)
		snprintf(one, sizeof(one), "%s %d", name, (int)a->p->pid);
	else if (a->gen != 0)
		snprintf(one, sizeof(one), "%s %u", name, a->gen);
	else
		snprintf(one, sizeof(one), "%s", name);
	snprintf(f->log + n, sizeof(f->log) - n, "%s%s", n ? " " : "", one);
}

static int routine(enum action_kind k)
{
	return k == ACT_SAMPLE_RSS || k == ACT_STEER || k == ACT_MESH ||
	       k == ACT_WARN_UNREADY || k == ACT_RETIRE_SOCKETS;
}

static void spawn(struct fake *f, const struct action *a)
{
	struct proc *p;

	f->budget -= f->budget > 0;
	if (f->fail_spawns) {
		if (a->gen == f->pool.pending)
			f->pool.pending = 0;
		return;
	}
	p = proc_add(&f->t);
	if (p == NULL)
		abort();
	p->pid = f->next_pid++;
	p->slot = a->slot;
	p->gen = a->gen;
	p->started = f->now;
	p->request_limit = f->max_requests;
}

static void apply_one(struct fake *f, const struct action *a)
{
	struct proc *p = a->p;

	switch (a->kind) {
	case ACT_SPAWN:
		spawn(f, a);
		break;
	case ACT_QUIT:
	case ACT_TAKE_OVER:
		proc_fire(p, PE_QUIT);
		p->deadline = f->now + SHUTDOWN_MS;
		break;
	case ACT_KILL:
		proc_fire(p, PE_KILL);
		break;
	case ACT_WATCHDOG: /* as apply.c: a failure backs its slot off */
		proc_fire(p, a->why == WATCHDOG_KILL ? PE_KILL : PE_WATCHDOG);
		p->deadline = f->now + 3000;
		policy_backoff(&f->slots[p->slot], f->now, f->now - p->started,
			       0);
		break;
	case ACT_LIMIT:
		proc_fire(p, PE_LIMIT);
		break;
	case ACT_READY:
		proc_fire(p, PE_READY);
		break;
	case ACT_ESCALATE:
		proc_fire(p, PE_ESCALATE);
		p->deadline = f->now + 3000;
		break;
	case ACT_PROMOTE:
		f->pool.gen = f->pool.pending;
		f->pool.pending = 0;
		break;
	case ACT_ABANDON:
		for (size_t i = 0; i < f->t.n; i++)
			if (f->t.v[i]->gen == f->pool.pending)
				proc_fire(f->t.v[i], PE_TERMINATE);
		f->pool.pending = 0;
		break;
	case ACT_ANNOUNCE:
		f->pool.announced = 1;
		break;
	default:
		break;
	}
}

static uint64_t apply(void *ctx, const struct plan *pl)
{
	struct fake *f = ctx;

	for (size_t i = 0; i < pl->n; i++) {
		const struct action *a = &pl->v[i];

		if (f->all || !routine(a->kind))
			record(f, a);
		apply_one(f, a);
	}
	return UINT64_MAX;
}

static struct supervisor sup = {look, apply, NULL, {0}};

/* One turn; the log of what it did. */
static const char *turn(struct fake *f, uint64_t *wake)
{
	uint64_t w;

	f->log[0] = '\0';
	sup.ctx = f;
	w = supervise_turn(&sup);
	w = earlier(w, supervise_deadlines(&sup));
	if (wake != NULL)
		*wake = w;
	return f->log;
}

static void fake_init(struct fake *f, int nworkers, int program)
{
	for (size_t i = f->t.n; i > 0; i--)
		proc_remove(&f->t, f->t.v[i - 1]);
	proctab_free(&f->t);
	memset(f, 0, sizeof(*f));
	f->pool = (struct pool_facts){
	    1, 0, program ? &kind_program : &kind_inproc, nworkers, 1, 0};
	f->now = 1000;
	f->pending_ms = 30000;
	f->ready_delay_ms = 1000;
	f->budget = SPAWN_BATCH;
	f->next_pid = 100;
}

/* A worker already there. */
static struct proc *add(struct fake *f, int slot, unsigned gen,
			enum proc_state st)
{
	struct proc *p = proc_add(&f->t);

	if (p == NULL)
		abort();
	p->pid = f->next_pid++;
	p->slot = slot;
	p->gen = gen;
	p->state = st;
	p->started = f->now;
	p->served = gen == f->pool.gen;
	return p;
}

static void serving_pool(struct fake *f, int n, int program)
{
	fake_init(f, n, program);
	for (int s = 0; s < n; s++)
		add(f, s, 1, PS_READY);
	f->pool.announced = 1;
}

static void ready_all(struct fake *f, unsigned gen)
{
	for (size_t i = 0; i < f->t.n; i++)
		if (f->t.v[i]->gen == gen && f->t.v[i]->state == PS_STARTING)
			proc_fire(f->t.v[i], PE_READY);
}

static size_t count(const struct fake *f, unsigned gen, enum proc_state st)
{
	size_t n = 0;

	for (size_t i = 0; i < f->t.n; i++)
		n += f->t.v[i]->gen == gen && f->t.v[i]->state == st;
	return n;
}

static size_t words(const char *log, const char *word)
{
	size_t n = 0, len = strlen(word);

	for (const char *at = log; (at = strstr(at, word)) != NULL; at += len)
		n++;
	return n;
}

static void new_pass(struct fake *f)
{
	f->budget = SPAWN_BATCH;
}

static struct fake F;

static void start_up(void)
{
	struct fake *f = &F;
	uint64_t wake;

	fake_init(f, 6, 0);
	is_str(turn(f, &wake), "spawn 0:1 spawn 1:1",
	       "start-up: SPAWN_BATCH (%d) in-process workers a pass",
	       SPAWN_BATCH);
	ok(wake == f->now, "and a wake at once for the rest");
	is_str(turn(f, &wake), "", "the same pass, budget spent: nothing");
	new_pass(f);
	is_str(turn(f, NULL), "spawn 2:1 spawn 3:1", "the next pass: two more");
	new_pass(f);
	is_str(turn(f, &wake), "",
	       "STARTING_MAX (%d) still starting: the budget is held",
	       STARTING_MAX);
	ok(wake == UINT64_MAX, "and no wake: a READY (or an exit) brings "
			       "the next turn");
	ready_all(f, 1);
	is_str(turn(f, NULL), "spawn 4:1 spawn 5:1",
	       "once they are ready, the rest");
	ready_all(f, 1);
	is_str(turn(f, NULL), "announce", "every slot ready: announced once");
	is_str(turn(f, NULL), "", "and not again");
}

static void ready_delay(void)
{
	struct fake *f = &F;
	uint64_t wake;

	fake_init(f, 2, 1);
	is_str(turn(f, &wake), "spawn 0:1 spawn 1:1", "programs start");
	ok(wake == 1000 + f->ready_delay_ms,
	   "the next look is when their ready delay ends (%llu)",
	   (unsigned long long)wake);
	f->now += f->ready_delay_ms - 1;
	is_str(turn(f, NULL), "", "not ready before the delay");
	f->now++;
	is_str(turn(f, NULL), "ready 100 ready 101 announce",
	       "ready after it, and announced in the same turn");

	fake_init(f, 2, 1);
	f->slots[1].proven = 1;
	is_str(turn(f, NULL), "spawn 0:1 spawn 1:1 ready 101",
	       "a proven slot's program is ready once it runs");
	fake_init(f, 2, 1);
	f->notify = 1;
	f->now += 5000;
	turn(f, NULL);
	f->now += 5000;
	is_str(turn(f, NULL), "", "--notify: never ready by delay");
}

static void reload(void)
{
	struct fake *f = &F;
	uint64_t wake;

	serving_pool(f, 2, 0);
	f->pool.pending = 2;
	f->pending_since = f->now;
	is_str(turn(f, &wake), "spawn 0:2 spawn 1:2",
	       "a reload starts the new generation");
	ok(wake == f->now + f->pending_ms || wake == f->now,
	   "and looks again by its time limit");
	ready_all(f, 2);
	is_str(turn(f, NULL), "promote 2 quit 100 quit 101",
	       "ready: promoted, then the old generation drains, one turn");
	ok(count(f, 1, PS_DRAINING) == 2 && count(f, 2, PS_READY) == 2,
	   "two draining, two serving");

	serving_pool(f, 2, 0);
	f->pool.pending = 2;
	f->pending_since = f->now;
	turn(f, NULL);
	f->now += f->pending_ms;
	is_str(turn(f, NULL), "abandon 2",
	       "not ready in time: abandoned, nothing more started for it");
	ok(f->pool.gen == 1 && count(f, 2, PS_STOPPING) == 2,
	   "generation 1 serves; the new workers stop");
	is_str(turn(f, NULL), "", "and nothing is retired");
}

/* Removes the fake worker with this pid: its exit was reaped. */
static void gone(struct fake *f, pid_t pid)
{
	for (size_t i = 0; i < f->t.n; i++)
		if (f->t.v[i]->pid == pid) {
			proc_remove(&f->t, f->t.v[i]);
			return;
		}
	abort();
}

/* --reload-batch 1 on 3 workers: never more than 4 processes; each
 * slot's old worker drains once its successor is ready, and the next
 * starts once it has exited. */
static void rolling(void)
{
	struct fake *f = &F;
	uint64_t wake;

	serving_pool(f, 3, 0); /* pids 100..102 */
	f->reload_batch = 1;
	f->pool.pending = 2;
	f->pending_since = f->now;
	is_str(turn(f, &wake), "spawn 0:2",
	       "rolling: one new worker, for slot 0");
	ok(wake == f->pending_since + f->pending_ms,
	   "no wake before its time limit: an exit or a ready is a turn");
	is_str(turn(f, NULL), "", "4 processes: nothing more while it starts");
	ready_all(f, 2);
	is_str(turn(f, NULL), "quit 100",
	       "slot 0's successor ready: its old worker drains");
	new_pass(f);
	is_str(turn(f, NULL), "",
	       "no start while the old one drains: still 4 processes");
	gone(f, 100);
	is_str(turn(f, NULL), "spawn 1:2",
	       "it exits: slot 1's successor starts, slot 0 is not refilled");
	ready_all(f, 2);
	is_str(turn(f, NULL), "quit 101", "ready: slot 1's old one drains");
	gone(f, 101);
	new_pass(f);
	is_str(turn(f, NULL), "spawn 2:2", "then slot 2");
	ready_all(f, 2);
	is_str(turn(f, NULL), "quit 102 promote 2",
	       "the last ready: its old one drains, and generation 2 serves");
	ok(f->t.n == 4 && count(f, 2, PS_READY) == 3,
	   "three new serving, one old draining");

	serving_pool(f, 3, 0);
	f->reload_batch = 2;
	f->pool.pending = 2;
	f->pending_since = f->now;
	is_str(turn(f, NULL), "spawn 0:2 spawn 1:2", "--reload-batch 2: two");
	f->t.v[3]->state = PS_READY; /* slot 0's successor */
	gone(f, 101);		     /* slot 1's old worker crashes */
	new_pass(f);
	is_str(turn(f, NULL), "spawn 2:2 quit 100",
	       "a crash in a slot taken over: not refilled with the old; "
	       "4 processes, so slot 2's successor starts");
	for (pid_t pid = 103; pid <= 105; pid++) /* abandoned, and reaped */
		gone(f, pid);
	f->pool.pending = 0;
	new_pass(f);
	is_str(turn(f, NULL), "spawn 0:1 spawn 1:1",
	       "abandoned: the old generation refills the slots it left");
}

static void retire_batch(void)
{
	struct fake *f = &F;
	const char *log;

	serving_pool(f, 40, 0);
	for (int s = 0; s < 40; s++)
		add(f, s, 2, PS_READY);
	f->pool.pending = 2;
	f->pending_since = f->now;
	log = turn(f, NULL);
	ok(strncmp(log, "promote 2 ", 10) == 0 &&
	       words(log, "quit") == RETIRE_BATCH,
	   "40 old workers: promote, then RETIRE_BATCH (%d) drain",
	   RETIRE_BATCH);
	ok(strstr(log, "quit 100 ") == log + 10, "oldest first, from slot 0");
	is_str(turn(f, NULL), "", "no more while they drain");
	proc_remove(&f->t, f->t.v[0]);
	is_str(turn(f, NULL), "quit 116", "one exits: one more is told");
}

static void bound(void)
{
	struct fake *f = &F;
	struct proc *p;

	fake_init(f, 2, 0);
	f->pool.gen = 4;
	f->pool.announced = 1;
	for (unsigned g = 1; g <= 3; g++)
		add(f, 0, g, PS_DRAINING)->served = g != 2;
	p = add(f, 0, 4, PS_READY);
	is_str(turn(f, NULL), "bound 2 kill 101 spawn 1:4",
	       "three generations retiring: the one that never served is "
	       "killed, before anything starts");
	ok(p->state == PS_READY && count(f, 1, PS_DRAINING) == 1,
	   "the others drain on");
	f->t.v[1]->served = 1;
	add(f, 1, 5, PS_DRAINING)->served = 1;
	is_str(turn(f, NULL), "bound 1 kill 100",
	       "all served: the oldest goes");
}

static void scaling(void)
{
	struct fake *f = &F;
	const char *log;

	serving_pool(f, 4, 0);
	f->pool.nworkers = 2;
	f->all = 1;
	log = turn(f, NULL);
	ok(strstr(log, "quit 102 quit 103") != NULL,
	   "scaled down to 2: the workers above drain (%s)", log);
	ok(strstr(log, "steer") != NULL &&
	       strstr(log, "steer") < strstr(log, "quit 102"),
	   "steering first: nothing more reaches their sockets");
	f->all = 0;
	f->pool.nworkers = 4;
	is_str(turn(f, NULL), "spawn 2:1 spawn 3:1",
	       "scaled up to 4: two start");
}

static void recycling(void)
{
	struct fake *f = &F;
	struct proc *p;

	serving_pool(f, 2, 0);
	f->max_requests = 10;
	f->t.v[0]->request_limit = 10;
	f->t.v[1]->request_limit = 10;
	f->t.v[0]->total = 10;
	is_str(turn(f, NULL), "limit 100 spawn 0:1",
	       "past --max-requests: replaced, its successor starts in "
	       "the same turn");
	is_str(turn(f, NULL), "", "it serves until the successor is ready");
	p = proc_in_slot(&f->t, 1, 0);
	proc_fire(p, PE_READY);
	is_str(turn(f, NULL), "take-over 100", "then it drains");
	f->t.v[1]->total = 10;
	f->pool.nworkers = 1;
	ok(strstr(turn(f, NULL), "limit") == NULL,
	   "no more recycled workers draining than slots");
}

static void watchdog(void)
{
	struct fake *f = &F;
	uint64_t wake;

	serving_pool(f, 1, 0);
	f->watchdog_ms = 1000;
	f->t.v[0]->watchdog_at = f->now + 500;
	is_str(turn(f, &wake), "", "heard from in time");
	ok(wake == f->now + 500, "looked at again then");
	f->now += 500;
	f->t.v[0]->started = 0;
	is_str(turn(f, NULL), "watchdog 100 spawn 0:1",
	       "an in-process worker's silence: killed, and replaced");
	ok(f->t.v[0]->state == PS_KILLED, "SIGKILL for a stuck loop");

	serving_pool(f, 1, 1);
	f->watchdog_ms = 1000;
	f->now += 2000;
	f->slots[0].fails = 3;
	is_str(turn(f, &wake), "watchdog 100",
	       "a program missed it, its slot's fourth quick failure: no "
	       "replacement yet");
	ok(f->t.v[0]->state == PS_STOPPING && wake == f->slots[0].not_before,
	   "SIGABRT; the replacement waits for the back-off");
}

static void deadlines(void)
{
	struct fake *f = &F;
	struct proc *a, *b, *c;

	serving_pool(f, 1, 1);
	a = add(f, 0, 0, PS_DRAINING);
	b = add(f, 0, 0, PS_STOPPING);
	c = add(f, 0, 0, PS_SIGNALLED);
	a->deadline = b->deadline = c->deadline = f->now;
	is_str(turn(f, NULL), "escalate 101 kill 102 kill 103",
	       "past the deadline: a draining program gets its stop signal, "
	       "the rest SIGKILL");
	ok(a->state == PS_SIGNALLED && a->deadline > f->now,
	   "with a new deadline");
	f->pool.running = 0;
	f->pool.nworkers = 3;
	f->now = a->deadline;
	is_str(turn(f, NULL), "kill 101",
	       "herd stopping: no start, deadlines still kill");
}

static void held_slots(void)
{
	struct fake *f = &F;
	uint64_t wake;

	fake_init(f, 2, 1);
	f->slots[0].not_before = f->now + 400;
	f->slots[1].paced = f->now + 50;
	is_str(turn(f, &wake), "", "a slot backing off, a slot paced");
	ok(wake == f->now + 50, "looked at again when the first is free");
	f->pool.pending = 2;
	f->pool.announced = 1;
	f->pending_since = f->now;
	f->now += 50;
	is_str(turn(f, NULL), "spawn 1:1 spawn 0:2",
	       "the back-off holds the serving generation, not a new one");
}

static void order(void)
{
	struct fake *f = &F;

	serving_pool(f, 2, 0);
	f->all = 1;
	is_str(turn(f, NULL), "sample-rss steer mesh steer retire-sockets",
	       "a quiet turn, in order");
	f->pool.announced = 0;
	is_str(turn(f, NULL),
	       "sample-rss steer mesh announce steer retire-sockets",
	       "announced after readiness, before steering again");
	f->all = 0;
}

int main(void)
{
	start_up();
	ready_delay();
	reload();
	rolling();
	retire_batch();
	bound();
	scaling();
	recycling();
	watchdog();
	deadlines();
	held_slots();
	order();
	fake_init(&F, 0, 0);
	plan_free(&sup.plan);
	return done_testing();
}

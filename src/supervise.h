/*
 * supervise.h: the supervision policy as a planner. Each turn of the master
 * runs a fixed sequence of phases; a phase looks at the process table as it
 * is (a view: the table, the slots, the targets, the clock) and returns the
 * actions it decides, which a separate step applies (apply.c) before the
 * next phase looks. The planner never forks, signals or writes a socket, so
 * a unit test drives whole turns with a fake table, a fake clock and a fake
 * apply (tests/unit/test_supervise.c).
 *
 * Why phases and not one plan for the whole turn: later decisions depend on
 * earlier ones (a promotion changes which generation retires; a worker told
 * to drain counts against the retire batch), and some outcomes are known
 * only once applied (a spawn that fails, an exec not yet seen). One plan
 * would have to model its own actions' effects, a second copy of the
 * transition table and of the I/O; planning each phase from the table the
 * previous one left keeps one model, every decision pure, and the turn's
 * order in one array the test runs.
 */
#ifndef HERD_SUPERVISE_H
#define HERD_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "proc.h"

enum action_kind {
	ACT_ABANDON,	    /* the pending generation: why */
	ACT_WATCHDOG,	    /* p missed its watchdog (why: the verdict) */
	ACT_SAMPLE_RSS,	    /* read the workers' RSS, for --max-rss */
	ACT_TAKE_OVER,	    /* p's successor is ready: p drains */
	ACT_LIMIT,	    /* p past a recycling limit (why: the verdict) */
	ACT_BOUND,	    /* too many generations retiring: gen is killed */
	ACT_KILL,	    /* SIGKILL p (why: KILL_BOUND or KILL_DEADLINE) */
	ACT_STEER,	    /* reuseport: which slot sockets take connections */
	ACT_SPAWN,	    /* start a worker of gen in slot */
	ACT_QUIT,	    /* p drains: its generation retires, or its slot
			       is above the pool's size */
	ACT_MESH,	    /* peers learn of new workers, and of the gone */
	ACT_READY,	    /* p's ready delay is over: ready once it ran */
	ACT_PROMOTE,	    /* the pending generation gen serves */
	ACT_ANNOUNCE,	    /* the pool is ready for the first time */
	ACT_WARN_UNREADY,   /* start-up: say what the pool waits for */
	ACT_RETIRE_SOCKETS, /* reuseport: close the sockets of gone slots */
	ACT_ESCALATE,	    /* a draining program past its deadline: its
			       stop signal */
	ACT_NKINDS
};

enum { KILL_BOUND, KILL_DEADLINE };

struct action {
	enum action_kind kind;
	struct proc *p; /* the worker it is about, or NULL */
	int slot;
	unsigned gen;
	int why;	 /* the verdict that chose it */
	const char *say; /* ACT_ABANDON: why, for the log */
	uint64_t arg;	 /* ACT_LIMIT: connections taken */
};

struct plan {
	struct action *v;
	size_t n, cap;
	uint64_t wake; /* look again then (UINT64_MAX: no need) */
	int full;      /* out of memory: the rest waits for the next turn */
};

/* What a phase looks at. */
struct view {
	const struct proctab *procs;
	const struct slot_state *slots;
	struct pool_facts pool;
	uint64_t now;
	uint64_t pending_since, pending_ms;
	uint64_t ready_delay_ms; /* programs without --notify: ready after */
	int notify;
	uint64_t watchdog_ms;
	uint64_t max_requests;
	unsigned long max_rss_kib;
	unsigned spawn_budget; /* starts left in this pass of the loop */
	int reload_batch;      /* --reload-batch; 0: a generation at once */
};

/* Who looks and who applies: the master (apply.c), or a test. apply
 * returns when it wants the next turn (an exec not yet seen, a spawn's
 * back-off), UINT64_MAX for never. */
struct supervisor {
	void (*look)(void *ctx, struct view *v);
	uint64_t (*apply)(void *ctx, const struct plan *pl);
	void *ctx;
	struct plan plan;
};

/* One turn while the pool runs: every phase in order, each applied before
 * the next looks. Returns when to look again. */
uint64_t supervise_turn(struct supervisor *s);
/* Deadlines, the one phase that also runs while herd stops. */
uint64_t supervise_deadlines(struct supervisor *s);
void plan_free(struct plan *pl);
const char *action_name(enum action_kind k);

#endif

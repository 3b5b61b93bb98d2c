/*
 * policy.h: the supervision policy's decisions as pure functions: plain
 * data in (a worker, a slot, the pool's facts, the time), a verdict out.
 * None reads the clock, makes a syscall or logs; the only state they
 * change is the slot passed to them. supervise.c plans with them, apply.c
 * and exit.c apply the verdicts (signals, spawns, log lines);
 * tests/unit/test_policy.c drives them with a fake clock and no processes.
 */
#ifndef HERD_POLICY_H
#define HERD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "kind.h"
#include "proc.h"

static inline uint64_t earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

#define BACKOFF_FIRST_MS  100 /* second quick death in a row */
#define BACKOFF_MAX_MS	  5000
#define HEALTHY_MS	  10000 /* alive this long: the back-off resets */
#define PLANNED_GAP_MS	  100	/* planned exits: starts in a slot this apart */
#define START_LIMIT	  8 /* quick deaths in a row before ever ready: exit 1 */
#define MAX_DRAINING_GENS 2  /* older generations are killed outright */
#define RETIRE_BATCH	  16 /* old workers draining at once: plan_retire() */
/* Workers started in one turn of the loop: a reload of 512 goes in turns
 * of this many, and signals, control clients and passfd's accepts are
 * served between them. Each start is a fork and its introduction. */
#define SPAWN_BATCH  2
#define STARTING_MAX 4 /* in-process workers starting at once */
/* Generations alive at once: serving, pending and the draining ones. */
#define GENS_ALIVE (MAX_DRAINING_GENS + 2)

struct slot_state {
	unsigned fails;	     /* quick deaths in a row */
	unsigned restarts;   /* crashes of its serving workers, ever */
	uint64_t not_before; /* back-off: no respawn before this time */
	uint64_t paced;	     /* after a planned exit: no start before this */
	unsigned proven;     /* the newest generation whose program served here,
				then ended as planned: policy_proven() */
	int *fds; /* reuseport, slots above 0: its sockets, -1 for unix */
};

/* What the policy knows of the pool. */
struct pool_facts {
	int running;		     /* not stopping */
	int announced;		     /* the pool was ready once */
	const struct kind_ops *kind; /* in-process workers or programs */
	int nworkers;		     /* the target */
	unsigned gen;		     /* the serving generation */
	unsigned pending;	     /* the one starting after a reload, or 0 */
};

/* A worker's exit, as reap() saw it. */
struct exit_facts {
	int slot;
	unsigned gen;
	int unasked; /* it was STARTING or READY: nobody asked it to go */
	int ready;   /* it was READY */
	int ran;     /* its exec: 1 confirmed, -1 failed, 0 not known */
	int status;  /* waitpid()'s */
	uint64_t lived;
};

enum exit_verdict {
	EXIT_EXPECTED,	 /* it was asked to go, or herd is stopping */
	EXIT_PLANNED,	 /* a program ended as planned: replaced after a pace */
	EXIT_CANNOT_RUN, /* never ran, and the pool never served: stop, 1 */
	EXIT_PENDING, /* a new generation's worker died: abandon the reload */
	EXIT_CONFIG,  /* an in-process start failed before ever ready */
	EXIT_RESTART, /* a crash: replaced after the slot's back-off */
	EXIT_GIVE_UP, /* START_LIMIT quick deaths before ever ready */
	EXIT_STRAY,   /* a crash outside the serving slots: not replaced */
};

/* What a worker's exit means, and the slot's back-off or pace set for its
 * successor (*delay: ms from now). */
enum exit_verdict policy_exit(const struct exit_facts *e,
			      const struct pool_facts *pool,
			      struct slot_state *s, uint64_t now,
			      uint64_t *delay);
/* A crash in a slot: its quick deaths in a row counted (reset by a
 * worker that was ready for BACKOFF_FIRST_MS, or lived HEALTHY_MS), and
 * the delay before the next start, doubling from BACKOFF_FIRST_MS at the
 * second to BACKOFF_MAX_MS. */
uint64_t policy_backoff(struct slot_state *s, uint64_t now, uint64_t lived,
			int ready);
/* A planned exit's successor starts PLANNED_GAP_MS after its predecessor
 * started, at the soonest. */
uint64_t policy_pace(struct slot_state *s, uint64_t now, uint64_t lived);

enum slot_verdict {
	SLOT_START,   /* start its worker now */
	SLOT_BACKOFF, /* not before *until: the serving slot backs off */
	SLOT_PACED,   /* not before *until: after a planned exit */
};

/* An empty slot of generation gen (serving: the serving generation; a
 * pending one ignores the back-off of the one it replaces). */
enum slot_verdict policy_slot(const struct slot_state *s, uint64_t now,
			      int serving, uint64_t *until);
/* Starts this turn may still make, from what is left of SPAWN_BATCH:
 * in-process workers only while fewer than STARTING_MAX are starting
 * (*held: the budget is what that bound leaves). */
unsigned policy_spawn_budget(unsigned left, size_t starting, int own_pace,
			     int *held);

enum deadline_verdict {
	DEADLINE_NONE,	   /* none, or KILLED already */
	DEADLINE_LATER,	   /* wait until p->deadline */
	DEADLINE_ESCALATE, /* a draining program: its stop signal now */
	DEADLINE_KILL,	   /* SIGKILL */
};

enum deadline_verdict policy_deadline(const struct proc *p, uint64_t now,
				      int escalates);

enum watchdog_verdict {
	WATCHDOG_NONE,	/* not watched (not serving) */
	WATCHDOG_LATER, /* heard from in time: look again at watchdog_at */
	WATCHDOG_KILL,	/* an in-process worker's loop is stuck: SIGKILL */
	WATCHDOG_ABORT, /* a program missed it, or asked: SIGABRT */
};

enum watchdog_verdict policy_watchdog(const struct proc *p, uint64_t now,
				      int aborts);

enum recycle_verdict {
	RECYCLE_NONE,
	RECYCLE_TAKEN_OVER, /* its successor is ready: it drains now */
	RECYCLE_REQUESTS,   /* past --max-requests: replace it */
	RECYCLE_RSS,	    /* past --max-rss: replace it */
};

/* A worker of the serving generation: taken is what it took (a program
 * in passfd mode: connections assigned; in-process: its total);
 * successor is the live worker of its slot, if any; draining the serving
 * generation's workers draining, of which a pool of nworkers keeps at
 * most nworkers. */
enum recycle_verdict policy_recycle(const struct proc *p,
				    const struct proc *successor,
				    size_t draining, int nworkers,
				    uint64_t taken, uint64_t max_requests,
				    unsigned long max_rss_kib);

/* A worker of generation gen in this slot is ready once it runs, without
 * the ready delay: its program (of gen or a newer generation) served here
 * and ended as planned. A generation whose workers live less than the
 * delay (php-cgi under load) would otherwise never be ready. */
int policy_proven(const struct slot_state *s, unsigned gen);
/* Every slot 0..n-1 has a READY worker (by_slot from proc_slots()). */
int policy_gen_ready(struct proc *const *by_slot, int n);
/* Of a generation that no longer serves (draining, stopping, or waiting
 * to be told) and not yet SIGKILLed. */
int policy_retiring(const struct proc *p, const struct pool_facts *pool);

#endif

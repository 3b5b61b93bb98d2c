/*
 * autoscale.h: the adaptive pool (-w MIN:MAX). Every AUTOSCALE_TICK_MS the
 * master samples the pool's load (meter.c) and autoscale_decide(), a pure
 * function of that sample, its own memory and the clock, says whether the
 * pool grows, shrinks by one or stays, and why. The master applies the
 * new size as `herd ctl scale` would, and the planner's phases start and
 * drain workers to match: sizing is a target, the planner its executor.
 *
 * herd cannot see inside a program, so saturation is read from outside:
 *  - connections waiting in the listeners' accept queues (TCP_INFO): every
 *    worker is busy, whatever the program;
 *  - busy workers, where herd counts connections (in-process workers and
 *    passfd): a worker holding --max-connections, or for a program in
 *    passfd mode without it, one connection (as php-cgi serves);
 *  - the workers' CPU use (/proc/PID/stat): their mean near a whole CPU.
 * The pool grows when it has been saturated for two samples running, by
 * 1, 2, 4... while that lasts, at most --spawn-rate workers a second, not
 * while its last growth is still starting or a slot is backing off, never
 * beyond the fd limit, and never while the machine itself is saturated
 * (Linux's pressure stall information, meter.c's psi_check()). It shrinks by
 * one after --idle-timeout of samples showing it underused: nothing waiting,
 * and the busy count and CPU use would fit one worker fewer.
 */
#ifndef HERD_AUTOSCALE_H
#define HERD_AUTOSCALE_H

#include <stddef.h>
#include <stdint.h>

#define AUTOSCALE_TICK_MS  250
#define IDLE_TIMEOUT_MS	   10000 /* --idle-timeout's default */
#define SPAWN_RATE_DEFAULT 32	 /* --spawn-rate's, as pm.max_spawn_rate */
#define CPU_BUSY_PERMILLE  900	 /* a worker this busy is saturated */
#define CPU_SPARE_PERMILLE 600	 /* one fewer may each run this busy */
/* The machine is saturated (psi_check) past these avg10 figures: tasks
 * waited for a CPU this share of the time ("some"), or every task stalled
 * on memory ("full"). */
#define PSI_CPU_SOME_MAX    90.0
#define PSI_MEMORY_FULL_MAX 20.0

/* What the master saw at one tick. */
struct pool_sample {
	uint64_t now;
	int workers;	 /* the pool's size (slots wanted) */
	int min, max;	 /* its bounds */
	int room;	 /* the most the fd limit allows */
	int ready;	 /* serving workers of the serving generation */
	int starting;	 /* its workers not ready yet */
	int backing_off; /* a slot waits to restart after a crash */
	int reloading;	 /* a generation or an image is starting */
	uint32_t queued; /* connections waiting in the accept queues */
	int busy;	 /* workers at capacity; -1: not known */
	int cpu;	 /* the ready workers' mean, permille; -1: unknown */
	const char *pressure; /* the machine is saturated: why; else NULL */
};

/* The policy's memory and knobs. */
struct autoscale {
	uint64_t idle_ms;    /* --idle-timeout */
	unsigned rate;	     /* --spawn-rate: starts a second */
	int saturated;	     /* the last sample was */
	unsigned step;	     /* the next growth: doubles while saturated */
	uint64_t idle_since; /* underused since; 0: it is not */
	uint64_t tokens;     /* spawn budget, thousandths of a start */
	uint64_t tokens_at;  /* when they were counted */
	const char *refused; /* the refusal last logged (said once) */
};

enum scale_verdict {
	SCALE_STAY,
	SCALE_GROW,
	SCALE_SHRINK,
	SCALE_REFUSE, /* a growth was wanted and cannot be: why says why */
};

struct scale_decision {
	enum scale_verdict verdict;
	int to;	       /* the new size; the same unless GROW or SHRINK */
	char why[160]; /* for the log and status */
	int say;       /* a refusal not logged before: log it */
};

void autoscale_init(struct autoscale *a, uint64_t idle_ms, unsigned rate);
void autoscale_decide(struct autoscale *a, const struct pool_sample *s,
		      struct scale_decision *d);

/* The "some" or "full" avg10 figure of a pressure file's text ("some
 * avg10=1.00 avg60=..."), or -1 when it is not there. */
double psi_avg10(const char *text, const char *kind);

struct herd;
/* The options' consistency, for config_check(): 0, or -1 (said why). */
int autoscale_check(struct herd *h);

#endif

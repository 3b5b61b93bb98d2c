/*
 * meter.h: the master's periodic look at the pool's load. It samples the
 * accept queues (a getsockopt per socket), the workers' connection counts
 * (shared memory) and CPU use (the RSS sampler's /proc reads), keeps a
 * short history for the status page, and, while the pool is adaptive
 * (-w MIN:MAX), feeds each sample to autoscale_decide() and applies what
 * it decides. Every AUTOSCALE_TICK_MS while adaptive, else every
 * METER_EVERY_MS: nothing here waits.
 */
#ifndef HERD_METER_H
#define HERD_METER_H

#include <stddef.h>
#include <stdint.h>

#include "autoscale.h"
#include "loop.h"

#define METER_EVERY_MS 5000 /* a history point; a fixed pool's tick */
#define METER_POINTS   120  /* ten minutes of them */

/* The pool over one METER_EVERY_MS: its size at the end, the most
 * connections open and waiting seen in it, the workers' CPU (permille of
 * one CPU, summed; -1 unknown). */
struct meter_point {
	uint64_t at;
	int workers, ready;
	uint32_t active, queued;
	int cpu;
};

struct meter {
	herd_timer *timer;
	int min, max; /* an adaptive pool's bounds now; equal: a fixed pool,
			 whose bounds are its size (m->nworkers) */
	struct autoscale as;
	struct meter_point hist[METER_POINTS]; /* a ring, oldest at head */
	size_t head, n;
	struct meter_point acc; /* the point being gathered */
	uint64_t acc_since;
	/* the last resize, or the last refusal, for status */
	char last[200];
	uint64_t last_at; /* 0: none yet */
	unsigned long grown, shrunk;
};

struct master;

/* Starts sampling (master start-up). */
int meter_start(struct master *m);
/* New bounds from herd ctl scale MIN:MAX (min == max: a fixed pool). */
void meter_bounds(struct master *m, int min, int max);
int meter_adaptive(const struct master *m);
/* The history, oldest first: i from 0 to m->meter.n - 1. */
const struct meter_point *meter_point(const struct meter *mt, size_t i);
/* Whether the machine (herd's cgroup where it has pressure files, else
 * the whole system) is saturated: NULL, or why, in buf. NULL too where
 * the kernel has no PSI. */
const char *psi_check(char *buf, size_t len);

#endif

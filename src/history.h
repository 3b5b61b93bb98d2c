/*
 * history.h: the outcome of the last reloads and upgrades, each known by
 * the generation it starts: starting, ready (it serves: the reload is
 * complete) or abandoned, with why. herd ctl reload and upgrade wait on it
 * (herd ctl generation N), and the status shows it. Beside it, the last
 * crashes, as the log said them, for the status page.
 */
#ifndef HERD_HISTORY_H
#define HERD_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HISTORY_MAX 16 /* the newest; older attempts are forgotten */
#define HISTORY_WHY 192

enum attempt_state { ATT_STARTING, ATT_READY, ATT_ABANDONED };

struct attempt {
	unsigned gen;
	int upgrade; /* started by a binary upgrade */
	enum attempt_state state;
	uint64_t started, ended; /* monotonic ms; ended 0 while starting */
	char why[HISTORY_WHY];	 /* abandoned: why */
};

struct history {
	struct attempt v[HISTORY_MAX]; /* a ring: n so far, newest at n-1 */
	unsigned long n;
};

/* An attempt for generation gen starts (again, if it is known: an upgrade's
 * check, then the new image's generation). */
void history_start(struct history *hs, unsigned gen, int upgrade, uint64_t now);
/* It ended: ATT_READY or ATT_ABANDONED with why (copied, cut to fit). An
 * attempt not known is recorded as it ends. */
void history_end(struct history *hs, unsigned gen, enum attempt_state state,
		 const char *why, uint64_t now);
/* Generation gen's attempt, or NULL when it was forgotten or never made. */
const struct attempt *history_find(const struct history *hs, unsigned gen);
/* The i-th newest attempt (0: the newest), or NULL past the last. */
const struct attempt *history_nth(const struct history *hs, size_t i);
const char *attempt_state_name(enum attempt_state s);

#define CRASHES_MAX 16

struct crash {
	uint64_t at;		/* monotonic ms */
	char what[HISTORY_WHY]; /* "worker 2 (pid 4410, generation 3) ..." */
};

struct crashes {
	struct crash v[CRASHES_MAX]; /* a ring, newest at n-1 */
	unsigned long n;
};

void crash_note(struct crashes *c, const char *what, uint64_t now);
/* The i-th newest crash (0: the newest), or NULL past the last. */
const struct crash *crash_nth(const struct crashes *c, size_t i);

#endif

/*
 * ratelimit.h: log lines whose rate someone else decides (a worker's
 * status, a client of the control socket, a peer writing junk on a
 * channel) are limited, so that nobody can flood the log or fill the
 * disk; what is left out is counted, and the count said.
 */
#ifndef HERD_RATELIMIT_H
#define HERD_RATELIMIT_H

#include <stdint.h>

#define RATELIMIT_WINDOW_MS 1000

/* At most a burst of lines a second. A window opens with the first line
 * after the previous window ended, so a quiet source is never held back.
 * All zero: no window yet. */
struct ratelimit {
	uint64_t start;	       /* the window's first line; 0: none yet */
	unsigned lines;	       /* lines in this window, said or not */
	unsigned long dropped; /* lines in this window not said */
};

enum rl_verdict {
	RL_LOG,	       /* say this line */
	RL_DROP_FIRST, /* the first line left out in this window */
	RL_DROP,       /* one more left out */
};

/* A line at now (ms), burst lines a second allowed: what to do with it.
 * When it opens a window, *unsaid is set to the lines the window before
 * left out (for the caller to say); otherwise to 0. */
enum rl_verdict ratelimit(struct ratelimit *r, uint64_t now, unsigned burst,
			  unsigned long *unsaid);

/* The same in steps, for a line two limits must both allow (a worker's
 * and all workers'): ratelimit_roll() opens a new window when the last one
 * is over, returning what it left out; ratelimit_room() says whether a
 * line fits the window's burst, and ratelimit_take() counts it said;
 * ratelimit_drop() counts one left out and says whether it is the
 * window's first. */
unsigned long ratelimit_roll(struct ratelimit *r, uint64_t now);
int ratelimit_room(const struct ratelimit *r, unsigned burst);
void ratelimit_take(struct ratelimit *r);
int ratelimit_drop(struct ratelimit *r);

/* Counts one more event in *n: returns 1 when it is to be said (the first
 * `first` of them, then every `every`th), else 0. For a count that is the
 * news itself ("N so far"), with no clock. */
int ratelimit_sample(unsigned long *n, unsigned long first,
		     unsigned long every);

#endif

/*
 * ratelimit.c: how often a line others provoke may be logged
 * (ratelimit.h). Pure: the caller brings the clock and writes the lines.
 */
#include "ratelimit.h"

unsigned long ratelimit_roll(struct ratelimit *r, uint64_t now)
{
	unsigned long unsaid = 0;

	if (r->start == 0 || now - r->start >= RATELIMIT_WINDOW_MS) {
		unsaid = r->dropped;
		r->start = now;
		r->lines = 0;
		r->dropped = 0;
	}
	return unsaid;
}

int ratelimit_room(const struct ratelimit *r, unsigned burst)
{
	return r->lines < burst;
}

void ratelimit_take(struct ratelimit *r)
{
	r->lines++;
}

int ratelimit_drop(struct ratelimit *r)
{
	r->lines++;
	return r->dropped++ == 0;
}

enum rl_verdict ratelimit(struct ratelimit *r, uint64_t now, unsigned burst,
			  unsigned long *unsaid)
{
	*unsaid = ratelimit_roll(r, now);
	if (ratelimit_room(r, burst)) {
		ratelimit_take(r);
		return RL_LOG;
	}
	return ratelimit_drop(r) ? RL_DROP_FIRST : RL_DROP;
}

int ratelimit_sample(unsigned long *n, unsigned long first, unsigned long every)
{
	++*n;
	return *n <= first || *n % every == 0;
}

/*
 * ratelimit.c: how often a line others provoke may be logged
 * (ratelimit.h). Pure: the caller brings the clock and writes the lines.
 */
#include "ratelimit.h"

enum rl_verdict ratelimit(struct ratelimit *r, uint64_t now, unsigned burst,
			  unsigned long *unsaid)
{
	*unsaid = 0;
	if (r->start == 0 || now - r->start >= RATELIMIT_WINDOW_MS) {
		*unsaid = r->dropped;
		r->start = now;
		r->lines = 0;
		r->dropped = 0;
	}
	if (r->lines++ < burst)
		return RL_LOG;
	return r->dropped++ == 0 ? RL_DROP_FIRST : RL_DROP;
}

int ratelimit_sample(unsigned long *n, unsigned long first, unsigned long every)
{
	++*n;
	return *n <= first || *n % every == 0;
}

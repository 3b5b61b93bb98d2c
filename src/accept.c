/*
 * accept.c: the episodes of pauses when out of fds (accept.h).
 */
#include <stddef.h>

#include "accept.h"

int accept_pause(struct accept_pause *p, uint64_t now)
{
	int first = p->since == 0;

	if (first) {
		p->since = now;
		p->pauses = 0;
	}
	p->pauses++;
	p->until = now + ACCEPT_PAUSE_MS;
	return first;
}

int accept_paused(const struct accept_pause *p, uint64_t now)
{
	return now < p->until;
}

int accept_resumed(struct accept_pause *p, uint64_t now, uint64_t *ms,
		   unsigned long *pauses)
{
	if (p->since == 0)
		return 0;
	if (ms != NULL)
		*ms = now - p->since;
	if (pauses != NULL)
		*pauses = p->pauses;
	p->since = 0;
	p->pauses = 0;
	return 1;
}

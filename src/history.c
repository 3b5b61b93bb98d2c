/*
 * history.c: the outcome of the last reloads and upgrades (history.h).
 */
#include <stdio.h>
#include <string.h>

#include "history.h"

/* Where the i-th newest of n entries is in a ring of max, or -1 when
 * there is no such entry (forgotten, or never made). */
static long ring_nth(unsigned long n, size_t i, size_t max)
{
	return i < n && i < max ? (long)((n - 1 - i) % max) : -1;
}

static struct attempt *slot_of(struct history *hs, unsigned gen)
{
	return (struct attempt *)history_find(hs, gen);
}

void history_start(struct history *hs, unsigned gen, int upgrade, uint64_t now)
{
	struct attempt *a = slot_of(hs, gen);

	if (a == NULL)
		a = &hs->v[hs->n++ % HISTORY_MAX];
	*a = (struct attempt){.gen = gen, .upgrade = upgrade, .started = now};
}

void history_end(struct history *hs, unsigned gen, enum attempt_state state,
		 const char *why, uint64_t now)
{
	struct attempt *a = slot_of(hs, gen);

	if (a == NULL) {
		history_start(hs, gen, 0, now);
		a = slot_of(hs, gen);
	}
	a->state = state;
	a->ended = now;
	snprintf(a->why, sizeof(a->why), "%s", why != NULL ? why : "");
}

const struct attempt *history_nth(const struct history *hs, size_t i)
{
	long k = ring_nth(hs->n, i, HISTORY_MAX);

	return k < 0 ? NULL : &hs->v[k];
}

const struct attempt *history_find(const struct history *hs, unsigned gen)
{
	const struct attempt *a;

	for (size_t i = 0; (a = history_nth(hs, i)) != NULL; i++)
		if (a->gen == gen)
			return a;
	return NULL;
}

const char *attempt_state_name(enum attempt_state s)
{
	switch (s) {
	case ATT_STARTING:
		return "starting";
	case ATT_READY:
		return "ready";
	case ATT_ABANDONED:
		return "abandoned";
	}
	return "?";
}

void crash_note(struct crashes *c, const char *what, uint64_t now)
{
	struct crash *k = &c->v[c->n++ % CRASHES_MAX];

	k->at = now;
	snprintf(k->what, sizeof(k->what), "%s", what);
}

const struct crash *crash_nth(const struct crashes *c, size_t i)
{
	long k = ring_nth(c->n, i, CRASHES_MAX);

	return k < 0 ? NULL : &c->v[k];
}

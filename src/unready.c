/*
 * unready.c: a pool that never becomes ready at start-up says what it waits
 * for (workers starting, slots backing off), rather than wait in silence.
 */
#include <stdio.h>

#include "log.h"
#include "master.h"

/* The serving generation's slots at start-up: ready, starting, or empty
 * (backing off after quick deaths, the first of them in slot). */
struct unready {
	unsigned ready, starting, empty;
	int slot;
};
static void unready_count(const struct master *m, struct unready *u)
{
	struct proc *by_slot[MAX_WORKERS];

	*u = (struct unready){0, 0, 0, -1};
	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int s = 0; s < m->nworkers; s++) {
		const struct proc *p = by_slot[s];

		if (p == NULL && u->empty++ == 0)
			u->slot = s;
		else if (p != NULL && p->state == PS_READY)
			u->ready++;
		else if (p != NULL)
			u->starting++;
	}
}

/* What a starting worker waits for before it counts as ready. */
static void starting_waits_for(const struct master *m, unsigned n, char *buf,
			       size_t len)
{
	const herd *h = m->h;
	const char *s = n == 1 ? "" : "s";

	if (h->kind->sends_ready)
		snprintf(buf, len,
			 "READY from %u starting worker%s (a start callback "
			 "that has not returned?)",
			 n, s);
	else if (h->notify)
		snprintf(buf, len, "READY=1 from %u program%s (--notify)", n,
			 s);
	else
		snprintf(buf, len,
			 "%u program%s to run for --ready-delay (%g s)%s", n, s,
			 (double)h->ready_delay_ms / 1000,
			 h->conn->passes ? " or send READY" : "");
}

/* A pool that never becomes ready would wait in silence: UNREADY_FIRST_MS
 * after the start, and every UNREADY_EVERY_MS after that, say what it
 * waits for. Returns when to look again. */
uint64_t warn_unready(struct master *m, uint64_t now)
{
	char starting[160] = "", empty[160] = "";
	struct unready u;

	if (m->announced)
		return UINT64_MAX;
	if (m->unready_warn == 0)
		m->unready_warn = m->started + UNREADY_FIRST_MS;
	if (now < m->unready_warn)
		return m->unready_warn;
	m->unready_warn = now + UNREADY_EVERY_MS;
	unready_count(m, &u);
	if (u.starting > 0)
		starting_waits_for(m, u.starting, starting, sizeof(starting));
	if (u.empty > 0) {
		uint64_t at = m->slots[u.slot].not_before;

		snprintf(empty, sizeof(empty),
			 "%s%u slot%s backing off after quick deaths (slot "
			 "%d: %u in a row, next start in %llu ms)",
			 u.starting > 0 ? "; " : "", u.empty,
			 u.empty == 1 ? "" : "s", u.slot,
			 m->slots[u.slot].fails,
			 (unsigned long long)(at > now ? at - now : 0));
	}
	log_warn("%u of %d workers ready %llu s after start: waiting for %s%s",
		 u.ready, m->nworkers,
		 (unsigned long long)(now - m->started) / 1000, starting,
		 empty);
	return m->unready_warn;
}

/*
 * status.c: what `herd ctl status` and the metrics show, taken from the
 * master's state once into a snapshot (status.h) that render.c prints;
 * and the RSS figures they show. The listeners' queues are read here, a
 * getsockopt per socket: nothing waits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "log.h"
#include "rights.h"
#include "rss.h"
#include "master.h"
#include "status.h"

/* RSS is read while --max-rss, or a status asked in the last RSS_WATCH_MS,
 * needs it (rss.h). Returns when to look again. */
static int rss_needed(const struct master *m, uint64_t now)
{
	return m->h->max_rss_kib || now < m->rss_wanted || meter_adaptive(m);
}

uint64_t sample_rss(struct master *m, uint64_t now)
{
	if (!rss_needed(m, now))
		return UINT64_MAX;
	return rss_sample(&m->procs, now);
}

static void take_master(const struct master *m, struct status *s, uint64_t now)
{
	const herd *h = m->h;

	s->pid = (int)m->pid;
	s->version = HERD_VERSION;
	s->mode = h->conn->name;
	s->uptime_ms = now - m->started;
	s->workers = m->nworkers;
	s->gen = m->gen;
	s->pending = m->pending;
	s->reloads = m->reloads;
	s->reloads_abandoned = m->reloads_abandoned;
	s->restarts = m->restarts;
	s->relays = m->relays;
	s->relays_closed = m->relays_closed;
	s->history = &m->history;
	s->crashes = &m->crashes;
	/* A fixed pool's bounds are its size, whatever set it (an upgrade
	 * hands over the old image's). */
	s->pool = (struct status_pool){.min = meter_adaptive(m) ? m->meter.min
							     : m->nworkers,
				       .max = meter_adaptive(m) ? m->meter.max
							     : m->nworkers,
				       .idle_ms = m->meter.as.idle_ms,
				       .last = m->meter.last_at ? m->meter.last
								: NULL,
				       .last_ago_ms = now - m->meter.last_at,
				       .grown = m->meter.grown,
				       .shrunk = m->meter.shrunk,
				       .meter = &m->meter};
	s->now_ms = now;
	s->total = m->gone_total;
	s->log_lines_lost = log_lost_lines();
	s->peer_fds_leaked = rights_leaked();
	for (size_t i = 0; i < h->naddrs; i++)
		s->listen[s->nlisten++] = h->addrs[i].text;
}

/* One row per worker, and the counts and sums the metrics show. */
static void take_procs(const struct master *m, struct status *s, uint64_t now)
{
	/* The metrics keep the four states their label always had: a state
	 * added since counts as the one an upgrade hands it over as. */
	for (size_t k = 0; k < STATUS_NSTATES; k++)
		s->states[k].state = proc_wire_name((enum proc_wire)k);
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		load_sync(p); /* the shared counts, where it has some */
		s->procs[s->nprocs++] = (struct status_worker){
		    .slot = p->slot,
		    .pid = (int)p->pid,
		    .gen = p->gen,
		    .state = proc_state_name(p->state),
		    .uptime_ms = now - p->started,
		    .restarts = m->slots[p->slot].restarts,
		    .active = p->active,
		    .total = p->total,
		    .rss_kib = p->rss_kib,
		    .cpu_ms = p->cpu_ms};
		for (size_t k = 0; k < STATUS_NSTATES; k++)
			s->states[k].n +=
			    proc_info(p->state)->wire == (enum proc_wire)k;
		s->total += p->total;
		s->active += p->active;
	}
}

static void take_queue(struct status *s, size_t i, int slot, int fd,
		       int is_unix)
{
	struct status_queue *q = &s->queues[s->nqueues++];

	*q = (struct status_queue){.listener = i, .slot = slot};
	if (is_unix)
		q->none = "unix socket, no TCP_INFO";
	else if (listen_queue(fd, &q->q) == -1)
		q->none = strerror(errno);
}

/* Slots above 0 with sockets of their own: reuseport, and retiring ones
 * until they close, whose queue is what their closing resets. */
static size_t slots_with_sockets(const struct master *m)
{
	size_t n = 0;

	for (int sl = 1; sl < MAX_WORKERS; sl++)
		n += m->slots[sl].fds != NULL;
	return n;
}

/* Each listener's accept queue: the socket every worker shares, or in
 * reuseport mode each slot's (slot 0 has the listener's own). */
static void take_queues(const struct master *m, struct status *s)
{
	const herd *h = m->h;

	for (size_t i = 0; i < h->naddrs; i++) {
		const struct listen_addr *a = &h->addrs[i];

		if (!a->reuseport) {
			take_queue(s, i, -1, a->fd, a->sa.ss_family == AF_UNIX);
			continue;
		}
		take_queue(s, i, 0, a->fd, 0);
		for (int sl = 1; sl < MAX_WORKERS; sl++)
			if (m->slots[sl].fds != NULL &&
			    m->slots[sl].fds[i] >= 0)
				take_queue(s, i, sl, m->slots[sl].fds[i], 0);
	}
	s->overflows_known = listen_overflows(&s->listen_overflows) == 0;
}

/* Slots of the serving generation with no worker: backing off. */
static void take_backoff(const struct master *m, struct status *s, uint64_t now)
{
	struct proc *by_slot[MAX_WORKERS];

	proc_slots(&m->procs, m->gen, by_slot, m->nworkers);
	for (int sl = 0; sl < m->nworkers; sl++) {
		const struct slot_state *st = &m->slots[sl];

		if (by_slot[sl] != NULL)
			continue;
		s->backoff[s->nbackoff++] = (struct status_backoff){
		    .slot = sl,
		    .restarts = st->restarts,
		    .next_start_ms =
			st->not_before > now ? st->not_before - now : 0};
	}
}

void status_release(struct status *s)
{
	free(s->listen);
	free(s->procs);
	free(s->backoff);
	free(s->queues);
}

int status_take(const struct master *m, struct status *s)
{
	uint64_t now = herd_loop_now(m->loop);

	*s = (struct status){0};
	/* One more than needed: calloc(0) may be NULL. */
	s->listen = calloc(m->h->naddrs + 1, sizeof(*s->listen));
	s->procs = calloc(m->procs.n + 1, sizeof(*s->procs));
	s->backoff = calloc((size_t)m->nworkers + 1, sizeof(*s->backoff));
	s->queues = calloc(m->h->naddrs * (slots_with_sockets(m) + 1) + 1,
			   sizeof(*s->queues));
	if (s->listen == NULL || s->procs == NULL || s->backoff == NULL ||
	    s->queues == NULL) {
		status_release(s);
		return -1;
	}
	take_master(m, s, now);
	take_procs(m, s, now);
	take_backoff(m, s, now);
	take_queues(m, s);
	return 0;
}

/* A status reads RSS figures sample_rss() keeps; the first one after a
 * quiet spell reads them all itself, and starts the sampling. */
void rss_watch(struct master *m)
{
	uint64_t now = herd_loop_now(m->loop);

	if (!rss_needed(m, now))
		rss_sample_all(&m->procs, now);
	m->rss_wanted = now + RSS_WATCH_MS;
	reconcile(m); /* arms the wake timer for sample_rss() */
}

/*
 * dispatch.c: passfd mode: the master accepts and hands each connection to the
 * least busy ready worker; what a dead worker never received goes to the
 * others.
 */
#include <errno.h>
#include <string.h>

#include "channel.h"
#include "load.h"
#include "log.h"
#include "master.h"

/* What one wake-up accepted for one worker, sent as one message. */
struct batch {
	struct proc *p;
	int fds[MSG_CONN_BATCH];
	int n;
};

/* Only the serving generation gets connections (a reload stops sending to
 * the old one), and in a rolling reload the new one's ready workers too,
 * as the old ones of their slots drain; never a worker whose channel is
 * backed up, nor one at --max-connections. Its counts are read from the
 * shared table first. */
int gen_takes_connections(const struct master *m, unsigned gen)
{
	return gen == m->gen || (m->h->reload_batch > 0 && gen == m->pending);
}

static int can_take(const struct master *m, struct proc *p)
{
	unsigned max = m->h->max_conns;

	if (!gen_takes_connections(m, p->gen) ||
	    !proc_info(p->state)->serving || p->chan == NULL ||
	    chan_queued(p->chan) != 0 || chan_dead(p->chan))
		return 0;
	load_sync(p);
	return proc_inflight(p) < INFLIGHT_MAX &&
	       (max == 0 || p->active + proc_inflight(p) < max);
}

/* The worker for the next connection, or NULL when none can take it: one
 * pass over the table, starting past the last worker given one, so rr
 * takes turns and least's ties do not all go to one worker. Only
 * pass_connection() moves that start: a pick that finds nothing to accept
 * must not use up a worker's turn. */
static struct proc *pick(struct master *m)
{
	size_t n = m->procs.n, chosen = 0;
	uint64_t best_load = UINT64_MAX;
	struct proc *best = NULL;

	for (size_t k = 0; k < n; k++) {
		size_t i = (m->rr + k) % n;
		struct proc *p = m->procs.v[i];
		uint64_t load = p->active + proc_inflight(p);

		if (!can_take(m, p) || load >= best_load)
			continue;
		best = p;
		best_load = load;
		chosen = i;
		if (m->h->balance == HERD_BALANCE_RR)
			break; /* the first that can take it */
	}
	m->picked = chosen;
	return best;
}

/* n connections for p, in one message to a worker this image forked
 * (it has a load entry), one by one to any other: a program, or a worker
 * of an older image after an upgrade, takes CONNECTION only. can_take()
 * saw an empty queue and a live channel, so this sends or queues; it
 * fails (and closes the fds) only when memory runs out. */
static void send_connections(struct master *m, struct proc *p, const int *fds,
			     int n)
{
	int r = 0;

	if (n > 1 && p->load_slot > 0)
		r = proc_send(m, p, MSG_CONNECTIONS, NULL, 0, fds, n);
	for (int i = 0; i < n && (n == 1 || p->load_slot == 0); i++)
		r |= proc_send(m, p, MSG_CONNECTION, NULL, 0, fds + i, 1);
	if (r == -1)
		log_warn("connections for worker %d dropped: %s", p->slot,
			 strerror(errno));
}

/* p is what pick() just returned; n connections are on their way to it. */
static void took_turn(struct master *m, struct proc *p, int n)
{
	m->rr = m->picked + 1; /* the next search starts past this one */
	p->assigned += (uint64_t)n;
	if (m->h->kind->master_counts && m->h->max_requests &&
	    p->state != PS_REPLACING && p->assigned >= p->request_limit)
		m->recheck = 1; /* a program's count is the master's */
}

static void batch_flush(struct master *m, struct batch *b)
{
	if (b->n > 0)
		send_connections(m, b->p, b->fds, b->n);
	b->n = 0;
}

/* Adds fd to p's batch among the nb open ones (starting one if needed);
 * a full batch goes at once. Returns the new number of batches. */
static size_t batch_add(struct master *m, struct batch *b, size_t nb,
			struct proc *p, int fd)
{
	size_t i = 0;

	while (i < nb && b[i].p != p)
		i++;
	if (i == nb)
		b[nb++] = (struct batch){.p = p};
	b[i].fds[b[i].n++] = fd;
	if (b[i].n == MSG_CONN_BATCH)
		batch_flush(m, &b[i]);
	return nb;
}

/* A passfd worker's channel outlives the worker: the master holds a copy
 * of the worker's end, so the connections sent to a worker that died (or
 * exited) before receiving them are still in that end's receive queue,
 * not reset with it. They go to other workers as soon as one can take
 * them, before any new connection is accepted. */
void leftover_keep(struct master *m, struct proc *p)
{
	struct chan *c;

	if (p->worker_end < 0)
		return;
	if (p->chan != NULL)
		chan_flush(p->chan); /* what is queued joins the rest */
	if ((c = chan_new(p->worker_end, MSG_TO_WORKER, NULL, NULL, NULL)) ==
	    NULL) {
		close(p->worker_end);
		p->worker_end = -1;
		return;
	}
	p->worker_end = -1;
	if (m->nleftover == LEFTOVER_MAX) { /* the oldest is dropped */
		chan_free(m->leftover[0]);
		memmove(m->leftover, m->leftover + 1,
			(LEFTOVER_MAX - 1) * sizeof(*m->leftover));
		m->nleftover--;
	}
	m->leftover[m->nleftover++] = c;
}

static void leftover_dispatch(struct master *m)
{
	unsigned long moved = 0;
	struct proc *p;
	struct msg msg;

	while (m->nleftover > 0 && (p = pick(m)) != NULL) {
		struct chan *c = m->leftover[0];

		if (chan_recv(c, &msg) == 1) {
			if (msg.hdr.type == MSG_CONNECTION ||
			    msg.hdr.type == MSG_CONNECTIONS) {
				/* a batch goes whole: past the cap by less
				 * than MSG_CONN_BATCH at worst */
				took_turn(m, p, msg.nfds);
				send_connections(m, p, msg.fds, msg.nfds);
				moved += (unsigned long)msg.nfds;
			} else {
				for (int i = 0; i < msg.nfds; i++)
					close(msg.fds[i]);
			}
			continue;
		}
		chan_free(c); /* drained */
		memmove(m->leftover, m->leftover + 1,
			(m->nleftover - 1) * sizeof(*m->leftover));
		m->nleftover--;
	}
	if (moved > 0)
		log_info("passfd: %lu connections a gone worker never received "
			 "were handed to others",
			 moved);
}

static void accept_failed(struct master *m, int e)
{
	if (accept_pause(&m->starved, herd_loop_now(m->loop)))
		log_warn("accept: %s; pausing accepts for %d ms at a time",
			 strerror(e), ACCEPT_PAUSE_MS);
}

static void on_listener(herd_loop *l, int lfd, unsigned events, void *arg)
{
	struct master *m = arg;

	(void)l;
	(void)events;
	struct batch b[ACCEPT_BATCH];
	size_t nb = 0;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct proc *p = pick(m);
		int fd;

		if (p == NULL)
			break; /* every worker is full: the backlog waits */
		if ((fd = addr_accept(lfd)) == -1) {
			if (errno != EAGAIN)
				accept_failed(m, errno);
			break;
		}
		accept_resumed(&m->starved, herd_loop_now(m->loop), NULL, NULL);
		took_turn(m, p, 1);
		nb = batch_add(m, b, nb, p, fd);
	}
	for (size_t i = 0; i < nb; i++)
		batch_flush(m, &b[i]);
	if (m->recheck) {
		m->recheck = 0;
		reconcile(m);
	}
	passfd_dispatch(m);
}

static int any_can_take(struct master *m)
{
	for (size_t i = 0; i < m->procs.n; i++)
		if (can_take(m, m->procs.v[i]))
			return 1;
	return 0;
}

/* Watches the listeners exactly while a connection could be handed out:
 * when every worker is full the master stops reading them, and the
 * backlog waits in the kernel instead of in the master. */
void passfd_dispatch(struct master *m)
{
	herd *h = m->h;
	int want;

	if (m->state == M_RUNNING)
		leftover_dispatch(m);
	want = m->state == M_RUNNING &&
	       !accept_paused(&m->starved, herd_loop_now(m->loop));
	/* No worker can take one: a worker that takes in what is in flight
	 * or closes one at --max-connections says so (load_poke()) while
	 * this flag is up; the second look sees what came before it. */
	if (want && !any_can_take(m)) {
		load_master_waits(1);
		want = any_can_take(m);
	}
	if (want || m->state != M_RUNNING)
		load_master_waits(0);
	if (want == m->accepting)
		return;
	for (size_t i = 0; i < h->naddrs; i++) {
		if (want && herd_loop_add(m->loop, h->addrs[i].fd, HERD_READ,
					  on_listener, m) == -1)
			log_error("watch %s: %s", h->addrs[i].text,
				  strerror(errno));
		else if (!want)
			herd_loop_del(m->loop, h->addrs[i].fd);
	}
	m->accepting = want;
}

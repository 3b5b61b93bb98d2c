/*
 * relay.c: keep-alive connections across a reload. A draining in-process
 * worker relays its idle connections (nothing read of a next request,
 * nothing left to write) to the master with their application state, and
 * the master passes each to a serving worker, which goes on with it: the
 * client keeps its connection, and the race between a closing server and
 * a client's next request (nginx's reset POSTs) never happens. Without a
 * worker to take it, the connection is closed, as draining would have
 * closed it.
 */
#include <errno.h>
#include <string.h>

#include "channel.h"
#include "load.h"
#include "log.h"
#include "master.h"
#include "rights.h"

/* Relayed connections waiting in one worker's channel, at most. */
#define RELAY_QUEUED_MAX 64

/* Serving now: the serving generation's workers (ready, or past a
 * recycling limit and serving until their successor is), and while a
 * rolling reload hands slots over, the pending one's. */
static int serves(const struct master *m, const struct proc *p)
{
	return proc_info(p->state)->serving && gen_takes_connections(m, p->gen);
}

/* A worker that serves, other than from, and can take a relay now (its
 * channel not backed up); with least, the least busy of them. NULL if
 * none. */
static struct proc *relay_target(struct master *m, const struct proc *from,
				 int least)
{
	struct proc *best = NULL;

	if (m->state != M_RUNNING)
		return NULL;
	for (size_t i = 0; i < m->procs.n; i++) {
		struct proc *p = m->procs.v[i];

		if (p == from || !serves(m, p) || p->chan == NULL ||
		    chan_dead(p->chan) ||
		    chan_queued(p->chan) >= RELAY_QUEUED_MAX)
			continue;
		if (!least)
			return p;
		load_sync(p);
		if (best == NULL || p->active < best->active)
			best = p;
	}
	return best;
}

int relay_possible(struct master *m, const struct proc *from)
{
	return relay_target(m, from, 0) != NULL;
}

void relay_connection(struct master *m, struct proc *from,
		      const struct msg *msg)
{
	struct proc *to = relay_target(m, from, 1);
	int fd = msg->fds[0];

	if (to == NULL) {
		m->relays_closed++;
		log_debug("relay from worker %d: no worker to take it; "
			  "closing it",
			  from->slot);
		rights_close(fd); /* a worker's socket: it may linger */
		return;
	}
	/* The channel owns fd now, sent or not (chan_send). */
	if (proc_send(m, to, MSG_RELAY, msg->data, msg->hdr.len, &fd, 1) != 0) {
		m->relays_closed++;
		log_debug("relay to worker %d: %s; closed", to->slot,
			  strerror(errno));
		return;
	}
	to->assigned++; /* passfd's in-flight count: its total will show it */
	m->relays++;
}

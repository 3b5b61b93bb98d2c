/*
 * wrelay.c: the worker's side of relayed connections (relay.c has the
 * master's): a draining worker sends its idle connections on, and a
 * serving one takes them in.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "loop.h"
#include "worker.h"

int herd_worker_can_relay(const herd_worker *w)
{
	return w->draining && w->relay_ok && !w->done;
}

int herd_conn_relay(herd_worker *w, int fd, const void *state, size_t len)
{
	struct msg_hdr hdr = {MSG_RELAY, (uint32_t)len, w->pid,
			      w->slot,	 w->gen,	0};

	if (len > HERD_RELAY_MAX || (len > 0 && state == NULL)) {
		errno = EINVAL;
		return -1;
	}
	if (!herd_worker_can_relay(w)) {
		errno = EPERM;
		return -1;
	}
	if (w->master == NULL || chan_dead(w->master)) {
		errno = EPIPE;
		return -1;
	}
	if (chan_queued(w->master) >= CHAN_QUEUE_MAX / 2) {
		errno = EAGAIN;
		return -1;
	}
	/* Out of the loop first: the socket lives on in the message and the
	 * next worker, so closing this copy would not take it out. */
	if (loop_has(w->loop, fd) && herd_loop_del(w->loop, fd) == -1)
		return -1;
	/* The channel owns fd from here: closed once sent (chan_send). */
	if (chan_send(w->master, &hdr, state, &fd, 1) == -1)
		log_warn("relay fd %d: %s; closed", fd, strerror(errno));
	worker_gave(w);
	return 0;
}

void worker_relayed(herd_worker *w, const struct msg *m)
{
	int fd = m->fds[0];

	worker_took(w);
	if (w->h->on_relay != NULL)
		w->h->on_relay(w, fd, m->data, m->hdr.len, w->h->ud);
	else if (w->h->on_connection != NULL)
		w->h->on_connection(w, fd, w->h->ud);
	else
		herd_conn_close(w, fd);
}

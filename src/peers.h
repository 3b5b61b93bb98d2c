/*
 * peers.h: a worker's side of the peer mesh (mesh.h is the master's): the
 * write ends of the other workers' inboxes, learnt from OPEN_CHANNEL,
 * forgotten at CLOSE_CHANNEL, and the sending of herd_worker_send() to
 * them.
 */
#ifndef HERD_PEERS_H
#define HERD_PEERS_H

#include <stddef.h>
#include <sys/types.h>

#include "channel.h"
#include "loop.h"

struct peer {
	int slot;
	pid_t pid;
	unsigned gen;
	struct chan *chan; /* write-only: the peer's inbox */
};

struct peers {
	struct peer *v;
	size_t n;
};

/* OPEN_CHANNEL: each fd of m is the inbox of the peer its msg_peer names;
 * the peers' channels join loop (to flush their queues). */
void peers_open(struct peers *ps, const struct msg *m, herd_loop *loop);
/* CLOSE_CHANNEL: the peers m names are gone. */
void peers_close(struct peers *ps, const struct msg *m);
/* Queues h and its h->len bytes of data to the peer in slot h->dst (the
 * newest generation's, during a reload), or to every peer (HERD_TO_ALL).
 * Returns 0, or -1 with errno (ENOENT: no peer in that slot). */
int peers_send(struct peers *ps, const struct msg_hdr *h, const void *data);
void peers_free(struct peers *ps);

#endif

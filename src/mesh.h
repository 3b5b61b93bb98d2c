/*
 * mesh.h: nginx's open-channel broadcast, once per turn of the master's
 * loop: the workers born in a turn learn every peer's inbox and every peer
 * learns theirs (OPEN_CHANNEL, up to MSG_MAX_FDS peers a message); the
 * workers gone in it are named to their peers (CLOSE_CHANNEL, up to
 * MSG_PEERS_MAX a message). Only workers with an inbox take part: those
 * of an application that reads peers' messages (herd_on_message).
 */
#ifndef HERD_MESH_H
#define HERD_MESH_H

#include <stddef.h>
#include <sys/types.h>

#include "proc.h"

struct msg_peer;

struct mesh {
	pid_t pid;	       /* the master's, in message headers */
	struct msg_peer *gone; /* gone this turn, not yet told */
	size_t ngone, cap;
};

/* p is gone (its inbox closed by the caller): told at the next update. */
void mesh_gone(struct mesh *mh, const struct proc *p);
/* Tells what this turn changed; gen goes in the headers. */
void mesh_update(struct mesh *mh, struct proctab *t, unsigned gen);
void mesh_free(struct mesh *mh);

#endif

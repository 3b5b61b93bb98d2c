/*
 * mode.h: the three connection modes, shared (every worker accepts on the
 * same sockets), reuseport (each slot on its own) and passfd (the master
 * accepts and passes each connection), as three instances of one
 * operations struct: what differs as functions and fields. h->conn is
 * chosen with the mode (config.c); no code needs to test h->mode.
 */
#ifndef HERD_MODE_H
#define HERD_MODE_H

#include "herd.h"

struct master;

struct mode_ops {
	const char *name; /* as herd ctl status and the metrics show it */
	/* Opens what a slot needs before its worker starts (reuseport: the
	 * slot's own sockets). -1 with errno. */
	int (*slot_open)(struct master *m, int slot);
	/* Sends new connections only to the slots that serve (reuseport). */
	void (*steer)(struct master *m);
	/* Hands connections out: watches the listeners while a worker can
	 * take one, and passes what dead workers never received (passfd). */
	void (*dispatch)(struct master *m);

	/* The master accepts, and passes each connection on the worker's
	 * channel: workers hold no listening socket, a program gets a
	 * channel at fd 3 (and may say READY on it), the master keeps a copy
	 * of the worker's end for what it never received, and a worker
	 * reports its load at once, as the master balances by it. */
	int passes;
	/* Each slot accepts on its own sockets (SO_REUSEPORT), steered. */
	int slot_sockets;
	/* The master's fds beyond FDS_PER_WORKER (master_max_workers()):
	 * always (passfd: dead workers' ends), per worker (passfd: the copy
	 * of its end), per slot and address (reuseport: its own socket). */
	unsigned fds_base, fds_worker, fds_slot;
};

extern const struct mode_ops mode_shared, mode_reuseport, mode_passfd;

/* The operations of mode, or NULL when there is no such mode. */
const struct mode_ops *mode_ops(herd_mode mode);

/* The modes' functions, in the files of their concern. reuseport.c: */
void reuseport_steer(struct master *m);
/* dispatch.c: */
void passfd_dispatch(struct master *m);

#endif

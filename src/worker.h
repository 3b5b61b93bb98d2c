/*
 * worker.h: the in-process worker's state, private to worker.c, wapi.c
 * (its accessors) and wsignal.c (its signals).
 */
#ifndef HERD_WORKER_H
#define HERD_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "accept.h"
#include "internal.h"
#include "peers.h"

struct chan;

struct herd_worker {
	herd *h;
	herd_loop *loop;
	int slot;
	pid_t pid;
	unsigned gen;
	int draining;
	int done;
	int exit_code;
	unsigned active;
	uint64_t total;
	struct chan *master;
	struct chan *inbox;
	struct peers peers;
	int sigfd;
	int accepting;
	herd_timer *heartbeat;
	herd_timer *report; /* armed while a load change is unreported */
	herd_timer *resume;
	struct accept_pause starved; /* accepts paused for lack of fds */
	herd_timer *chan_resume;
	struct accept_pause chan_starved; /* master channel: no fd free */
	int shares;   /* shared mode: keeps to its share of the pool's load */
	int full;     /* --max-connections reached: not accepting */
	int yielding; /* above its share: not accepting for a moment */
	herd_timer *yield; /* the end of that moment */
	int relay_ok;	   /* draining, others serve on: relay (wrelay.c) */
};

/* worker.c */
void worker_finish(herd_worker *w, int code);
void start_drain(herd_worker *w);
/* A connection counted in (taken, relayed to it) or out (closed,
 * relayed away). */
void worker_took(herd_worker *w);
void worker_gave(herd_worker *w);

/* wrelay.c: a connection relayed to this worker, with its state. */
struct msg;
void worker_relayed(herd_worker *w, const struct msg *m);
/* wsignal.c: blocks the signals a worker reads, and reads them. */
int worker_signals(herd_worker *w);

#endif

/*
 * status.h: what `herd ctl status` and the metrics show, taken from the
 * master once (status_take, status.c) and rendered three ways (render.c):
 * status's text, its JSON, and Prometheus' text format. The renderers
 * read nothing but the snapshot, so a hand-made one tests them
 * (tests/unit/test_status.c).
 */
#ifndef HERD_STATUS_H
#define HERD_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "listen.h"
#include "reply.h"

struct meter;

/* A worker process, whatever its state. */
struct status_worker {
	int slot;
	int pid;
	unsigned gen;
	const char *state; /* proc_state_name() */
	uint64_t uptime_ms;
	unsigned restarts; /* its slot's */
	uint32_t active;   /* connections, from its last load report */
	uint64_t total;
	unsigned long rss_kib;
	uint64_t cpu_ms; /* user + system, at the last RSS sample */
};

/* A slot of the serving generation with no worker: backing off. */
struct status_backoff {
	int slot;
	unsigned restarts;
	uint64_t next_start_ms; /* from now; 0 when due */
};

/* A listening socket's accept queue: each listener's, and in reuseport
 * mode each slot's own socket of it (slot 0's is the listener's). */
struct status_queue {
	size_t listener;  /* its address: listen[listener] */
	int slot;	  /* reuseport: the slot whose socket it is; else -1 */
	const char *none; /* why there are no figures (a unix socket has no
			     TCP_INFO), or NULL: q holds them */
	struct accept_queue q;
};

/* The metrics' herd_workers{state}: every state, in this order. */
#define STATUS_NSTATES 4
struct status_count {
	const char *state;
	unsigned n;
};

/* The pool's size: bounds (equal for a fixed pool), the adaptive pool's
 * last resize or refusal, and the load history (meter.h). */
struct status_pool {
	int min, max;
	uint64_t idle_ms;
	const char *last; /* NULL: none yet */
	uint64_t last_ago_ms;
	unsigned long grown, shrunk;
	const struct meter *meter; /* its history, or NULL */
};

struct status {
	int pid;
	const char *version;
	const char *mode; /* "shared", "reuseport", "passfd" */
	uint64_t uptime_ms;
	int workers;		     /* slots wanted */
	unsigned gen;		     /* serving */
	unsigned pending;	     /* starting after a reload, or 0 */
	unsigned reloads;	     /* completed, upgrades included */
	unsigned reloads_abandoned;  /* never ready, or failed to start */
	unsigned long restarts;	     /* crashes of serving workers, ever */
	unsigned long relays;	     /* idle connections passed on (relay.c) */
	unsigned long relays_closed; /* and closed for want of a taker */
	unsigned long long active;   /* connections open in the workers */
	unsigned long long total;    /* taken, exited workers' included */
	unsigned long long log_lines_lost;
	unsigned long peer_fds_leaked;
	const char **listen; /* the addresses, as given */
	size_t nlisten;
	struct status_queue *queues; /* by listener, then slot */
	size_t nqueues;
	int overflows_known;		     /* listen_overflows was read */
	unsigned long long listen_overflows; /* the network namespace's */
	struct status_count states[STATUS_NSTATES];
	struct status_worker *procs;
	size_t nprocs;
	struct status_backoff *backoff;
	size_t nbackoff;
	const struct history *history; /* the last reloads, or NULL */
	const struct crashes *crashes; /* the last crashes, or NULL */
	struct status_pool pool;
	uint64_t now_ms; /* the history's clock, for those going on */
};

struct master;

/* status.c: the master's state now into s, whose arrays status_release()
 * frees; -1 when out of memory. */
int status_take(const struct master *m, struct status *s);
void status_release(struct status *s);

/* render.c: s appended to r. */
void status_text(const struct status *s, struct ctl_reply *r);
void status_json(const struct status *s, struct ctl_reply *r);
void status_prometheus(const struct status *s, struct ctl_reply *r);
/* page.c: the status page, HTML that refreshes itself. */
void status_html(const struct status *s, struct ctl_reply *r);
/* Whether the pool is adaptive (its bounds differ). */
int status_adaptive(const struct status *s);

#endif

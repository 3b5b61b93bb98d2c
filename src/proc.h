/*
 * proc.h: the master's process table, one entry per live worker process.
 *
 * A worker's life is a small state machine:
 *
 *   STARTING --READY msg--> READY --QUIT sent--> DRAINING --exit--> (gone)
 *       \                     \                     \
 *        \--TERMINATE sent-----+--------------> STOPPING --exit--> (gone)
 *
 * DRAINING and STOPPING carry a deadline after which the master sends
 * SIGKILL. A passfd program drains on QUIT alone: at its deadline it gets
 * its stop signal and a second, short deadline (enforce_deadlines). Any
 * exit from STARTING or READY is a crash and is respawned.
 */
#ifndef HERD_PROC_H
#define HERD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum proc_state { PS_STARTING, PS_READY, PS_DRAINING, PS_STOPPING };

struct chan;
struct output;

struct proc {
	pid_t pid;
	int pidfd; /* signals go here, never to a pid that may be reused */
	int slot;
	unsigned gen;
	enum proc_state state;
	struct chan *chan; /* the master's end of the channel */
	int inbox_w;	   /* write end of the worker's inbox, for peers */
	int introduced;	   /* its peers and it know each other's inboxes */
	int worker_end;	 /* passfd: a copy of the worker's end of the channel */
	int exec_err;	 /* a program's exec error pipe (read end) */
	int exec_failed; /* it said why it never ran: exec_error */
	int exec_error[2];    /* struct spawn_error: stage, errno */
	uint64_t watchdog_at; /* --watchdog: killed if silent until then */
	int watchdog_trigger; /* it sent WATCHDOG=trigger */
	int recycle; /* past a limit: replaced once its successor is ready */
	uint64_t request_limit; /* --max-requests, with this worker's jitter */
	uint64_t started;	/* ms, monotonic */
	uint64_t
	    deadline;	 /* SIGKILL at this time (DRAINING, STOPPING); 0 none */
	int killed;	 /* SIGKILL sent */
	int signalled;	 /* a program: its stop signal was sent (quit_proc) */
	uint32_t active; /* connections, from the last load report */
	uint64_t total;	 /* connections received, from the same report */
	uint64_t assigned;     /* passfd: connections passed to it */
	unsigned long rss_kib; /* sampled by the master (sample_rss) */
	uint64_t rss_at;       /* when, ms; 0 never */
	struct output *out;    /* a program's stdout and stderr, or NULL */
};

struct proctab {
	struct proc **v; /* pointers, so a proc never moves under a callback */
	size_t n, cap;
};

const char *proc_state_name(enum proc_state s);
/* A new zeroed entry (fds set to -1), or NULL when out of memory. */
struct proc *proc_add(struct proctab *t);
/* Removes p from the table and frees it; the caller closed its fds. */
void proc_remove(struct proctab *t, struct proc *p);
struct proc *proc_by_pid(const struct proctab *t, pid_t pid);
/* The live worker of generation gen in slot, not draining or stopping, nor
 * being recycled (its replacement is the one). */
struct proc *proc_in_slot(const struct proctab *t, unsigned gen, int slot);
/* proc_in_slot for slots 0..nslots-1 at once, into by_slot: one pass over
 * the table, where asking slot by slot is O(slots x table), and with a
 * reload at 512 workers that ran at every event. */
void proc_slots(const struct proctab *t, unsigned gen, struct proc **by_slot,
		int nslots);
void proctab_free(struct proctab *t);

#endif

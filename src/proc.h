/*
 * proc.h: the master's process table, one entry per live worker process,
 * and a worker's lifecycle as data: its states, the events that move it,
 * and what each state means, in one table (proc.c). A worker's state
 * changes in proc_fire() and nowhere else.
 *
 *   STARTING --READY--> READY --LIMIT--> REPLACING
 *      |                  |                  |
 *      +------QUIT--------+------QUIT--------+--> DRAINING --ESCALATE-->
 * SIGNALLED |                  |                  |        | |
 *      +----TERMINATE-----+----TERMINATE-----+--------+------TERMINATE-------+-->
 * STOPPING
 *                         +----WATCHDOG (a program:
 * SIGABRT)----------------------> STOPPING any state but KILLED --KILL (SIGKILL
 * sent)--> KILLED
 *
 * The master does the I/O an event stands for (a QUIT message, a signal)
 * and fires the event; an event a state does not take is logged at debug
 * level and changes nothing, so "READY from a draining worker" is an
 * explicit no. An exit is not an event: what it means follows from the
 * state it left (proc_info()->unasked) and its status (policy_exit()).
 */
#ifndef HERD_PROC_H
#define HERD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum proc_state {
	PS_STARTING,  /* forked, not yet ready (the state of a new entry) */
	PS_READY,     /* serving */
	PS_REPLACING, /* serving, past a recycling limit: it drains once the
			 successor started in its slot is ready */
	PS_DRAINING,  /* told to finish (QUIT): takes nothing new */
	PS_SIGNALLED, /* draining, its stop signal sent: SIGKILL at deadline */
	PS_STOPPING,  /* told to stop at once (TERMINATE or SIGTERM; SIGABRT
			 from the watchdog) */
	PS_KILLED,    /* SIGKILL sent: only its exit is left */
	PS_NSTATES
};

enum proc_event {
	PE_READY,     /* it said READY, or its ready delay passed */
	PE_LIMIT,     /* past --max-requests or --max-rss */
	PE_QUIT,      /* QUIT sent (or, lacking a channel, the stop signal) */
	PE_ESCALATE,  /* its stop signal sent while draining */
	PE_TERMINATE, /* TERMINATE or SIGTERM sent */
	PE_WATCHDOG,  /* a program missed its watchdog: SIGABRT sent */
	PE_KILL,      /* SIGKILL sent */
	PE_NEVENTS
};

/* The four states a binary upgrade hands over (the record's format, read
 * by older and newer images alike), with the killed flag beside them. */
enum proc_wire { WIRE_STARTING, WIRE_READY, WIRE_DRAINING, WIRE_STOPPING };

/* What a state means, for whoever asks; never the enum's order. */
struct proc_info {
	const char *name;	 /* in herd ctl status */
	unsigned serving : 1;	 /* takes connections; watched by --watchdog */
	unsigned holds_slot : 1; /* the slot's worker: none other is started */
	unsigned live : 1;	 /* not told to go: its exit is a crash (or a
				    program's planned exit) */
	unsigned draining : 1;	 /* finishing what it has */
	unsigned in_mesh : 1;	 /* its peers learn of it */
	enum proc_wire wire;	 /* handed over, and the metrics' label */
};

struct chan;
struct output;

struct proc {
	pid_t pid;
	int pidfd; /* signals go here, never to a pid that may be reused */
	int slot;
	unsigned gen;
	enum proc_state state;
	int served; /* its generation served (or came by an upgrade): killing
		       it may cut clients short */
	struct chan *chan; /* the master's end of the channel */
	int inbox_w;	   /* write end of the worker's inbox, for peers */
	int introduced;	   /* its peers and it know each other's inboxes */
	int worker_end;	 /* passfd: a copy of the worker's end of the channel */
	int exec_err;	 /* a program's exec error pipe (read end) */
	int exec_failed; /* it said why it never ran: exec_error */
	int exec_error[2];	/* struct spawn_error: stage, errno */
	uint64_t watchdog_at;	/* --watchdog: killed if silent until then */
	int watchdog_trigger;	/* it sent WATCHDOG=trigger */
	uint64_t request_limit; /* --max-requests, with this worker's jitter */
	uint64_t started;	/* ms, monotonic */
	uint64_t
	    deadline;	 /* SIGKILL at this time (DRAINING, STOPPING); 0 none */
	uint32_t active; /* connections, from the last load report */
	uint64_t total;	 /* connections received, from the same report */
	uint64_t assigned;     /* passfd: connections passed to it */
	unsigned load_slot;    /* 1 + its entry in the load table (load.h) */
	unsigned long rss_kib; /* sampled by the master (sample_rss) */
	uint64_t rss_at;       /* when, ms; 0 never */
	unsigned long long cpu_ticks; /* utime + stime, at rss_at */
	uint64_t cpu_ms;	      /* the same, in ms */
	unsigned cpu_permille;	      /* CPU use between the last two samples */
	struct output *out; /* a program's stdout and stderr, or NULL */
};

struct proctab {
	struct proc **v; /* pointers, so a proc never moves under a callback */
	size_t n, cap;
};

const struct proc_info *proc_info(enum proc_state s);
const char *proc_state_name(enum proc_state s);
const char *proc_event_name(enum proc_event e);
const char *proc_wire_name(enum proc_wire w);
/* Whether p's state takes ev. */
int proc_takes(const struct proc *p, enum proc_event ev);
/* Moves p by ev, the only place a worker's state changes; -1 (logged at
 * debug level, nothing changed) when its state does not take ev. */
int proc_fire(struct proc *p, enum proc_event ev);
/* An upgrade's record of p's state, and back: -1 for a state no image
 * ever sent. */
enum proc_wire proc_wire_state(const struct proc *p, int *killed);
int proc_adopt(struct proc *p, int32_t wire, int32_t killed);
/* A new zeroed entry (fds set to -1), or NULL when out of memory. */
struct proc *proc_add(struct proctab *t);
/* Removes p from the table and frees it; the caller closed its fds. */
void proc_remove(struct proctab *t, struct proc *p);
struct proc *proc_by_pid(const struct proctab *t, pid_t pid);
/* The worker of generation gen that holds slot (starting or ready; not
 * one being replaced: its successor is the one). */
struct proc *proc_in_slot(const struct proctab *t, unsigned gen, int slot);
/* passfd: connections passed to p and not yet reported received by it. */
uint64_t proc_inflight(const struct proc *p);
/* proc_in_slot for slots 0..nslots-1 at once, into by_slot: one pass over
 * the table, where asking slot by slot is O(slots x table), and with a
 * reload at 512 workers that ran at every event. */
void proc_slots(const struct proctab *t, unsigned gen, struct proc **by_slot,
		int nslots);
void proctab_free(struct proctab *t);

#endif

/*
 * proc.c: the process table, a small array of live worker processes
 * searched linearly (a few hundred entries at most; no index to keep
 * consistent), and the lifecycle's state x event table (proc.h).
 */
#include <stdlib.h>

#include "log.h"
#include "proc.h"

/* What each state means; a property, never the enum's order. */
static const struct proc_info info[PS_NSTATES] = {
    /*               name     serving slot live draining mesh wire */
    [PS_STARTING] = {"starting", 0, 1, 1, 0, 1, WIRE_STARTING},
    [PS_READY] = {"ready", 1, 1, 1, 0, 1, WIRE_READY},
    [PS_REPLACING] = {"replacing", 1, 0, 1, 0, 1, WIRE_READY},
    [PS_DRAINING] = {"draining", 0, 0, 0, 1, 1, WIRE_DRAINING},
    [PS_SIGNALLED] = {"signalled", 0, 0, 0, 1, 1, WIRE_DRAINING},
    [PS_STOPPING] = {"stopping", 0, 0, 0, 0, 0, WIRE_STOPPING},
    [PS_KILLED] = {"killed", 0, 0, 0, 0, 0, WIRE_STOPPING},
};

/* state x event: the state it leads to, plus one; 0 where the state does
 * not take the event. */
#define TO(s) ((s) + 1)
static const unsigned char next[PS_NSTATES][PE_NEVENTS] = {
    [PS_STARTING] = {[PE_READY] = TO(PS_READY),
		     [PE_QUIT] = TO(PS_DRAINING),
		     [PE_TERMINATE] = TO(PS_STOPPING),
		     [PE_KILL] = TO(PS_KILLED)},
    [PS_READY] = {[PE_LIMIT] = TO(PS_REPLACING),
		  [PE_QUIT] = TO(PS_DRAINING),
		  [PE_TERMINATE] = TO(PS_STOPPING),
		  [PE_WATCHDOG] = TO(PS_STOPPING),
		  [PE_KILL] = TO(PS_KILLED)},
    [PS_REPLACING] = {[PE_QUIT] = TO(PS_DRAINING),
		      [PE_TERMINATE] = TO(PS_STOPPING),
		      [PE_WATCHDOG] = TO(PS_STOPPING),
		      [PE_KILL] = TO(PS_KILLED)},
    [PS_DRAINING] = {[PE_ESCALATE] = TO(PS_SIGNALLED),
		     [PE_TERMINATE] = TO(PS_STOPPING),
		     [PE_KILL] = TO(PS_KILLED)},
    [PS_SIGNALLED] =
	{[PE_TERMINATE] = TO(PS_STOPPING), [PE_KILL] = TO(PS_KILLED)},
    [PS_STOPPING] = {[PE_KILL] = TO(PS_KILLED)},
    [PS_KILLED] = {0},
};

const struct proc_info *proc_info(enum proc_state s)
{
	return &info[(unsigned)s < PS_NSTATES ? s : PS_KILLED];
}

const char *proc_state_name(enum proc_state s)
{
	return (unsigned)s < PS_NSTATES ? info[s].name : "?";
}

const char *proc_event_name(enum proc_event e)
{
	static const char *const names[PE_NEVENTS] = {
	    [PE_READY] = "ready",	  [PE_LIMIT] = "limit",
	    [PE_QUIT] = "quit",		  [PE_ESCALATE] = "escalate",
	    [PE_TERMINATE] = "terminate", [PE_WATCHDOG] = "watchdog",
	    [PE_KILL] = "kill",
	};

	return (unsigned)e < PE_NEVENTS ? names[e] : "?";
}

const char *proc_wire_name(enum proc_wire w)
{
	static const char *const names[] = {"starting", "ready", "draining",
					    "stopping"};

	return (unsigned)w <= WIRE_STOPPING ? names[w] : "?";
}

int proc_takes(const struct proc *p, enum proc_event ev)
{
	return (unsigned)p->state < PS_NSTATES && (unsigned)ev < PE_NEVENTS &&
	       next[p->state][ev] != 0;
}

int proc_fire(struct proc *p, enum proc_event ev)
{
	enum proc_state to;

	if (!proc_takes(p, ev)) {
		log_debug("worker %d (pid %d): %s while %s: ignored", p->slot,
			  (int)p->pid, proc_event_name(ev),
			  proc_state_name(p->state));
		return -1;
	}
	to = (enum proc_state)(next[p->state][ev] - 1);
	log_debug("worker %d (pid %d): %s, %s -> %s", p->slot, (int)p->pid,
		  proc_event_name(ev), proc_state_name(p->state),
		  proc_state_name(to));
	p->state = to;
	return 0;
}

enum proc_wire proc_wire_state(const struct proc *p, int *killed)
{
	*killed = p->state == PS_KILLED;
	return proc_info(p->state)->wire;
}

/* A worker the image before this one ran: its state as it was handed
 * over, which older images sent as four states and a killed flag. */
int proc_adopt(struct proc *p, int32_t wire, int32_t killed)
{
	static const enum proc_state from[] = {PS_STARTING, PS_READY,
					       PS_DRAINING, PS_STOPPING};

	if (wire < WIRE_STARTING || wire > WIRE_STOPPING)
		return -1;
	p->state = killed ? PS_KILLED : from[wire];
	p->served = 1; /* the record does not say: the costlier guess */
	return 0;
}

struct proc *proc_add(struct proctab *t)
{
	struct proc *p;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct proc **v = realloc(t->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->pidfd = -1;
	p->inbox_w = -1;
	p->worker_end = -1;
	p->exec_err = -1;
	p->slot = -1;
	t->v[t->n++] = p;
	return p;
}

void proc_remove(struct proctab *t, struct proc *p)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i] == p) {
			t->v[i] = t->v[--t->n];
			free(p);
			return;
		}
	}
}

struct proc *proc_by_pid(const struct proctab *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i]->pid == pid)
			return t->v[i];
	return NULL;
}

uint64_t proc_inflight(const struct proc *p)
{
	return p->assigned > p->total ? p->assigned - p->total : 0;
}

struct proc *proc_in_slot(const struct proctab *t, unsigned gen, int slot)
{
	for (size_t i = 0; i < t->n; i++) {
		struct proc *p = t->v[i];

		if (p->gen == gen && p->slot == slot &&
		    info[p->state].holds_slot)
			return p;
	}
	return NULL;
}

void proc_slots(const struct proctab *t, unsigned gen, struct proc **by_slot,
		int nslots)
{
	for (int s = 0; s < nslots; s++)
		by_slot[s] = NULL;
	for (size_t i = 0; i < t->n; i++) {
		struct proc *p = t->v[i];

		if (p->gen == gen && p->slot >= 0 && p->slot < nslots &&
		    by_slot[p->slot] == NULL && info[p->state].holds_slot)
			by_slot[p->slot] = p;
	}
}

void proctab_free(struct proctab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

/*
 * proc.c: the process table: a small array of live worker processes,
 * searched linearly (a few hundred entries at most; no index to keep
 * consistent).
 */
#include <stdlib.h>

#include "proc.h"

const char *proc_state_name(enum proc_state s)
{
	static const char *const names[] = {"starting", "ready", "draining",
					    "stopping"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
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

struct proc *proc_in_slot(const struct proctab *t, unsigned gen, int slot)
{
	for (size_t i = 0; i < t->n; i++) {
		struct proc *p = t->v[i];

		if (p->gen == gen && p->slot == slot && !p->recycle &&
		    (p->state == PS_STARTING || p->state == PS_READY))
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
		    by_slot[p->slot] == NULL && !p->recycle &&
		    (p->state == PS_STARTING || p->state == PS_READY))
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

/*
 * load.c: the workers' load in shared memory (load.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "load.h"
#include "log.h"
#include "proc.h"

struct load_entry {
	_Atomic uint32_t active;
	/* shared mode: accepts on the pool's sockets; watches them now */
	_Atomic uint16_t member, watching;
	_Atomic uint64_t total;
} __attribute__((aligned(64)));

struct load_table {
	_Atomic uint32_t used;	       /* entries ever claimed: scan no more */
	_Atomic uint32_t master_waits; /* passfd: no worker could take one */
	struct load_entry e[LOAD_ENTRIES] __attribute__((aligned(64)));
};

/* The master's, inherited by every worker it forks. */
static struct load_table *table;
static int table_failed;
/* A worker's own entry, or NULL. */
static struct load_entry *mine;

#define RELAXED memory_order_relaxed

static int table_open(void)
{
	void *p;

	if (table != NULL || table_failed)
		return table != NULL ? 0 : -1;
	p = mmap(NULL, sizeof(*table), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("no shared load table (%s): workers report their "
			 "load on their channels",
			 strerror(errno));
		table_failed = 1;
		return -1;
	}
	table = p; /* zeroed by the kernel; lives as long as the process */
	return 0;
}

unsigned load_claim(const struct proctab *t)
{
	unsigned char taken[LOAD_ENTRIES] = {0};
	uint32_t used;

	if (table_open() == -1)
		return 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i]->load_slot > 0)
			taken[t->v[i]->load_slot - 1] = 1;
	for (unsigned i = 0; i < LOAD_ENTRIES; i++) {
		struct load_entry *e = &table->e[i];

		if (taken[i])
			continue;
		atomic_store_explicit(&e->active, 0, RELAXED);
		atomic_store_explicit(&e->member, 0, RELAXED);
		atomic_store_explicit(&e->watching, 0, RELAXED);
		atomic_store_explicit(&e->total, 0, RELAXED);
		used = atomic_load_explicit(&table->used, RELAXED);
		if (i + 1 > used)
			atomic_store_explicit(&table->used, i + 1, RELAXED);
		return i + 1;
	}
	return 0; /* more processes than entries: this one reports */
}

void load_sync(struct proc *p)
{
	struct load_entry *e;

	if (p->load_slot == 0 || table == NULL)
		return;
	e = &table->e[p->load_slot - 1];
	p->active = atomic_load_explicit(&e->active, RELAXED);
	p->total = atomic_load_explicit(&e->total, RELAXED);
}

void load_release(struct proc *p)
{
	load_sync(p);
	if (p->load_slot > 0 && table != NULL) {
		atomic_store_explicit(&table->e[p->load_slot - 1].member, 0,
				      RELAXED);
		atomic_store_explicit(&table->e[p->load_slot - 1].watching, 0,
				      RELAXED);
		atomic_store_explicit(&table->e[p->load_slot - 1].active, 0,
				      RELAXED);
	}
}

/* The fence orders the flag before the master's second look at the
 * counters, as load_poke() orders a worker's counters before its look at
 * the flag: of two that race, one sees the other. */
void load_master_waits(int waits)
{
	if (table == NULL)
		return;
	/* Stored only when it changes: the line is the workers' to read. */
	if (atomic_load_explicit(&table->master_waits, RELAXED) !=
	    (uint32_t)waits)
		atomic_store_explicit(&table->master_waits, (uint32_t)waits,
				      RELAXED);
	if (waits)
		atomic_thread_fence(memory_order_seq_cst);
}

void load_attach(unsigned slot)
{
	mine = slot > 0 && table != NULL ? &table->e[slot - 1] : NULL;
}

int load_attached(void)
{
	return mine != NULL;
}

void load_store(unsigned active, uint64_t total)
{
	if (mine == NULL)
		return;
	atomic_store_explicit(&mine->active, active, RELAXED);
	atomic_store_explicit(&mine->total, total, RELAXED);
}

void load_member(int on)
{
	if (mine != NULL)
		atomic_store_explicit(&mine->member, (uint16_t)on, RELAXED);
}

void load_watching(int on)
{
	if (mine != NULL)
		atomic_store_explicit(&mine->watching, (uint16_t)on, RELAXED);
}

int load_above_share(unsigned active)
{
	static uint32_t start; /* the sample moves on at every look */
	uint32_t used, n = 0, sum = 0, watching = 0;

	if (mine == NULL || active == 0)
		return 0;
	used = atomic_load_explicit(&table->used, RELAXED);
	for (uint32_t k = 0; k < used && k < LOAD_SAMPLE; k++) {
		struct load_entry *e = &table->e[(start + k) % used];

		if (e == mine || !atomic_load_explicit(&e->member, RELAXED))
			continue;
		n++;
		sum += atomic_load_explicit(&e->active, RELAXED);
		watching += atomic_load_explicit(&e->watching, RELAXED);
	}
	start += LOAD_SAMPLE;
	/* Above the mean of the others and this one: active * (n + 1) >
	 * sum + active. Alone, never; nor when no other watches the sockets
	 * now (they all stepped aside, or are full): someone must. */
	return watching > 0 && (uint64_t)active * n > sum;
}

int load_poke(void)
{
	if (table == NULL)
		return 0;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&table->master_waits, RELAXED) == 0)
		return 0;
	atomic_store_explicit(&table->master_waits, 0, RELAXED);
	return 1;
}

/*
 * load.h: the workers' load in shared memory. The master maps one table
 * (MAP_SHARED | MAP_ANONYMOUS) before it forks the first worker; every
 * in-process worker it forks gets an entry of its own, one cache line,
 * where it stores its active connections and the total it took with
 * relaxed atomics (one writer per entry: plain stores, no read-modify-
 * write). The master reads them when it balances (passfd), recycles
 * (--max-requests) and answers `herd ctl status`, without a message;
 * shared-mode workers read their peers' entries to keep to their share.
 *
 * One entry per process, not per slot: a slot holds two processes at
 * once during a reload or a recycling (the old one draining, its
 * successor serving), and each must count its own. A process without an
 * entry (a program, a worker adopted from the previous image after a
 * binary upgrade, or no table at all) reports its load in its heartbeats
 * as before, and the master reads those.
 */
#ifndef HERD_LOAD_H
#define HERD_LOAD_H

#include <stdint.h>

#include "internal.h"

/* Two generations of a full pool at once, as a reload has them. */
#define LOAD_ENTRIES (2 * MAX_WORKERS)

struct proc;
struct proctab;

/* ---- the master -------------------------------------------------------- */

/* A free entry for a new in-process worker, zeroed, as 1 + its index (the
 * value of proc.load_slot), or 0 when there is none (no table: the worker
 * reports instead). Maps the table on first use: call before forking. */
unsigned load_claim(const struct proctab *t);
/* Copies p's shared counters into p->active and p->total (nothing for a
 * process without an entry: its reports set them). */
void load_sync(struct proc *p);
/* p is gone: its last counts are synced and its entry stops counting in
 * the pool's share. */
void load_release(struct proc *p);
/* passfd: the master stops watching the listeners because no worker can
 * take a connection (1), or watches them again (0). While it waits, a
 * worker that frees room says so on its channel (load_poke()). */
void load_master_waits(int waits);

/* ---- a worker ---------------------------------------------------------- */

/* In the new child: its entry (1 + index), or 0 for none. */
void load_attach(unsigned slot);
/* Whether this worker has an entry: when not, it reports its load. */
int load_attached(void);
/* Stores this worker's counts (relaxed). */
void load_store(unsigned active, uint64_t total);
/* Whether this worker counts in the pool's share (shared mode: it accepts
 * on the pool's sockets). */
void load_member(int on);
/* Whether this worker watches the pool's sockets now. */
void load_watching(int on);
/* Whether active connections put this worker above its share of the
 * pool's (the mean over the members, from a sample of at most
 * LOAD_SAMPLE entries) while another member watches the sockets: it
 * should let the others accept for a moment. */
int load_above_share(unsigned active);
/* Whether the master waits for room (and it stops waiting): the caller
 * then tells it, with a heartbeat. A full fence pairs with the master's,
 * so that one of the two sees the other's write. */
int load_poke(void);

#define LOAD_SAMPLE 16

#endif

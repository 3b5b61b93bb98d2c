/*
 * gens.h: the generations alive, as a small table taken from the process
 * table in one pass: the one serving, the one pending (during a reload),
 * and those retiring (draining, stopping, or waiting to be told). A reload
 * at 512 workers ran an O(n^2) scan per exit to find them.
 */
#ifndef HERD_GENS_H
#define HERD_GENS_H

#include <stddef.h>

#include "policy.h"
#include "proc.h"

enum gen_role { GEN_SERVING, GEN_PENDING, GEN_RETIRING };

struct gen_row {
	unsigned gen;
	enum gen_role role;
	unsigned workers;  /* not yet SIGKILLed */
	unsigned draining; /* finishing what they have */
	int served;	   /* it served (killing it may cut clients short) */
};

#define GENS_MAX (2 * GENS_ALIVE)

struct gens {
	struct gen_row v[GENS_MAX];
	size_t n;
	/* Retiring generations; past the array one may count twice, which
	 * only happens when there are more than MAX_DRAINING_GENS anyway. */
	size_t retiring;
};

void gens_take(struct gens *g, const struct proctab *t,
	       const struct pool_facts *pool);
/* Which retiring generation to kill when they are too many: the oldest
 * that never served (a pending generation a newer reload replaced: the
 * fewest clients lost), else the oldest; 0 when none retires. */
unsigned gens_victim(const struct gens *g);

#endif

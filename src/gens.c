/*
 * gens.c: the table of generations alive (gens.h), taken in one pass.
 */
#include "gens.h"

static enum gen_role role(unsigned gen, const struct pool_facts *pool)
{
	if (gen == pool->gen)
		return GEN_SERVING;
	return gen == pool->pending ? GEN_PENDING : GEN_RETIRING;
}

static struct gen_row *row(struct gens *g, unsigned gen,
			   const struct pool_facts *pool)
{
	for (size_t k = 0; k < g->n; k++)
		if (g->v[k].gen == gen)
			return &g->v[k];
	if (role(gen, pool) == GEN_RETIRING)
		g->retiring++;
	if (g->n == GENS_MAX)
		return NULL;
	g->v[g->n] = (struct gen_row){.gen = gen, .role = role(gen, pool)};
	return &g->v[g->n++];
}

void gens_take(struct gens *g, const struct proctab *t,
	       const struct pool_facts *pool)
{
	g->n = 0;
	g->retiring = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct proc *p = t->v[i];
		struct gen_row *r;

		/* A SIGKILLed worker counts no more: only its exit is left. */
		if (p->state == PS_KILLED || (r = row(g, p->gen, pool)) == NULL)
			continue;
		r->workers++;
		r->draining += proc_info(p->state)->draining;
		r->served |= p->served;
	}
}

unsigned gens_victim(const struct gens *g)
{
	unsigned oldest = 0, unserved = 0;

	for (size_t k = 0; k < g->n; k++) {
		const struct gen_row *r = &g->v[k];

		if (r->role != GEN_RETIRING)
			continue;
		if (oldest == 0 || r->gen < oldest)
			oldest = r->gen;
		if (!r->served && (unserved == 0 || r->gen < unserved))
			unserved = r->gen;
	}
	return unserved != 0 ? unserved : oldest;
}

/*
 * peers.c: the worker's peers and what it sends them (peers.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd.h"
#include "log.h"
#include "peers.h"

static void open_one(struct peers *ps, const struct msg_peer *mp, int fd,
		     herd_loop *loop)
{
	struct peer *v;
	struct chan *c;

	for (size_t i = 0; i < ps->n; i++) {
		if (ps->v[i].pid == mp->pid) { /* already known */
			close(fd);
			return;
		}
	}
	v = realloc(ps->v, (ps->n + 1) * sizeof(*v));
	if (v != NULL)
		ps->v = v;
	if (v == NULL || (c = chan_new(fd, 0, loop, NULL, NULL)) == NULL) {
		log_error("peer slot %d: out of memory", mp->slot);
		close(fd);
		return;
	}
	ps->v[ps->n++] = (struct peer){mp->slot, mp->pid, mp->gen, c};
}

/* One msg_peer per fd, in order (msg_decode checked it). */
void peers_open(struct peers *ps, const struct msg *m, herd_loop *loop)
{
	for (int i = 0; i < m->nfds; i++) {
		struct msg_peer mp;

		memcpy(&mp, m->data + (size_t)i * sizeof(mp), sizeof(mp));
		open_one(ps, &mp, m->fds[i], loop);
	}
}

/* A list of msg_peer (msg_decode checked its size). */
void peers_close(struct peers *ps, const struct msg *m)
{
	for (size_t k = 0; k < m->hdr.len / sizeof(struct msg_peer); k++) {
		struct msg_peer mp;

		memcpy(&mp, m->data + k * sizeof(mp), sizeof(mp));
		for (size_t i = 0; i < ps->n; i++) {
			if (ps->v[i].pid == mp.pid) {
				chan_free(ps->v[i].chan);
				ps->v[i] = ps->v[--ps->n];
				break;
			}
		}
	}
}

/* During a reload two generations share slot numbers: the newest wins. */
static struct peer *in_slot(struct peers *ps, int slot)
{
	struct peer *best = NULL;

	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i].slot == slot &&
		    (best == NULL || ps->v[i].gen > best->gen))
			best = &ps->v[i];
	return best;
}

int peers_send(struct peers *ps, const struct msg_hdr *h, const void *data)
{
	struct peer *p;
	int rc = 0;

	if (h->dst == HERD_TO_ALL) {
		for (size_t i = 0; i < ps->n; i++)
			if (chan_send(ps->v[i].chan, h, data, NULL, 0) == -1)
				rc = -1;
		return rc;
	}
	if ((p = in_slot(ps, h->dst)) == NULL) {
		errno = ENOENT;
		return -1;
	}
	return chan_send(p->chan, h, data, NULL, 0);
}

void peers_free(struct peers *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		chan_free(ps->v[i].chan);
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

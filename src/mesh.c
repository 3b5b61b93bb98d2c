/*
 * mesh.c: the peers' open-channel mesh (mesh.h).
 *
 * Introducing each newborn on its own, as nginx does, was one message to
 * every peer per birth and per death: N^2 messages for a reload of N, each
 * waking a worker (8 s at 512 workers, with the master deaf meanwhile).
 * With spawns bounded per turn, a turn now sends about one message per
 * peer, plus a few per newborn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "mesh.h"

static int has_inbox(const struct proc *p)
{
	return p->inbox_w >= 0 && proc_info(p->state)->in_mesh;
}

/* Takes ownership of fds, as chan_send does. */
static void send_list(const struct mesh *mh, struct proc *to, uint32_t type,
		      unsigned gen, const struct msg_peer *v, size_t n,
		      const int *fds, int nfds)
{
	struct msg_hdr hdr = {
	    type, (uint32_t)(n * sizeof(*v)), mh->pid, -1, gen, 0};

	if (n == 0)
		return;
	if (to->chan == NULL) { /* it closed its channel: exiting */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	if (chan_send(to->chan, &hdr, v, fds, nfds) == -1)
		log_debug("%s to worker %d: %s", msg_type_name(type), to->slot,
			  strerror(errno));
}

/* The inboxes of the peers in v (but to's own), MSG_MAX_FDS to a message;
 * dup'ed, since the channel owns what it sends. */
static void send_peers(const struct mesh *mh, struct proc *to, unsigned gen,
		       struct proc **v, size_t n)
{
	struct msg_peer mp[MSG_MAX_FDS];
	int fds[MSG_MAX_FDS], k = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == to)
			continue;
		if ((fds[k] = fcntl(v[i]->inbox_w, F_DUPFD_CLOEXEC, 0)) == -1) {
			log_warn("open channel %d->%d: %s", v[i]->slot,
				 to->slot, strerror(errno));
			continue;
		}
		mp[k++] = (struct msg_peer){v[i]->slot, v[i]->pid, v[i]->gen};
		if (k == MSG_MAX_FDS) {
			send_list(mh, to, MSG_OPEN_CHANNEL, gen, mp, k, fds, k);
			k = 0;
		}
	}
	send_list(mh, to, MSG_OPEN_CHANNEL, gen, mp, (size_t)k, fds, k);
}

void mesh_gone(struct mesh *mh, const struct proc *p)
{
	struct msg_peer *v;

	if (p->inbox_w < 0)
		return;
	if (mh->ngone == mh->cap) {
		size_t cap = mh->cap ? 2 * mh->cap : 64;

		if ((v = realloc(mh->gone, cap * sizeof(*v))) == NULL) {
			log_error("close channel of worker %d: %s", p->slot,
				  strerror(errno));
			return; /* its peers find its inbox closed instead */
		}
		mh->gone = v;
		mh->cap = cap;
	}
	mh->gone[mh->ngone++] = (struct msg_peer){p->slot, p->pid, p->gen};
}

static void send_gone(struct mesh *mh, struct proctab *t, unsigned gen)
{
	for (size_t i = 0; i < t->n && mh->ngone > 0; i++) {
		if (!has_inbox(t->v[i]))
			continue;
		for (size_t k = 0; k < mh->ngone; k += MSG_PEERS_MAX) {
			size_t n = mh->ngone - k;

			send_list(
			    mh, t->v[i], MSG_CLOSE_CHANNEL, gen, mh->gone + k,
			    n < MSG_PEERS_MAX ? n : MSG_PEERS_MAX, NULL, 0);
		}
	}
	mh->ngone = 0;
}

void mesh_update(struct mesh *mh, struct proctab *t, unsigned gen)
{
	struct proc **all, **born;
	size_t n = 0, nb = 0;

	send_gone(mh, t, gen);
	for (size_t i = 0; i < t->n; i++)
		nb += has_inbox(t->v[i]) && !t->v[i]->introduced;
	if (nb == 0)
		return;
	if ((all = malloc(2 * t->n * sizeof(*all))) == NULL) {
		log_error("open channels: %s", strerror(errno));
		return; /* tried again next turn */
	}
	born = all + t->n;
	nb = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (!has_inbox(t->v[i]))
			continue;
		all[n++] = t->v[i];
		if (!t->v[i]->introduced)
			born[nb++] = t->v[i];
	}
	for (size_t i = 0; i < n; i++)
		if (all[i]->introduced)
			send_peers(mh, all[i], gen, born, nb);
		else
			send_peers(mh, all[i], gen, all, n);
	for (size_t i = 0; i < nb; i++)
		born[i]->introduced = 1;
	free(all);
}

void mesh_free(struct mesh *mh)
{
	free(mh->gone);
	mh->gone = NULL;
	mh->ngone = mh->cap = 0;
}

/*
 * report.c: what workers tell the master on their channels: ready, heartbeats
 * (the watchdog's sign of life, and the load of a worker without a shared
 * load entry, load.h), status lines (rate limited).
 */
#include <string.h>

#include "channel.h"
#include "load.h"
#include "log.h"
#include "master.h"

/* A worker's status line, made printable and bounded before it is logged;
 * at most STATUS_BURST lines a second from all workers together, so that a
 * chatty or hostile worker cannot fill the master's disk. */
void log_status(struct master *m, const struct proc *p,
		const unsigned char *data, size_t len)
{
	enum rl_verdict v;
	unsigned long unsaid;
	char text[201];
	size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;

	v = ratelimit(&m->status_rl, herd_loop_now(m->loop), STATUS_BURST,
		      &unsaid);
	if (unsaid > 0)
		log_warn("worker status: %lu lines were not logged", unsaid);
	if (v == RL_DROP_FIRST)
		log_warn("worker status: more than %d lines in a "
			 "second; not logging the rest of it",
			 STATUS_BURST);
	if (v != RL_LOG)
		return;
	for (size_t i = 0; i < n; i++)
		text[i] =
		    data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
	text[n] = '\0';
	log_info("worker %d status: %s", p->slot, text);
}

/* Returns whether p became ready (a starting worker only). */
int mark_ready(struct master *m, struct proc *p)
{
	if (proc_fire(p, PE_READY) == -1)
		return 0;
	p->watchdog_at = herd_loop_now(m->loop) + m->h->watchdog_ms;
	return 1;
}

/* Returns whether the message changed what reconcile() looks at. */
static int worker_message(struct proc *p, const struct msg *msg)
{
	struct msg_load load;

	switch (msg->hdr.type) {
	case MSG_READY:
		return mark_ready(the_master, p);
	case MSG_HEARTBEAT: /* also the in-process watchdog's sign of life */
		p->watchdog_at = herd_loop_now(the_master->loop) +
				 the_master->h->watchdog_ms;
		memcpy(&load, msg->data, sizeof(load));
		p->active = load.active;
		p->total = load.total;
		load_sync(
		    p); /* the shared counts, fresher, where it has some */
		/* --max-requests reached: reconcile() starts its successor */
		return the_master->h->max_requests &&
		       p->state != PS_REPLACING &&
		       !the_master->h->kind->master_counts &&
		       p->total >= p->request_limit;
	case MSG_RELAY:
		relay_connection(the_master, p, msg);
		break;
	case MSG_APP:
		if (msg->hdr.dst == HERD_TO_MASTER)
			log_status(the_master, p, msg->data, msg->hdr.len);
		break;
	default: /* the channel accepts no other type */
		break;
	}
	return 0;
}

/* A worker is gone: what it sent and the master has not read yet is read
 * now, before its channel closes, since closing would drop the fds of its
 * last relays (the connections it handed on as it drained). */
void worker_chan_last(struct proc *p)
{
	struct msg msg;

	if (p->chan == NULL)
		return;
	for (int i = 0; i < CHAN_QUEUE_MAX && chan_recv(p->chan, &msg) == 1;
	     i++)
		worker_message(p, &msg);
}

void on_worker_chan(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct master *m = the_master;
	struct proc *p = arg;
	struct msg msg;
	int r = 0, changed = 0;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < RECV_BATCH; i++) {
		if ((r = chan_recv(p->chan, &msg)) != 1)
			break;
		changed |= worker_message(p, &msg);
	}
	if (r == -1) {
		/* The worker is exiting (or closed its end): SIGCHLD follows,
		 * and signals still reach it through its pidfd. */
		log_debug("worker %d (pid %d) closed its channel", p->slot,
			  (int)p->pid);
		chan_free(p->chan);
		p->chan = NULL;
		changed = 1;
	}
	/* Heartbeats alone change nothing but passfd's view of the load: no
	 * O(workers^2) pass for them. */
	if (changed)
		reconcile(m);
	else
		m->h->conn->dispatch(m);
}

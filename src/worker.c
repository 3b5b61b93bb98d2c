/*
 * worker.c: the in-process worker runtime: an event loop with the master
 * channel, the inbox from peer workers, the listening sockets (shared mode:
 * every worker accepts on the same sockets, woken one at a time by
 * EPOLLEXCLUSIVE), its own signals, and the application's fds. Its peers
 * (the other workers' inboxes) are in peers.c.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "channel.h"
#include "ebpf.h"
#include "internal.h"
#include "load.h"
#include "log.h"
#include "loop.h"
#include "mode.h"
#include "peers.h"
#include "rights.h"
#include "worker.h"

#define HEARTBEAT_MS   1000
#define LOAD_REPORT_MS 20   /* at most this often a load change is reported */
#define RECV_BATCH     64   /* channel messages per wake-up */
#define SWEEP_MAX      4096 /* a listener's backlog, as listen.c asks */
#define YIELD_MS       1    /* above its share: let others accept this long */

void worker_finish(herd_worker *w, int code)
{
	w->done = 1;
	w->exit_code = code;
	loop_stop(w->loop);
}

void herd_worker_stop(herd_worker *w)
{
	worker_finish(w, 0);
}

static void load_changed(herd_worker *w);
static void accept_update(herd_worker *w);

/* Whether fd may hold fds a peer queued that the kernel let through. */
static int may_hold_rights(int fd)
{
	int domain;
	socklen_t len = sizeof(domain);

	if (rights_at_source())
		return 0;
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	       domain == AF_UNIX;
}

/* The close itself takes the fd out of the loop's epoll set (nginx relies
 * on the same): one syscall less per connection than EPOLL_CTL_DEL first.
 * A socket handed to the closing thread still lives, so its registration
 * is removed properly. */
void herd_conn_close(herd_worker *w, int fd)
{
	if (may_hold_rights(fd)) {
		if (w->loop != NULL && loop_has(w->loop, fd))
			herd_loop_del(w->loop, fd);
		rights_close(fd);
	} else {
		if (w->loop != NULL)
			loop_forget(w->loop, fd);
		if (close(fd) == -1 && errno != EINTR)
			log_warn("close connection fd %d: %s", fd,
				 strerror(errno));
	}
	worker_gave(w);
}

void worker_gave(herd_worker *w)
{
	if (w->active > 0)
		w->active--;
	load_changed(w);
	if (w->draining && w->active == 0)
		worker_finish(w, 0);
	else if (w->full || w->yielding)
		accept_update(w);
}

void worker_took(herd_worker *w)
{
	w->active++;
	w->total++;
	load_changed(w);
}

/* ---- messages out -------------------------------------------------------- */

static struct msg_hdr header(const herd_worker *w, uint32_t type, size_t len,
			     int dst)
{
	struct msg_hdr h = {type, (uint32_t)len, w->pid, w->slot, w->gen, dst};

	return h;
}

static void send_master(herd_worker *w, uint32_t type, const void *data,
			size_t len)
{
	struct msg_hdr h = header(w, type, len, HERD_TO_MASTER);

	if (chan_send(w->master, &h, data, NULL, 0) == -1)
		log_warn("%s to master not sent: %s", msg_type_name(type),
			 strerror(errno));
}

int herd_worker_send(herd_worker *w, int to, const void *data, size_t len)
{
	struct msg_hdr h = header(w, MSG_APP, len, to);

	if (len > HERD_MSG_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (to == HERD_TO_MASTER)
		return chan_send(w->master, &h, data, NULL, 0);
	return peers_send(&w->peers, &h, data);
}

static void send_load(herd_worker *w)
{
	struct msg_load load = {w->active, 0, w->total};

	send_master(w, MSG_HEARTBEAT, &load, sizeof(load));
}

/* Every second, or three times per watchdog period when that is shorter:
 * the master's watchdog takes silence for a stuck loop. */
static uint64_t heartbeat_ms(const herd_worker *w)
{
	uint64_t wd = w->h->watchdog_ms / 3;

	if (wd == 0 || wd >= HEARTBEAT_MS)
		return HEARTBEAT_MS;
	return wd < 10 ? 10 : wd;
}

static void send_heartbeat(herd_loop *l, herd_timer *t, void *arg)
{
	herd_worker *w = arg;

	(void)l;
	send_load(w);
	herd_timer_start(t, heartbeat_ms(w));
}

static void send_report(herd_loop *l, herd_timer *t, void *arg)
{
	(void)l;
	(void)t;
	send_load(arg);
}

/* The counts go to the shared table at once (load.h): the master reads
 * them there. A report still follows within LOAD_REPORT_MS when the
 * master recycles by count (--max-requests), as only a message wakes it.
 * Without an entry, the reports are all the master has: in passfd mode,
 * which it balances by them, a change goes out on the loop's next turn
 * (a close reported 20 ms late kept a worker looking busy while the
 * other got every connection: busiest 64% of /whoami; then at most 51%).
 * A full passfd worker that frees room tells a master waiting for it. */
static void load_changed(herd_worker *w)
{
	int passes = w->h->conn->passes;

	load_store(w->active, w->total);
	if (load_attached() && passes && w->h->max_conns && load_poke())
		send_load(w);
	if (load_attached() && !w->h->max_requests)
		return;
	if (w->report != NULL && !herd_timer_active(w->report))
		herd_timer_start(
		    w->report, passes && !load_attached() ? 0 : LOAD_REPORT_MS);
}

/* ---- accepting ----------------------------------------------------------- */

static void on_accept(herd_loop *l, int fd, unsigned events, void *arg);

static void listeners_watch(herd_worker *w, int on)
{
	for (size_t i = 0; i < w->h->naddrs; i++) {
		int fd = w->h->addrs[i].fd;

		if (fd < 0)
			continue;
		if (on && loop_add_flags(w->loop, fd, HERD_READ, EPOLLEXCLUSIVE,
					 on_accept, w) == -1)
			log_error("watch listener %s: %s", w->h->addrs[i].text,
				  strerror(errno));
		if (!on && w->loop != NULL && loop_has(w->loop, fd))
			herd_loop_del(w->loop, fd);
	}
	w->accepting = on;
	load_watching(on);
}

/* Watches the listeners exactly while this worker should accept: not
 * draining, not paused for want of fds, below --max-connections and not
 * above its share of the pool's load. */
static void accept_update(herd_worker *w)
{
	unsigned max = w->h->max_conns;

	if (w->full && w->active < max)
		w->full = 0;
	if (w->draining || w->done || herd_timer_active(w->resume) || w->full ||
	    w->yielding) {
		if (w->accepting)
			listeners_watch(w, 0);
	} else if (!w->accepting) {
		listeners_watch(w, 1);
	}
}

static void resume_accept(herd_loop *l, herd_timer *t, void *arg)
{
	(void)l;
	(void)t;
	accept_update(arg);
}

static void yield_over(herd_loop *l, herd_timer *t, void *arg)
{
	herd_worker *w = arg;

	(void)l;
	(void)t;
	w->yielding = 0;
	accept_update(w);
}

/* After each connection taken: whether to stop taking more now. At
 * --max-connections the worker stops until one closes (nginx's
 * worker_connections). In shared mode, a worker that the new connection
 * puts above the mean of the pool's active connections steps aside for
 * YIELD_MS, so that the kernel's EPOLLEXCLUSIVE wake-ups, which go to the
 * first idle waiter, reach the others, and so that the ready listener a
 * busy worker finds on its way back to epoll_wait (the kernel queued it
 * there while waking another) is not taken from the one woken for it.
 * Ending the pause at once, when the worker got back to its share,
 * still left one worker 2/3 of the connections: the pause is the point.
 * Re-watching puts it last in the socket's wait queue, too. (nginx's
 * ngx_accept_disabled, which needs its accept mutex, keeps a worker out
 * for a count of turns by a fixed threshold.) */
static int accept_enough(herd_worker *w)
{
	unsigned active = w->active + 1; /* with the one just accepted: the
					  * application may serve and close it
					  * before this would look */

	if (w->h->max_conns && active >= w->h->max_conns)
		w->full = 1;
	else if (w->shares && load_above_share(active)) {
		w->yielding = 1;
		herd_timer_start(w->yield, YIELD_MS);
	} else
		return 0;
	/* Not accept_update(): w->active does not count the new one yet. */
	if (w->accepting)
		listeners_watch(w, 0);
	return 1;
}

/* Out of fds (or memory): stop watching the sockets for a moment instead of
 * spinning on a level-triggered readiness that accept cannot consume. The
 * connection stays in the backlog, and with EPOLLEXCLUSIVE the kernel wakes
 * another worker for it. Logged once per starvation episode. */
static void accept_starved(herd_worker *w, int e)
{
	if (accept_pause(&w->starved, herd_loop_now(w->loop)))
		log_warn("accept: %s; pausing accepts for %d ms at a time",
			 strerror(e), ACCEPT_PAUSE_MS);
	herd_timer_start(w->resume, ACCEPT_PAUSE_MS);
	accept_update(w);
}

static void starvation_over(herd_worker *w)
{
	uint64_t ms;
	unsigned long pauses;

	if (accept_resumed(&w->starved, herd_loop_now(w->loop), &ms, &pauses))
		log_info("accept: fds available again after %llu ms (%lu "
			 "pauses)",
			 (unsigned long long)ms, pauses);
}

static void got_connection(herd_worker *w, int fd)
{
	worker_took(w);
	if (w->h->on_connection != NULL)
		w->h->on_connection(w, fd, w->h->ud);
	else
		herd_conn_close(w, fd);
}

static void on_accept(herd_loop *l, int lfd, unsigned events, void *arg)
{
	herd_worker *w = arg;
	int enough;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && w->accepting && !w->done; i++) {
		int fd = addr_accept(lfd);

		if (fd == -1) {
			if (errno != EAGAIN)
				accept_starved(w, errno);
			return;
		}
		starvation_over(w);
		ebpf_steer_accepted(w->h, w->slot, lfd); /* its load drops */
		enough = accept_enough(w);
		got_connection(w, fd);
		if (enough)
			return;
	}
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Closes this worker's copies of the listening sockets: the master keeps
 * its own, so the backlog survives for the other workers. */
static void listeners_close(herd_worker *w)
{
	listeners_watch(w, 0);
	for (size_t i = 0; i < w->h->naddrs; i++) {
		if (w->h->addrs[i].fd >= 0)
			close(w->h->addrs[i].fd);
		w->h->addrs[i].fd = -1;
	}
}

/* reuseport: a slot's socket is the worker's own. When the slot is being
 * retired, the master steered new connections away from it before asking
 * the worker to drain: what is already queued there is taken and served
 * now; left queued, it would be reset when the socket closes. On a reload
 * the next generation's worker shares the socket and new connections keep
 * coming, so the sweep may take some more; SWEEP_MAX bounds it. */
static void listeners_sweep(herd_worker *w)
{
	if (!w->h->conn->slot_sockets)
		return;
	for (size_t i = 0; i < w->h->naddrs; i++) {
		int lfd = w->h->addrs[i].fd, fd;

		if (lfd < 0 || !w->h->addrs[i].reuseport)
			continue;
		for (int k = 0; k < SWEEP_MAX && !w->done; k++) {
			if ((fd = addr_accept(lfd)) == -1)
				break;
			ebpf_steer_accepted(w->h, w->slot, lfd);
			got_connection(w, fd);
		}
	}
}

void start_drain(herd_worker *w)
{
	if (w->draining)
		return;
	w->draining = 1;
	load_member(0); /* the pool's share is the others' now */
	listeners_sweep(w);
	log_debug("draining %u connections", w->active);
	listeners_close(w);
	herd_timer_stop(w->resume);
	herd_timer_stop(w->yield);
	if (w->h->on_drain != NULL)
		w->h->on_drain(w, w->h->ud);
	if (w->active == 0)
		worker_finish(w, 0);
}

/* ---- messages in --------------------------------------------------------- */

static void from_master(herd_worker *w, const struct msg *m)
{
	switch (m->hdr.type) {
	case MSG_OPEN_CHANNEL:
		peers_open(&w->peers, m, w->loop);
		break;
	case MSG_CLOSE_CHANNEL:
		peers_close(&w->peers, m);
		break;
	case MSG_QUIT:
		if (m->hdr.len == sizeof(struct msg_quit)) {
			struct msg_quit q;

			memcpy(&q, m->data, sizeof(q));
			w->relay_ok = q.pool_goes_on == 1;
		}
		start_drain(w);
		break;
	case MSG_TERMINATE:
		worker_finish(w, 0);
		break;
	case MSG_REOPEN: /* the master's reopened file: a worker running as
			  * another user may not be able to open the path */
		if (m->nfds == 1 ? log_adopt(m->fds[0]) : log_reopen())
			log_error("cannot reopen the log: %s", strerror(errno));
		break;
	case MSG_CONNECTION: /* passfd; served even while draining */
	case MSG_CONNECTIONS:
		for (int i = 0; i < m->nfds; i++)
			got_connection(w, m->fds[i]);
		break;
	case MSG_RELAY:
		worker_relayed(w, m);
		break;
	default: /* the channel accepts no other type */
		break;
	}
}

static void resume_master(herd_loop *l, herd_timer *t, void *arg)
{
	herd_worker *w = arg;

	(void)l;
	(void)t;
	chan_pause(w->master, 0); /* on_master probes again */
}

/* Out of fds with messages waiting: leave them in the channel (the master
 * sees this worker's connections in flight reach their cap and passes new
 * ones to others, or leaves them in the backlog) and look again later. */
static void master_starved(herd_worker *w)
{
	if (accept_pause(&w->chan_starved, herd_loop_now(w->loop)))
		log_warn("channel: %s; leaving the master's messages queued, "
			 "looking again every %d ms",
			 strerror(errno), ACCEPT_PAUSE_MS);
	chan_pause(w->master, 1);
	herd_timer_start(w->chan_resume, ACCEPT_PAUSE_MS);
}

/* A batch of connections short of MSG_CONN_BATCH: the master's accepts
 * found the backlog empty, so another message is unlikely to be queued
 * behind it. Reading on until EAGAIN would cost a recvmsg per batch, and
 * the loop, level-triggered, comes back for whatever does wait. */
static int batch_ended(const struct msg *m)
{
	return (m->hdr.type == MSG_CONNECTION ||
		m->hdr.type == MSG_CONNECTIONS) &&
	       m->nfds < MSG_CONN_BATCH;
}

static void on_master(herd_loop *l, int fd, unsigned events, void *arg)
{
	herd_worker *w = arg;
	uint64_t before = w->total, ms;
	struct msg m;
	int r = 0;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < RECV_BATCH && !w->done; i++) {
		/* No room for a message's fd (chan_room): leave it queued.
		 * Another probe error is not starvation; the read goes on. */
		if (!chan_room_ahead(w->master, MSG_CONN_BATCH) &&
		    (errno == EMFILE || errno == ENFILE)) {
			master_starved(w);
			break;
		}
		if (accept_resumed(&w->chan_starved, herd_loop_now(w->loop),
				   &ms, NULL))
			log_info("channel: fds available again after %llu ms",
				 (unsigned long long)ms);
		if ((r = chan_recv(w->master, &m)) != 1)
			break;
		from_master(w, &m);
		if (batch_ended(&m))
			break;
	}
	/* passfd: the master counts connections in flight to this worker
	 * until it sees they arrived, and stops passing at a cap. It reads
	 * the shared counts, and needs a word only when it stopped for want
	 * of room; without an entry, a report after every batch keeps that
	 * count true at any rate (a report on the 20 ms timer capped the
	 * whole pool at cap/20 ms per worker). */
	if (w->total != before && !w->done &&
	    (!load_attached() || load_poke())) {
		herd_timer_stop(w->report);
		send_load(w);
	}
	if (r == -1 && !w->done) {
		log_warn("master channel closed; exiting");
		worker_finish(w, 1);
	}
}

static void on_inbox(herd_loop *l, int fd, unsigned events, void *arg)
{
	herd_worker *w = arg;
	struct msg m;
	int r = 0;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < RECV_BATCH && !w->done; i++) {
		if ((r = chan_recv(w->inbox, &m)) != 1)
			break;
		if (w->h->on_message != NULL) /* MSG_APP: all it accepts */ {
			w->h->on_message(w, m.hdr.slot, m.data, m.hdr.len,
					 w->h->ud);
		}
	}
	/* The master holds a write end, so a real end of file cannot come
	 * while it lives; an empty datagram from a peer looks the same. */
	if (r == -1)
		log_debug("inbox: empty message or error ignored");
}

/* ---- main --------------------------------------------------------------- */

static int worker_init(herd_worker *w, int chan_fd, int inbox_fd)
{
	if ((w->loop = loop_new()) == NULL || worker_signals(w) == -1)
		return -1;
	w->master = chan_new(chan_fd, MSG_TO_WORKER, w->loop, on_master, w);
	if (w->master == NULL)
		return -1;
	/* No inbox when no worker reads peers' messages (no on_message). */
	if (inbox_fd >= 0 &&
	    (w->inbox =
		 chan_new(inbox_fd, MSG_TO_PEER, w->loop, on_inbox, w)) == NULL)
		return -1;
	w->heartbeat = herd_timer_new(w->loop, send_heartbeat, w);
	w->resume = herd_timer_new(w->loop, resume_accept, w);
	w->report = herd_timer_new(w->loop, send_report, w);
	w->chan_resume = herd_timer_new(w->loop, resume_master, w);
	w->yield = herd_timer_new(w->loop, yield_over, w);
	if (w->heartbeat == NULL || w->resume == NULL || w->report == NULL ||
	    w->chan_resume == NULL || w->yield == NULL)
		return -1;
	w->shares = !w->h->conn->passes && !w->h->conn->slot_sockets;
	return 0;
}

static void worker_free(herd_worker *w)
{
	peers_free(&w->peers);
	if (w->master != NULL)
		chan_flush(w->master); /* relayed connections still queued */
	chan_free(w->master);
	chan_free(w->inbox);
	listeners_close(w);
	if (w->sigfd >= 0)
		close(w->sigfd);
	loop_free(w->loop);
}

int worker_main(herd *h, int slot, unsigned gen, int chan_fd, int inbox_fd)
{
	herd_worker w = {.h = h, .slot = slot, .gen = gen, .sigfd = -1};

	w.pid = getpid();
	log_set_role("worker %d", slot);
	if (worker_init(&w, chan_fd, inbox_fd) == -1) {
		log_error("worker start-up failed: %s", strerror(errno));
		worker_free(&w);
		return 1;
	}
	if (h->on_start != NULL && h->on_start(&w, h->ud) != 0) {
		log_error("start callback failed; exiting with status %d",
			  HERD_EXIT_CONFIG);
		worker_free(&w);
		return HERD_EXIT_CONFIG;
	}
	load_member(w.shares);
	listeners_watch(&w, 1);
	send_master(&w, MSG_READY, NULL, 0);
	herd_timer_start(w.heartbeat, heartbeat_ms(&w));
	if (loop_run(w.loop) == -1)
		w.exit_code = 1;
	if (h->on_stop != NULL)
		h->on_stop(&w, h->ud);
	worker_free(&w);
	return w.exit_code;
}

/*
 * channel.c: framing, validation, queueing and fd passing for the
 * master/worker channels and the worker inboxes.
 *
 * Sending never blocks: a message is appended to the channel's queue and
 * the queue is flushed until the socket says EAGAIN; the channel then
 * watches for EPOLLOUT and only for as long as something is queued.
 * Receiving trusts nothing: see msg_decode().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "cmsg.h"
#include "log.h"
#include "loop.h"
#include "ratelimit.h"
#include "rights.h"

unsigned long msg_refused[MSG_ERR_END];

#define RECV_REFUSED_MAX 256 /* datagrams looked at per chan_recv call */

struct qmsg {
	struct qmsg *next;
	size_t len;
	int fds[MSG_MAX_FDS];
	int nfds;
	unsigned char buf[]; /* header and payload */
};

struct chan {
	int fd;
	int dead; /* the peer is gone: nothing more is sent */
	uint32_t accept;
	herd_loop *loop;
	herd_io_fn fn;
	void *arg;
	unsigned events; /* registered with the loop; 0: not registered */
	int paused;	 /* not reading for now (chan_pause) */
	int room;	 /* fds chan_room_ahead() counts on still */
	struct qmsg *head, *tail;
	size_t queued;
	unsigned long refused;
};

/* What each type may carry: payload size range and fd count range; for a
 * payload that is a list, the size of one item (and whether each item
 * describes one fd, in order). */
static const struct rule {
	const char *name;
	uint32_t min, max;
	int minfds, maxfds;
	uint32_t item;
	int item_per_fd;
} rules[MSG_TYPE_END] = {
    [MSG_OPEN_CHANNEL] = {"open-channel", sizeof(struct msg_peer),
			  MSG_MAX_FDS * sizeof(struct msg_peer), 1, MSG_MAX_FDS,
			  sizeof(struct msg_peer), 1},
    [MSG_CLOSE_CHANNEL] = {"close-channel", sizeof(struct msg_peer),
			   MSG_PEERS_MAX * sizeof(struct msg_peer), 0, 0,
			   sizeof(struct msg_peer), 0},
    [MSG_QUIT] = {"quit", 0, sizeof(struct msg_quit), 0, 0, 0, 0},
    [MSG_TERMINATE] = {"terminate", 0, 0, 0, 0, 0, 0},
    [MSG_REOPEN] = {"reopen", 0, 0, 0, 1, 0, 0}, /* the reopened log file */
    [MSG_READY] = {"ready", 0, 0, 0, 0, 0, 0},
    [MSG_HEARTBEAT] = {"heartbeat", sizeof(struct msg_load),
		       sizeof(struct msg_load), 0, 0, 0, 0},
    [MSG_APP] = {"app", 0, MSG_PAYLOAD_MAX, 0, 0, 0, 0},
    [MSG_CONNECTION] = {"connection", 0, 0, 1, 1, 0, 0},
    [MSG_CONNECTIONS] = {"connections", 0, 0, 1, MSG_CONN_BATCH, 0, 0},
    [MSG_RELAY] = {"relay", 0, HERD_RELAY_MAX, 1, 1, 0, 0},
};

static const char *const error_names[MSG_ERR_END] = {
    [MSG_OK] = "ok",
    [MSG_ERR_SHORT] = "shorter than a header",
    [MSG_ERR_TRUNC] = "longer than the largest message",
    [MSG_ERR_CTRUNC] = "more fds than a message may carry",
    [MSG_ERR_LENGTH] = "length field disagrees with the message",
    [MSG_ERR_TYPE] = "unknown type",
    [MSG_ERR_SIZE] = "payload size wrong for its type",
    [MSG_ERR_FDS] = "fd count wrong for its type",
    [MSG_ERR_CMSG] = "unexpected control message",
    [MSG_ERR_DIRECTION] = "a type this end does not receive",
};

const char *msg_type_name(uint32_t type)
{
	if (type == 0 || type >= MSG_TYPE_END)
		return "unknown";
	return rules[type].name;
}

const char *msg_error_name(enum msg_error e)
{
	return (unsigned)e < MSG_ERR_END ? error_names[e] : "?";
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* The checks in the order an attacker would probe them; the first failure
 * wins. Nothing of the payload is read before the length is known good. */
static enum msg_error check(const struct msg_hdr *h, size_t n, int flags,
			    int nfds, int bad_cmsg, uint32_t accept)
{
	const struct rule *r;

	if (flags & MSG_CTRUNC)
		return MSG_ERR_CTRUNC;
	if (bad_cmsg)
		return MSG_ERR_CMSG;
	if (flags & MSG_TRUNC)
		return MSG_ERR_TRUNC;
	if (n < sizeof(*h))
		return MSG_ERR_SHORT;
	if (h->len != n - sizeof(*h))
		return MSG_ERR_LENGTH;
	if (h->type == 0 || h->type >= MSG_TYPE_END)
		return MSG_ERR_TYPE;
	r = &rules[h->type];
	if (h->len < r->min || h->len > r->max ||
	    (r->item && h->len % r->item != 0))
		return MSG_ERR_SIZE;
	if (nfds < r->minfds || nfds > r->maxfds ||
	    (r->item_per_fd && h->len != (uint32_t)nfds * r->item))
		return MSG_ERR_FDS;
	if (!(accept & MSG_BIT(h->type)))
		return MSG_ERR_DIRECTION;
	return MSG_OK;
}

enum msg_error msg_decode(const void *buf, size_t n, int flags, const int *fds,
			  int nfds, int bad_cmsg, uint32_t accept,
			  struct msg *m)
{
	struct msg_hdr h = {0};
	enum msg_error e;

	memcpy(&h, buf, n < sizeof(h) ? n : sizeof(h));
	e = check(&h, n, flags, nfds, bad_cmsg, accept);
	m->nfds = 0;
	if (e != MSG_OK) {
		rights_close_all(fds, nfds); /* a peer's: may not block */
		return e;
	}
	m->hdr = h;
	memcpy(m->data, (const unsigned char *)buf + sizeof(h), h.len);
	if (nfds > 0)
		memcpy(m->fds, fds, (size_t)nfds * sizeof(int));
	m->nfds = nfds;
	return MSG_OK;
}

/* ---- channel objects -------------------------------------------------------
 */

static void chan_io(herd_loop *l, int fd, unsigned events, void *arg);

/* Keeps the loop registration equal to what the channel needs now. */
static void update_events(struct chan *c)
{
	unsigned want = (c->fn && !c->paused ? HERD_READ : 0u) |
			(c->head && !c->dead ? HERD_WRITE : 0u);
	int rc = 0;

	if (c->loop == NULL || want == c->events)
		return;
	if (want == 0)
		rc = herd_loop_del(c->loop, c->fd);
	else if (c->events == 0)
		rc = herd_loop_add(c->loop, c->fd, want, chan_io, c);
	else
		rc = herd_loop_mod(c->loop, c->fd, want);
	if (rc == -1) {
		log_error("channel fd %d: epoll: %s", c->fd, strerror(errno));
		return;
	}
	c->events = want;
}

struct chan *chan_new(int fd, uint32_t accept, herd_loop *loop, herd_io_fn fn,
		      void *arg)
{
	struct chan *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->accept = accept;
	c->loop = loop;
	c->fn = fn;
	c->arg = arg;
	update_events(c);
	if (fn != NULL && c->events == 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void drop_queue(struct chan *c)
{
	struct qmsg *q, *next;

	for (q = c->head; q != NULL; q = next) {
		next = q->next;
		/* Never sent: ours may be the last reference to a client's
		 * unix connection, with fds queued on it. */
		rights_close_all(q->fds, q->nfds);
		free(q);
	}
	c->head = c->tail = NULL;
	c->queued = 0;
}

void chan_free(struct chan *c)
{
	if (c == NULL)
		return;
	drop_queue(c);
	if (c->events != 0)
		herd_loop_del(c->loop, c->fd);
	rights_close(c->fd); /* what the peer queued on it goes with it */
	free(c);
}

int chan_fd(const struct chan *c)
{
	return c->fd;
}

void chan_pause(struct chan *c, int paused)
{
	c->paused = paused;
	update_events(c);
}

int chan_room(const struct chan *c)
{
	int probe = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);

	if (probe == -1)
		return 0;
	close(probe);
	return 1;
}

/* The soft fd limit, read again when a probe says it changed. */
static long fd_limit(int again)
{
	static long limit;
	struct rlimit rl;

	if ((limit == 0 || again) && getrlimit(RLIMIT_NOFILE, &rl) == 0)
		limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX
			    ? INT_MAX
			    : (long)rl.rlim_cur;
	return limit;
}

int chan_room_for(const struct chan *c, int n)
{
	for (int again = 0; again < 2; again++) {
		long from = fd_limit(again) - n;
		int probe;

		if (n <= 1 || from <= 0)
			return chan_room(c);
		/* The lowest free fd from `from` up must be `from` itself:
		 * the kernel fills the table lowest first, so the n above
		 * it are free too. A free fd higher up says only that one
		 * fd fits. */
		probe = fcntl(c->fd, F_DUPFD_CLOEXEC, (int)from);
		if (probe >= 0) {
			close(probe);
			if (probe == from)
				return 1;
			errno = EMFILE; /* unless the limit was raised */
			continue;
		}
		if (errno != EMFILE && errno != EINVAL)
			return 0; /* EINVAL: the limit fell below from */
	}
	return 0;
}

int chan_room_ahead(struct chan *c, int n)
{
	if (c->room >= n)
		return 1;
	c->room = 0;
	if (fd_limit(0) > 2 * CHAN_ROOM_AHEAD &&
	    chan_room_for(c, CHAN_ROOM_AHEAD)) {
		c->room = CHAN_ROOM_AHEAD - CHAN_ROOM_SLACK;
		return 1;
	}
	return chan_room_for(c, n);
}

size_t chan_queued(const struct chan *c)
{
	return c->queued;
}

int chan_dead(const struct chan *c)
{
	return c->dead;
}

/* ---- sending ------------------------------------------------------------- */

ssize_t msg_sendraw(int fd, const void *buf, size_t len, const int *fds,
		    int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MSG_RAW_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds < 0 || nfds > MSG_RAW_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n;
}

static void pop(struct chan *c)
{
	struct qmsg *q = c->head;

	c->head = q->next;
	if (c->head == NULL)
		c->tail = NULL;
	c->queued--;
	close_fds(q->fds, q->nfds);
	free(q);
}

static int peer_gone(int e)
{
	return e == EPIPE || e == ECONNRESET || e == ECONNREFUSED ||
	       e == ENOTCONN;
}

int chan_flush(struct chan *c)
{
	while (c->head != NULL && !c->dead) {
		struct qmsg *q = c->head;

		if (msg_sendraw(c->fd, q->buf, q->len, q->fds, q->nfds) >= 0) {
			pop(c);
			continue;
		}
		if (errno == EAGAIN)
			break;
		if (peer_gone(errno)) {
			c->dead = 1;
			drop_queue(c);
			break;
		}
		/* ETOOMANYREFS, ENOMEM...: this message cannot go; the next
		 * may. Dropping it beats retrying it forever. */
		log_warn("channel fd %d: %s message dropped: %s", c->fd,
			 msg_type_name(((struct msg_hdr *)c->head->buf)->type),
			 strerror(errno));
		pop(c);
	}
	update_events(c);
	if (c->dead) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

int chan_send(struct chan *c, const struct msg_hdr *hdr, const void *data,
	      const int *fds, int nfds)
{
	size_t len = sizeof(*hdr) + hdr->len;
	struct qmsg *q;
	int e = 0;

	if (c->dead)
		e = EPIPE;
	else if (hdr->len > MSG_PAYLOAD_MAX || nfds > MSG_MAX_FDS)
		e = EMSGSIZE;
	else if (c->queued >= CHAN_QUEUE_MAX)
		e = ENOBUFS;
	else if ((q = malloc(sizeof(*q) + len)) == NULL)
		e = ENOMEM;
	if (e != 0) {
		close_fds(fds, nfds);
		errno = e;
		return -1;
	}
	q->next = NULL;
	q->len = len;
	q->nfds = nfds;
	if (nfds > 0)
		memcpy(q->fds, fds, (size_t)nfds * sizeof(int));
	memcpy(q->buf, hdr, sizeof(*hdr));
	if (hdr->len > 0)
		memcpy(q->buf + sizeof(*hdr), data, hdr->len);
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->queued++;
	return chan_flush(c);
}

static void chan_io(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct chan *c = arg;

	unsigned tell = events & HERD_READ;

	if (events & HERD_WRITE) {
		chan_flush(c);
		if (c->head == NULL)
			tell |=
			    HERD_WRITE; /* drained: the owner may send again */
	}
	/* Last: the owner may free the channel in its callback. */
	if (tell != 0 && c->fn != NULL)
		c->fn(l, fd, tell, c->arg);
}

/* ---- receiving ----------------------------------------------------------- */

struct collected {
	int *fds;
	int n, max;
	int bad;       /* a control message other than SCM_RIGHTS */
	int truncated; /* fds beyond max, closed */
};

static int collect_one(const struct cmsg *c, void *arg)
{
	struct collected *k = arg;

	if (c->level != SOL_SOCKET || c->type != SCM_RIGHTS) {
		k->bad = 1;
		return 0;
	}
	for (size_t i = 0; i < c->nfds; i++) {
		int fd = cmsg_fd(c, i);

		if (k->n < k->max) {
			k->fds[k->n++] = fd;
		} else {
			rights_close(fd);
			k->truncated = 1;
		}
	}
	return 0;
}

/* Gathers the fds of every SCM_RIGHTS in mh into fds (closing any beyond
 * max, and flagging those as MSG_CTRUNC); reports other control messages
 * through *bad. */
static int collect_fds(struct msghdr *mh, int *fds, int max, int *bad)
{
	struct collected k = {fds, 0, max, 0, 0};

	cmsg_walk(mh, collect_one, &k);
	if (k.truncated) /* as if the kernel had truncated them */
		mh->msg_flags |= MSG_CTRUNC;
	*bad = k.bad;
	return k.n;
}

static void refused(struct chan *c, enum msg_error e)
{
	msg_refused[e]++;
	/* Counted always, logged at first and then every 1000th, so a
	 * flood cannot fill the disk. */
	if (ratelimit_sample(&c->refused, 10, 1000))
		log_warn("channel fd %d: message refused (%s); %lu so far",
			 c->fd, msg_error_name(e), c->refused);
}

int chan_recv(struct chan *c, struct msg *m)
{
	unsigned char buf[sizeof(struct msg_hdr) + MSG_PAYLOAD_MAX];
	/* Room for all a peer can send, so that the kernel never drops
	 * (and closes) an fd on this thread: see rights.h. */
	union {
		char buf[CMSG_SPACE(sizeof(int) * RIGHTS_MAX)];
		struct cmsghdr align;
	} u;
	int fds[MSG_MAX_FDS];

	/* Bounded, so a flood of refusals cannot hold the loop here. */
	for (int tries = 0; tries < RECV_REFUSED_MAX; tries++) {
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t n =
		    recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		enum msg_error e;
		int nfds, bad;

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n == -1)
			return -1;
		/* An empty datagram may still carry fds: collect them first.
		 * Without any, 0 is the end of file (or an empty datagram,
		 * which only a misbehaving peer sends, and which then costs
		 * that peer its channel). */
		nfds = collect_fds(&mh, fds, MSG_MAX_FDS, &bad);
		c->room = c->room > nfds ? c->room - nfds : 0;
		if (n == 0 && nfds == 0 && !bad && !(mh.msg_flags & MSG_CTRUNC))
			return -1;
		e = msg_decode(buf, (size_t)n, mh.msg_flags, fds, nfds, bad,
			       c->accept, m);
		if (e == MSG_OK)
			return 1;
		refused(c, e);
	}
	return 0; /* more may wait: level-triggered, the loop comes back */
}

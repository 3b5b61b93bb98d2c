/* test_channel.c: framing, fd passing, queueing, and the decoder's refusal
 * of every malformed message with every fd it carried closed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "tap.h"

#define ALL (MSG_TO_WORKER | MSG_TO_MASTER)

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv) == -1)
		_exit(99);
}

/* Sends raw bytes with n fds (dups of fd 0), as a hostile peer would. */
static void raw_send(int fd, const void *buf, size_t len, int nfds)
{
	int fds[MSG_RAW_MAX_FDS] = {0};

	for (int i = 0; i < nfds; i++)
		fds[i] = dup(0);
	if (msg_sendraw(fd, buf, len, fds, nfds) == -1)
		_exit(98);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void roundtrip_with_fd(void)
{
	int sv[2], p[2], before;
	struct chan *a, *b;
	struct msg m;
	struct msg_peer mp = {3, 1234, 7}, got;
	struct msg_hdr h = {MSG_OPEN_CHANNEL, sizeof(mp), 1, -1, 7, 0};
	char c = 0;

	pair(sv);
	if (pipe2(p, O_CLOEXEC) == -1)
		_exit(97);
	a = chan_new(sv[0], ALL, NULL, NULL, NULL);
	b = chan_new(sv[1], ALL, NULL, NULL, NULL);
	before = count_fds();
	ok(chan_send(a, &h, &mp, &p[1], 1) == 0, "open-channel sent");
	ok(count_fds() == before - 1, "the sent fd is closed by the sender");
	ok(chan_recv(b, &m) == 1, "received");
	memcpy(&got, m.data, sizeof(got));
	ok(m.hdr.type == MSG_OPEN_CHANNEL && m.nfds == 1 && got.slot == 3 &&
	       got.pid == 1234 && got.gen == 7,
	   "header, payload and one fd intact");
	ok(fcntl(m.fds[0], F_GETFD) & FD_CLOEXEC, "received fd is CLOEXEC");
	ok(write(m.fds[0], "x", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'x',
	   "received fd is the pipe's write end");
	close(m.fds[0]);
	close(p[0]);
	ok(chan_recv(b, &m) == 0, "nothing more waiting");
	chan_free(a);
	ok(chan_recv(b, &m) == -1, "end of file once the peer is gone");
	chan_free(b);
}

static void refuses(int tx, struct chan *rx, const void *buf, size_t len,
		    int nfds, enum msg_error want, const char *what)
{
	unsigned long before_count = msg_refused[want];
	int before = count_fds();
	struct msg_hdr good = {MSG_QUIT, 0, 1, -1, 1, 0};
	struct msg m;

	raw_send(tx, buf, len, nfds);
	raw_send(tx, &good, sizeof(good), 0);
	ok(chan_recv(rx, &m) == 1 && m.hdr.type == MSG_QUIT,
	   "%s: refused, and the next good message arrives", what);
	ok(msg_refused[want] == before_count + 1, "%s: counted as '%s'", what,
	   msg_error_name(want));
	ok(count_fds() == before, "%s: every fd it carried is closed", what);
}

static void malformed(void)
{
	unsigned char big[sizeof(struct msg_hdr) + MSG_PAYLOAD_MAX + 64] = {0};
	struct msg_hdr h;
	int sv[2];
	struct chan *rx;

	pair(sv);
	rx = chan_new(sv[1], ALL, NULL, NULL, NULL);
	refuses(sv[0], rx, "abc", 3, 1, MSG_ERR_SHORT, "short");
	h = (struct msg_hdr){MSG_QUIT, 5, 0, 0, 0, 0};
	refuses(sv[0], rx, &h, sizeof(h), 0, MSG_ERR_LENGTH, "length lies");
	h = (struct msg_hdr){999, 0, 0, 0, 0, 0};
	refuses(sv[0], rx, &h, sizeof(h), 2, MSG_ERR_TYPE, "unknown type");
	h = (struct msg_hdr){0, 0, 0, 0, 0, 0};
	refuses(sv[0], rx, &h, sizeof(h), 0, MSG_ERR_TYPE, "type zero");
	h = (struct msg_hdr){MSG_QUIT, 0, 0, 0, 0, 0};
	refuses(sv[0], rx, &h, sizeof(h), 1, MSG_ERR_FDS, "fd on quit");
	h = (struct msg_hdr){
	    MSG_OPEN_CHANNEL, sizeof(struct msg_peer), 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(h) + sizeof(struct msg_peer), 0,
		MSG_ERR_FDS, "open-channel without its fd");
	refuses(sv[0], rx, big, sizeof(h) + sizeof(struct msg_peer), 2,
		MSG_ERR_FDS, "open-channel with two fds");
	h = (struct msg_hdr){
	    MSG_OPEN_CHANNEL, 3 * sizeof(struct msg_peer), 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(h) + 3 * sizeof(struct msg_peer), 2,
		MSG_ERR_FDS, "open-channel naming three peers with two fds");
	h = (struct msg_hdr){
	    MSG_OPEN_CHANNEL, sizeof(struct msg_peer) + 4, 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(h) + sizeof(struct msg_peer) + 4, 1,
		MSG_ERR_SIZE, "open-channel with a partial peer");
	h = (struct msg_hdr){
	    MSG_CLOSE_CHANNEL, 2 * sizeof(struct msg_peer) - 1, 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(h) + 2 * sizeof(struct msg_peer) - 1, 0,
		MSG_ERR_SIZE, "close-channel with a partial peer");
	h = (struct msg_hdr){MSG_HEARTBEAT, 3, 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(h) + 3, 0, MSG_ERR_SIZE,
		"heartbeat of the wrong size");
	h = (struct msg_hdr){MSG_APP, MSG_PAYLOAD_MAX + 64, 0, 0, 0, 0};
	memcpy(big, &h, sizeof(h));
	refuses(sv[0], rx, big, sizeof(big), 1, MSG_ERR_TRUNC, "oversized");
	h = (struct msg_hdr){MSG_APP, 0, 0, 0, 0, 0};
	refuses(sv[0], rx, &h, sizeof(h), MSG_MAX_FDS + 1, MSG_ERR_CTRUNC,
		"more fds than any message carries");
	refuses(sv[0], rx, "", 0, 3, MSG_ERR_SHORT,
		"an empty datagram carrying fds");
	chan_free(rx);
	close(sv[0]);
}

/* The master introduces up to MSG_MAX_FDS peers in one OPEN_CHANNEL, and
 * names up to MSG_PEERS_MAX gone ones in one CLOSE_CHANNEL. */
static void peer_lists(void)
{
	struct msg_peer mp[MSG_MAX_FDS], got;
	int sv[2], fds[MSG_MAX_FDS], ok_fds = 1;
	struct msg_peer gone[MSG_PEERS_MAX];
	struct chan *a, *b;
	struct msg m;
	struct msg_hdr h = {MSG_OPEN_CHANNEL, sizeof(mp), 1, -1, 7, 0};

	pair(sv);
	a = chan_new(sv[0], ALL, NULL, NULL, NULL);
	b = chan_new(sv[1], ALL, NULL, NULL, NULL);
	for (int i = 0; i < MSG_MAX_FDS; i++) {
		mp[i] = (struct msg_peer){i, 1000 + i, 7};
		fds[i] = dup(0);
	}
	ok(chan_send(a, &h, mp, fds, MSG_MAX_FDS) == 0,
	   "open-channel naming MSG_MAX_FDS peers sent");
	ok(chan_recv(b, &m) == 1 && m.nfds == MSG_MAX_FDS &&
	       m.hdr.len == sizeof(mp),
	   "received with every fd");
	for (int i = 0; i < m.nfds; i++) {
		memcpy(&got, m.data + (size_t)i * sizeof(got), sizeof(got));
		ok_fds &= got.slot == i && got.pid == 1000 + i &&
			  fcntl(m.fds[i], F_GETFD) != -1;
		close(m.fds[i]);
	}
	ok(ok_fds, "each peer in order with its fd");
	for (size_t i = 0; i < MSG_PEERS_MAX; i++)
		gone[i] = (struct msg_peer){(int32_t)i, (int32_t)(2000 + i), 7};
	h = (struct msg_hdr){MSG_CLOSE_CHANNEL, sizeof(gone), 1, -1, 7, 0};
	ok(chan_send(a, &h, gone, NULL, 0) == 0,
	   "close-channel naming MSG_PEERS_MAX peers sent");
	ok(chan_recv(b, &m) == 1 && m.hdr.type == MSG_CLOSE_CHANNEL &&
	       m.hdr.len == sizeof(gone) &&
	       memcmp(m.data, gone, sizeof(gone)) == 0,
	   "received whole");
	chan_free(a);
	chan_free(b);
}

static void queueing(void)
{
	struct msg_hdr h = {MSG_APP, 1000, 1, 0, 1, 0};
	char payload[1000] = {0};
	int sv[2], p[2], sent = 0, before, got = 0;
	struct chan *a, *b;
	struct msg m;

	pair(sv);
	a = chan_new(sv[0], ALL, NULL, NULL, NULL);
	b = chan_new(sv[1], ALL, NULL, NULL, NULL);
	while (chan_queued(a) == 0 && sent < 100000)
		sent += chan_send(a, &h, payload, NULL, 0) == 0;
	ok(chan_queued(a) == 1,
	   "a full socket queues instead of blocking "
	   "(after %d sends)",
	   sent);
	if (pipe2(p, O_CLOEXEC) == -1)
		_exit(97);
	close(p[0]);
	before = count_fds();
	h.len = 0;
	ok(chan_send(a, &h, NULL, &p[1], 0) == 0, "queued behind");
	h = (struct msg_hdr){
	    MSG_OPEN_CHANNEL, sizeof(struct msg_peer), 1, 0, 1, 0};
	ok(chan_send(a, &h, payload, &p[1], 1) == 0 && count_fds() == before,
	   "an fd waits in the queue, still open");
	while (chan_recv(b, &m) == 1 || chan_queued(a) > 0) {
		got++;
		if (m.nfds)
			close(m.fds[0]);
		chan_flush(a);
	}
	ok(chan_queued(a) == 0 && count_fds() == before - 1,
	   "flushed in order; the queued fd closed once sent (%d received)",
	   got);
	is_int(m.hdr.type, MSG_OPEN_CHANNEL, "the last message came last");
	h = (struct msg_hdr){MSG_APP, 1000, 1, 0, 1, 0};
	while (chan_queued(a) == 0)
		chan_send(a, &h, payload, NULL, 0);
	while (chan_queued(a) < CHAN_QUEUE_MAX)
		chan_send(a, &h, payload, NULL, 0);
	errno = 0;
	ok(chan_send(a, &h, payload, NULL, 0) == -1 && errno == ENOBUFS,
	   "the queue is bounded: ENOBUFS");
	chan_free(b);
	ok(chan_flush(a) == -1 && errno == EPIPE && chan_queued(a) == 0,
	   "peer gone: EPIPE and the queue is dropped");
	ok(chan_send(a, &h, payload, NULL, 0) == -1 && errno == EPIPE,
	   "later sends fail at once");
	chan_free(a);
}

static void decode_direct(void)
{
	struct msg_hdr h = {MSG_APP, 5, 1, 2, 3, -1};
	unsigned char buf[sizeof(h) + 5];
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "hello", 5);
	is_int(msg_decode(buf, sizeof(buf), 0, NULL, 0, 0, ALL, &m), MSG_OK,
	       "app message decodes");
	ok(memcmp(m.data, "hello", 5) == 0 && m.hdr.dst == -1, "payload kept");
	is_int(msg_decode(buf, sizeof(buf) - 1, 0, NULL, 0, 0, ALL, &m),
	       MSG_ERR_LENGTH, "one byte short");
	is_int(msg_decode(buf, sizeof(buf), 0, NULL, 0, 1, ALL, &m),
	       MSG_ERR_CMSG, "credentials or other control data refused");
	is_int(msg_decode(buf, sizeof(buf), 0, NULL, 0, 0, MSG_TO_WORKER, &m),
	       MSG_ERR_DIRECTION,
	       "a worker does not take app messages from "
	       "the master");
	h = (struct msg_hdr){MSG_QUIT, 0, 1, 2, 3, 0};
	memcpy(buf, &h, sizeof(h));
	is_int(msg_decode(buf, sizeof(h), 0, NULL, 0, 0, MSG_TO_PEER, &m),
	       MSG_ERR_DIRECTION, "a peer cannot send quit");
	is_int(msg_decode(buf, sizeof(h), 0, NULL, 0, 0, MSG_TO_MASTER, &m),
	       MSG_ERR_DIRECTION, "a worker cannot send quit to the master");
	h = (struct msg_hdr){MSG_CONNECTION, 0, 1, 2, 3, 0};
	memcpy(buf, &h, sizeof(h));
	is_int(msg_decode(buf, sizeof(h), 0, NULL, 0, 0, MSG_TO_WORKER, &m),
	       MSG_ERR_FDS, "a connection message without its fd");
	{
		int fd = dup(0);

		is_int(
		    msg_decode(buf, sizeof(h), 0, &fd, 1, 0, MSG_TO_PEER, &m),
		    MSG_ERR_DIRECTION, "a peer cannot pass a connection");
		ok(fcntl(fd, F_GETFD) == -1, "and the fd it carried is closed");
	}
}

/* passfd's batches: up to MSG_CONN_BATCH connections, to a worker only. */
static void connection_batches(void)
{
	unsigned char buf[sizeof(struct msg_hdr)];
	struct msg_hdr h = {MSG_CONNECTIONS, 0, -1, -1, 1, 0};
	int fds[MSG_CONN_BATCH + 1];
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	for (int i = 0; i < MSG_CONN_BATCH + 1; i++)
		fds[i] = dup(0);
	is_int(msg_decode(buf, sizeof(h), 0, fds, MSG_CONN_BATCH, 0,
			  MSG_TO_WORKER, &m),
	       MSG_OK, "a batch of MSG_CONN_BATCH connections decodes");
	ok(m.nfds == MSG_CONN_BATCH && m.fds[0] == fds[0],
	   "with every fd, in order");
	for (int i = 0; i < m.nfds; i++)
		close(m.fds[i]);
	for (int i = 0; i < MSG_CONN_BATCH + 1; i++)
		fds[i] = dup(0);
	is_int(msg_decode(buf, sizeof(h), 0, fds, MSG_CONN_BATCH + 1, 0,
			  MSG_TO_WORKER, &m),
	       MSG_ERR_FDS, "one more than MSG_CONN_BATCH is refused");
	ok(fcntl(fds[MSG_CONN_BATCH], F_GETFD) == -1 &&
	       fcntl(fds[0], F_GETFD) == -1,
	   "and every fd it carried is closed");
	is_int(msg_decode(buf, sizeof(h), 0, NULL, 0, 0, MSG_TO_WORKER, &m),
	       MSG_ERR_FDS, "a batch without fds is refused");
	fds[0] = dup(0);
	is_int(msg_decode(buf, sizeof(h), 0, fds, 1, 0, MSG_TO_MASTER, &m),
	       MSG_ERR_DIRECTION, "the master takes no connections");
}

/* Fills the fd table up to (not including) fd top; the fds into held. */
static int fill_to(int top, int *held, int n)
{
	int fd;

	while ((fd = fcntl(0, F_DUPFD_CLOEXEC, 0)) >= 0 && fd < top)
		held[n++] = fd;
	if (fd >= 0)
		close(fd);
	return n;
}

/* chan_room_for(c, n): n fds fit, or they do not, however the table was
 * filled from the bottom (as the kernel fills it, lowest first). */
static void room(void)
{
	struct rlimit old, low;
	int sv[2], held[80], n = 0, lim = 64;
	struct chan *c;

	if (getrlimit(RLIMIT_NOFILE, &old) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		ok(0, "room: set-up: %s", strerror(errno));
		return;
	}
	c = chan_new(sv[0], ALL, NULL, NULL, NULL);
	low = old;
	low.rlim_cur = (rlim_t)lim;
	if (c == NULL || setrlimit(RLIMIT_NOFILE, &low) == -1) {
		ok(0, "room: set-up: %s", strerror(errno));
		return;
	}
	n = fill_to(lim - 20, held, n);
	ok(chan_room_for(c, MSG_CONN_BATCH),
	   "20 fds free: room for a batch "
	   "of %d",
	   MSG_CONN_BATCH);
	n = fill_to(lim - 4, held, n);
	ok(!chan_room_for(c, MSG_CONN_BATCH),
	   "4 free: no room for %d, though the top fds are free",
	   MSG_CONN_BATCH);
	ok(chan_room_for(c, 4) && chan_room(c), "but for 4, and for one");
	n = fill_to(lim, held, n);
	ok(!chan_room(c), "none free: no room");
	while (n > 0)
		close(held[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	chan_free(c);
	close(sv[1]);
}

/* chan_room_ahead(c, n): one probe for CHAN_ROOM_AHEAD fds, counted down
 * by the fds read since; a new probe when the count runs out, per message
 * when the top CHAN_ROOM_AHEAD are not free. */
static void room_ahead(void)
{
	unsigned char buf[sizeof(struct msg_hdr)];
	struct msg_hdr h = {MSG_CONNECTIONS, 0, -1, -1, 1, 0};
	struct rlimit old, low;
	int sv[2], held[1100], n = 0, lim = 1024, got = 0, reads;
	struct chan *c;
	struct msg m;

	if (getrlimit(RLIMIT_NOFILE, &old) == -1 || old.rlim_max < 1024) {
		ok(1, "# SKIP room ahead: the hard fd limit is below 1024");
		return;
	}
	pair(sv);
	c = chan_new(sv[0], ALL, NULL, NULL, NULL);
	low = old;
	low.rlim_cur = (rlim_t)lim;
	if (c == NULL || setrlimit(RLIMIT_NOFILE, &low) == -1) {
		ok(0, "room ahead: set-up: %s", strerror(errno));
		return;
	}
	n = fill_to(lim - 300, held, n);
	memcpy(buf, &h, sizeof(h));
	reads = (CHAN_ROOM_AHEAD - CHAN_ROOM_SLACK) / MSG_CONN_BATCH;
	for (int i = 0; i < reads; i++)
		raw_send(sv[1], buf, sizeof(buf), MSG_CONN_BATCH);
	ok(chan_room_ahead(c, MSG_CONN_BATCH), "300 fds free: room");
	for (int i = 0; i < reads && chan_recv(c, &m) == 1; i++)
		for (int k = 0; k < m.nfds; k++, got++)
			held[n++] = m.fds[k];
	is_int(got, CHAN_ROOM_AHEAD - CHAN_ROOM_SLACK,
	       "the count's worth of fds read");
	ok(chan_room_ahead(c, MSG_CONN_BATCH),
	   "%d left free, the count spent: a probe finds room for a batch",
	   300 - got);
	n = fill_to(lim - 4, held, n);
	ok(!chan_room_ahead(c, MSG_CONN_BATCH) && errno == EMFILE,
	   "4 free: no room (the count is not trusted past a probe)");
	while (n > 0)
		close(held[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	chan_free(c);
	close(sv[1]);
}

/* RELAY: one fd and up to HERD_RELAY_MAX bytes of state, to either end. */
static void relays(void)
{
	unsigned char buf[sizeof(struct msg_hdr) + HERD_RELAY_MAX + 1];
	struct msg_hdr h = {MSG_RELAY, 3, -1, 1, 1, 0};
	struct msg m;
	int fds[2];

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "abc", 3);
	fds[0] = dup(0);
	is_int(msg_decode(buf, sizeof(h) + 3, 0, fds, 1, 0, MSG_TO_MASTER, &m),
	       MSG_OK, "relay: a worker's connection with 3 bytes of state");
	ok(m.nfds == 1 && memcmp(m.data, "abc", 3) == 0, "fd and state kept");
	close(m.fds[0]);
	fds[0] = dup(0);
	is_int(msg_decode(buf, sizeof(h) + 3, 0, fds, 1, 0, MSG_TO_WORKER, &m),
	       MSG_OK, "and to a worker");
	close(m.fds[0]);
	h.len = HERD_RELAY_MAX + 1;
	memcpy(buf, &h, sizeof(h));
	fds[0] = dup(0);
	is_int(msg_decode(buf, sizeof(buf), 0, fds, 1, 0, MSG_TO_MASTER, &m),
	       MSG_ERR_SIZE, "state over HERD_RELAY_MAX: refused");
	ok(fcntl(fds[0], F_GETFD) == -1, "and its fd closed");
	h.len = 0;
	memcpy(buf, &h, sizeof(h));
	is_int(msg_decode(buf, sizeof(h), 0, NULL, 0, 0, MSG_TO_MASTER, &m),
	       MSG_ERR_FDS, "a relay without its connection: refused");
	fds[0] = dup(0);
	fds[1] = dup(0);
	is_int(msg_decode(buf, sizeof(h), 0, fds, 2, 0, MSG_TO_MASTER, &m),
	       MSG_ERR_FDS, "with two: refused");
}

int main(void)
{
	log_set_level(HERD_LOG_ERROR); /* refusals are counted, not shown */
	roundtrip_with_fd();
	malformed();
	peer_lists();
	queueing();
	decode_direct();
	connection_batches();
	room();
	room_ahead();
	relays();
	return done_testing();
}

/*
 * abuse.c: a libherd program whose workers attack their own channels, for
 * the integration tests: on start, every worker writes ROUNDS rounds of
 * malformed, oversized, fd-laden and wrong-direction messages to every
 * SEQPACKET socket it holds (its master channel, its inbox, its peers'
 * inboxes, once it has them all), then reports "abuse done: N sent" to the
 * master. DELAY_MS (default 0) holds the attack back, so that a test can
 * count the master's fds before; then CHATTER status lines follow (default
 * 0), "chatter N" each. Connections get "ok".
 *   abuse ADDR WORKERS ROUNDS [DELAY_MS [CHATTER]]
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h" /* the wire format, to forge it */
#include "herd.h"

static int rounds, nworkers, delay_ms, chatter;

/* 1 if the message was written, 0 if not. */
static int send_raw(int fd, const void *buf, size_t len, int nfds)
{
	int fds[MSG_RAW_MAX_FDS] = {0}, sent;

	for (int i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* EAGAIN when a peer's buffer is full: that message is just lost. */
	sent = msg_sendraw(fd, buf, len, fds, nfds) >= 0;
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return sent;
}

static int forge(int fd, uint32_t type, uint32_t len, int nfds)
{
	static unsigned char buf[70000];
	struct msg_hdr h = {type, len, 0, 0, 0, 0};

	memcpy(buf, &h, sizeof(h));
	return send_raw(fd, buf, sizeof(h) + len, nfds);
}

/* Returns how many of its messages were written. */
static int attack(int fd)
{
	struct msg_hdr lie = {MSG_QUIT, 100, 0, 0, 0, 0};
	int n = 0;

	n += send_raw(fd, &lie, sizeof(lie), 0); /* a length field that lies */
	n += send_raw(fd, "xy", 2, 1);		 /* short, with an fd */
	n += forge(fd, MSG_QUIT, 0, 3);		 /* QUIT with fds */
	n += forge(fd, 77, 0, 2);		 /* unknown type */
	n += forge(fd, MSG_APP, 0, 8);	     /* more fds than allowed: CTRUNC */
	n += forge(fd, MSG_APP, 65000, 1);   /* longer than any message */
	n += forge(fd, MSG_HEARTBEAT, 3, 0); /* wrong size for its type */
	n += forge(fd, MSG_OPEN_CHANNEL, sizeof(struct msg_peer), 1); /* w->m */
	n += forge(fd, MSG_TERMINATE, 0, 0); /* a forged command */
	return n;
}

static int is_seqpacket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_SEQPACKET;
}

static int count_seqpacket(void)
{
	int n = 0;

	for (int fd = 3; fd < 256; fd++)
		n += is_seqpacket(fd);
	return n;
}

/* Once this worker holds every channel (its own two and one per peer),
 * attack them all. */
static void run_attack(herd_loop *l, herd_timer *t, void *arg)
{
	herd_worker *w = arg;
	char done[64];
	int sent = 0;

	(void)l;
	if (count_seqpacket() < nworkers + 1) {
		herd_timer_start(t, 20);
		return;
	}
	for (int r = 0; r < rounds; r++) {
		for (int fd = 3; fd < 256; fd++)
			if (is_seqpacket(fd))
				sent += attack(fd);
		if (r % 50 == 0)
			usleep(1000); /* let the readers drain */
	}
	snprintf(done, sizeof(done), "abuse done: %d sent", sent);
	herd_worker_send(w, HERD_TO_MASTER, done, strlen(done));
	for (int i = 0; i < chatter; i++) {
		snprintf(done, sizeof(done), "chatter %d", i);
		herd_worker_send(w, HERD_TO_MASTER, done, strlen(done));
	}
}

/* Peers' messages are read (and ignored): that is what gives every worker
 * an inbox, and this worker inboxes to attack. */
static void on_message(herd_worker *w, int from, const void *data, size_t len,
		       void *ud)
{
	(void)w;
	(void)from;
	(void)data;
	(void)len;
	(void)ud;
}

static int on_start(herd_worker *w, void *ud)
{
	herd_timer *t = herd_timer_new(herd_worker_loop(w), run_attack, w);

	(void)ud;
	if (t == NULL)
		return -1;
	herd_timer_start(t, delay_ms);
	return 0;
}

static void on_connection(herd_worker *w, int fd, void *ud)
{
	(void)ud;
	if (write(fd, "ok\n", 3) != 3)
		herd_log(HERD_LOG_WARN, "short write");
	herd_conn_close(w, fd);
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	if (h == NULL || argc < 4 || herd_listen(h, argv[1]) == -1 ||
	    herd_set_workers(h, atoi(argv[2])) == -1) {
		fprintf(
		    stderr,
		    "usage: abuse ADDR WORKERS ROUNDS [DELAY_MS [CHATTER]]\n");
		herd_free(h);
		return 2;
	}
	rounds = atoi(argv[3]);
	nworkers = atoi(argv[2]);
	delay_ms = argc > 4 ? atoi(argv[4]) : 0;
	chatter = argc > 5 ? atoi(argv[5]) : 0;
	herd_on_start(h, on_start);
	herd_on_connection(h, on_connection);
	herd_on_message(h, on_message);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}

/*
 * abuse.c: a libherd program whose workers attack their own channels, for
 * the integration tests: on start, every worker writes ROUNDS rounds of
 * malformed, oversized, fd-laden and wrong-direction messages to every
 * SEQPACKET socket it holds (its master channel, its inbox, its peers'
 * inboxes, once it has them all), then reports "abuse done" to the master.
 * Connections get "ok".
 *   abuse ADDR WORKERS ROUNDS
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herd.h"

static int rounds, nworkers;

/* The wire header, as docs/design.md describes it. */
struct hdr {
	uint32_t type, len;
	int32_t pid, slot;
	uint32_t gen;
	int32_t dst;
};

static void send_raw(int fd, const void *buf, size_t len, int nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr a;
	} u;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[8];

	for (int i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	/* EAGAIN when a peer's buffer is full: that message is just lost. */
	(void)!sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void attack(int fd)
{
	static unsigned char big[70000];
	struct hdr h;

	send_raw(fd, "xy", 2, 1);	      /* short, with an fd */
	h = (struct hdr){3, 100, 0, 0, 0, 0}; /* length lies */
	send_raw(fd, &h, sizeof(h), 0);
	h = (struct hdr){77, 0, 0, 0, 0, 0}; /* unknown type */
	send_raw(fd, &h, sizeof(h), 2);
	h = (struct hdr){3, 0, 0, 0, 0, 0}; /* QUIT with fds */
	send_raw(fd, &h, sizeof(h), 3);
	h = (struct hdr){8, 0, 0, 0, 0, 0}; /* app, 8 fds: CTRUNC */
	send_raw(fd, &h, sizeof(h), 8);
	h = (struct hdr){8, sizeof(big) - sizeof(h), 0, 0, 0, 0}; /* huge */
	memcpy(big, &h, sizeof(h));
	send_raw(fd, big, sizeof(big), 1);
	h = (struct hdr){1, 12, 0, 0, 0, 0}; /* open-channel, w->m */
	memcpy(big, &h, sizeof(h));
	send_raw(fd, big, sizeof(h) + 12, 1);
	h = (struct hdr){4, 0, 0, 0, 0, 0}; /* a forged TERMINATE */
	send_raw(fd, &h, sizeof(h), 0);
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

	(void)l;
	if (count_seqpacket() < nworkers + 1) {
		herd_timer_start(t, 20);
		return;
	}
	for (int r = 0; r < rounds; r++) {
		for (int fd = 3; fd < 256; fd++)
			if (is_seqpacket(fd))
				attack(fd);
		if (r % 50 == 0)
			usleep(1000); /* let the readers drain */
	}
	herd_worker_send(w, HERD_TO_MASTER, "abuse done", 10);
}

static int on_start(herd_worker *w, void *ud)
{
	herd_timer *t = herd_timer_new(herd_worker_loop(w), run_attack, w);

	(void)ud;
	if (t == NULL)
		return -1;
	herd_timer_start(t, 0);
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
		fprintf(stderr, "usage: abuse ADDR WORKERS ROUNDS\n");
		herd_free(h);
		return 2;
	}
	rounds = atoi(argv[3]);
	nworkers = atoi(argv[2]);
	herd_on_start(h, on_start);
	herd_on_connection(h, on_connection);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}

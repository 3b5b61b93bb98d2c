/*
 * floor.c: the floor for bench/run.py, the least work an HTTP request can
 * cost on this kernel. One process, one level-triggered epoll loop, no
 * timers, no logging, no parser beyond finding the end of a head and a
 * "Connection: close" in it. Every request gets the same answer, "hello\n",
 * whatever its method and path. What herd and nginx spend per request
 * above this is the price of being a real server.
 *
 *   build/floor HOST PORT
 *
 * One recv per readiness (a short read means the socket is drained; the
 * loop reports what comes later), one send per batch of pipelined answers.
 * A peer that does not take a whole answer at once is dropped: answers are
 * a few dozen bytes, so that never happens to a benchmark client. Not a
 * server for anything else: it has no timeouts, a head over BUF_CAP
 * closes the connection, and so does an fd over MAX_FDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP	 4096
#define OUT_CAP	 4096
#define MAX_FDS	 (1 << 14)
#define BATCH	 256
#define BACKLOG	 4096
#define ANSWER	 "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
#define BODY	 "\r\nhello\n"
#define CLOSE_HD "Connection: close\r\n"

/* The unparsed input of one connection. Indexed by fd and never freed:
 * no allocation per connection, and only the pages of fds in use are ever
 * touched. */
struct conn {
	int open;
	size_t len;
	char buf[BUF_CAP];
};

static struct conn conns[MAX_FDS];

static int listen_on(const char *host, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, fd;

	sa.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "floor: bad IPv4 address %s\n", host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, BACKLOG) < 0) {
		perror("floor: listen");
		return -1;
	}
	return fd;
}

/* close() alone leaves the epoll set: the fd is never shared. */
static void conn_close(int fd)
{
	close(fd);
	conns[fd].open = 0;
}

static void on_accept(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or EMFILE: the next wake-up retries
				 */
		}
		ev.data.fd = fd;
		if (fd >= MAX_FDS ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		conns[fd].open = 1;
		conns[fd].len = 0;
	}
}

/* Whether the head buf[0..len) asks to close, case-insensitively. */
static int wants_close(const char *buf, size_t len)
{
	static const char key[] = "\nconnection: close";
	size_t k = sizeof key - 1;

	for (size_t i = 0; i + k <= len; i++)
		if (strncasecmp(buf + i, key, k) == 0)
			return 1;
	return 0;
}

static int send_all(int fd, const char *out, size_t len)
{
	return len == 0 || send(fd, out, len, MSG_NOSIGNAL) == (ssize_t)len
		   ? 0
		   : -1;
}

/* Answers every complete head in c; returns 1 to close afterwards, 0 to
 * keep the connection, -1 on a send error or a head too large. */
static int answer(int fd, struct conn *c)
{
	char out[OUT_CAP];
	size_t off = 0, olen = 0;
	int close_after = 0;
	char *end;

	while (!close_after &&
	       (end = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4))) {
		size_t hlen = (size_t)(end - (c->buf + off)) + 4;

		if (olen + 128 > OUT_CAP) { /* a long pipeline: send a part */
			if (send_all(fd, out, olen) < 0)
				return -1;
			olen = 0;
		}
		close_after = wants_close(c->buf + off, hlen);
		memcpy(out + olen, ANSWER, sizeof ANSWER - 1);
		olen += sizeof ANSWER - 1;
		if (close_after) {
			memcpy(out + olen, CLOSE_HD, sizeof CLOSE_HD - 1);
			olen += sizeof CLOSE_HD - 1;
		}
		memcpy(out + olen, BODY, sizeof BODY - 1);
		olen += sizeof BODY - 1;
		off += hlen;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	if (send_all(fd, out, olen) < 0)
		return -1;
	return close_after ? 1 : c->len == BUF_CAP ? -1 : 0;
}

static void on_read(int fd)
{
	struct conn *c = &conns[fd];
	ssize_t n;

	do
		n = recv(fd, c->buf + c->len, BUF_CAP - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_close(fd);
		return;
	}
	c->len += (size_t)n;
	if (answer(fd, c) != 0)
		conn_close(fd);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[BATCH], ev = {.events = EPOLLIN};
	int lfd, ep;

	if (argc != 3) {
		fprintf(stderr, "usage: floor HOST PORT\n");
		return 2;
	}
	if ((lfd = listen_on(argv[1], argv[2])) < 0)
		return 1;
	ev.data.fd = lfd;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("floor: epoll");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, BATCH, -1);

		if (n < 0 && errno != EINTR) {
			perror("floor: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == lfd)
				on_accept(ep, lfd);
			else if (conns[evs[i].data.fd].open)
				on_read(evs[i].data.fd);
		}
	}
}

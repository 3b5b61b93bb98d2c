/*
 * relayer.c: a libherd program for the tests of relayed connections with
 * application state. Each connection counts the lines it has sent; every
 * line is answered "n=N gen=G pid=P". When its worker drains and may
 * relay, a connection is relayed with its count as state, so the count
 * goes on in the next generation; one that sent "decline" is not relayed
 * (closed, as draining closes). Usage: relayer ADDR [WORKERS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd.h"

struct conn {
	struct conn *next;
	int fd;
	unsigned lines;
	int declined;
};

static struct conn *conns;
static herd_worker *self;

static void forget(struct conn *c)
{
	struct conn **p = &conns;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	free(c);
}

static void drop(struct conn *c)
{
	herd_loop_del(herd_worker_loop(self), c->fd);
	herd_conn_close(self, c->fd);
	forget(c);
}

static void on_readable(herd_loop *l, int fd, unsigned events, void *arg)
{
	struct conn *c = arg;
	char buf[512], out[96];
	ssize_t n;

	(void)l;
	(void)fd;
	(void)events;
	while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			int k;

			if (buf[i] != '\n')
				continue;
			c->lines++;
			c->declined |= n >= 7 && memcmp(buf, "decline", 7) == 0;
			k = snprintf(out, sizeof(out), "n=%u gen=%u pid=%d\n",
				     c->lines, herd_worker_generation(self),
				     (int)herd_worker_pid(self));
			if (write(c->fd, out, (size_t)k) != k) {
				drop(c);
				return;
			}
		}
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	drop(c);
}

static struct conn *take(int fd, unsigned lines)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL || herd_loop_add(herd_worker_loop(self), fd, HERD_READ,
				       on_readable, c) == -1) {
		free(c);
		herd_conn_close(self, fd);
		return NULL;
	}
	c->fd = fd;
	c->lines = lines;
	c->next = conns;
	conns = c;
	return c;
}

static void on_connection(herd_worker *w, int fd, void *ud)
{
	(void)w;
	(void)ud;
	take(fd, 0);
}

static void on_relay(herd_worker *w, int fd, const void *state, size_t len,
		     void *ud)
{
	unsigned lines = 0;

	(void)w;
	(void)ud;
	if (len == sizeof(lines))
		memcpy(&lines, state, sizeof(lines));
	take(fd, lines);
}

/* Relays what may go with its count; closes the declined. */
static void on_drain(herd_worker *w, void *ud)
{
	struct conn *c = conns, *next;

	(void)ud;
	for (; c != NULL; c = next) {
		next = c->next;
		if (c->declined || !herd_worker_can_relay(w))
			drop(c);
		else if (herd_conn_relay(w, c->fd, &c->lines,
					 sizeof(c->lines)) == 0)
			forget(c);
		else
			drop(c);
	}
}

static int on_start(herd_worker *w, void *ud)
{
	(void)ud;
	self = w;
	return 0;
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	if (h == NULL || argc < 2 || herd_listen(h, argv[1]) == -1 ||
	    herd_set_workers(h, argc > 2 ? atoi(argv[2]) : 2) == -1) {
		fprintf(stderr, "usage: relayer ADDR [WORKERS]\n");
		herd_free(h);
		return 2;
	}
	herd_on_start(h, on_start);
	herd_on_connection(h, on_connection);
	herd_on_relay(h, on_relay);
	herd_on_drain(h, on_drain);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}

/* echo.c: an echo server on libherd: ./echo 127.0.0.1:7000 [workers] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "herd.h"

static void on_readable(herd_loop *l, int fd, unsigned events, void *arg)
{
	herd_worker *w = arg;
	char buf[4096];
	ssize_t n;

	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n) /* a slow reader: drop it */
			break;
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	herd_loop_del(l, fd);
	herd_conn_close(w, fd);
}

static void on_connection(herd_worker *w, int fd, void *ud)
{
	(void)ud;
	if (herd_loop_add(herd_worker_loop(w), fd, HERD_READ, on_readable, w))
		herd_conn_close(w, fd);
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	if (h == NULL || argc < 2 || herd_listen(h, argv[1]) == -1 ||
	    herd_set_workers(h, argc > 2 ? atoi(argv[2]) : 2) == -1) {
		fprintf(stderr, "usage: echo ADDR [WORKERS]%s%s\n",
			h ? ": " : "", h ? herd_error(h) : "");
		herd_free(h);
		return 2;
	}
	herd_on_connection(h, on_connection);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}

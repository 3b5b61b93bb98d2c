/* stuck.c: a libherd server whose handler can get stuck, for the watchdog
 * test. Each connection gets one line back, "pid=PID"; a connection whose
 * first bytes are "hang" blocks its worker's loop for good instead.
 * Usage: stuck ADDR WATCHDOG_SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herd.h"

static void on_connection(herd_worker *w, int fd, void *ud)
{
	char buf[64], line[32];
	ssize_t n;
	int len;

	(void)ud;
	/* Wait a little for the first bytes; the test sends them at once. */
	for (int i = 0; i < 100; i++) {
		n = recv(fd, buf, sizeof(buf), MSG_PEEK);
		if (n > 0 || (n == 0))
			break;
		usleep(10000);
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n >= 4 && memcmp(buf, "hang", 4) == 0)
		for (;;)
			sleep(60); /* a handler that never returns */
	len = snprintf(line, sizeof(line), "pid=%d\n", (int)herd_worker_pid(w));
	if (send(fd, line, (size_t)len, MSG_NOSIGNAL) < 0)
		herd_log(HERD_LOG_DEBUG, "send failed");
	herd_conn_close(w, fd);
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	if (h == NULL || argc < 3 || herd_listen(h, argv[1]) == -1 ||
	    herd_set_workers(h, 2) == -1 ||
	    herd_set_watchdog(h, atof(argv[2])) == -1) {
		fprintf(stderr, "usage: stuck ADDR WATCHDOG_SECONDS\n");
		herd_free(h);
		return 2;
	}
	herd_on_connection(h, on_connection);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}

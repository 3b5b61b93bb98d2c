/*
 * peers.c: a libherd program for the integration tests of worker-to-worker
 * messages. Each worker broadcasts "hi" once it has a channel to every
 * other worker; a worker that receives "hi" answers the sender directly
 * with "ack"; each "ack" is reported to the master (logged as a status).
 * A connection is answered with what this worker has seen so far:
 *   slot=S hi=1,2 ack=1,2
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd.h"

#define MAXW 16

static int nworkers;
static int got_hi[MAXW], got_ack[MAXW];
static herd_timer *retry;

static void say_hi(herd_loop *l, herd_timer *t, void *arg)
{
	herd_worker *w = arg;

	(void)l;
	/* Peers' channels arrive as they are born: retry until every other
	 * slot has one, then broadcast. */
	for (int s = 0; s < nworkers; s++) {
		if (s != herd_worker_slot(w) &&
		    herd_worker_send(w, s, "", 0) == -1) {
			herd_timer_start(t, 50);
			return;
		}
	}
	herd_worker_send(w, HERD_TO_ALL, "hi", 2);
}

static int on_start(herd_worker *w, void *ud)
{
	(void)ud;
	retry = herd_timer_new(herd_worker_loop(w), say_hi, w);
	if (retry == NULL)
		return -1;
	herd_timer_start(retry, 0);
	return 0;
}

static void on_message(herd_worker *w, int from, const void *data, size_t len,
		       void *ud)
{
	char status[64];

	(void)ud;
	if (from < 0 || from >= MAXW)
		return;
	if (len == 2 && memcmp(data, "hi", 2) == 0) {
		got_hi[from] = 1;
		herd_worker_send(w, from, "ack", 3);
	} else if (len == 3 && memcmp(data, "ack", 3) == 0) {
		got_ack[from] = 1;
		snprintf(status, sizeof(status), "ack from %d", from);
		herd_worker_send(w, HERD_TO_MASTER, status, strlen(status));
	}
}

static size_t list(char *buf, size_t len, const int *set)
{
	size_t n = 0;

	for (int s = 0; s < MAXW && n + 4 < len; s++)
		if (set[s])
			n += (size_t)snprintf(buf + n, len - n, "%s%d",
					      n ? "," : "", s);
	buf[n] = '\0';
	return n;
}

static void on_connection(herd_worker *w, int fd, void *ud)
{
	char hi[64], ack[64], line[160];
	int n;

	(void)ud;
	list(hi, sizeof(hi), got_hi);
	list(ack, sizeof(ack), got_ack);
	n = snprintf(line, sizeof(line), "slot=%d hi=%s ack=%s\n",
		     herd_worker_slot(w), hi, ack);
	if (write(fd, line, (size_t)n) != n)
		herd_log(HERD_LOG_WARN, "short write");
	herd_conn_close(w, fd);
}

int main(int argc, char **argv)
{
	herd *h = herd_new();
	int rc;

	nworkers = argc > 2 ? atoi(argv[2]) : 3;
	if (h == NULL || argc < 2 || herd_listen(h, argv[1]) == -1 ||
	    nworkers > MAXW || herd_set_workers(h, nworkers) == -1) {
		fprintf(stderr, "usage: peers ADDR [WORKERS]\n");
		herd_free(h);
		return 2;
	}
	herd_on_start(h, on_start);
	herd_on_message(h, on_message);
	herd_on_connection(h, on_connection);
	rc = herd_run(h);
	herd_free(h);
	return rc;
}
